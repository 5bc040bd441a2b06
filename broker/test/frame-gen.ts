/**
 * @module frame-gen
 * Generators for the differential tests of the frame scan (frame-scan.test.ts): raw CBOR in any
 * key order and head width, values of the profile and outside it, and frames of every type built
 * from the scan's own table of rules (SCAN_SCHEMAS) with their fields on and past their bounds, one
 * defect at a time, or mutated byte by byte. The full decoder is the judge, so a rule the table
 * gets wrong shows as a disagreement.
 */
import fc from 'fast-check';
import { type CborValue, type FrameTypeId, encodeCbor, fromHex } from '@livematrix/spec';
import { type FieldRule, RuleKind, SCAN_SCHEMAS, type ScanRule } from '@livematrix/spec/cbor-scan';

const MAX_INT = Number.MAX_SAFE_INTEGER;

// ---- raw CBOR, in any order and any head width --------------------------------------------------

export const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** A head; `wide` gives a longer form than the shortest (noncanonical, [LM-CBOR-3]). */
export function head(major: number, n: number, wide = false): Uint8Array {
  const m = major << 5;
  const sizes = [n < 24 ? 0 : n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x100000000 ? 4 : 8];
  let size = sizes[0] as number;
  if (wide) size = size === 0 ? 1 : size === 8 ? 8 : size * 2;
  if (size === 0) return Uint8Array.of(m | n);
  const out = new Uint8Array(1 + size);
  out[0] = m | { 1: 24, 2: 25, 4: 26, 8: 27 }[size as 1 | 2 | 4 | 8];
  let v = BigInt(n);
  for (let i = size; i >= 1; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
export const utf8 = (s: string) => new TextEncoder().encode(s);
export const uintB = (n: number, wide = false) => head(0, n, wide);
export const textB = (s: string) => cat(head(3, utf8(s).length), utf8(s));
export const bytesB = (b: Uint8Array) => cat(head(2, b.length), b);
export const arrayB = (items: Uint8Array[]) => cat(head(4, items.length), ...items);
export const mapB = (entries: [Uint8Array, Uint8Array][]) => cat(head(5, entries.length), ...entries.flat());

/** Sorts map entries canonically by their encoded keys (RFC 8949 §4.2.1). */
export function canonical(entries: [Uint8Array, Uint8Array][]): [Uint8Array, Uint8Array][] {
  return [...entries].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

// ---- generators ----------------------------------------------------------------------------------

/** Any value of the profile, encoded (deterministic), nested up to a few levels. */
export const anyValue: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<CborValue>(0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, MAX_INT, -1, -24, -25, -MAX_INT, true, false, null, '', 'é', new Uint8Array(0)),
    fc.integer().map((x): CborValue => x),
    fc.string({ maxLength: 8, unit: 'binary' }).map((x): CborValue => x),
    fc.uint8Array({ maxLength: 8 }).map((x): CborValue => x),
    fc.array(tie('v'), { maxLength: 3 }).map((x): CborValue => x),
    fc.array(fc.tuple(fc.oneof(fc.nat(40), fc.string({ maxLength: 3 })), tie('v')), { maxLength: 3 }).map((es): CborValue => new Map(es)),
  ),
})).v;

const BAD_UTF8 = ['ff', 'c080', 'c1bf', 'eda080', 'edbfbf', 'e08080', 'e09fbf', 'f08f8080', 'f4908080', 'f5808080', 'c3', 'e282', 'f09f98', 'c328', 'e228a1', 'f0288cbc'].map(fromHex);
/** Good UTF-8 at the edges of the ranges a decoder must tell apart. */
const EDGE_UTF8 = ['7f', 'c280', 'dfbf', 'e0a080', 'ed9fbf', 'ee8080', 'efbfbf', 'f0908080', 'f48fbfbf', 'efbbbf'].map(fromHex);

/** Maps that no encoder of the profile writes: duplicate or out-of-order keys, uint and text. */
const ODD_MAPS = ['a200000000', 'a2616100616100', 'a201000000', 'a2616100 0000', 'a2616200616100', 'a26161006162 00', 'a2186400 1818 00', 'a1a000', 'a14100', 'a12000', 'a2000061610000'].map((h) => fromHex(h.replace(/ /g, '')));

