/**
 * Parts of the OFFER phase that need no broker: the rate limit of refusals ([LM-FRAME-9]), the
 * parameter checks ([LM-PARAM-1], [LM-CAP-2]), and the phase factory that injects replacements.
 */
import { describe, expect, it } from 'vitest';
import { type Caps, LmError, Reason, type SessionParams } from '@livematrix/spec';
import { PerSecondLimit, offerChecks } from '../src/offer.js';
import { defaultPhases, phaseFactories } from '../src/phases.js';

const caps: Caps = { suites: [[3, 40_000_000]], mem: 2 ** 30, wmax: 20, workers: 2 };
const params: SessionParams = { suite: 3, w: 16, L: 3, period: 1000, epoch: 0, grace: 250, r0: 0, chunk: 1024, symbolsPerFrame: 4096, wt: 16 };

describe('refusals [LM-FRAME-9]', () => {
  it('answers at most the set number of refusals per second of the device clock', () => {
    let now = 1_800_000_000_000;
    const limit = new PerSecondLimit(() => now, 20);
    const first = Array.from({ length: 25 }, () => limit.allow());
    expect(first.filter(Boolean)).toHaveLength(20);
    expect(first.slice(20)).toEqual([false, false, false, false, false]);
    now += 1000;
    expect(limit.allow()).toBe(true);
  });
});

describe('OFFER checks [LM-PARAM-1] [LM-CAP-2]', () => {
  const code = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return e instanceof LmError ? e.code : 'not an LmError';
    }
    return undefined;
  };
  it('takes parameters in range that the device supports', () => {
    expect(code(() => offerChecks().params(params, caps))).toBeUndefined();
  });
  it('refuses parameters out of range, a w above its wmax and a suite it did not report', () => {
    expect(code(() => offerChecks().params({ ...params, w: 25, L: 5 }, caps))).toBe(Reason.params);
    expect(code(() => offerChecks().params({ ...params, w: 24, L: 4 }, caps))).toBe(Reason.params);
    expect(code(() => offerChecks().params({ ...params, suite: 1 }, caps))).toBe(Reason.params);
  });
});

describe('phase factories', () => {
  it('replaces the phases given and keeps the others', () => {
    const pace = () => ({ start: () => undefined, check: () => undefined });
    const f = phaseFactories({ pace, acks: undefined });
    expect(f.pace).toBe(pace);
    expect(f.acks).toBe(defaultPhases.acks);
    expect(f.receive).toBe(defaultPhases.receive);
    expect(Object.keys(f).sort()).toEqual(Object.keys(defaultPhases).sort());
  });
});
