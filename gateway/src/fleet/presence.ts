/**
 * @module fleet/presence
 * What the fleet service knows of each device right now ([LM-FLEET-6]): online from an accepted
 * HELLO until its Last Will, the last time it was heard, its latest telemetry and the last 60
 * numeric samples for the dashboard's sparklines. Not stored: after a restart the broker's
 * retained HELLOs and Wills tell it again.
 */
import type { TelemetrySample } from './api.js';

/** Samples kept per device. */
export const HISTORY = 60;

export interface Presence {
  online: boolean;
  lastSeen: number | null;
  telemetry: Record<string, unknown> | null;
  history: TelemetrySample[];
}

export class PresenceBook {
  private readonly devices = new Map<string, Presence>();

  constructor(private readonly changed: (device: string) => void) {}

  private entry(device: string): Presence {
    let p = this.devices.get(device);
    if (!p) {
      p = { online: false, lastSeen: null, telemetry: null, history: [] };
      this.devices.set(device, p);
    }
    return p;
  }

  /** A HELLO the gateway accepted. */
  hello(device: string, time: number): void {
    const p = this.entry(device);
    p.online = true;
    p.lastSeen = time;
    this.changed(device);
  }

  /** The device's Last Will. */
  offline(device: string, time: number): void {
    const p = this.entry(device);
    p.online = false;
    p.lastSeen = time;
    this.changed(device);
  }

  /** Telemetry from a stream of the device: kept whole, and its numeric fields as a sample. */
  telemetry(device: string, t: Record<string, unknown>, time: number): void {
    const p = this.entry(device);
    p.telemetry = t;
    p.lastSeen = time;
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(t)) if (typeof v === 'number' && Number.isFinite(v)) values[k] = v;
    p.history.push({ time, values });
    if (p.history.length > HISTORY) p.history.splice(0, p.history.length - HISTORY);
    this.changed(device);
  }

  get(device: string): Presence {
    return this.devices.get(device) ?? { online: false, lastSeen: null, telemetry: null, history: [] };
  }

  /** Devices heard of, online or not. */
  known(): string[] {
    return [...this.devices.keys()];
  }

  online(): string[] {
    return [...this.devices].filter(([, p]) => p.online).map(([d]) => d);
  }
}