/** Encoded values, some outside the profile: floats, tags, undefined, indefinite lengths, deep nesting, bad UTF-8, odd maps. */
export const anyEncoded: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 8, arbitrary: anyValue.map((v) => encodeCbor(v)) },
  { weight: 2, arbitrary: fc.constantFrom(...BAD_UTF8, ...EDGE_UTF8).map((b) => cat(head(3, b.length), b)) },
  { weight: 2, arbitrary: fc.constantFrom(...ODD_MAPS) },
  { weight: 1, arbitrary: fc.constantFrom('f97e00', 'fa3f800000', 'fb3ff0000000000000', 'c001', 'd81801', 'f7', 'f0', 'f818', 'f820', '5f41ff', '9fff', 'bfff', '7fff', 'ff', '1c', '3bffffffffffffffff', '1b0020000000000000', '1b001fffffffffffff', '3b001ffffffffffffe', '3b001fffffffffffff').map(fromHex) },
  { weight: 1, arbitrary: fc.integer({ min: 5, max: 9 }).map((d) => cat(...Array.from({ length: d }, () => Uint8Array.of(0x81)), Uint8Array.of(0))) },
);

/** A string of exactly `n` bytes of UTF-8 made of 1-, 2-, 3- or 4-byte characters. */
const textOfBytes = (n: number): fc.Arbitrary<string> => fc.constantFrom('a', 'é', '€', '😀').map((c) => {
  const w = utf8(c).length;
  return c.repeat(Math.floor(n / w)) + 'a'.repeat(n % w);
});


/** Sizes worth trying for a length in min..max: the bounds, one either side, and a few small ones. */
function sizes(min: number, max: number, cap = 5000): fc.Arbitrary<number> {
  const edges = [min, min + 1, max, max + 1, Math.max(0, min - 1)].filter((x) => x <= cap || x === min);
  return fc.oneof({ weight: 3, arbitrary: fc.integer({ min, max: Math.min(max, min + 40) }) }, { weight: 2, arbitrary: fc.constantFrom(...edges) });
}

/**
 * A value for a field's rule: mostly within it, at its edges, and sometimes just outside or of
 * another type; `strict`, only within it (so that whole frames of many fields are valid often).
 */
