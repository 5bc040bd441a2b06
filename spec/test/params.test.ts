import { describe, expect, it } from 'vitest';
import {
  Reason, bestSample, checkRevision, checkSkew, largestWidth, minHintLength, negotiate, revisionAt, senderRevision, syncResult, validateParams, type Caps, type SessionParams,
} from '../src/index.js';
import { reasonOf } from './helpers.js';

const p: SessionParams = { suite: 3, w: 20, L: 4, period: 1000, epoch: 1_000_000, grace: 250, r0: 0, chunk: 4096, symbolsPerFrame: 1024, wt: 16 };
const code = reasonOf;

describe('parameters (SPEC.md §2)', () => {
  it('accepts the defaults and refuses every out-of-range value [LM-PARAM-1] [LM-PARAM-2] [LM-PARAM-3] [LM-PARAM-5]', () => {
    expect(validateParams(p)).toBe(p);
    for (const bad of [{ w: 7 }, { w: 25 }, { L: 3 }, { L: 33 }, { period: 99 }, { period: 60001 }, { grace: 500 }, { chunk: 255 }, { symbolsPerFrame: 0 }, { wt: 17 }, { suite: 4 }]) {
      expect(code(() => validateParams({ ...p, ...bad } as SessionParams)), JSON.stringify(bad)).toBe(Reason.params);
    }
  });
});

describe('revision clock (SPEC.md §3)', () => {
  it('accepts exactly the current and previous revision [LM-REV-2]', () => {
    const d = p.epoch + 5 * p.period + 10; // revision 5
    expect(revisionAt(d, p.epoch, p.period)).toBe(5);
    expect(checkRevision(5, d, p)).toBeNull();
    expect(checkRevision(4, d, p)).toBeNull();
    expect(checkRevision(3, d, p)).toBe(Reason.revExpired);
    expect(checkRevision(6, d, p)).toBe(Reason.revFuture);
  });

  it('sender stamping with skew up to G and latency under P - 2G is always accepted [LM-REV-1] [LM-PARAM-5]', () => {
    for (let g = p.epoch + 1000; g < p.epoch + 20_000; g += 37) {
      for (const skew of [-p.grace, -100, 0, 100, p.grace]) {
        for (const lat of [0, 100, p.period - 2 * p.grace - 1]) {
          const r = senderRevision(g, p);
          expect(checkRevision(r, g + skew + lat, p), `g=${g} skew=${skew} lat=${lat}`).toBeNull();
        }
      }
    }
  });
});

describe('time sync (SPEC.md §8)', () => {
  it('computes offset and delay [LM-TIME-1]', () => {
    // device clock 100 ms behind, 20 ms each way, 5 ms at the gateway
    expect(syncResult({ t1: 1000, t2: 1120, t3: 1125, t4: 1045 })).toEqual({ offset: 100, delay: 40 });
    expect(bestSample([{ t1: 0, t2: 50, t3: 50, t4: 100 }, { t1: 0, t2: 10, t3: 10, t4: 20 }]).delay).toBe(20);
  });
  it('refuses skew beyond the grace window with a clear message [LM-TIME-2]', () => {
    expect(() => checkSkew({ offset: 200, delay: 40 }, 250)).not.toThrow();
    expect(code(() => checkSkew({ offset: 240, delay: 40 }, 250))).toBe(Reason.skew);
    expect(() => checkSkew({ offset: -300, delay: 0 }, 250)).toThrow(/offset -300.0 ms.*grace 250 ms/);
  });
});

describe('negotiation (SPEC.md §12)', () => {
  it('picks the largest w within the CPU share and memory [LM-CAP-2]', () => {
    // 16.8 M/s: a w=24 table takes 1 s, 4 x the 25% share of a 1 s period; w=22 takes 0.25 s.
    expect(largestWidth(2 ** 24, 2 ** 30, 24, 1000, 0.25)).toBe(22);
    expect(largestWidth(2 ** 24, 5 * 2 ** 20, 24, 1000, 0.25)).toBe(20); // memory bound
    expect(largestWidth(100, 2 ** 30, 24, 1000, 0.25)).toBeNull();
  });
  it('prefers blake3 and sets L, grace, epoch and r0 [LM-CAP-3] [LM-PARAM-4]', () => {
    const now = 1_764_000_000_123;
    const s = negotiate({ suites: [[1, 4e6], [3, 3e7]], mem: 2 ** 30, wmax: 24, workers: 2 }, now);
    expect(s.suite).toBe(3);
    expect(s.L).toBe(minHintLength(s.w));
    expect(s.grace).toBe(250);
    // r0 is what the gateway stamps now, rev(now - G) ([LM-REV-6])
    expect(senderRevision(now, s)).toBe(s.r0);
    expect(negotiate({ suites: [[1, 4e6], [3, 3e7]], mem: 2 ** 30, wmax: 24, workers: 2 }, now, { suite: 1 }).suite).toBe(1);
  });
  it('an OFFER made in the first G ms of a period can stamp r0 at once [LM-REV-6]', () => {
    const caps: Caps = { suites: [[3, 3e7]], mem: 2 ** 30, wmax: 24, workers: 2 };
    for (const into of [0, 1, 100, 249, 250, 251, 999]) {
      const now = 1_764_000_000_000 + into; // a multiple of every period the negotiation tries
      const s = negotiate(caps, now);
      expect(s.epoch + s.r0 * s.period + s.grace, `OFFER ${into} ms into its period`).toBeLessThanOrEqual(now);
      // and nothing the gateway stamps from then on is below r0 or before the epoch
      for (const later of [0, 1, s.grace, s.period]) expect(senderRevision(now + later, s)).toBeGreaterThanOrEqual(s.r0);
    }
    // the previous rule (the epoch of now's own period) fails this in the first G ms
    const now = 1_764_000_000_000 + 100;
    const old = { epoch: Math.floor(now / 1000) * 1000, period: 1000, grace: 250 };
    expect(() => senderRevision(now, old)).toThrow(/before the epoch/);
  });
  it('falls back to longer periods, and refuses when nothing fits [LM-CAP-2]', () => {
    const slow = negotiate({ suites: [[2, 500]], mem: 2 ** 30, wmax: 24, workers: 1 }, 1e12);
    expect(slow.period).toBeGreaterThan(1000);
    expect(code(() => negotiate({ suites: [[2, 10]], mem: 2 ** 30, wmax: 24, workers: 1 }, 1e12))).toBe(Reason.params);
  });
  it('a width the operator fixes gets the shortest period that keeps its build in the share [LM-CAP-2]', () => {
    const caps = { suites: [[3, 26e6]] as [3, number][], mem: 2 ** 30, wmax: 24, workers: 2 };
    // 2^24 / 26e6 = 0.65 s: more than 25% of 1 s and of 2 s, within 25% of 5 s
    const s = negotiate(caps, 1e12, { w: 24 });
    expect([s.w, s.L, s.period]).toEqual([24, 4, 5000]);
    expect(negotiate(caps, 1e12, { w: 20 }).period).toBe(1000);
    // one frame per chunk by default: the ciphertext of C bytes packs into N symbols
    expect(Math.ceil(((s.chunk + 16) * 8) / s.w)).toBeLessThanOrEqual(s.symbolsPerFrame);
    expect(code(() => negotiate({ ...caps, wmax: 20 }, 1e12, { w: 24 }))).toBe(Reason.params);
    expect(code(() => negotiate(caps, 1e12, { w: 24, period: 1000 }))).toBe(Reason.params);
  });
});
