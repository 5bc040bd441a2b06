/**
 * @module resume
 * Resume without the plaintext ([LM-DLV-20], [LM-DLV-21], [LM-DLV-22]). The end digest
 * ([LM-DLV-6]) is SHA-256 of the whole job, so a restarted device that starts a new session at
 * `from` must know SHA-256's state after the job's first `from` bytes. Instead of reading those
 * bytes back from its consumer (a printer cannot give back what it printed), the device keeps
 * that state: SHA-256's intermediate hash value (FIPS 180-4 §6.2.2, the eight 32-bit words H(i)
 * after the last complete 64-byte block) and the byte count, at points that are multiples of
 * lcm(C, 64), written durably beside its resume ticket at a bounded rate, masked under a key of
 * the licence. A resumed session continues the digest from the newest kept point at or below what
 * the consumer reports having taken; the consumer skips what it took beyond that point (the
 * stream's `offset`). Nothing on the wire changes: END's digest and `jd` stay SHA-256 of the job.
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
/** points kept per transaction: the newest, so that one at or below a lagging consumer's count exists */
export const POINTS_KEPT = 8;
/** at most one durable write of a point per this many ms of the device's clock */
export const POINT_SAVE_MS = 1000;

/** A point of a job's digest: the intermediate hash value `h` (32 bytes) after its first `n` bytes, `n` a multiple of 64. */
export interface HashPoint {
  readonly n: number;
  readonly h: Uint8Array;
}

/**
 * Checks a point's shape; throws RangeError. (Its value cannot be checked: a point that was
 * altered shows only as an end digest that fails, [LM-DLV-6].)
 */
export function checkPoint(p: HashPoint): HashPoint {
  if (!Number.isSafeInteger(p.n) || p.n < 0 || p.n % POINT_BLOCK !== 0) throw new RangeError(`"n" expected a multiple of ${POINT_BLOCK} bytes, got ${p.n}`);
  if (!(p.h instanceof Uint8Array) || p.h.length !== 32) throw new RangeError(`"h" expected Uint8Array of length 32, got length=${(p.h as Uint8Array | undefined)?.length}`);
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

/**
 * [LM-DLV-22]: `h ⊕ HMAC-SHA-256(mk, u64be(n))`. Masks a point for storage and unmasks a stored
 * one: without the licence, a device's storage cannot confirm a candidate file. There is no tag:
 * an altered point is caught by the end digest ([LM-DLV-6]).
 */
export function maskPoint(mk: Uint8Array, p: HashPoint): HashPoint {
  checkPoint(p);
  const n = new Uint8Array(8);
  new DataView(n.buffer).setBigUint64(0, BigInt(p.n), false);
  const pad = hmac(sha256, mk, n);
  const h = p.h.map((b, i) => b ^ (pad[i] as number));
  wipe(pad);
  return { n: p.n, h };
}

/**
 * [LM-DLV-20]: the point a resume starts from: the largest kept `n` at most `took` (what the
 * consumer reports) and a multiple of the new session's C (and of 64, as every point is).
 */
export function pickPoint(kept: readonly HashPoint[], took: number, chunk: number): HashPoint | undefined {
  let best: HashPoint | undefined;
  for (const p of kept) if (p.n > 0 && p.n <= took && p.n % chunk === 0 && (!best || p.n > best.n)) best = p;
  return best;
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
  /** keeps a masked point of the transaction; throws when it could not be written */
  keepPoint(txh: string, p: HashPoint): void;
}

/** What the delivery phase needs to carry the end digest across a restart. */
export interface DigestCheckpoints {
  /** the digest continues from this point (its `n` is the session's `from`); undefined: from the job's start, or a prefix read back */
  readonly start: HashPoint | undefined;
  /** points fall on multiples of this (lcm(C, 64)) */
  readonly step: number;
  /** the digest passed a point (the consumer took `p.n` bytes): kept in memory, written at most once per POINT_SAVE_MS */
  passed(p: HashPoint): void;
  /** writes the newest point not written yet (the session is cut off, [LM-LIC-3]) */
  flush(): void;
  /** erases the mask key and the point in memory; nothing is written after */
  destroy(): void;
}

export interface CheckpointOptions {
  txh: string;
  /** the session's C */
  chunk: number;
  /** the point the session starts from, unmasked */
  start: HashPoint | undefined;
  /** the key of {@link pointMaskKey}; the checkpoints keep it, and erase it in destroy() */
  mask: Uint8Array;
  clock: Clock;
  store: PointStore;
  /** default POINT_SAVE_MS */
  interval?: number;
}

/**
 * A session's points ([LM-DLV-20]): the newest is held in memory and written through `store`
 * at most once per `interval` ms, and once more when the session is cut off. A write that fails
 * is dropped (the previous points stay, so a resume starts a little earlier) and tried again at
 * the next point.
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
      o.store.keepPoint(o.txh, maskPoint(o.mask, p)); // [LM-DLV-22]
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
      wipe(o.mask);
    },
  };
}
