/**
 * @module resume
 * Resume without the plaintext ([LM-DLV-20], [LM-DLV-21], [LM-DLV-22]). The end digest
 * ([LM-DLV-6]) is SHA-256 of the whole job, so a restarted device that starts a new session at
 * `from` must know SHA-256's state after the job's first `from` bytes. Instead of reading those
 * bytes back from its consumer (a printer cannot give back what it printed), the device keeps
 * that state: SHA-256's intermediate hash value (FIPS 180-4 §6.2.2, the eight 32-bit words H(i)
 * after the last complete 64-byte block) and the byte count, at points that are multiples of
 * lcm(C, 64), written durably beside its resume ticket at a bounded rate, spread over time,
 * masked and tagged under keys of the licence. A resumed session continues the digest from the
 * newest kept point whose tag verifies at or below what the consumer reports having taken; the
 * consumer skips what it took beyond that point (the stream's `offset`). Nothing on the wire changes: END's digest and `jd` stay SHA-256 of the job.
 *
 * The SHA-256 is @noble/hashes' own, subclassed to read and set its state: no SHA-256 of ours.
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { _SHA256, sha256 } from '@noble/hashes/sha2.js';
import { ascii, wipe } from '@livematrix/spec';
import type { Clock } from './clock.js';

/** SHA-256's block: a point can only fall between two blocks (FIPS 180-4 §6.2.2). */
export const POINT_BLOCK = 64;
/**
 * Points kept per transaction ([LM-DLV-20]): the newest, and one in each age band
 * [2^k, 2^(k+1)) saves for k = 0..8 (see {@link retainPoints}), so that one taken before a
 * lagging consumer recorded its count is kept for lags of up to 2^8 saves.
 */
export const POINTS_KEPT = 10;
/**
 * Default ms of the device's clock between two durable writes of a point (`resumePointInterval`).
 * Each write replaces the licence record durably (two fsyncs): on an SD card, once every 10 s
 * over a long print is negligible wear and blocks the event loop for a few ms, where once a
 * second would not be; a printer makes little in 10 s, and a resume repeats at most that much
 * beyond the consumer's own lag.
 */
export const POINT_SAVE_MS = 10_000;
/** bytes of a point's tag ([LM-DLV-22]): HMAC-SHA-256, whole */
export const POINT_TAG_BYTES = 32;

/** A point of a job's digest: the intermediate hash value `h` (32 bytes) after its first `n` bytes, `n` a multiple of 64. */
export interface HashPoint {
  readonly n: number;
  readonly h: Uint8Array;
}

/** A point as it is stored ([LM-DLV-22]): `h` masked, and `t` the tag over `n` and the masked `h`. */
export interface SealedPoint extends HashPoint {
  readonly t: Uint8Array;
}

/** Checks a point's shape; throws RangeError. (Its value is checked by its tag, {@link openPoint}.) */
export function checkPoint<P extends HashPoint>(p: P): P {
  if (!Number.isSafeInteger(p.n) || p.n < 0 || p.n % POINT_BLOCK !== 0) throw new RangeError(`"n" expected a multiple of ${POINT_BLOCK} bytes, got ${p.n}`);
  if (!(p.h instanceof Uint8Array) || p.h.length !== 32) throw new RangeError(`"h" expected Uint8Array of length 32, got length=${(p.h as Uint8Array | undefined)?.length}`);
  return p;
}

/** Checks a stored point's shape, its tag's length included; throws RangeError. */
export function checkSealed(p: SealedPoint): SealedPoint {
  checkPoint(p);
  if (!(p.t instanceof Uint8Array) || p.t.length !== POINT_TAG_BYTES) throw new RangeError(`"t" expected Uint8Array of length ${POINT_TAG_BYTES}, got length=${(p.t as Uint8Array | undefined)?.length}`);
  return p;
}

/**
 * @noble/hashes' SHA-256 with its state taken out and put back between blocks.
 *
 * @example
 * const a = new ResumableSha256().update(first64k);
 * const p = a.point(); // { n: 65536, h }
 * const b = ResumableSha256.at(p!).update(rest); // b.digest() equals sha256(first64k ‖ rest)
 */
