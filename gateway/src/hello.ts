/**
 * @module hello
 * HELLO handling ([LM-MQTT-6], [LM-DLV-10]): which HELLO a gateway may act on, the latest
 * accepted one of each device and identity key, whether one says that the device restarted,
 * and callers waiting for a device to announce itself.
 */
import { type FrameType, type Frame, type HelloBody, equalBytes, toHex, toLmError, verifyFrame } from '@livematrix/spec';
import type { Clock } from './clock.js';
import { HelloTimeoutError } from './errors.js';

export type HelloFrame = Frame<typeof FrameType.HELLO>;

/**
 * Why a HELLO on `device`'s state topic must be ignored, or undefined when the gateway may act
 * on it ([LM-MQTT-6]): it must name the device of its topic, verify under the device's
 * registered key (with a `registry`) or the key it carries (checked against the transaction's
 * when a stream starts), and be later than `last`, the last HELLO accepted for that device and
 * key (the same HELLO of the same boot again counts: a broker re-delivers retained messages).
 *
 * @example
 * const why = helloRefusal('p1', frame, undefined, lastAccepted); if (why) ignore(why);
 */
export function helloRefusal(device: string, f: HelloFrame, registry: ReadonlyMap<string, Uint8Array> | undefined, last: HelloBody | undefined): string | undefined {
  const h = f.body;
  if (h.device !== device) return `it names "${h.device}"`;
  const registered = registry?.get(device);
  if (registry && !registered) return 'the device is not registered';
  if (registered && !equalBytes(registered, h.idpk)) return 'its key is not the registered one';
  try {
    verifyFrame(f, { signer: h.idpk });
  } catch (e) {
    return toLmError(e).message;
  }
  const again = last?.boot !== undefined && h.boot !== undefined && equalBytes(last.boot, h.boot) && h.time === last.time;
  if (last && h.time <= last.time && !again) return `its time ${h.time} is not after the last accepted HELLO's ${last.time} (a replay)`;
  return undefined;
}

/**
 * [LM-DLV-10]: a new boot value while streaming means the device's process restarted; only a
 * HELLO of the transaction's device key `dpk`, later than the one the session answered, says so.
 */
export function isRestart(h: HelloBody, dpk: Uint8Array, answered: HelloBody | undefined): boolean {
  return equalBytes(h.idpk, dpk) && answered?.boot !== undefined && h.boot !== undefined && !equalBytes(answered.boot, h.boot) && h.time > answered.time;
}

/** Identity keys kept per device: bounded, since an attacker can sign with as many as it likes. */
const KEYS_PER_DEVICE = 4;

type ByKey = Map<string, Map<string, HelloBody>>;

/** The accepted HELLOs of a gateway's devices, and waiters for them. */
export class HelloBook {
  /** the latest accepted HELLO of each device and identity key (hex), while it is online ([LM-MQTT-6]) */
  private readonly online: ByKey = new Map();
  /** the latest accepted HELLO of each device and key, kept across its BYE (to see restarts and replays) */
  private readonly latest: ByKey = new Map();
  private readonly waiters = new Map<string, { key: string | undefined; done: (h: HelloBody) => void }[]>();

  constructor(private readonly clock: Clock) {}

  /** The last HELLO accepted for `device` under key `idpk`, online or not. */
  last(device: string, idpk: Uint8Array): HelloBody | undefined {
    return this.latest.get(device)?.get(toHex(idpk));
  }

  /** Records an accepted HELLO and hands it to those waiting for it. */
  accept(device: string, h: HelloBody): void {
    const key = toHex(h.idpk);
    put(this.online, device, key, h);
    put(this.latest, device, key, h);
  }

  /** Hands an accepted HELLO to those waiting for the device (and its key, if they named one). */
  notify(device: string, h: HelloBody): void {
    const key = toHex(h.idpk);
    const still = (this.waiters.get(device) ?? []).filter((w) => {
      if (w.key !== undefined && w.key !== key) return true;
      w.done(h);
      return false;
    });
    if (still.length) this.waiters.set(device, still);
    else this.waiters.delete(device);
  }

  /** The device left (its BYE or Last Will): its HELLOs no longer say it is online. */
  offline(device: string): void {
    this.online.delete(device);
  }

  /**
   * The device's latest HELLO while it is online, of key `publicKey` if given; waits up to
   * `timeout` ms for one, then fails with {@link HelloTimeoutError} saying `where` it looked.
   */
  wait(device: string, timeout: number, publicKey: Uint8Array | undefined, where: string): Promise<HelloBody> {
    const key = publicKey ? toHex(publicKey) : undefined;
    const known = this.online.get(device);
    const h = key ? known?.get(key) : [...(known?.values() ?? [])].pop();
    if (h) return Promise.resolve(h);
    return new Promise((resolve, reject) => {
      const waiter = {
        key, done: (x: HelloBody) => {
          cancel();
          resolve(x);
        },
      };
      const cancel = this.clock.after(timeout, () => {
        this.drop(device, waiter);
        reject(new HelloTimeoutError(`device "${device}" has not announced itself${key ? ` with key ${key.slice(0, 16)}...` : ''} on ${where} within ${timeout} ms`));
      });
      this.waiters.set(device, [...(this.waiters.get(device) ?? []), waiter]);
    });
  }

  private drop(device: string, waiter: { key: string | undefined; done: (h: HelloBody) => void }): void {
    const still = (this.waiters.get(device) ?? []).filter((w) => w !== waiter);
    if (still.length) this.waiters.set(device, still);
    else this.waiters.delete(device);
  }
}

/** Puts `h` as the latest of `device` and `key`, keeping at most {@link KEYS_PER_DEVICE} keys, the oldest dropped. */
function put(m: ByKey, device: string, key: string, h: HelloBody): void {
  const byKey = m.get(device) ?? new Map<string, HelloBody>();
  byKey.delete(key);
  byKey.set(key, h);
  for (const old of byKey.keys()) {
    if (byKey.size <= KEYS_PER_DEVICE) break;
    byKey.delete(old);
  }
  m.set(device, byKey);
}
