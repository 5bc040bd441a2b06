/**
 * @module cbor
 * The deterministic CBOR profile of SPEC.md §6: an encoder that writes RFC 8949 §4.2.1 core
 * deterministic encoding and a strict decoder that checks sizes before it allocates, bounds
 * depth, refuses non-canonical input and trailing bytes, and reports every failure as an
 * {@link LmError} ([LM-CBOR-6]).
 *
 * Why not cbor-x for this: cbor-x encodes integers of 2^32 and above as float64, decodes
 * 64-bit integers as BigInt, has no canonical mode and has allocated gigabytes for declared
 * lengths beyond the input. It stays in the tests as an independent decoder to compare against.
 */
import { LmError, Reason, errorMessage } from './errors.js';

/** A value of the CBOR profile ([LM-CBOR-2]). Maps are `Map`s with uint or text keys. */
export type CborValue =
  | number
  | Uint8Array
  | string
  | boolean
  | null
  | readonly CborValue[]
  | ReadonlyMap<number | string, CborValue>;

/** Limits of [LM-CBOR-5]. */
export const LIMITS = Object.freeze({
  maxInput: 65536,
  maxString: 65536,
  maxItems: 4096,
  maxDepth: 8,
});

const MAX_INT = Number.MAX_SAFE_INTEGER; // 2^53 - 1

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Writer {
  private buf = new Uint8Array(256);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** Major type and argument in shortest form ([LM-CBOR-1]). */
  head(major: number, arg: number): void {
    const m = major << 5;
    if (arg < 24) this.byte(m | arg);
    else if (arg < 0x100) {
      this.byte(m | 24);
      this.byte(arg);
    } else if (arg < 0x10000) {
      this.byte(m | 25);
      this.byte(arg >>> 8);
      this.byte(arg & 0xff);
    } else if (arg < 0x100000000) {
      this.byte(m | 26);
      this.byte(arg >>> 24);
      this.byte((arg >>> 16) & 0xff);
      this.byte((arg >>> 8) & 0xff);
      this.byte(arg & 0xff);
    } else {
      this.byte(m | 27);
      const hi = Math.floor(arg / 0x100000000);
      const lo = arg >>> 0;
      for (const v of [hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff]) this.byte(v);
      for (const v of [lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff]) this.byte(v);
    }
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function encodeInto(w: Writer, v: CborValue, depth: number): void {
  // an array or a map at `depth` is at nesting depth depth + 1 ([LM-CBOR-5])
  if ((Array.isArray(v) || v instanceof Map) && depth + 1 > LIMITS.maxDepth) throw new LmError(Reason.tooDeep, `nesting deeper than ${LIMITS.maxDepth} ([LM-CBOR-5])`);
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v > MAX_INT || v < -MAX_INT) {
      throw new LmError(Reason.schema, `number ${v} is not an integer in ±(2^53-1) ([LM-CBOR-2])`);
    }
    if (v >= 0) w.head(0, v);
    else w.head(1, -1 - v);
  } else if (typeof v === 'string') {
    const b = utf8.encode(v);
    w.head(3, b.length);
    w.bytes(b);
  } else if (typeof v === 'boolean') {
    w.byte(v ? 0xf5 : 0xf4);
  } else if (v === null) {
    w.byte(0xf6);
  } else if (v instanceof Uint8Array) {
    w.head(2, v.length);
    w.bytes(v);
  } else if (Array.isArray(v)) {
    const arr = v as readonly CborValue[];
    w.head(4, arr.length);
    for (const item of arr) encodeInto(w, item, depth + 1);
  } else if (v instanceof Map) {
    // RFC 8949 §4.2.1: keys sorted by their encoded bytes.
    const entries: [Uint8Array, CborValue][] = [];
    for (const [k, val] of v as ReadonlyMap<number | string, CborValue>) {
      if (typeof k === 'number' && (!Number.isInteger(k) || k < 0)) {
        throw new LmError(Reason.schema, `map key ${k} is not an unsigned integer or text`);
      }
      entries.push([encodeCbor(k), val]);
    }
    entries.sort((a, b) => compareBytes(a[0], b[0]));
    w.head(5, entries.length);
    for (const [kb, val] of entries) {
      w.bytes(kb);
      encodeInto(w, val, depth + 1);
    }
  } else {
    throw new LmError(Reason.schema, `value of type ${typeof v} is outside the CBOR profile`);
  }
}