export class ResumableSha256 extends _SHA256 {
  /** A hash that continues the message whose first `p.n` bytes left the state `p.h`. */
  static at(p: HashPoint): ResumableSha256 {
    checkPoint(p);
    const s = new ResumableSha256();
    const v = new DataView(p.h.buffer, p.h.byteOffset, 32);
    const w = (i: number) => v.getUint32(4 * i, false);
    s.set(w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7));
    s.length = p.n;
    return s;
  }

  /** The state after the bytes hashed so far; undefined unless they are a whole number of blocks. */
  point(): HashPoint | undefined {
    if (this.pos !== 0 || this.finished || this.destroyed) return undefined;
    const h = new Uint8Array(32);
    const v = new DataView(h.buffer);
    this.get().forEach((x, i) => v.setUint32(4 * i, x, false));
    return { n: this.length, h };
  }
}

/** [LM-DLV-22]: the key that masks a transaction's kept points, `HKDF(K_lic, "lm1 resume ihv")`. */
export function pointMaskKey(licence: Uint8Array): Uint8Array {
  return hkdf(sha256, licence, new Uint8Array(0), ascii('lm1 resume ihv'), 32);
}

/** [LM-DLV-22]: the key that tags a transaction's kept points, `HKDF(K_lic, "lm1 resume tag")`, apart from the mask key. */
export function pointTagKey(licence: Uint8Array): Uint8Array {
  return hkdf(sha256, licence, new Uint8Array(0), ascii('lm1 resume tag'), 32);
}

/** The keys of a transaction's points ([LM-DLV-22]): mask ‖ tag key, 64 bytes, erased with one wipe(). */
export function pointKeys(licence: Uint8Array): Uint8Array {
  const mk = pointMaskKey(licence);
  const tk = pointTagKey(licence);
  const k = new Uint8Array(64);
  k.set(mk);
  k.set(tk, 32);
  wipe(mk, tk);
  return k;
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), false);
  return b;
}

/**
 * [LM-DLV-22]: `h ⊕ HMAC-SHA-256(mk, u64be(n))`. Masks a point for storage and unmasks a stored
 * one: without the licence, a device's storage cannot confirm a candidate file.
 */
export function maskPoint(mk: Uint8Array, p: HashPoint): HashPoint {
  checkPoint(p);
  const pad = hmac(sha256, mk.subarray(0, 32), u64(p.n));
  const h = p.h.map((b, i) => b ^ (pad[i] as number));
  wipe(pad);
  return { n: p.n, h };
}

/** [LM-DLV-22]: `HMAC-SHA-256(tk, u64be(n) ‖ masked h)`, the tag of a stored point. */
export function pointTag(tk: Uint8Array, masked: HashPoint): Uint8Array {
  const m = new Uint8Array(40);
  m.set(u64(masked.n));
  m.set(masked.h, 8);
  return hmac(sha256, tk, m);
}

/** A point as it is stored ([LM-DLV-22]): masked, then tagged; `keys` from {@link pointKeys}. */
export function sealPoint(keys: Uint8Array, p: HashPoint): SealedPoint {
  const m = maskPoint(keys.subarray(0, 32), p);
  return { ...m, t: pointTag(keys.subarray(32, 64), m) };
}

/** A stored point's value ([LM-DLV-22]), or undefined when its tag is wrong (storage that flipped a bit, or an edit). */
export function openPoint(keys: Uint8Array, s: SealedPoint): HashPoint | undefined {
  checkSealed(s);
  const want = pointTag(keys.subarray(32, 64), s);
  let diff = 0;
  for (let i = 0; i < POINT_TAG_BYTES; i++) diff |= (want[i] as number) ^ (s.t[i] as number);
  return diff === 0 ? maskPoint(keys.subarray(0, 32), s) : undefined;
}

/**
 * [LM-DLV-20]: the point a resume starts from, unmasked: the largest kept `n` at most `took`
 * (what the consumer reports), a multiple of the new session's C (and of 64, as every point is),
 * whose tag verifies ([LM-DLV-22]). A point whose tag is wrong is skipped for the next older one
 * and reported through `bad`.
 */
export function pickPoint(kept: readonly SealedPoint[], took: number, chunk: number, keys: Uint8Array, bad?: (n: number) => void): HashPoint | undefined {
  const fit = kept.filter((p) => p.n > 0 && p.n <= took && p.n % chunk === 0).sort((a, b) => b.n - a.n);
  for (const p of fit) {
    const open = openPoint(keys, p);
    if (open) return open;
    bad?.(p.n);
  }
  return undefined;
}

