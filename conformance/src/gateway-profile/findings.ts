/**
 * @module gateway-profile/findings
 * What the suite's devices observe of the gateway while frames arrive, gathered per requirement
 * ID and handed to the test's {@link Checks} at points the test chooses (and when it ends): an
 * event handler must not throw, so it records here instead of checking.
 */
import type { Checks } from '../checks.js';
import type { RequirementId } from '../generated/requirements.js';

/** Failure messages kept per ID (the first ones say what went wrong; the rest repeat it). */
const MAX_MESSAGES = 3;

export class Findings {
  private readonly seen = new Set<RequirementId>();
  private readonly failures = new Map<RequirementId, string[]>();

  /** A check of `id` that passed. */
  pass(id: RequirementId): void {
    this.seen.add(id);
  }

  /** A check of `id` that failed with `msg`. */
  fail(id: RequirementId, msg: string): void {
    this.seen.add(id);
    const list = this.failures.get(id) ?? [];
    if (list.length < MAX_MESSAGES) list.push(msg);
    this.failures.set(id, list);
  }

  /** Records a check of `id`: PASS when `cond` holds, otherwise FAIL with `msg`. Returns `cond`. */
  ok(id: RequirementId, cond: boolean, msg: string): boolean {
    if (cond) this.pass(id);
    else this.fail(id, msg);
    return cond;
  }

  /** Whether a check of `id` (of any ID when omitted) failed so far. */
  failed(id?: RequirementId): boolean {
    return id ? this.failures.has(id) : this.failures.size > 0;
  }

  /** The first failure message of `id`. */
  message(id: RequirementId): string | undefined {
    return this.failures.get(id)?.[0];
  }

  /**
   * Hands what was gathered to the test's checks (one PASS per ID checked, or its FAIL
   * messages) and starts afresh. Does not throw: a failure shows in the test's records.
   */
  flush(checks: Checks): void {
    for (const id of this.seen) {
      const fails = this.failures.get(id);
      if (fails) for (const m of fails) checks.fail(id, m);
      else checks.check(id, true, '');
    }
    this.seen.clear();
    this.failures.clear();
  }
}
