/**
 * @module params
 * Protocol parameters and their ranges (SPEC.md §2), the revision clock (§3).
 */
import { LmError, Reason } from './errors.js';

export const PROTOCOL_VERSION = 1;

/** Hash suites, SPEC.md §2 and §5.1. */
export const Suite = { keccak256: 1, sha3_256: 2, blake3: 3 } as const;
export type SuiteId = (typeof Suite)[keyof typeof Suite];
export const SUITE_NAMES: Readonly<Record<SuiteId, string>> = { 1: 'keccak-256', 2: 'sha3-256', 3: 'blake3' };
export const SUITES: readonly SuiteId[] = [1, 2, 3];

export function isSuite(x: number): x is SuiteId {
  return x === 1 || x === 2 || x === 3;
}

export function suiteByName(name: string): SuiteId {
  for (const id of SUITES) if (SUITE_NAMES[id] === name) return id;
  throw new LmError(Reason.params, `unknown hash suite "${name}"; expected one of ${SUITES.map((s) => SUITE_NAMES[s]).join(', ')}`);
}

export const RANGES = Object.freeze({
  w: [8, 24] as const, // [LM-PARAM-2]
  L: [1, 32] as const, // lower bound is minHintLength(w), [LM-PARAM-3]
  period: [100, 60000] as const,
  chunk: [256, 65536] as const,
  symbolsPerFrame: [1, 4096] as const,
  wt: [8, 16] as const,
});

/** Largest `N·L`: the hints of a full HINTS frame within three quarters of the frame limit ([LM-PARAM-6]). */
export const MAX_HINT_BYTES = 49152;

/** Session parameters as carried in OFFER (SPEC.md §7.2). */
export interface SessionParams {
  suite: SuiteId;
  /** segment width in bits */
  w: number;
  /** hint length in bytes */
  L: number;
  /** revision period in ms */
  period: number;
  /** epoch, Unix ms */
  epoch: number;
  /** grace window in ms */
  grace: number;
  /** first revision of the session */
  r0: number;
  /** chunk size in plaintext bytes */
  chunk: number;
  /** symbols per HINTS frame, at most */
  symbolsPerFrame: number;
  /** telemetry segment width */
  wt: number;
}

/** Smallest L with 8L >= w + 8 ([LM-PARAM-3]). */
export function minHintLength(w: number): number {
  return Math.ceil((w + 8) / 8);
}

/** Approximate chance that a symbol's hint is ambiguous in its revision table ([LM-PARAM-3]). */
export function ambiguityChance(w: number, L: number): number {
  return -Math.expm1((2 ** w - 1) * Math.log1p(-(2 ** (-8 * L))));
}

function inRange(name: string, v: number, lo: number, hi: number, id: string): void {
  if (!Number.isSafeInteger(v) || v < lo || v > hi) {
    throw new LmError(Reason.params, `${name}=${v} is outside ${lo}..${hi} ([${id}])`);
  }
}

/** Checks every range of SPEC.md §2; throws LmError `params` ([LM-PARAM-1]). */
export function validateParams(p: SessionParams): SessionParams {
  if (!isSuite(p.suite)) throw new LmError(Reason.params, `unknown suite ${String(p.suite)} ([LM-PARAM-1])`);
  inRange('w', p.w, RANGES.w[0], RANGES.w[1], 'LM-PARAM-2');
  inRange('L', p.L, minHintLength(p.w), RANGES.L[1], 'LM-PARAM-3');
  inRange('period', p.period, RANGES.period[0], RANGES.period[1], 'LM-PARAM-1');
  inRange('grace', p.grace, 0, Math.floor((p.period - 1) / 2), 'LM-PARAM-5');
  inRange('epoch', p.epoch, 0, Number.MAX_SAFE_INTEGER, 'LM-PARAM-1');
  inRange('r0', p.r0, 0, Number.MAX_SAFE_INTEGER, 'LM-PARAM-1');
  inRange('chunk', p.chunk, RANGES.chunk[0], RANGES.chunk[1], 'LM-PARAM-1');
  inRange('symbolsPerFrame', p.symbolsPerFrame, RANGES.symbolsPerFrame[0], RANGES.symbolsPerFrame[1], 'LM-PARAM-1');
  inRange('wt', p.wt, RANGES.wt[0], RANGES.wt[1], 'LM-PARAM-1');
  if (p.symbolsPerFrame * p.L > MAX_HINT_BYTES) throw new LmError(Reason.params, `N·L = ${p.symbolsPerFrame * p.L} exceeds ${MAX_HINT_BYTES} ([LM-PARAM-6])`);
  return p;
}

/** rev(t) = floor((t - E) / P), SPEC.md §3. */
export function revisionAt(t: number, epoch: number, period: number): number {
  if (t < epoch) throw new LmError(Reason.skew, `time ${t} is before the epoch ${epoch}`);
  return Math.floor((t - epoch) / period);
}

/** Revision a gateway stamps on what it sends at time g ([LM-REV-1]). */
export function senderRevision(g: number, p: Pick<SessionParams, 'epoch' | 'period' | 'grace'>): number {
  return revisionAt(g - p.grace, p.epoch, p.period);
}

/**
 * Acceptance of a revision at the receiver ([LM-REV-2]): returns `null` when accepted,
 * or the reason code to refuse with.
 */
export function checkRevision(r: number, d: number, p: Pick<SessionParams, 'epoch' | 'period'>): null | typeof Reason.revExpired | typeof Reason.revFuture {
  const c = revisionAt(d, p.epoch, p.period);
  if (r < c - 1) return Reason.revExpired;
  if (r > c) return Reason.revFuture;
  return null;
}