/**
 * [LM-DLV-20]: which of a transaction's points to keep, by their save sequence numbers `s`
 * (one per durable write): the newest, and in each band of ages [2^k, 2^(k+1)) saves before it,
 * k = 0..POINTS_KEPT-2, the oldest. A point enters a band when it ages out of the one below and
 * stays until it ages out of its own, so once the saves have filled the bands every age A up to
 * 2^(POINTS_KEPT-2) has a kept point between A and 4A saves old: a consumer whose last record of
 * its count is A saves old finds a point at or below it.
 */
export function retainPoints<P extends { readonly s: number }>(points: readonly P[]): P[] {
  if (points.length === 0) return [];
  const newest = Math.max(...points.map((p) => p.s));
  const keep: P[] = [];
  const top = 2 ** (POINTS_KEPT - 1);
  const bands = new Map<number, P>();
  for (const p of points) {
    const age = newest - p.s;
    if (age === 0) keep.push(p);
    else if (age > 0 && age < top) {
      const k = Math.floor(Math.log2(age));
      const held = bands.get(k);
      if (!held || p.s < held.s) bands.set(k, p);
    }
  }
  return [...keep, ...bands.values()];
}

/** lcm(C, 64): the points of a session whose chunks are C bytes. */
export function pointStep(chunk: number): number {
  let a = chunk;
  let b = POINT_BLOCK;
  while (b) [a, b] = [b, a % b];
  return (chunk / a) * POINT_BLOCK;
}

/** Where a device keeps its points: durably, beside the transaction's ticket ([LM-LIC-2]). */
export interface PointStore {
  /** keeps a sealed point of the transaction ([LM-DLV-22]); throws when it could not be written */
  keepPoint(txh: string, p: SealedPoint): void;
}

/** What the delivery phase needs to carry the end digest across a restart. */
export interface DigestCheckpoints {
  /** the digest continues from this point (its `n` is the session's `from`); undefined: from the job's start, or a prefix read back */
  readonly start: HashPoint | undefined;
  /** points fall on multiples of this (lcm(C, 64)) */
  readonly step: number;
  /** the digest passed a point (the consumer took `p.n` bytes): kept in memory, written at most once per `interval` */
  passed(p: HashPoint): void;
  /** writes the newest point not written yet (the session is cut off, [LM-LIC-3]) */
  flush(): void;
  /** erases the point keys and the point in memory; nothing is written after */
  destroy(): void;
}

export interface CheckpointOptions {
  txh: string;
  /** the session's C */
  chunk: number;
  /** the point the session starts from, unmasked */
  start: HashPoint | undefined;
  /** the keys of {@link pointKeys}; the checkpoints keep them, and erase them in destroy() */
  keys: Uint8Array;
  clock: Clock;
  store: PointStore;
  /** ms between two durable writes at most; default POINT_SAVE_MS */
  interval?: number | undefined;
}

/**
 * A session's points ([LM-DLV-20]): the newest is held in memory and written through `store`,
 * sealed ([LM-DLV-22]), at most once per `interval` ms, and once more when the session is cut
 * off. A write that fails is dropped (the previous points stay, so a resume starts a little
 * earlier) and tried again at the next point.
 */
export function digestCheckpoints(o: CheckpointOptions): DigestCheckpoints {
  const interval = o.interval ?? POINT_SAVE_MS;
  let latest: HashPoint | undefined;
  let saved = -Infinity;
  let savedN = o.start?.n ?? 0;
  let closed = false;
  const save = () => {
    const p = latest;
    if (!p || closed || p.n <= savedN) return;
    try {
      o.store.keepPoint(o.txh, sealPoint(o.keys, p)); // [LM-DLV-22]
      savedN = p.n;
    } catch {
      // the licence store refused the write: the points before this one still resume the job
    }
    saved = o.clock();
  };
  return {
    start: o.start,
    step: pointStep(o.chunk),
    passed(p) {
      if (closed) return;
      latest = checkPoint(p);
      if (o.clock() - saved >= interval) save();
    },
    flush: save,
    destroy() {
      closed = true;
      latest = undefined;
      wipe(o.keys);
    },
  };
}
