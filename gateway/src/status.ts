/**
 * @module status
 * What a gateway knows of its devices' state outside sessions (SPEC.md §10.2): the latest STATUS
 * it took of each device ([LM-STATE-6]: signed by the device's key, of its current connection's
 * boot sequence, newer than the last), and whether a BYE on a device's state topic is the late
 * Last Will of an earlier connection, which changes nothing ([LM-STATE-5]).
 */
import { type ByeBody, type HelloBody, type StatusBody, type StatusFrame, isStaleBye, statusRefusal } from '@livematrix/spec';

/** Devices whose status is kept: bounded, as the HELLOs are (hello.ts). */
const MAX_DEVICES = 10_000;

/** The latest STATUS taken of each device. */
export class StatusBook {
  private readonly latest = new Map<string, StatusBody>();
  /**
   * A STATUS of a connection newer than the device's latest accepted HELLO, kept (one per device,
   * the newest) until that connection's HELLO is accepted: MQTT orders messages within one topic
   * only, so a gateway that subscribes late may get the retained STATUS before the retained HELLO.
   */
  private readonly pending = new Map<string, StatusFrame>();

  /**
   * Takes `f`, on `device`'s status topic, as the device's state when [LM-STATE-6] allows: `key` is
   * the device's registered key or that of its latest accepted HELLO, `hello` that HELLO. Returns
   * why it was ignored, or undefined when it was taken.
   *
   * @example
   * const why = book.take('p1', frame, key, hello); if (!why) emit('status', 'p1', frame.body);
   */
  take(device: string, f: StatusFrame, key: Uint8Array | undefined, hello: HelloBody | undefined): string | undefined {
    const why = statusRefusal(device, f, { key, hello, last: this.latest.get(device) });
    if (why !== undefined) {
      // of a connection whose HELLO has not been taken yet: kept for it ([LM-STATE-6] still decides)
      if (f.body.device === device && (hello?.bd === undefined || f.body.bd > hello.bd)) {
        const held = this.pending.get(device);
        if (!held || held.body.bd < f.body.bd || (held.body.bd === f.body.bd && held.body.seq < f.body.seq)) {
          this.pending.delete(device);
          this.pending.set(device, f);
          for (const old of this.pending.keys()) {
            if (this.pending.size <= MAX_DEVICES) break;
            this.pending.delete(old);
          }
        }
      }
      return why;
    }
    this.latest.delete(device);
    this.latest.set(device, f.body);
    for (const old of this.latest.keys()) {
      if (this.latest.size <= MAX_DEVICES) break;
      this.latest.delete(old);
    }
    return undefined;
  }

  /**
   * After a HELLO of `device` was accepted: the STATUS kept for its connection, taken now if
   * [LM-STATE-6] allows; returns it when taken.
   */
  takePending(device: string, key: Uint8Array | undefined, hello: HelloBody | undefined): StatusBody | undefined {
    const f = this.pending.get(device);
    if (!f || hello?.bd === undefined || f.body.bd > hello.bd) return undefined;
    this.pending.delete(device);
    return this.take(device, f, key, hello) === undefined ? f.body : undefined;
  }

  /** A STATUS already taken, delivered again (a retained message after a resubscription): nothing to say. */
  isRepeat(device: string, f: StatusFrame): boolean {
    const last = this.latest.get(device);
    return last !== undefined && last.bd === f.body.bd && last.seq === f.body.seq && last.time === f.body.time;
  }

  /** The latest STATUS taken of `device`, if any. */
  get(device: string): StatusBody | undefined {
    return this.latest.get(device);
  }
}

/**
 * [LM-STATE-5]: a BYE on a device's state topic that carries a boot sequence other than that of
 * the device's latest accepted HELLO is the late Will of an earlier connection; undefined when the
 * BYE says the device left, otherwise why it is ignored.
 */
export function lateByeReason(bye: ByeBody, hello: HelloBody | undefined): string | undefined {
  if (!isStaleBye(bye, hello)) return undefined;
  return `its bd ${String(bye.bd)} is below that of the device's current connection (${String(hello?.bd)}): the late Last Will of an earlier connection ([LM-STATE-5])`;
}