function valueOf(r: ScanRule, strict = false): fc.Arbitrary<Uint8Array> {
  const other = fc.oneof(anyEncoded, fc.constant(textB('1')), fc.constant(Uint8Array.of(0x20)), fc.constant(Uint8Array.of(0xf6)));
  const within = ((): fc.Arbitrary<Uint8Array> => {
    switch (r.kind) {
      case RuleKind.uint: {
        const edges = [r.min, r.max, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, r.max + 1, r.min - 1].filter((x) => x >= 0 && x <= MAX_INT);
        if (strict) return fc.oneof(fc.constantFrom(...edges.filter((x) => x >= r.min && x <= r.max)), fc.integer({ min: r.min, max: Math.min(r.max, r.min + 1000) })).map((n) => uintB(n));
        return fc.oneof(
          fc.constantFrom(...edges).map((n) => uintB(n)),
          fc.integer({ min: r.min, max: Math.min(r.max, r.min + 1000) }).map((n) => uintB(n)),
          fc.integer({ min: r.min, max: Math.min(r.max, 70000) }).map((n) => uintB(n, true)),
          fc.constant(Uint8Array.of(0x20)), // -1
        );
      }
      case RuleKind.bool:
        if (strict) return fc.constantFrom(Uint8Array.of(0xf4), Uint8Array.of(0xf5));
        return fc.constantFrom(Uint8Array.of(0xf4), Uint8Array.of(0xf5), Uint8Array.of(0xf6), Uint8Array.of(0x01));
      case RuleKind.bstr:
        if (strict) return fc.oneof(fc.integer({ min: r.min, max: Math.min(r.max, r.min + 40) }), fc.constantFrom(r.min, Math.min(r.max, 5000))).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })).map(bytesB);
        return fc.oneof(sizes(r.min, r.max).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })).map(bytesB), fc.constant(bytesB(new Uint8Array(r.max))).filter(() => r.max <= 65536));
      case RuleKind.tstr:
        if (strict) return fc.oneof(fc.string({ maxLength: 12, unit: 'grapheme' }).filter((x) => utf8(x).length <= r.max), fc.constantFrom(r.max - 1, r.max).chain(textOfBytes)).map(textB);
        return fc.oneof(
          { weight: 3, arbitrary: fc.string({ maxLength: 12, unit: 'grapheme' }).map(textB) },
          { weight: 2, arbitrary: fc.constantFrom(r.max - 1, r.max, r.max + 1).chain(textOfBytes).map(textB) },
          { weight: 1, arbitrary: fc.constantFrom(...BAD_UTF8).map((b) => cat(head(3, b.length), b)) },
        );
      case RuleKind.id:
        if (strict) return fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/).map(textB);
        return fc.oneof(
          { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/).map(textB) },
          { weight: 1, arbitrary: fc.constantFrom('', 'a'.repeat(64), 'a'.repeat(65), 'a/b', 'a b', 'é', 'a\n', 'A-Z_09.').map(textB) },
          { weight: 1, arbitrary: fc.constantFrom(...BAD_UTF8).map((b) => cat(head(3, b.length), b)) },
        );
      case RuleKind.array:
        return (strict ? fc.integer({ min: r.min, max: Math.min(r.max, r.min + 3) }) : sizes(r.min, r.max, 1100)).chain((n) => fc.array(valueOf(r.items[0] as ScanRule, strict), { minLength: Math.min(n, 4), maxLength: Math.min(n, 4) }).map((xs) => {
          // up to four generated items, the rest copies of the first (or of a valid-looking one)
          const fill = xs[0] ?? uintB(0);
          return arrayB(Array.from({ length: n }, (_, i) => xs[i] ?? fill));
        }));
      case RuleKind.tuple:
        if (strict) return fc.tuple(...r.items.map((x) => valueOf(x, true))).map((xs) => arrayB(xs));
        return fc.oneof(
          { weight: 6, arbitrary: fc.tuple(...r.items.map((x) => valueOf(x))).map((xs) => arrayB(xs)) },
          { weight: 1, arbitrary: fc.tuple(...r.items.map((x) => valueOf(x))).map((xs) => arrayB(xs.slice(1))) },
          { weight: 1, arbitrary: fc.tuple(...r.items.map((x) => valueOf(x))).map((xs) => arrayB([...xs, uintB(1)])) },
        );
      case RuleKind.increasing:
        if (strict) return fc.uniqueArray(fc.nat(100_000), { minLength: 1, maxLength: 12 }).map((xs) => arrayB(xs.sort((a, b) => a - b).map((x) => uintB(x))));
        return fc.oneof(
          { weight: 4, arbitrary: fc.uniqueArray(fc.nat(100_000), { minLength: 0, maxLength: 12 }).map((xs) => arrayB(xs.sort((a, b) => a - b).map((x) => uintB(x)))) },
          { weight: 1, arbitrary: fc.array(fc.nat(30), { minLength: 2, maxLength: 6 }).map((xs) => arrayB(xs.map((x) => uintB(x)))) },
          { weight: 1, arbitrary: fc.constantFrom(r.max, r.max + 1).map((n) => arrayB(Array.from({ length: n }, (_, i) => uintB(i)))) },
        );
      case RuleKind.map:
        return bodyOf(r.fields, strict);
      case RuleKind.textMap:
        if (strict) return fc.array(fc.tuple(fc.string({ maxLength: 6 }), anyValue), { maxLength: 4 }).map((es) => encodeCbor(new Map(es)));
        return fc.oneof(
          { weight: 3, arbitrary: fc.array(fc.tuple(fc.string({ maxLength: 6 }), anyValue), { maxLength: 4 }).map((es) => encodeCbor(new Map(es))) },
          // near the size limit: one reading whose text makes the map max - 1, max or max + 1 bytes
          { weight: 2, arbitrary: fc.constantFrom(-1, 0, 1).map((d) => {
            const overhead = encodeCbor(new Map([['t', '']])).length + 2;
            return encodeCbor(new Map([['t', 'x'.repeat(r.max - overhead + d)]]));
          }) },
          { weight: 1, arbitrary: fc.constant(encodeCbor(new Map<string | number, CborValue>([[1, 1], ['a', 2]]))) },
        );
      default:
        throw new Error(`rule kind ${r.kind}`);
    }
  })();
  return strict ? within : fc.oneof({ weight: 12, arbitrary: within }, { weight: 1, arbitrary: other });
}

