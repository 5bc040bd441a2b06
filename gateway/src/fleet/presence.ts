/**
 * @module fleet/presence
 * What the fleet service knows of each device right now ([LM-FLEET-6]): online from an accepted
 * HELLO until its Last Will, the last time it was heard, its latest telemetry and the last 60
 * numeric samples for the dashboard's sparklines, and the latest signed STATUS the gateway took
 * (SPEC §10.2, [LM-STATE-6]). Not stored: after a restart the broker's retained HELLOs, Wills and
 * STATUS frames tell it again.
 */
import type { StatusBody } from '@livematrix/spec';
import type { TelemetrySample } from './api.js';

/** Samples kept per device. */
export const HISTORY = 60;

export interface Presence {
  online: boolean;
  lastSeen: number | null;
  telemetry: Record<string, unknown> | null;
  history: TelemetrySample[];
  /** the latest STATUS the gateway took of the device, and when (the service's clock) */
  status: { body: StatusBody; received: number } | null;
}

const none = (): Presence => ({ online: false, lastSeen: null, telemetry: null, history: [], status: null });

export class PresenceBook {
  private readonly devices = new Map<string, Presence>();

  constructor(private readonly changed: (device: string) => void) {}

  private entry(device: string): Presence {
    let p = this.devices.get(device);
    if (!p) {
      p = none();
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

  /**
   * A STATUS the gateway took ([LM-STATE-6]: it verified it and found it current). Its state is
   * the device's word; whether the device is online stays the HELLO's and the Will's ([LM-STATE-5]).
   */
  status(device: string, body: StatusBody, time: number): void {
    this.entry(device).status = { body, received: time };
    this.changed(device);
  }

  get(device: string): Presence {
    return this.devices.get(device) ?? none();
  }

  /** Devices heard of, online or not. */
  known(): string[] {
    return [...this.devices.keys()];
  }

  online(): string[] {
    return [...this.devices].filter(([, p]) => p.online).map(([d]) => d);
  }
}