/**
 * Deterministic encoding of a value of the profile ([LM-CBOR-1]).
 * @example encodeCbor(new Map([[1, 'a']])) // a1 01 61 61
 */
export function encodeCbor(v: CborValue): Uint8Array {
  const w = new Writer();
  encodeInto(w, v, 0);
  return w.result();
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  need(n: number): void {
    if (n > this.buf.length - this.pos) {
      throw new LmError(Reason.malformed, `truncated: need ${n} bytes at offset ${this.pos}, have ${this.buf.length - this.pos}`);
    }
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }
  /** Reads a head; returns [major, argument]; refuses non-shortest arguments ([LM-CBOR-3]). */
  head(): [number, number, number] {
    const at = this.pos;
    const ib = this.u8();
    const major = ib >> 5;
    const ai = ib & 0x1f;
    if (ai < 24) return [major, ai, ib];
    // floats, simple values and tags are outside the profile whatever their argument: the caller
    // refuses them as schema before any shortest-form check ([LM-CBOR-7])
    const canonical = major !== 7 && major !== 6;
    let arg: number;
    if (ai === 24) {
      arg = this.u8();
      if (canonical && arg < 24) throw new LmError(Reason.noncanonical, `argument ${arg} not in shortest form at offset ${at}`);
    } else if (ai === 25) {
      this.need(2);
      arg = ((this.buf[this.pos] as number) << 8) | (this.buf[this.pos + 1] as number);
      this.pos += 2;
      if (canonical && arg < 0x100) throw new LmError(Reason.noncanonical, `argument ${arg} not in shortest form at offset ${at}`);
    } else if (ai === 26) {
      this.need(4);
      const b = this.buf;
      const p = this.pos;
      arg = ((b[p] as number) * 0x1000000) + (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));
      this.pos += 4;
      if (canonical && arg < 0x10000) throw new LmError(Reason.noncanonical, `argument ${arg} not in shortest form at offset ${at}`);
    } else if (ai === 27) {
      this.need(8);
      const b = this.buf;
      const p = this.pos;
      const hi = ((b[p] as number) * 0x1000000) + (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));
      const lo = ((b[p + 4] as number) * 0x1000000) + (((b[p + 5] as number) << 16) | ((b[p + 6] as number) << 8) | (b[p + 7] as number));
      this.pos += 8;
      if (hi >= 0x200000) {
        // >= 2^53: outside the profile; for lengths this is also far beyond any limit.
        arg = Number.POSITIVE_INFINITY;
      } else {
        arg = hi * 0x100000000 + lo;
        if (canonical && arg < 0x100000000) throw new LmError(Reason.noncanonical, `argument ${arg} not in shortest form at offset ${at}`);
      }
    } else if (ai === 31) {
      if (major === 0 || major === 1 || major === 6 || major === 7) {
        // major 7 with 31 is a "break" outside any indefinite-length item.
        throw new LmError(Reason.malformed, `indefinite length is not allowed for major type ${major} at offset ${at}`);
      }
      // Well-formed indefinite length (or break) but outside the profile.
      throw new LmError(Reason.schema, `indefinite length at offset ${at} is outside the profile ([LM-CBOR-2])`);
    } else {
      throw new LmError(Reason.malformed, `reserved additional information ${ai} at offset ${at}`);
    }
    return [major, arg, ib];
  }
}

/**
 * One data item at `depth` containers below the top (0 for the top item). An array or a map at
 * `depth` is at nesting depth `depth + 1` ([LM-CBOR-5]: containers count, scalars do not); the
 * checks of one head run in the order of [LM-CBOR-7].
 */
