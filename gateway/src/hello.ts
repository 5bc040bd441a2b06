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

/** how far from the gateway's clock the time of a HELLO of a new boot may be ([LM-MQTT-6]) */
export const HELLO_FRESH_MS = 10 * 60_000;

/** What a gateway remembers of a device's HELLOs under one key, to judge the next one. */
export interface HelloHistory {
  /** the last HELLO accepted */
  last: HelloBody | undefined;
  /** boot values of earlier HELLOs accepted (a bounded list) */
  boots: readonly Uint8Array[];
  /** the gateway's clock now (ms) */
  now: number;
}

/**
 * Why a HELLO on `device`'s state topic must be ignored, or undefined when the gateway may act
 * on it ([LM-MQTT-6]): it must name the device of its topic and verify under the device's
 * registered key (with a `registry`) or the key it carries (checked against the transaction's
 * when a stream starts). Within one boot its time must not go back (the same HELLO again counts:
 * a broker re-delivers retained messages); a boot seen before and left is a replay; a new boot
 * must carry a time within {@link HELLO_FRESH_MS} of the gateway's clock, whatever the time of
 * the last one (a device whose clock was ahead and is set right is not locked out).
 *
 * @example
 * const why = helloRefusal('p1', frame, undefined, { last, boots, now: Date.now() }); if (why) ignore(why);
 */
export function helloRefusal(device: string, f: HelloFrame, registry: ReadonlyMap<string, Uint8Array> | undefined, seen: HelloHistory): string | undefined {
  const last = seen.last;
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
  if (!last) return undefined;
  const sameBoot = last.boot !== undefined && h.boot !== undefined && equalBytes(last.boot, h.boot);
  if (sameBoot || h.boot === undefined || last.boot === undefined) {
    return h.time < last.time ? `its time ${h.time} is before the last accepted HELLO's ${last.time} (a replay)` : undefined;
  }
  const boot = h.boot;
  if (seen.boots.some((b) => equalBytes(b, boot))) return `its boot ${toHex(boot)} is one the device has left (a replay)`;
  if (Math.abs(h.time - seen.now) > HELLO_FRESH_MS) return `its time ${h.time} is ${Math.round((h.time - seen.now) / 1000)} s from the gateway's clock for a new boot (a replay, or a clock far off)`;
  return undefined;
}

/**
 * [LM-DLV-10]: a new boot value while streaming means the device's process restarted; only an
 * accepted HELLO ({@link helloRefusal}) of the transaction's device key `dpk` with a boot other
 * than that of the HELLO the session answered says so.
 */
export function isRestart(h: HelloBody, dpk: Uint8Array, answered: HelloBody | undefined): boolean {
  return equalBytes(h.idpk, dpk) && answered?.boot !== undefined && h.boot !== undefined && !equalBytes(answered.boot, h.boot);
}

/** Boot values remembered per device and key. */
const BOOTS_PER_KEY = 8;

/** Identity keys kept per device: bounded, since an attacker can sign with as many as it likes. */
const KEYS_PER_DEVICE = 4;
/** Devices whose HELLOs are kept: bounded, since without topic isolation or a registry anyone can announce any id. */
export const MAX_DEVICES = 10_000;

type ByKey = Map<string, Map<string, HelloBody>>;

/** The accepted HELLOs of a gateway's devices, and waiters for them. */
export class HelloBook {
  /** the latest accepted HELLO of each device and identity key (hex), while it is online ([LM-MQTT-6]) */
  private readonly online: ByKey = new Map();
  /** the latest accepted HELLO of each device and key, kept across its BYE (to see restarts and replays) */
  private readonly latest: ByKey = new Map();
  private readonly waiters = new Map<string, { key: string | undefined; done: (h: HelloBody) => void }[]>();

  constructor(private readonly clock: Clock) {}

  /** earlier boot values of each device and key (hex), newest last ([LM-MQTT-6]) */
  private readonly boots = new Map<string, Uint8Array[]>();

  /** What is known of `device`'s HELLOs under key `idpk`, online or not, to judge a new one. */
  history(device: string, idpk: Uint8Array): HelloHistory {
    return { last: this.latest.get(device)?.get(toHex(idpk)), boots: this.boots.get(`${device}/${toHex(idpk)}`) ?? [], now: this.clock.now() };
  }

  /** Records an accepted HELLO. */
  accept(device: string, h: HelloBody): void {
    const key = toHex(h.idpk);
    const before = this.latest.get(device)?.get(key)?.boot;
    if (before && h.boot && !equalBytes(before, h.boot) && this.latest.get(device)?.has(key)) {
      const list = [...(this.boots.get(`${device}/${key}`) ?? []), before].slice(-BOOTS_PER_KEY);
      this.boots.delete(`${device}/${key}`);
      this.boots.set(`${device}/${key}`, list);
      for (const old of this.boots.keys()) {
        if (this.boots.size <= MAX_DEVICES * KEYS_PER_DEVICE) break;
        this.boots.delete(old);
      }
    }
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

  /**
   * The latest HELLO accepted of `device` under the identity key `key` ([LM-STATE-5], [LM-STATE-6]);
   * undefined without a key: a HELLO of any key must not decide what a device's Will or status
   * means, or whoever announces a device under a key of their own would hide its Will.
   */
  latestOf(device: string, key: Uint8Array | undefined): HelloBody | undefined {
    return key ? this.latest.get(device)?.get(toHex(key)) : undefined;
  }

  /** The identity key of the first HELLO this gateway accepted of `device` (trust on first use, for a gateway without a registry). */
  firstKeyOf(device: string): Uint8Array | undefined {
    const first = this.latest.get(device)?.values().next();
    return first && !first.done ? first.value.idpk : undefined;
  }

  /** Devices with an accepted HELLO and no BYE since. */
  onlineDevices(): string[] {
    return [...this.online.keys()];
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
  m.delete(device);
  m.set(device, byKey); // the most recently heard device last
  for (const old of m.keys()) {
    if (m.size <= MAX_DEVICES) break;
    m.delete(old);
  }
}
