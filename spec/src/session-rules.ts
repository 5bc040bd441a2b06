/**
 * @module session-rules
 * Checks of a verified frame against its session's parameters (SPEC.md §7.2; they come after
 * step 9 of [LM-FRAME-10]): HINTS against `L`, `N` and `w` ([LM-FRAME-15] .. [LM-FRAME-17]), ACCEPT
 * against `C` and the job's size ([LM-FRAME-18], [LM-FRAME-19]). Each returns the refusal as an
 * {@link LmError} `schema`, or `undefined` when the frame fits its session.
 */
import { LmError, Reason } from './errors.js';
import type { AcceptBody, HintsBody } from './frame-schemas.js';
import type { SessionParams } from './params.js';

/**
 * Why a HINTS frame does not fit its session, if it does not.
 * @example const e = hintsFault(frame.body, params); if (e) refuse(e);
 */
export function hintsFault(b: Pick<HintsBody, 'hints' | 'idx' | 'sh'>, p: Pick<SessionParams, 'L' | 'w' | 'symbolsPerFrame'>): LmError | undefined {
  if (b.hints.length % p.L !== 0) return new LmError(Reason.schema, `hints of ${b.hints.length} bytes are not a multiple of L=${p.L} ([LM-FRAME-15])`);
  const n = b.hints.length / p.L;
  const most = p.symbolsPerFrame + (b.sh !== undefined ? 1 : 0);
  if (n > most) return new LmError(Reason.schema, `${n} hints in one frame, at most ${most} ([LM-FRAME-15])`);
  if (b.idx && b.idx.length !== n) return new LmError(Reason.schema, `idx has ${b.idx.length} indices for ${n} hints ([LM-FRAME-16])`);
  if (b.sh !== undefined && b.sh >= p.w) return new LmError(Reason.schema, `shift ${b.sh} is not below w=${p.w} ([LM-FRAME-17])`);
  return undefined;
}

/**
 * Why an ACCEPT does not fit the session it answers (a job of `size` bytes), if it does not.
 * @example const e = acceptFault(accept.body, params, job.size); if (e) endSession(e);
 */
export function acceptFault(b: Pick<AcceptBody, 'window' | 'from'>, p: Pick<SessionParams, 'chunk'>, size: number): LmError | undefined {
  const from = b.from ?? 0;
  if (from % p.chunk !== 0 || from > size) return new LmError(Reason.schema, `resume point ${from} is not a chunk boundary of the job ([LM-FRAME-18])`);
  if (b.window < p.chunk) return new LmError(Reason.schema, `window of ${b.window} bytes is less than one chunk of ${p.chunk} ([LM-FRAME-19])`);
  return undefined;
}
