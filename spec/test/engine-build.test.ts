/**
 * The engine's table builds and layouts beyond engine.test.ts: the compact layout of w = 24
 * (candidates confirmed by their keys) against the exact one and the reference, the partition's
 * second pass when a region overflows, the engine without threads, lookups spread over workers,
 * and the memory a build takes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceTable, type SuiteId, hint, randomBytes } from '../src/index.js';
import { ABSENT, AMBIGUOUS, Kernel, MatrixEngine, allocTable, tableBytes } from '../src/engine/index.js';

const suites: SuiteId[] = [1, 2, 3];
/** compact tables from w = 14 on */
let compact: MatrixEngine;
/** exact tables at every w */
let exact: MatrixEngine;
beforeAll(async () => {
  compact = new MatrixEngine({ workers: 2, compactFrom: 14 });
  exact = new MatrixEngine({ workers: 2, compactFrom: 25 });
  await Promise.all([compact.start(), exact.start()]);
});
afterAll(async () => {
  await Promise.all([compact.stop(), exact.stop()]);
});

/** Index of the first difference of two results (-1: equal); cheaper than toEqual on a million entries. */
function firstDiff(a: Int32Array, b: Int32Array): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** The hints of every candidate of a revision, then n random values (mostly absent). */
function allHints(suite: SuiteId, hk: Uint8Array, w: number, random: number): Uint8Array {
  const k = new Kernel();
  k.setKey(hk);
  const syms = new Uint32Array(2 ** w).map((_, g) => g);
  const out = new Uint8Array((2 ** w + random) * 4);
  out.set(k.hintList(suite, w, 4, syms));
  for (let i = 2 ** w * 4; i < out.length; i += 65536) out.set(randomBytes(Math.min(65536, out.length - i)), i);
  k.wipe();
  return out;
}

describe('compact tables [LM-HINT-2] [LM-HINT-3] [LM-HINT-4]', () => {
  it('a whole w = 20 compact table resolves every hint exactly as the reference, ambiguity included (blake3)', async () => {
    const hk = randomBytes(32);
    const ref = new ReferenceTable(3, hk, 20, 4);
    const { table } = await compact.buildTable(3, 20, 4, hk);
    expect(table.layout.compact).toBe(true);
    const hints = allHints(3, hk, 20, 20_000);
    const got = table.lookupMany(hints, new Int32Array(hints.length / 4));
    let amb = 0;
    let absent = 0;
    for (let i = 0; i < got.length; i++) {
      const r = ref.lookup(hints.subarray(4 * i, 4 * i + 4));
      const want = r.kind === 'symbol' ? r.symbol : r.kind === 'ambiguous' ? AMBIGUOUS : ABSENT;
      if (got[i] !== want) expect.fail(`hint ${i}: ${got[i]} != ${want}`);
      if (want === AMBIGUOUS) amb++;
      if (want === ABSENT) absent++;
    }
    expect(amb).toBeGreaterThan(50); // about 2^20 · 2^-12 hints share their value
    expect(absent).toBeGreaterThan(19_000);
    table.wipe();
  });

  for (const suite of suites) {
    it(`compact and exact tables give the same results at w = 20 (suite ${suite}), slow path and workers too`, async () => {
      const hk = randomBytes(32);
      const c = await compact.buildTable(suite, 20, 4, hk);
      const x = await exact.buildTable(suite, 20, 4, hk);
      expect([c.table.layout.compact, x.table.layout.compact]).toEqual([true, false]);
      const hints = allHints(suite, hk, 20, 50_000);
      const n = hints.length / 4;
      const want = x.table.lookupMany(hints, new Int32Array(n));
      expect(firstDiff(c.table.lookupMany(hints, new Int32Array(n)), want)).toBe(-1);
      expect(firstDiff(await compact.lookupMany(c.table, hints), want)).toBe(-1);
      for (let i = 0; i < n; i += 1009) expect(c.table.lookup(hints, 4 * i)).toBe(want[i]);
      expect(want.filter((r) => r === AMBIGUOUS).length).toBeGreaterThan(0);
      c.table.wipe();
      x.table.wipe();
    });
  }

  it('confirms hints longer than 4 bytes on the full digest (L = 5)', async () => {
    const hk = randomBytes(32);
    const { table } = await compact.buildTable(2, 16, 5, hk);
    for (let g = 0; g < 2 ** 16; g += 263) {
      const h = hint(2, hk, 16, 5, g);
      expect(table.lookup(h)).toBe(g);
      const wrong = h.slice();
      wrong[4] = (wrong[4] as number) ^ 1; // same 4-byte key, another tail
      expect(table.lookup(wrong)).toBe(ABSENT);
    }
  });

  it('a w = 24 table is compact by default, 4.07 bytes per entry, and resolves its hints', async () => {
    expect(tableBytes(24)).toBeLessThanOrEqual(4.07 * 2 ** 24);
    expect(tableBytes(24, false)).toBeGreaterThan(5 * 2 ** 24);
    expect(allocTable(24).compact).toBe(true);
    expect(allocTable(23).compact).toBe(false);
    const hk = randomBytes(32);
    const { table, report } = await exact.buildTable(3, 24, 4, hk, allocTable(24));
    expect(table.layout.compact).toBe(true);
    expect(report.scratchBytes).toBeLessThan(0.05 * tableBytes(24)); // no key scratch
    const k = new Kernel();
    k.setKey(hk);
    const syms = Uint32Array.from({ length: 4096 }, (_, i) => Math.imul(i + 1, 2654435761) >>> 8);
    const hints = k.hintList(3, 24, 4, syms);
    const got = table.lookupMany(hints, new Int32Array(4096));
    const keys = new Uint32Array(4096);
    k.keyList(3, 24, syms, 4096, keys);
    let amb = 0;
    for (let i = 0; i < 4096; i++) {
      if (got[i] === AMBIGUOUS) {
        amb++;
        // ambiguous only if another candidate has the same key: the slow path finds it too
        expect(table.lookup(hints, 4 * i)).toBe(AMBIGUOUS);
      } else expect(got[i]).toBe(syms[i]);
    }
    expect(amb).toBeLessThan(40); // 2^24 / 2^32 of the hints: 16 on average
    const stray = randomBytes(4 * 4096);
    const res = table.lookupMany(stray, new Int32Array(4096));
    expect(res.filter((r) => r !== ABSENT).length).toBeLessThan(40);
    table.wipe();
    k.wipe();
  }, 30_000);
});

