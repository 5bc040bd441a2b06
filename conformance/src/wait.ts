/**
 * @module wait
 * Polling helpers of the tester, its sessions and the scenarios.
 */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until pred() is truthy (polling), or throws after timeout ms with the message. */
export async function until<T>(pred: () => T | undefined | false | null, timeout: number, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Whether pred() became truthy within ms (polling): for checks that judge an outcome either way. */
export async function happens(pred: () => unknown, ms: number): Promise<boolean> {
  return until(() => pred() || undefined, ms, '').then(() => true, () => false);
}