function decodeItem(r: Reader, depth: number): CborValue {
  const at = r.pos;
  const [major, arg, ib] = r.head();
  switch (major) {
    case 0:
      if (arg > MAX_INT) throw new LmError(Reason.schema, `integer at offset ${at} is above 2^53-1 ([LM-CBOR-2])`);
      return arg;
    case 1:
      if (arg >= MAX_INT) throw new LmError(Reason.schema, `integer at offset ${at} is below -(2^53-1) ([LM-CBOR-2])`);
      return -1 - arg;
    case 2:
    case 3: {
      if (arg > LIMITS.maxString) throw new LmError(Reason.tooLarge, `string of ${arg} bytes at offset ${at} exceeds ${LIMITS.maxString}`);
      r.need(arg); // [LM-CBOR-5]: check before allocating
      const bytes = r.buf.slice(r.pos, r.pos + arg);
      r.pos += arg;
      if (major === 2) return bytes;
      try {
        return utf8Strict.decode(bytes);
      } catch {
        throw new LmError(Reason.noncanonical, `text string at offset ${at} is not valid UTF-8 ([LM-CBOR-3])`);
      }
    }
    case 4: {
      if (depth + 1 > LIMITS.maxDepth) throw new LmError(Reason.tooDeep, `array at offset ${at} nests deeper than ${LIMITS.maxDepth} ([LM-CBOR-5])`);
      if (arg > LIMITS.maxItems) throw new LmError(Reason.tooLarge, `array of ${arg} items at offset ${at} exceeds ${LIMITS.maxItems}`);
      r.need(arg); // each item is at least one byte
      const out: CborValue[] = [];
      for (let i = 0; i < arg; i++) out.push(decodeItem(r, depth + 1));
      return out;
    }
    case 5: {
      if (depth + 1 > LIMITS.maxDepth) throw new LmError(Reason.tooDeep, `map at offset ${at} nests deeper than ${LIMITS.maxDepth} ([LM-CBOR-5])`);
      if (arg > LIMITS.maxItems) throw new LmError(Reason.tooLarge, `map of ${arg} entries at offset ${at} exceeds ${LIMITS.maxItems}`);
      r.need(arg * 2);
      const out = new Map<number | string, CborValue>();
      let prev: Uint8Array | undefined;
      for (let i = 0; i < arg; i++) {
        const kStart = r.pos;
        const k = decodeItem(r, depth + 1);
        const kBytes = r.buf.subarray(kStart, r.pos);
        if (typeof k !== 'string' && !(typeof k === 'number' && k >= 0)) {
          throw new LmError(Reason.schema, `map key at offset ${kStart} is not an unsigned integer or text ([LM-CBOR-2])`);
        }
        if (prev !== undefined) {
          const c = compareBytes(prev, kBytes);
          if (c === 0) throw new LmError(Reason.noncanonical, `duplicate map key at offset ${kStart} ([LM-CBOR-3])`);
          if (c > 0) throw new LmError(Reason.noncanonical, `map keys out of order at offset ${kStart} ([LM-CBOR-1])`);
        }
        prev = kBytes;
        out.set(k, decodeItem(r, depth + 1));
      }
      return out;
    }
    case 6:
      throw new LmError(Reason.schema, `tag at offset ${at} is outside the profile ([LM-CBOR-2])`);
    default: {
      // major 7
      if (ib === 0xf4) return false;
      if (ib === 0xf5) return true;
      if (ib === 0xf6) return null;
      const ai = ib & 0x1f;
      if (ai === 24 && arg < 32) throw new LmError(Reason.malformed, `simple value ${arg} in two bytes at offset ${at}`);
      throw new LmError(Reason.schema, `simple value or float (0x${ib.toString(16)}) at offset ${at} is outside the profile ([LM-CBOR-2])`);
    }
  }
}

/**
 * Strict decoding of one data item that fills `input` exactly ([LM-CBOR-1]..[LM-CBOR-6]).
 * Throws only {@link LmError}.
 */
export function decodeCbor(input: Uint8Array, maxInput: number = LIMITS.maxInput): CborValue {
  if (!(input instanceof Uint8Array)) throw new LmError(Reason.malformed, 'input is not a Uint8Array');
  if (input.length > maxInput) throw new LmError(Reason.tooLarge, `input of ${input.length} bytes exceeds ${maxInput} ([LM-CBOR-5])`);
  if (input.length === 0) throw new LmError(Reason.malformed, 'empty input');
  const r = new Reader(input);
  let v: CborValue;
  try {
    v = decodeItem(r, 0);
  } catch (e) {
    if (e instanceof LmError) throw e;
    // [LM-CBOR-6]: nothing but LmError leaves the decoder.
    throw new LmError(Reason.internal, `decoder fault: ${errorMessage(e)}`);
  }
  if (r.pos !== input.length) {
    throw new LmError(Reason.trailing, `${input.length - r.pos} bytes after the data item ([LM-CBOR-4])`);
  }
  return v;
}
