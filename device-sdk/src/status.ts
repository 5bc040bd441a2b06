/**
 * @module status
 * The device's status outside sessions (SPEC.md §10.2): a signed STATUS, retained on its status
 * topic, after each HELLO, on every change of state and at least every interval, session or not
 * ([LM-STATE-1]); its state from what the host reports of the machine and whether a session runs
 * ([LM-STATE-2]); the boot sequence of the connection ([LM-STATE-3]); and the HELLO again with each
 * STATUS of the interval, which repairs a retained HELLO a late Will replaced ([LM-STATE-4]). A
 * timer-driven sub-machine on injected timers, testable without a broker.
 *
 * A STATUS is signed, not encrypted: what the host puts in `readings` anyone who may read the
 * status topic sees. Job content belongs in session telemetry ([LM-TEL-1]), which is encrypted.
 */
import { type CborValue, DEFAULT_STATUS_INTERVAL_MS, DeviceState, type DeviceStateName, STATUS_TEL_MAX, type StatusBody, encodeCbor, errorMessage, utf8Length } from '@livematrix/spec';
import type { Cancel, Clock, Timers } from './clock.js';
import { StatusReportError } from './errors.js';

/** The machine's condition as its host knows it ([LM-STATE-2]). */
export type MachineCondition = 'ok' | 'paused' | 'error';

/**
 * What the host reports of the machine. Every field is optional; what is absent stays as it was.
 *
 * @example
 * await device.setStatus({ readings: { nozzle_mC: 214_870, bed_mC: 60_125 } }); // shown at the next interval
 * await device.setStatus({ machine: 'error', detail: 'thermal runaway' });     // published at once
 */
export interface StatusReport {
  /** 'paused' or 'error' override what the session says, error first; 'ok' clears them (and the detail) */
  machine?: MachineCondition;
  /** why the machine is paused or in error, at most 256 bytes of UTF-8 */
  detail?: string;
  /**
   * readings merged into the latest ones, shown in clear in every STATUS from the next one on; a key
   * set to undefined is removed. Integers (in a stated unit: `bed_mC`), text, booleans, bytes,
   * arrays and maps with text keys; no floats (the CBOR profile has none, [LM-CBOR-2]); at most
   * 4096 bytes encoded in all
   */
  readings?: Record<string, CborValue | undefined>;
}

/** What the status needs of its device. */
export interface StatusDeps {
  readonly clock: Clock;
  readonly timers: Timers;
  /** ms between STATUS frames when nothing changes ([LM-STATE-1]) */
  readonly interval: number;
  readonly device: string;
  /** whether a session runs */
  streaming(): boolean;
  /** encodes and signs a STATUS with the identity key */
  sign(body: StatusBody): Uint8Array;
  /** publishes a STATUS on the status topic, retained, QoS 1 */
  publish(frame: Uint8Array): Promise<void>;
  /** publishes the HELLO again, retained ([LM-STATE-4]) */
  announce(): Promise<void>;
  /** a publication that failed (the broker went away: the next connection starts over) */
  failed(e: unknown): void;
}

/** The default interval between STATUS frames ([LM-STATE-1]). */
export const STATUS_INTERVAL_MS = DEFAULT_STATUS_INTERVAL_MS;

/**
 * The device's status: what it publishes, when, and under which connection.
 *
 * @example
 * const st = new DeviceStatus({ clock, timers, interval: 30_000, device: 'p1', streaming, sign, publish, announce, failed });
 * await st.connected(bd); // after the HELLO of each connection
 */
export class DeviceStatus {
  private machine: MachineCondition = 'ok';
  private detail: string | undefined;
  private readings = new Map<string, CborValue>();
  /** the connection's boot sequence; undefined while not connected */
  private bd: number | undefined;
  private seq = 0;
  /** the state of the last STATUS published on this connection */
  private published: DeviceStateName | undefined;
  private timer: Cancel | undefined;
  private left = false;

  constructor(private readonly d: StatusDeps) {
    if (!(d.interval > 0)) throw new StatusReportError(`the status interval must be a positive number of ms, got ${d.interval}`);
  }

