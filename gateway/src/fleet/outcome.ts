/**
 * @module fleet/outcome
 * What a run's end means for its job ([LM-FLEET-1]): which failures are transient (the job is
 * QUEUED again after a back-off), which are refusals (REJECTED), which are alarms (FAILED, and the
 * device quarantined: [LM-FLEET-4]).
 */
import { type LmError, Reason, type ReasonCode, reasonName } from '@livematrix/spec';
import type { JobRecord, JobState } from './types.js';

/** Failures of presence or of the service itself: worth another attempt. */
const TRANSIENT: ReadonlySet<number> = new Set([Reason.offline, Reason.timeout, Reason.busy, Reason.unknownSession, Reason.revExpired, Reason.skew]);

/** The device or the gateway refused the job's transaction or parameters. */
const REFUSED: ReadonlySet<number> = new Set([
  Reason.txSignature, Reason.txExpired, Reason.txDevice, Reason.txCount, Reason.txGateway, Reason.txSchema, Reason.txOperator, Reason.txRevoked, Reason.txResume,
  Reason.params, Reason.digest,
]);

/** Alarms that quarantine the device ([LM-FLEET-4]). */
export const QUARANTINING: ReadonlySet<number> = new Set([Reason.rate, Reason.tamper]);

export interface Outcome {
  to: Extract<JobState, 'QUEUED' | 'FAILED' | 'REJECTED'>;
  reason: string;
  /** for QUEUED: ms to wait */
  backoff?: number;
  quarantine: boolean;
}

/** Back-off before attempt `attempts + 1`: 1 s doubling, at most 60 s ([LM-FLEET-1]). */
export function backoff(attempts: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.max(0, attempts - 1));
}

/** The job's next state after its run failed with `e` on attempt `attempts` of `maxAttempts`. */
export function outcome(e: LmError, attempts: number, maxAttempts: number): Outcome {
  const code = e.code as ReasonCode;
  const why = `${reasonName(code) ?? code}: ${e.message}`;
  if (QUARANTINING.has(code)) return { to: 'FAILED', reason: `alarm ${why}`, quarantine: true };
  if (REFUSED.has(code)) return { to: 'REJECTED', reason: why, quarantine: false };
  if (TRANSIENT.has(code)) {
    if (attempts >= maxAttempts) return { to: 'FAILED', reason: `${why} (attempt ${attempts} of ${maxAttempts}: no attempts left)`, quarantine: false };
    const wait = backoff(attempts);
    return { to: 'QUEUED', reason: `${why} (attempt ${attempts} of ${maxAttempts}; again in ${wait / 1000} s)`, backoff: wait, quarantine: false };
  }
  return { to: 'FAILED', reason: why, quarantine: false };
}

/**
 * A run taken over (its instance died, or this one restarted) whose device will not print again:
 * its prints are used up and it holds no ticket. The instance that streamed it died after the
 * device had every key, so the device may have finished and sent its RECEIPT to the dead
 * instance: the count is right, the receipt is not in the ledger. Not a refusal of the job: it is
 * said as it is, for an operator to check the machine.
 */
export function receiptLost(e: LmError, job: Pick<JobRecord, 'reason'>): Outcome | undefined {
  if ((e.code !== Reason.txCount && e.code !== Reason.txResume) || !job.reason.startsWith('lease taken over')) return undefined;
  return { to: 'FAILED', reason: `the device refused to print again (${e.message}): the instance that streamed it stopped before its receipt reached the ledger, and the print may have completed on the device; check the machine`, quarantine: false };
}
