import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Decoder } from 'cbor-x';
import { type CborValue, decodeCbor, encodeCbor, LmError, Reason, fromHex, toHex } from '../src/index.js';

const dec = (hex: string) => decodeCbor(fromHex(hex));
const code = (f: () => unknown): number => {
  try {
    f();
  } catch (e) {
    if (e instanceof LmError) return e.code;
    throw e;
  }
  throw new Error('did not throw');
};

// A fast-check arbitrary of the CBOR profile ([LM-CBOR-2]).
const { value: cborValue } = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.maxSafeInteger(),
    fc.uint8Array({ maxLength: 40 }),
    fc.string({ maxLength: 20, unit: 'grapheme' }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.uniqueArray(fc.tuple(fc.oneof(fc.nat(1000), fc.string({ maxLength: 6 })), tie('value')), { maxLength: 5, selector: (e) => e[0] }).map((es) => new Map(es)),
  ),
}));

describe('deterministic CBOR (SPEC.md §6)', () => {
  it('encodes RFC 8949 Appendix A examples in shortest form [LM-CBOR-1]', () => {
    const cases: [CborValue, string][] = [
      [0, '00'], [23, '17'], [24, '1818'], [255, '18ff'], [256, '190100'], [65535, '19ffff'], [65536, '1a00010000'],
      [2 ** 32, '1b0000000100000000'], [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'], [-1, '20'], [-1000, '3903e7'],
      ['', '60'], ['IETF', '6449455446'], [new Uint8Array([1, 2, 3, 4]), '4401020304'], [[], '80'], [[1, [2, 3]], '8201820203'],
      [true, 'f5'], [false, 'f4'], [null, 'f6'],
    ];
    for (const [v, hex] of cases) expect(toHex(encodeCbor(v))).toBe(hex);
  });

  it('sorts map keys by their encoded bytes [LM-CBOR-1]', () => {
    const m = new Map<number | string, CborValue>([['a', 1], [100, 2], [10, 3], ['', 4]]);
    // 0a < 1864 < 60 < 6161
    expect(toHex(encodeCbor(m))).toBe('a40a0318640260046161' + '01');
  });

  it('round-trips every value of the profile and agrees with cbor-x [LM-CBOR-1]', () => {
    const cx = new Decoder({ mapsAsObjects: false, useRecords: false });
    fc.assert(
      fc.property(cborValue, (v) => {
        const bytes = encodeCbor(v);
        const back = decodeCbor(bytes);
        expect(encodeCbor(back)).toEqual(bytes);
        expect(normalise(cx.decode(Buffer.from(bytes)))).toEqual(normalise(back));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses non-shortest integers and lengths [LM-CBOR-3]', () => {
    for (const h of ['1817', '190017', '1a0000ffff', '1b00000000ffffffff', '5801ff', '780161', '9801 00'.replace(' ', ''), 'b80100f6']) {
      expect(code(() => dec(h))).toBe(Reason.noncanonical);
    }
  });

  it('refuses unsorted and duplicate map keys [LM-CBOR-3]', () => {
    expect(code(() => dec('a2020101f6'.slice(0, 8) + '01'))).toBe(Reason.noncanonical); // {2:1, 1:1}
    expect(code(() => dec('a201010101'))).toBe(Reason.noncanonical); // {1:1, 1:1}
  });

  it('refuses invalid UTF-8 [LM-CBOR-3]', () => {
    expect(code(() => dec('62c328'))).toBe(Reason.noncanonical);
  });

  it('refuses trailing bytes [LM-CBOR-4]', () => {
    expect(code(() => dec('0000'))).toBe(Reason.trailing);
  });

  it('refuses floats, tags, undefined and indefinite lengths [LM-CBOR-2]', () => {
    for (const h of ['f93c00', 'fa47c35000', 'fb3ff8000000000000', 'c11a514b67b0', 'f7', 'f0', '5f4101ff', '9fff', 'bfff', '1bffffffffffffffff']) {
      expect(code(() => dec(h))).toBe(Reason.schema);
    }
  });

  it('refuses truncated input and reserved encodings [LM-CBOR-5]', () => {
    for (const h of ['18', '19ff', '59ffff', '82', 'a101', '1c', '3f', 'f818', 'ff', '81ff']) {
      expect(code(() => dec(h))).toBe(Reason.malformed);
    }
    expect(code(() => decodeCbor(new Uint8Array(0)))).toBe(Reason.malformed);
  });

  it('checks declared lengths before allocating [LM-CBOR-5]', () => {
    // A 1-byte input declaring a 4 GiB string: refused at once, nothing allocated.
    expect(code(() => dec('5bffffffffffffffff'))).toBe(Reason.tooLarge);
    expect(code(() => dec('5a00010001'))).toBe(Reason.tooLarge);
    expect(code(() => dec('9a00010000'))).toBe(Reason.tooLarge);
    expect(code(() => dec('59ffff'))).toBe(Reason.malformed);
    expect(code(() => decodeCbor(new Uint8Array(65537)))).toBe(Reason.tooLarge);
  });

  it('bounds nesting depth [LM-CBOR-5]', () => {
    expect(() => dec('81'.repeat(8) + '00')).not.toThrow();
    expect(code(() => dec('81'.repeat(9) + '00'))).toBe(Reason.tooDeep);
    expect(code(() => dec('81'.repeat(60000) + '00'))).toBe(Reason.tooDeep);
    // containers count, scalars do not: an empty array at depth 9 is too deep, maps count as arrays
    expect(() => dec('81'.repeat(7) + '80')).not.toThrow();
    expect(code(() => dec('81'.repeat(8) + '80'))).toBe(Reason.tooDeep);
    expect(() => dec('a100'.repeat(7) + 'a0')).not.toThrow();
    expect(code(() => dec('a100'.repeat(8) + 'a0'))).toBe(Reason.tooDeep);
    expect(code(() => encodeCbor([[[[[[[[[]]]]]]]]]))).toBe(Reason.tooDeep);
    expect(() => encodeCbor([[[[[[[[1]]]]]]]])).not.toThrow();
  });

  it('reports the first failure in the order of [LM-CBOR-7]', () => {
    expect(code(() => dec('d80100'))).toBe(Reason.schema); // a tag with a non-shortest argument: schema first
    expect(code(() => dec('f818'))).toBe(Reason.malformed); // a simple value below 32 in two bytes: not well-formed
    expect(code(() => dec('9a00010000' + '00'))).toBe(Reason.tooLarge); // count over the limit and beyond the input
    expect(code(() => dec('8218010000'))).toBe(Reason.noncanonical); // met before the trailing byte
    expect(code(() => dec('82' + '1a00000007' + 'f93c00'))).toBe(Reason.noncanonical); // byte order
    expect(code(() => dec('82' + 'f93c00' + '1a00000007'))).toBe(Reason.schema);
    expect(code(() => dec('9818' + '00'.repeat(3)))).toBe(Reason.malformed); // a count beyond the bytes left
  });
});

function normalise(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v); // cbor-x returns BigInt for 8-byte integers
  if (v instanceof Uint8Array) return { bytes: toHex(v) };
  if (Array.isArray(v)) return v.map(normalise);
  if (v instanceof Map) return [...v.entries()].map(([k, x]) => [k, normalise(x)]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  return v;
}