  /** The device's state now ([LM-STATE-2]): error, paused, streaming or idle; offline once it left. */
  get state(): DeviceStateName {
    if (this.left) return 'offline';
    if (this.machine === 'error') return 'error';
    if (this.machine === 'paused') return 'paused';
    return this.d.streaming() ? 'streaming' : 'idle';
  }

  /** The latest readings, as the next STATUS will show them. */
  get latest(): ReadonlyMap<string, CborValue> {
    return this.readings;
  }

  /**
   * A connection was made and its HELLO published: a STATUS numbered 0 of its boot sequence `bd`
   * now, then one every interval, each after the HELLO again ([LM-STATE-1], [LM-STATE-4]).
   */
  async connected(bd: number): Promise<void> {
    this.bd = bd;
    this.seq = 0;
    this.published = undefined;
    this.timer?.();
    this.timer = this.d.timers.every(this.d.interval, () => void this.tick());
    await this.send();
  }

  /** Whether a session runs may have changed: a STATUS at once if the state did ([LM-STATE-1]). */
  async changed(): Promise<void> {
    if (this.bd !== undefined && this.state !== this.published) await this.send();
  }

  /**
   * The host reports the machine ([LM-STATE-2]): checked whole before anything changes; a change of
   * state is published at once, readings go with the next STATUS. Throws {@link StatusReportError}
   * for readings or a detail the frame cannot carry.
   */
  async report(r: StatusReport): Promise<void> {
    const readings = new Map(this.readings);
    for (const [k, v] of Object.entries(r.readings ?? {})) {
      if (v === undefined) readings.delete(k);
      else readings.set(k, v);
    }
    let size: number;
    try {
      size = encodeCbor(readings).length;
    } catch (e) {
      throw new StatusReportError(`status readings cannot be encoded (${errorMessage(e)}): use integers in a stated unit, text, booleans, bytes, arrays or maps with text keys; no floats ([LM-CBOR-2])`);
    }
    if (size > STATUS_TEL_MAX) throw new StatusReportError(`status readings take ${size} bytes encoded; at most ${STATUS_TEL_MAX} ([LM-STATE-1])`);
    const machine = r.machine ?? this.machine;
    const detail = machine === 'ok' && r.machine === 'ok' ? r.detail : r.detail ?? this.detail;
    if (detail !== undefined && utf8Length(detail) > 256) throw new StatusReportError(`status detail of ${utf8Length(detail)} bytes of UTF-8; at most 256`);
    this.readings = readings;
    this.machine = machine;
    this.detail = detail;
    await this.changed();
  }

  /** The device leaves on purpose: a last STATUS `offline` ([LM-STATE-2]) when `say` (it is connected); then nothing more. */
  async leaving(say = true): Promise<void> {
    this.left = true;
    this.stop();
    if (say && this.bd !== undefined) await this.send();
  }

  /** The connection dropped: nothing is published until the next one is made. */
  disconnected(): void {
    this.bd = undefined;
    this.stop();
  }

  /** Stops the interval timer. */
  stop(): void {
    this.timer?.();
    this.timer = undefined;
  }

  /** The interval: the HELLO again ([LM-STATE-4]), then the STATUS ([LM-STATE-1]). */
  private async tick(): Promise<void> {
    if (this.bd === undefined || this.left) return;
    try {
      await this.d.announce();
    } catch (e) {
      this.d.failed(e);
    }
    await this.send();
  }

  private async send(): Promise<void> {
    const bd = this.bd;
    if (bd === undefined) return;
    const state = this.state;
    const body: StatusBody = {
      device: this.d.device, state: DeviceState[state], seq: this.seq++, time: this.d.clock(), bd,
      ...(this.readings.size ? { tel: new Map(this.readings) } : {}), ...(this.detail !== undefined && (state === 'error' || state === 'paused') ? { detail: this.detail } : {}),
    };
    this.published = state;
    try {
      await this.d.publish(this.d.sign(body));
    } catch (e) {
      this.d.failed(e);
    }
  }
}