describe('builds', () => {
  it('a partition region that overflows costs a second pass, not a wrong table', async () => {
    const tight = new MatrixEngine({ workers: 2, slack: 0 });
    await tight.start();
    try {
      for (const c of [false, true]) {
        const hk = randomBytes(32);
        const { table, report } = await tight.buildTable(3, 18, 4, hk, allocTable(18, c));
        const want = (await exact.buildTable(3, 18, 4, hk)).table;
        expect(report.attempts).toBeGreaterThan(1);
        const hints = allHints(3, hk, 18, 1000);
        expect(firstDiff(table.lookupMany(hints, new Int32Array(hints.length / 4)), want.lookupMany(hints, new Int32Array(hints.length / 4)))).toBe(-1);
      }
    } finally {
      await tight.stop();
    }
    const { report } = await exact.buildTable(3, 18, 4, randomBytes(32));
    expect(report.attempts).toBe(1);
  });

  it('an engine without threads (workers: 0) builds, scans and looks up as one with threads', async () => {
    const inline = new MatrixEngine({ workers: 0 });
    await inline.start();
    try {
      expect(inline.workers).toBe(0);
      const hk = randomBytes(32);
      const a = await inline.buildTable(1, 16, 3, hk);
      const b = await exact.buildTable(1, 16, 3, hk);
      const hs = new Uint8Array(3 * 300);
      for (let i = 0; i < 300; i++) hs.set(i % 7 === 6 ? randomBytes(3) : hint(1, hk, 16, 3, i * 211), 3 * i);
      const want = b.table.lookupMany(hs, new Int32Array(300));
      expect(a.table.lookupMany(hs, new Int32Array(300))).toEqual(want);
      expect(await inline.scan(1, 16, 3, hk, hs)).toEqual(want);
      expect(await inline.lookupMany(a.table, hs)).toEqual(want);
    } finally {
      await inline.stop();
    }
  });

  it('leaves the caller\'s key as it was, even a Buffer (whose slice() is a view)', async () => {
    const hk = Buffer.from(randomBytes(32));
    const copy = Uint8Array.from(hk);
    await exact.buildTable(3, 12, 3, hk);
    await exact.scan(3, 12, 3, hk, hint(3, copy, 12, 3, 5));
    expect(Uint8Array.from(hk)).toEqual(copy);
  });

  it('lookups over the workers equal lookups on this thread; L > 4 stays on this thread', async () => {
    const hk = randomBytes(32);
    const { table } = await exact.buildTable(3, 20, 4, hk);
    const hints = allHints(3, hk, 20, 5000);
    const want = table.lookupMany(hints, new Int32Array(hints.length / 4));
    expect(firstDiff(await exact.lookupMany(table, hints), want)).toBe(-1);
    expect(firstDiff(await exact.lookupMany(table, hints, undefined, 1), want)).toBe(-1);
    const long = await exact.buildTable(3, 12, 6, hk);
    const h6 = hint(3, hk, 12, 6, 77);
    expect(await exact.lookupMany(long.table, h6)).toEqual(Int32Array.of(77));
  });
});
