import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LmError, Reason, pack, symbolCount, unpack } from '../src/index.js';

describe('packing (SPEC.md §5.2)', () => {
  it('round-trips any bytes at any w in 1..32 [LM-PACK-1] [LM-PACK-3]', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 32 }), (b, w) => {
        const s = pack(b, w);
        expect(s.length).toBe(symbolCount(b.length, w));
        for (const x of s) expect(x).toBeLessThan(2 ** w);
        expect(unpack(s, w, b.length)).toEqual(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads bits most significant first and pads with zeros [LM-PACK-1] [LM-PACK-2]', () => {
    expect([...pack(Uint8Array.of(0xab, 0xcd, 0xef), 12)]).toEqual([0xabc, 0xdef]);
    expect([...pack(Uint8Array.of(0xab), 12)]).toEqual([0xab0]);
    expect([...pack(Uint8Array.of(0xff, 0x01), 24)]).toEqual([0xff0100]);
    expect([...pack(new Uint8Array(0), 16)]).toEqual([]);
  });

  it('refuses a symbol that is not an integer below 2^w at any index, group loops included [LM-PACK-3]', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 120 }), fc.constantFrom(8, 12, 16, 20, 24, 13), fc.nat(), fc.constantFrom(-1, 0.5, 2 ** 24, Number.NaN), (b, w, at, bad) => {
        const s = Array.from(pack(b, w));
        expect(unpack(s, w, b.length)).toEqual(b); // accepted as packed
        const j = at % s.length;
        s[j] = bad === 2 ** 24 ? 2 ** w + (s[j] as number) : bad;
        try {
          unpack(s, w, b.length);
          return false;
        } catch (e) {
          return e instanceof LmError && e.code === Reason.padding;
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses any single change to the padding bits [LM-PACK-3]', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 30 }), fc.integer({ min: 9, max: 24 }), fc.nat(), (b, w, bitSeed) => {
        const pad = symbolCount(b.length, w) * w - 8 * b.length;
        fc.pre(pad > 0);
        const s = pack(b, w);
        s[s.length - 1] = (s[s.length - 1] as number) ^ (1 << (bitSeed % pad));
        try {
          unpack(s, w, b.length);
          return false;
        } catch (e) {
          return e instanceof LmError && e.code === Reason.padding;
        }
      }),
      { numRuns: 1000 },
    );
  });
});
