import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReferenceTable, ambiguityChance, hint, hintSymbols, minHintLength, randomBytes, scanResolve, type SuiteId } from '../src/index.js';

const suites: SuiteId[] = [1, 2, 3];

describe('hints and revision tables (SPEC.md §5.1)', () => {
  it('a table resolves every hint of its own revision unless ambiguous [LM-HINT-2]', () => {
    for (const suite of suites) {
      const hk = randomBytes(32);
      const w = 10;
      const L = minHintLength(w);
      const t = new ReferenceTable(suite, hk, w, L);
      let ambiguous = 0;
      for (let g = 0; g < 2 ** w; g++) {
        const r = t.lookup(hint(suite, hk, w, L, g));
        if (r.kind === 'ambiguous') ambiguous++;
        else expect(r).toEqual({ kind: 'symbol', symbol: g });
      }
      // expected about 2^w * 2^(w-8L) = 1024 * 2^-14: almost always 0
      expect(ambiguous).toBeLessThan(8);
    }
  });

  it('hints of another revision are absent or wrong, never silently right more than chance [LM-HINT-4]', () => {
    const hk1 = randomBytes(32);
    const hk2 = randomBytes(32);
    const t = new ReferenceTable(3, hk1, 12, 3);
    let found = 0;
    for (let g = 0; g < 4096; g++) if (t.lookup(hint(3, hk2, 12, 3, g)).kind !== 'absent') found++;
    // each stray 3-byte hint hits one of 4096 entries with chance 2^-12
    expect(found).toBeLessThan(20);
  });

  it('ambiguity rate matches 2^(w - 8L) [LM-PARAM-3]', () => {
    const w = 12;
    const L = 2; // below the rule on purpose: chance 1 - (1 - 2^-16)^4095 ~ 6%
    const hk = randomBytes(32);
    const t = new ReferenceTable(3, hk, w, L);
    let amb = 0;
    for (let g = 0; g < 2 ** w; g++) if (t.lookup(hint(3, hk, w, L, g)).kind === 'ambiguous') amb++;
    const rate = amb / 2 ** w;
    expect(rate).toBeGreaterThan(ambiguityChance(w, L) / 3);
    expect(rate).toBeLessThan(ambiguityChance(w, L) * 3);
  });

  it('scan mode equals the table lookup, ambiguity included [LM-HINT-5]', () => {
    fc.assert(
      fc.property(fc.constantFrom(...suites), fc.array(fc.nat(255), { minLength: 1, maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 5 }), (suite, symbols, junk) => {
        const hk = randomBytes(32);
        const w = 8;
        const L = 1; // forces ambiguities
        const t = new ReferenceTable(suite, hk, w, L);
        const hints = [...symbols.map((g) => hint(suite, hk, w, L, g)), ...junk.map((j) => Uint8Array.of(j)), new Uint8Array(2)];
        expect(scanResolve(suite, hk, w, L, hints)).toEqual(hints.map((h) => t.lookup(h)));
      }),
      { numRuns: 30 },
    );
  });

  it('hintSymbols concatenates hints in order [LM-HINT-1]', () => {
    const hk = randomBytes(32);
    const out = hintSymbols(2, hk, 16, 3, [1, 2, 65535]);
    expect(out.length).toBe(9);
    expect(out.subarray(6)).toEqual(hint(2, hk, 16, 3, 65535));
  });

  it('minimum L satisfies 8L >= w + 8 for every w [LM-PARAM-3]', () => {
    for (let w = 8; w <= 24; w++) {
      const L = minHintLength(w);
      expect(8 * L).toBeGreaterThanOrEqual(w + 8);
      expect(8 * (L - 1)).toBeLessThan(w + 8);
      expect(ambiguityChance(w, L)).toBeLessThanOrEqual(2 ** -8 * 1.01);
    }
  });
});
