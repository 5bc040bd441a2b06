/**
 * The live matrix engine against the reference: kernels on the vectors and random samples,
 * whole-table digests at w = 20 for every suite, exact ambiguity semantics, scan mode and the
 * self-benchmark (the revision pipeline's tests are the device SDK's: device-sdk/test/pipeline.test.ts).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceTable, type SuiteId, fromHex, hint, hintDigest, randomBytes, toHex } from '../src/index.js';
import { ABSENT, AMBIGUOUS, Kernel, MatrixEngine, tableBytes } from '../src/engine/index.js';

const suites: SuiteId[] = [1, 2, 3];
let engine: MatrixEngine;
beforeAll(async () => {
  engine = new MatrixEngine({ workers: 2 });
  await engine.start();
});
afterAll(async () => {
  await engine.stop();
});

/** Resolution the reference gives to every candidate's own 4-byte hint: g, or AMBIGUOUS when another candidate shares it. */
function referenceResolutions(suite: SuiteId, hk: Uint8Array, w: number): { hints: Uint8Array; expect: Int32Array } {
  const n = 2 ** w;
  const hints = new Uint8Array(n * 4);
  const vals = new Float64Array(n);
  const dv = new DataView(hints.buffer);
  for (let g = 0; g < n; g++) {
    hints.set(hint(suite, hk, w, 4, g), g * 4);
    vals[g] = dv.getUint32(g * 4) * n + g;
  }
  vals.sort();
  const expect = new Int32Array(n);
  const keyAt = (i: number) => Math.floor((vals[i] as number) / n);
  for (let i = 0; i < n; i++) {
    const k = keyAt(i);
    const g = (vals[i] as number) - k * n;
    expect[g] = (i > 0 && keyAt(i - 1) === k) || (i + 1 < n && keyAt(i + 1) === k) ? AMBIGUOUS : g;
  }
  return { hints, expect };
}

describe('kernels equal the reference [LM-HINT-1]', () => {
  const kernel = new Kernel();
  it('on every hint vector', () => {
    const v = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'v1', 'hint.json'), 'utf8')) as { testGroups: { type: string; suite: SuiteId; tests: { result: string; hk: string; w: number; g: number; digest: string }[] }[] };
    let n = 0;
    for (const g of v.testGroups.filter((x) => x.type === 'HintTest')) {
      for (const t of g.tests.filter((x) => x.result === 'valid')) {
        kernel.setKey(fromHex(t.hk));
        expect(toHex(kernel.digest(g.suite, t.w, t.g))).toBe(t.digest);
        const keys = new Uint32Array(8);
        kernel.keys(g.suite, t.w, t.g, 1, keys, 0);
        expect(keys[0]).toBe(Buffer.from(fromHex(t.digest)).readUInt32BE(0));
        n++;
      }
    }
    expect(n).toBeGreaterThan(60);
  });
  it('on random keys, widths and symbols, for single digests and batched keys', () => {
    for (const suite of suites) {
      for (let i = 0; i < 50; i++) {
        const hk = randomBytes(32);
        const w = 8 + (i % 17);
        const start = Math.floor(Math.random() * (2 ** w - 100));
        kernel.setKey(hk);
        expect(kernel.digest(suite, w, start)).toEqual(hintDigest(suite, hk, w, start));
        const keys = new Uint32Array(37);
        kernel.keys(suite, w, start, 37, keys, 0);
        for (let j = 0; j < 37; j += 9) expect(keys[j]).toBe(Buffer.from(hintDigest(suite, hk, w, start + j)).readUInt32BE(0));
      }
    }
  });
});

