/**
 * @module timesync
 * The four-timestamp exchange of SPEC.md §8 and the skew rule [LM-TIME-2].
 */
import { LmError, Reason } from './errors.js';

export interface TimeSample {
  t1: number;
  t2: number;
  t3: number;
  t4: number;
}

export interface SyncResult {
  /** θ: how far the gateway's clock is ahead of the device's, ms */
  offset: number;
  /** δ: round-trip delay without the gateway's processing, ms */
  delay: number;
}

/** θ = ((t2 − t1) + (t3 − t4)) / 2, δ = (t4 − t1) − (t3 − t2) ([LM-TIME-1]). */
export function syncResult(s: TimeSample): SyncResult {
  return { offset: (s.t2 - s.t1 + (s.t3 - s.t4)) / 2, delay: s.t4 - s.t1 - (s.t3 - s.t2) };
}

/** Best of several samples: the smallest delay ([LM-TIME-3]). */
export function bestSample(samples: readonly TimeSample[]): SyncResult {
  if (samples.length === 0) throw new LmError(Reason.timeout, 'the gateway answered no time sync request: it is gone or unreachable ([LM-TIME-1])');
  return samples.map(syncResult).reduce((a, b) => (b.delay < a.delay ? b : a));
}

/** Worst-case skew the device must assume: |θ| + δ/2. */
export function skewBound(r: SyncResult): number {
  return Math.abs(r.offset) + Math.max(0, r.delay) / 2;
}

/**
 * Throws `skew` when |θ| + δ/2 > G ([LM-TIME-2]); the message gives θ, δ and G and names the
 * cause: a clock that is off (|θ| alone beyond G) or a round trip too slow for the grace.
 */
export function checkSkew(r: SyncResult, grace: number): void {
  const bound = skewBound(r);
  if (bound <= grace) return;
  const figures = `offset ${r.offset.toFixed(1)} ms, round trip ${r.delay.toFixed(1)} ms, bound ${bound.toFixed(1)} ms > grace ${grace} ms`;
  const cause = Math.abs(r.offset) > grace
    ? "this machine's clock differs from the gateway's: set it (NTP)"
    : `the round trip of ${r.delay.toFixed(0)} ms to the gateway is too slow for the grace of ${grace} ms (a loaded host or network, not the clock); the gateway may pick a longer revision period`;
  throw new LmError(Reason.skew, `clock skew check failed: ${figures}; ${cause} ([LM-TIME-2])`);
}
