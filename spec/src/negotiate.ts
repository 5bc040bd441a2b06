/**
 * @module negotiate
 * Capability negotiation (SPEC.md §12): from a device's reported capabilities to session
 * parameters.
 */
import { LmError, Reason } from './errors.js';
import type { Caps } from './frame-schemas.js';
import { RANGES, type SessionParams, type SuiteId, minHintLength, validateParams } from './params.js';

/** Bytes per table entry that [LM-CAP-2] budgets. */
export const TABLE_BYTES_PER_ENTRY = 5;
/** [LM-CAP-3] */
export const SUITE_PREFERENCE: readonly SuiteId[] = [3, 2, 1];

export interface NegotiationPolicy {
  /** CPU share of the device the table building may take, default 0.25 */
  share?: number;
  /** revision period to use, ms; default 1000 */
  period?: number;
  /** a suite the operator insists on */
  suite?: SuiteId;
  /** upper bound on w the gateway wants, default 24 */
  wmax?: number;
  /** a width the operator insists on: the period is then the shortest that fits it */
  w?: number;
  chunk?: number;
  symbolsPerFrame?: number;
  wt?: number;
}

/** Default symbols per frame: the most a frame may carry ([LM-PARAM-1]), fewest messages. */
export const DEFAULT_SYMBOLS_PER_FRAME = 4096;

/**
 * Default chunk size for a width: the largest plaintext chunk whose ciphertext (plus its 16-byte
 * tag) packs into one frame of `n` symbols, so that a chunk costs one HINTS and one KEY frame.
 */
export function defaultChunk(w: number, n = DEFAULT_SYMBOLS_PER_FRAME): number {
  return Math.max(RANGES.chunk[0], Math.min(RANGES.chunk[1], Math.floor((n * w) / 8) - 16));
}

/** The largest w satisfying [LM-CAP-2] for a rate, memory and period; null if none ≥ 8. */
export function largestWidth(rate: number, mem: number, wmax: number, period: number, share: number): number | null {
  for (let w = Math.min(RANGES.w[1], wmax); w >= RANGES.w[0]; w--) {
    if (2 ** w / rate <= (share * period) / 1000 && TABLE_BYTES_PER_ENTRY * 2 ** w <= mem) return w;
  }
  return null;
}

/**
 * Chooses suite, w, L and P for a device ([LM-CAP-2], [LM-CAP-3], [LM-PARAM-4]). The caller
 * supplies `now` for the epoch and r0. Throws `params` when nothing fits.
 */
export function negotiate(caps: Caps, now: number, policy: NegotiationPolicy = {}): SessionParams {
  const share = policy.share ?? 0.25;
  if (!(share > 0 && share <= 1)) throw new LmError(Reason.params, `CPU share ${share} must be in (0, 1]`);
  const rates = new Map(caps.suites);
  const order = policy.suite !== undefined ? [policy.suite] : SUITE_PREFERENCE;
  const wCap = Math.min(caps.wmax, policy.wmax ?? RANGES.w[1]);
  const periods = policy.period !== undefined ? [policy.period] : [1000, 2000, 5000, 10000, 30000, 60000];
  for (const period of periods) {
    for (const suite of order) {
      const rate = rates.get(suite);
      if (rate === undefined || rate <= 0) continue;
      const w = policy.w !== undefined ? (policy.w <= wCap && largestWidth(rate, caps.mem, policy.w, period, share) === policy.w ? policy.w : null) : largestWidth(rate, caps.mem, wCap, period, share);
      if (w === null) continue;
      // [LM-REV-6] the revision stamped now, rev(now - G), is r0: every revision the gateway
      // stamps from the OFFER on has keys ([LM-KEY-3]); an epoch of now's period would leave the
      // first G ms of it (rev(now - G) < r0, or before the epoch) without any
      const grace = Math.floor(period / 4);
      const epoch = Math.floor((now - grace) / period) * period;
      return validateParams({
        suite,
        w,
        L: minHintLength(w),
        period,
        epoch,
        grace,
        r0: Math.floor((now - grace - epoch) / period),
        chunk: policy.chunk ?? defaultChunk(w, policy.symbolsPerFrame),
        symbolsPerFrame: policy.symbolsPerFrame ?? DEFAULT_SYMBOLS_PER_FRAME,
        wt: policy.wt ?? 16,
      });
    }
  }
  if (policy.w !== undefined) throw new LmError(Reason.params, `w=${policy.w} does not fit this device (suites ${JSON.stringify(caps.suites)}, mem ${caps.mem} bytes, wmax ${caps.wmax}) within a ${share * 100}% CPU share at any period ([LM-CAP-2])`);
  throw new LmError(Reason.params, `no parameters fit this device (suites ${JSON.stringify(caps.suites)}, mem ${caps.mem} bytes, wmax ${caps.wmax}) within a ${share * 100}% CPU share ([LM-CAP-2])`);
}