/**
 * A body or nested map: its fields (required ones mostly present, optional ones half the time),
 * extension and stray keys, mostly canonical order; `strict`: a valid one (extension keys only).
 */
function bodyOf(fields: readonly FieldRule[], strict = false): fc.Arbitrary<Uint8Array> {
  const never = fc.constant(null);
  const entries = fc.tuple(
    fc.tuple(...fields.map((fr) => fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), valueOf(fr.rule, strict)))),
    fc.array(fc.tuple(fc.integer({ min: 16, max: 40 }), strict ? anyValue.map((v) => encodeCbor(v)) : anyEncoded), { maxLength: 2 }),
    strict ? never : fc.option(fc.integer({ min: 0, max: 15 }), { freq: 20 }),
    strict ? never : fc.option(fc.string({ maxLength: 3 }), { freq: 30 }),
    strict ? fc.constant(40) : fc.integer({ min: 0, max: 40 }),
  ).map(([vals, ext, stray, textKey, order]) => {
    const es: [Uint8Array, Uint8Array][] = [];
    fields.forEach((fr, i) => {
      const [p, v] = vals[i] as [number, Uint8Array];
      if (p < (fr.optional ? 0.5 : strict ? 1.01 : 0.97)) es.push([uintB(fr.key), v]);
    });
    for (const [k, v] of ext) if (!es.some(([kk]) => Buffer.from(kk).equals(Buffer.from(uintB(k))))) es.push([uintB(k), v]);
    if (stray !== null && !fields.some((fr) => fr.key === stray)) es.push([uintB(stray), uintB(1)]);
    if (textKey !== null) es.push([textB(textKey), uintB(1)]);
    const sorted = canonical(es);
    if (order === 0 && sorted.length > 1) return mapB([...sorted].reverse()); // out of order
    if (order === 1 && sorted.length > 0) return mapB([...sorted, sorted[sorted.length - 1] as [Uint8Array, Uint8Array]]); // duplicate key
    if (order === 2 && sorted.length > 0) return cat(head(5, sorted.length, true), ...sorted.flat()); // wide map head
    return mapB(sorted);
  });
  return entries;
}

export const TYPES = Object.keys(SCAN_SCHEMAS).map(Number) as FrameTypeId[];

/** A valid frame of any type by its schema (extension keys and all), with some authentication its type allows. */
const validFrame: fc.Arbitrary<Uint8Array> = fc.constantFrom(...TYPES).chain((type) => fc.tuple(bodyOf(SCAN_SCHEMAS[type] as FieldRule[], true), fc.constantFrom(0, 16, 64)).map(([body, authLen]) =>
  arrayB([uintB(1), uintB(type), body, bytesB(new Uint8Array(authLen).fill(7))])));

