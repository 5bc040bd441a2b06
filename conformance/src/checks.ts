/**
 * @module checks
 * Verdicts per requirement, not per scenario: every check names the requirement ID it checks. An
 * ID is PASS only when a check of it ran and passed; a failing check fails its own ID and stops
 * its test, leaving the IDs the test had not checked yet NOT EXECUTED, never PASS.
 */
import { errorMessage } from '@livematrix/spec';
import type { RequirementId } from './generated/requirements.js';

export interface CheckRecord {
  id: RequirementId;
  status: 'pass' | 'fail';
  message?: string;
}

/** A check that failed: stops the test it belongs to. */
export class CheckFailed extends Error {
  constructor(readonly requirement: RequirementId, message: string) {
    super(`[${requirement}] ${message}`);
    this.name = 'CheckFailed';
  }
}

/** One test's checks. */
export class Checks {
  readonly records: CheckRecord[] = [];

  /** Records a check of `id`: PASS when `cond` holds; otherwise FAIL with `msg`, and the test stops. */
  check(id: RequirementId, cond: unknown, msg: string): asserts cond {
    if (cond) {
      this.records.push({ id, status: 'pass' });
      return;
    }
    this.records.push({ id, status: 'fail', message: msg });
    throw new CheckFailed(id, msg);
  }

  /** Records a passed check of `id` that a joint step (an exact delivery) made. */
  pass(id: RequirementId): void {
    this.records.push({ id, status: 'pass' });
  }

  /** Records a failed check of `id` without stopping the test (for checks that gather several findings). */
  fail(id: RequirementId, msg: string): void {
    this.records.push({ id, status: 'fail', message: msg });
  }

  /** Runs `step`; when it throws, the failure is a failed check of `id` with the step's message. */
  async expect<T>(id: RequirementId, step: () => Promise<T>, what: string): Promise<T> {
    try {
      const v = await step();
      this.records.push({ id, status: 'pass' });
      return v;
    } catch (e) {
      if (e instanceof CheckFailed) throw e;
      const msg = `${what}: ${errorMessage(e)}`;
      this.records.push({ id, status: 'fail', message: msg });
      throw new CheckFailed(id, msg);
    }
  }

  /** IDs checked at least once. */
  ids(): Set<RequirementId> {
    return new Set(this.records.map((r) => r.id));
  }
}

/** What a profile's test produced: its checks, and an error when it stopped outside a check. */
export interface TestResult {
  id: string;
  title: string;
  /** the requirement IDs the test declares it checks */
  covers: readonly string[];
  status: 'pass' | 'fail';
  message?: string;
  ms: number;
  checks: CheckRecord[];
}

/**
 * Runs one test: `fn` checks through the Checks it is given. The result fails when a check failed
 * or the test stopped on an error; a test that ran no check at all also fails (it exercised
 * nothing, so it may not pass anything).
 */
export async function runTest(t: { id: string; title: string; covers: readonly string[] }, fn: (checks: Checks) => Promise<void>): Promise<TestResult> {
  const checks = new Checks();
  const t0 = Date.now();
  let message: string | undefined;
  try {
    await fn(checks);
    if (checks.records.length === 0) message = 'the test ran no check';
  } catch (e) {
    message = errorMessage(e);
  }
  const failed = message !== undefined || checks.records.some((r) => r.status === 'fail');
  return { id: t.id, title: t.title, covers: t.covers, status: failed ? 'fail' : 'pass', ...(message ? { message } : {}), ms: Date.now() - t0, checks: checks.records };
}
