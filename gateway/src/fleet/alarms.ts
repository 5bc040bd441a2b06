/**
 * @module fleet/alarms
 * Alarms that quarantine ([LM-FLEET-4]): a rate or tamper alarm raised on a stream of the
 * service, or seen on the fleet's alarm topic naming a device ([LM-ALARM-6]), puts the device in
 * quarantine (durably, with the alarm logged) until an operator clears it. The service's own
 * alarms also come back on the topic: those are taken once.
 */
import { reasonName } from '@livematrix/spec';
import type { Clock } from '../clock.js';
import type { FleetAlarm } from '../types.js';
import { QUARANTINING } from './outcome.js';
import type { AlarmRecord, FleetDb } from './types.js';

/** ms within which an alarm on the fleet topic is taken as the echo of one a stream here raised */
const ECHO_MS = 10_000;

export interface AlarmDeskHost {
  db: FleetDb;
  clock: Clock;
  log(line: string): void;
  /** the alarm is recorded and the device quarantined */
  quarantined(a: AlarmRecord): Promise<void>;
}

export class AlarmDesk {
  private readonly recent = new Map<string, number>();

  constructor(private readonly h: AlarmDeskHost) {}

  /** Quarantines `device` for an alarm and records it. */
  async quarantine(device: string, code: number, detail: string, origin: 'stream' | 'fleet', job?: string): Promise<void> {
    const time = this.h.clock.now();
    const name = reasonName(code as never) ?? String(code);
    await this.h.db.quarantine(device, `${name}: ${detail}`.slice(0, 300), time);
    const a = await this.h.db.addAlarm({ device, code, detail, time, origin, ...(job ? { job } : {}) });
    this.h.log(`ALARM ${name} on ${device} (${origin}): ${detail}; ${device} is quarantined until an operator clears it`);
    await this.h.quarantined(a);
  }

  /** An alarm raised on a stream of the service, about its device. */
  async onStream(device: string, job: string, code: number, detail: string): Promise<void> {
    if (!QUARANTINING.has(code)) return;
    this.recent.set(`${device}:${code}`, this.h.clock.now());
    await this.quarantine(device, code, detail, 'stream', job);
  }

  /** An ALARM on the fleet's alarm topic; true when it quarantined a device (not an echo of the service's own). */
  async onFleet(a: FleetAlarm): Promise<boolean> {
    if (!a.device || !QUARANTINING.has(a.code)) return false;
    const echo = this.recent.get(`${a.device}:${a.code}`);
    if (echo !== undefined && this.h.clock.now() - echo < ECHO_MS) return false;
    await this.quarantine(a.device, a.code, a.detail, 'fleet');
    return true;
  }
}