/** A frame of any type by its schema, mostly with a well-formed envelope, its fields at and past their edges. */
const edgyFrame: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.oneof({ weight: 20, arbitrary: fc.constantFrom(...TYPES) }, { weight: 1, arbitrary: fc.constantFrom(0, 20, 31, 99) }),
  fc.oneof({ weight: 30, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(0, 2) }),
  fc.oneof({ weight: 10, arbitrary: fc.constantFrom(0, 16, 64) }, { weight: 1, arbitrary: fc.constantFrom(1, 15, 17, 32, 63, 65) }),
  fc.oneof({ weight: 40, arbitrary: fc.constant(4) }, { weight: 1, arbitrary: fc.constantFrom(3, 5) }),
  fc.oneof({ weight: 40, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
).chain(([type, version, authLen, n, trailing]) => (SCAN_SCHEMAS[type as FrameTypeId] ? bodyOf(SCAN_SCHEMAS[type as FrameTypeId] as FieldRule[]) : bodyOf([])).map((body) => {
  const items = [uintB(version), uintB(type), body, bytesB(new Uint8Array(authLen).fill(7))];
  const env = n === 4 ? items : n === 3 ? items.slice(0, 3) : [...items, uintB(0)];
  return cat(arrayB(env), trailing ? Uint8Array.of(0) : new Uint8Array(0));
}));

export type Entry = [Uint8Array, Uint8Array];

/** Values on a rule's bounds and one step past them: the cases a mirror of the schema most easily gets wrong. */
export function edgeValues(r: ScanRule): Uint8Array[] {
  const n = (lo: number, hi: number, cap = 70_000) => [...new Set([lo - 1, lo, hi, hi + 1])].filter((x) => x >= 0 && x <= cap);
  switch (r.kind) {
    case RuleKind.uint:
      return n(r.min, r.max, MAX_INT).map((x) => uintB(x));
    case RuleKind.bool:
      return [Uint8Array.of(0xf4), Uint8Array.of(0xf5), Uint8Array.of(0xf6), Uint8Array.of(0xf7), Uint8Array.of(0x00)];
    case RuleKind.bstr:
      return n(r.min, r.max).map((x) => bytesB(new Uint8Array(x)));
    case RuleKind.tstr:
      return n(0, r.max).flatMap((x) => ['a', 'é', '€', '😀'].map((c) => textB(c.repeat(Math.floor(x / utf8(c).length)) + 'a'.repeat(x % utf8(c).length))));
    case RuleKind.id:
      return ['', 'a', 'z'.repeat(64), 'z'.repeat(65), 'é', 'a b', 'a/b', 'a+', '~', 'A-Z_09.'].map(textB);
    case RuleKind.array:
    case RuleKind.increasing:
      return n(r.min, r.max, 5000).map((x) => arrayB(Array.from({ length: x }, (_, i) => (r.kind === RuleKind.increasing ? uintB(i) : minimalOf(r.items[0] as ScanRule)))))
        .concat(r.kind === RuleKind.increasing ? [arrayB([uintB(1), uintB(1)]), arrayB([uintB(2), uintB(1)])] : []);
    case RuleKind.tuple:
      return [arrayB(r.items.map(minimalOf)), arrayB(r.items.slice(1).map(minimalOf)), arrayB([...r.items.map(minimalOf), uintB(0)])];
    case RuleKind.textMap: {
      const base = encodeCbor(new Map([['t', '']])).length;
      return [r.max - 1, r.max, r.max + 1].map((size) => encodeCbor(new Map([['t', 'x'.repeat(size - base - 2)]])))
        .concat([encodeCbor(new Map()), encodeCbor(new Map<string | number, CborValue>([[1, 1]])), encodeCbor(new Map<string | number, CborValue>([[1, 1], ['a', 2]]))]);
    }
    case RuleKind.map:
      return [minimalOf(r), mapB(canonical(r.fields.filter((fr) => !fr.optional).slice(1).map((fr) => [uintB(fr.key), minimalOf(fr.rule)])))];
    default:
      throw new Error(`rule kind ${r.kind}`);
  }
}

/** The smallest valid value of a rule (required fields only). */
export function minimalOf(r: ScanRule): Uint8Array {
  switch (r.kind) {
    case RuleKind.uint:
      return uintB(r.min);
    case RuleKind.bool:
      return Uint8Array.of(0xf5);
    case RuleKind.bstr:
      return bytesB(new Uint8Array(r.min));
    case RuleKind.tstr:
      return textB('');
    case RuleKind.id:
      return textB('d1');
    case RuleKind.array:
      return arrayB(Array.from({ length: r.min }, () => minimalOf(r.items[0] as ScanRule)));
    case RuleKind.increasing:
      return arrayB([uintB(0)]);
    case RuleKind.tuple:
      return arrayB(r.items.map(minimalOf));
    case RuleKind.textMap:
      return encodeCbor(new Map());
    case RuleKind.map:
      return mapB(canonical(r.fields.filter((fr) => !fr.optional).map((fr) => [uintB(fr.key), minimalOf(fr.rule)])));
    default:
      throw new Error(`rule kind ${r.kind}`);
  }
}

const edgeOf = (r: ScanRule): fc.Arbitrary<Uint8Array> => fc.constantFrom(...edgeValues(r));

/** A valid frame but for one defect in its body, so that each rule on its own decides the verdict. */
const oneDefect: fc.Arbitrary<Uint8Array> = fc.noBias(fc.constantFrom(...TYPES)).chain((type) => {
  const fields = SCAN_SCHEMAS[type] as FieldRule[];
  const unknown = Array.from({ length: 16 }, (_, k) => k).filter((k) => !fields.some((fr) => fr.key === k));
  return fc.tuple(
    fc.tuple(...fields.map((fr) => valueOf(fr.rule, true))),
    fc.tuple(...fields.map((fr) => valueOf(fr.rule))),
    fc.tuple(...fields.map((fr) => edgeOf(fr.rule))),
    fc.constantFrom('stray', 'text', 'missing', 'value', 'edge', 'edge', 'edge', 'ext', 'order', 'dup', 'wide'),
    fc.noBias(fc.nat()),
    anyEncoded,
    fc.constantFrom(0, 16, 64),
  ).map(([good, edgy, edges, defect, i, ext, authLen]) => {
    const es: Entry[] = fields.map((fr, j) => [uintB(fr.key), good[j] as Uint8Array]);
    const at = i % fields.length;
    if (defect === 'stray') es.push([uintB(unknown[i % unknown.length] as number), uintB(1)]);
    if (defect === 'text') es.push([textB('k'), uintB(1)]);
    if (defect === 'missing') es.splice(at, 1);
    if (defect === 'value') es[at] = [(es[at] as Entry)[0], edgy[at] as Uint8Array];
    if (defect === 'edge') es[at] = [(es[at] as Entry)[0], edges[at] as Uint8Array];
    if (defect === 'ext') es.push([uintB(16 + (i % 8)), ext]);
    const sorted = canonical(es);
    const last = sorted[sorted.length - 1] as Entry;
    const body = defect === 'order' ? mapB([...sorted].reverse()) : defect === 'dup' ? mapB([...sorted, last]) : defect === 'wide' ? cat(head(5, sorted.length, true), ...sorted.flat()) : mapB(sorted);
    return arrayB([uintB(1), uintB(type), body, bytesB(new Uint8Array(authLen).fill(7))]);
  });
});

export const frame = fc.oneof(validFrame, edgyFrame, oneDefect);

const INTERESTING = ['5bffffffffffffffff', '9bffffffffffffffff', 'bbffffffffffffffff', '7a7fffffff', '5f', '9f', 'bf', 'ff', 'c0', 'f97e00', '1c', '18', '1900', 'f818'].map(fromHex);

/** A byte-level mutation of an input: bit flips, truncation, insertion, deletion, an interesting head spliced in, a boundary byte. */
export const mutated = (src: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> => fc.tuple(src, fc.nat(7), fc.nat(), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 6 })).map(([b0, op, x, y, bytes]) => {
  const b = b0.slice();
  const at = b.length ? x % b.length : 0;
  switch (op) {
    case 0:
      if (b.length) b[at] = (b[at] as number) ^ (1 << (y % 8));
      return b;
    case 1:
      return b.subarray(0, at);
    case 2:
      return cat(b.subarray(0, at), bytes, b.subarray(at));
    case 3:
      return cat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + (y % 8))));
    case 4:
      return cat(b.subarray(0, at), INTERESTING[y % INTERESTING.length] as Uint8Array, b.subarray(at));
    case 5:
      if (b.length) b[at] = [0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x7f, 0x80, 0xf6, 0xff][y % 11] as number;
      return b;
    case 6:
      return cat(b, b.subarray(at));
    default:
      if (b.length) b[at] = (b[at] as number) + 1;
      return b;
  }
});
