/**
 * The revision pipeline ([LM-REV-3], [LM-REV-4]) on the real engine: it builds ahead, holds at
 * most the current, previous and next revisions, and wipes what expires. Moved here from the
 * spec package with the pipeline itself (only a device runs it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '@livematrix/testkit';
import { Ratchet, hint, randomBytes, toHex } from '@livematrix/spec';
import { AMBIGUOUS, Kernel } from '@livematrix/spec/engine';
import { RevisionPipeline } from '../src/pipeline.js';

const engine = testEngine();

describe('revision pipeline [LM-REV-3] [LM-REV-4] [LM-KEY-4]', () => {
  it('builds ahead, holds at most current, previous and next, wipes what expires', async () => {
    const period = 250;
    const epoch = Date.now() - 10 * period;
    const r0 = Math.floor((Date.now() - epoch) / period);
    const ratchet = new Ratchet(randomBytes(32), r0);
    const issued: { r: number; hk: Uint8Array; wk: Uint8Array }[] = [];
    const p = new RevisionPipeline({
      engine: engine(), suite: 3, w: 16, L: 3, epoch, period, r0,
      keysFor: (r) => {
        const k = ratchet.keysFor(r);
        issued.push({ r, hk: k.hk, wk: k.wk });
        return k;
      },
    });
    const expired: number[] = [];
    p.on('expired', (r) => expired.push(r));
    let maxHeld = 0;
    await p.start();
    try {
      const c0 = p.current();
      expect(p.table(c0)).toBeDefined();
      const t0 = Date.now();
      while (Date.now() - t0 < 6 * period) {
        maxHeld = Math.max(maxHeld, p.held().length);
        const c = p.current();
        for (const r of p.held()) expect(r).toBeGreaterThanOrEqual(c - 1);
        await new Promise((res) => setTimeout(res, 10));
      }
      const c = p.current();
      // the current revision was built ahead of time and is ready
      expect(p.table(c) ?? (await p.ready(c))).toBeDefined();
      expect(maxHeld).toBeLessThanOrEqual(3);
      expect(expired.length).toBeGreaterThanOrEqual(3);
      // keys of expired revisions are zero-filled
      for (const k of issued.filter((x) => expired.includes(x.r))) {
        expect(k.hk.every((b) => b === 0)).toBe(true);
        expect(k.wk.every((b) => b === 0)).toBe(true);
      }
      // tables of the current revision resolve its hints: 4242, or AMBIGUOUS when another of the
      // 2^16 candidates shares its 3-byte hint (about 1 chance in 256), as the kernel says
      const hk = p.keys(c)!.hk.slice();
      const got = p.table(c)!.lookup(hint(3, hk, 16, 3, 4242));
      const kernel = new Kernel();
      kernel.setKey(hk);
      const all = kernel.hintList(3, 16, 3, Uint32Array.from({ length: 65536 }, (_, g) => g));
      kernel.wipe();
      const mine = toHex(all.subarray(4242 * 3, 4242 * 3 + 3));
      let sharing = 0;
      for (let g = 0; g < 65536; g++) if (toHex(all.subarray(g * 3, g * 3 + 3)) === mine) sharing++;
      expect(got).toBe(sharing === 1 ? 4242 : AMBIGUOUS);
      const built = p.history;
      expect(built.length).toBeGreaterThanOrEqual(5);
      expect(built.every((b) => b.totalSeconds < period / 1000)).toBe(true);
    } finally {
      await p.stop();
    }
    expect(p.held()).toEqual([]);
  });

  it('starts with the current revision\'s table; the previous one, whose keys it holds, is built when a frame asks for it [LM-REV-2] [LM-REV-3]', async () => {
    // a stream offered in revision 4 that starts in revision 5 (the period is long: no turn during the test)
    const period = 60_000;
    const epoch = Date.now() - 5 * period - period / 2;
    const ratchet = new Ratchet(randomBytes(32), 4);
    const p = new RevisionPipeline({ engine: engine(), suite: 3, w: 16, L: 3, epoch, period, r0: 4, keysFor: (r) => ratchet.keysFor(r) });
    const built: number[] = [];
    p.on('built', (e) => built.push(e.revision));
    await p.start();
    try {
      expect(p.current()).toBe(5);
      expect(built[0]).toBe(5); // the table the first frames need, not the previous one first
      expect(p.table(5)).toBeDefined();
      expect(p.keys(4)).toBeDefined(); // KEY frames stamped 4 unwrap ([LM-REV-2])
      const hk4 = p.keys(4)!.hk.slice();
      const t4 = await p.ready(4); // a HINTS frame stamped 4
      expect(t4).toBeDefined();
      expect(built).toContain(4);
      expect(p.held().length).toBeLessThanOrEqual(3);
      const kernel = new Kernel();
      kernel.setKey(hk4);
      const h = kernel.hintList(3, 16, 3, [1234, 4321]);
      kernel.wipe();
      const got = t4!.lookupMany(h, new Int32Array(2));
      for (const [i, g] of [1234, 4321].entries()) expect([g, AMBIGUOUS]).toContain(got[i]);
    } finally {
      await p.stop();
    }
    expect(p.held()).toEqual([]);
  });
});