describe('revision tables [LM-HINT-2] [LM-HINT-3] [LM-HINT-4]', () => {
  for (const suite of suites) {
    it(`a whole w = 20 table resolves exactly as the reference (suite ${suite})`, async () => {
      const hk = randomBytes(32);
      const w = 20;
      const L = 4;
      const ref = referenceResolutions(suite, hk, w);
      const { table, report } = await engine.buildTable(suite, w, L, hk);
      const got = table.lookupMany(ref.hints, new Int32Array(2 ** w));
      const digest = (a: Int32Array) => createHash('sha256').update(new Uint8Array(a.buffer)).digest('hex');
      expect(digest(got)).toBe(digest(ref.expect));
      // the slow path agrees with the fast path
      for (let g = 0; g < 2 ** w; g += 4099) expect(table.lookup(ref.hints, g * L)).toBe(got[g]);
      expect(report.totalSeconds).toBeGreaterThan(0);
      table.wipe();
    });
  }

  it('every possible hint value of a small table resolves as the reference table, ambiguity included (L = 1, 2)', async () => {
    for (const suite of suites) {
      for (const [w, L] of [[8, 1], [12, 1], [12, 2], [16, 2]] as const) {
        const hk = randomBytes(32);
        const ref = new ReferenceTable(suite, hk, w, L);
        const { table } = await engine.buildTable(suite, w, L, hk);
        let amb = 0;
        let absent = 0;
        for (let v = 0; v < 2 ** (8 * L); v++) {
          const h = L === 1 ? Uint8Array.of(v) : Uint8Array.of(v >> 8, v & 0xff);
          const r = ref.lookup(h);
          const expected = r.kind === 'symbol' ? r.symbol : r.kind === 'ambiguous' ? AMBIGUOUS : ABSENT;
          const got = table.lookup(h);
          if (got !== expected) expect.fail(`suite ${suite} w=${w} L=${L} hint ${v}: ${got} != ${expected}`);
          if (got === AMBIGUOUS) amb++;
          if (got === ABSENT) absent++;
        }
        expect(amb).toBeGreaterThan(0);
        if (8 * L > w) expect(absent).toBeGreaterThan(0);
      }
    }
  });

  it('hints longer than 4 bytes are confirmed on the full digest (L = 5, 8)', async () => {
    for (const suite of suites) {
      for (const L of [5, 8]) {
        const hk = randomBytes(32);
        const { table } = await engine.buildTable(suite, 16, L, hk);
        for (let g = 0; g < 2 ** 16; g += 257) {
          const h = hint(suite, hk, 16, L, g);
          expect(table.lookup(h)).toBe(g);
          const wrong = h.slice();
          wrong[L - 1] = (wrong[L - 1] as number) ^ 1; // same 4-byte key, different tail
          expect(table.lookup(wrong)).toBe(ABSENT);
        }
      }
    }
  });

  it('a hint from another revision key is absent, not resolved [LM-HINT-4]', async () => {
    const { table } = await engine.buildTable(3, 20, 4, randomBytes(32));
    const other = randomBytes(32);
    let found = 0;
    const hs = new Uint8Array(4 * 2000);
    for (let i = 0; i < 2000; i++) hs.set(hint(3, other, 20, 4, i), 4 * i);
    for (const r of table.lookupMany(hs, new Int32Array(2000))) if (r !== ABSENT) found++;
    expect(found).toBeLessThan(10); // 2^20 / 2^32 per stray hint
  });

  it('takes at most 5 bytes per entry plus a bucket index of 1/64 byte per entry', () => {
    expect(tableBytes(24)).toBeLessThanOrEqual(5 * 2 ** 24 + 2 ** 24 / 64 + 4);
    expect(tableBytes(20) / 2 ** 20).toBeLessThan(5.02);
  });
});

describe('scan mode [LM-HINT-5]', () => {
  it('equals the table lookup on a batch, ambiguity and absence included', async () => {
    for (const suite of suites) {
      for (const [w, L] of [[16, 2], [20, 4], [16, 5]] as const) {
        const hk = randomBytes(32);
        const { table } = await engine.buildTable(suite, w, L, hk);
        const n = 300;
        const hs = new Uint8Array(n * L);
        for (let i = 0; i < n; i++) hs.set(i % 10 === 9 ? randomBytes(L) : hint(suite, hk, w, L, Math.floor(Math.random() * 2 ** w)), i * L);
        const scanned = await engine.scan(suite, w, L, hk, hs);
        const looked = new Int32Array(n);
        for (let i = 0; i < n; i++) looked[i] = table.lookup(hs, i * L);
        expect(scanned).toEqual(looked);
      }
    }
  });
});

describe('self-benchmark [LM-CAP-1]', () => {
  it('measures a rate for every suite within about a second', async () => {
    const t = performance.now();
    const rates = await engine.benchmark(200);
    expect(performance.now() - t).toBeLessThan(1500);
    for (const s of suites) expect(rates.get(s)).toBeGreaterThan(100_000);
  });
});

describe('table build rate [LM-CAP-1]', () => {
  it('counts whole builds: below the hash rate of the same suite', async () => {
    const hashes = await engine.benchmark(200, [3]);
    const builds = await engine.buildRate(suites, 16);
    for (const s of suites) expect(builds.get(s)).toBeGreaterThan(10_000);
    expect(builds.get(3)!).toBeLessThan(hashes.get(3)!);
  });
});

describe('sender hints from the kernel [LM-HINT-1]', () => {
  it('hintList equals the reference for every suite and L', () => {
    const kernel = new Kernel();
    for (const suite of suites) {
      for (const L of [2, 3, 4, 5]) {
        const hk = randomBytes(32);
        kernel.setKey(hk);
        const w = 20;
        const symbols = Array.from({ length: 1000 + L }, () => Math.floor(Math.random() * 2 ** w));
        const got = kernel.hintList(suite, w, L, symbols);
        const want = new Uint8Array(symbols.length * L);
        symbols.forEach((g, i) => want.set(hint(suite, hk, w, L, g), i * L));
        expect(got).toEqual(want);
      }
    }
  });
});
