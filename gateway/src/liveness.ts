/**
 * @module liveness
 * Whether the device is still there ([LM-DLV-13]): the time of its last authenticated frame and
 * of its Last Will. The session's timer asks {@link Liveness.check} on each tick; the Will
 * itself, an unauthenticated BYE, ends nothing ([LM-FRAME-5]), only its grace running out does.
 */
import { DeviceOfflineError, DeviceSilentError } from './errors.js';

export interface LivenessLimits {
  /** ms without an authenticated frame before the session ends with `timeout` (the reference: 20 s) */
  silence: number;
  /** ms after the Last Will before the session ends with `offline` unless the device is heard again (the reference: 10 s) */
  grace: number;
}

/**
 * One session's view of its device's liveness, on an injected clock.
 *
 * @example
 * const l = new Liveness('p1', () => clock, { silence: 20_000, grace: 10_000 });
 * l.accepted(); l.offline(); clock += 10_001; l.check(); // DeviceOfflineError
 */
export class Liveness {
  /** when the last authenticated frame of the device arrived; undefined before ACCEPT */
  private lastHeard: number | undefined;
  /** when the device's Last Will arrived; undefined while it is online */
  private offlineSince: number | undefined;

  constructor(
    private readonly device: string,
    private readonly now: () => number,
    private readonly limits: LivenessLimits,
  ) {}

  /** The device's signed ACCEPT arrived: silence counts from now. */
  accepted(): void {
    this.lastHeard = this.now();
  }

  /** An authenticated frame of the device arrived ([LM-DLV-13]): it is alive, whatever its Will said. */
  heard(): void {
    this.lastHeard = this.now();
    this.offlineSince = undefined;
  }

  /** The device's Last Will arrived. Returns false when one was already pending (its grace runs from the first). */
  offline(): boolean {
    if (this.offlineSince !== undefined) return false;
    this.offlineSince = this.now();
    return true;
  }

  /** The failure that ends the session now, if any: offline past the grace, or silent too long ([LM-DLV-13]). */
  check(): DeviceOfflineError | DeviceSilentError | undefined {
    const t = this.now();
    if (this.offlineSince !== undefined && t - this.offlineSince > this.limits.grace) {
      return new DeviceOfflineError(`device "${this.device}" went offline (its Last Will) ${((t - this.offlineSince) / 1000).toFixed(1)} s ago and did not come back ([LM-DLV-13])`);
    }
    if (this.lastHeard !== undefined && t - this.lastHeard > this.limits.silence) {
      return new DeviceSilentError(`no authenticated frame from device "${this.device}" for ${((t - this.lastHeard) / 1000).toFixed(1)} s: it is gone or cut off ([LM-DLV-13])`);
    }
    return undefined;
  }
}
