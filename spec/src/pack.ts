/**
 * @module pack
 * Packing a byte string into w-bit symbols and back (SPEC.md §5.2).
 */
import { LmError, Reason } from './errors.js';

/** Number of symbols for n bytes at width w: ceil(8n / w) ([LM-PACK-1]). */
export function symbolCount(n: number, w: number): number {
  return Math.ceil((8 * n) / w);
}

function checkWidth(w: number): void {
  if (!Number.isInteger(w) || w < 1 || w > 32) throw new LmError(Reason.params, `w=${w} out of range 1..32`);
}

/**
 * Packs bytes into w-bit symbols, most significant bit first, the last symbol padded with
 * zero bits in its low positions ([LM-PACK-1], [LM-PACK-2]).
 * @example pack(new Uint8Array([0xab]), 12) // Uint32Array [0xab0]
 */
export function pack(bytes: Uint8Array, w: number): Uint32Array {
  checkWidth(w);
  const m = symbolCount(bytes.length, w);
  const out = new Uint32Array(m);
  if (w <= 24) {
    // whole groups of bytes and symbols first (the widths a stream uses), then bit by bit; the
    // accumulator holds at most w + 7 <= 31 bits, so 32-bit integer ops are exact
    const g = packGroups(bytes, w, out);
    let a = 0;
    let nb = 0;
    let j = g.symbols;
    const mask = (1 << w) - 1;
    for (let i = g.bytes; i < bytes.length; i++) {
      a = ((a << 8) | (bytes[i] as number)) >>> 0;
      nb += 8;
      while (nb >= w) {
        nb -= w;
        out[j++] = (a >>> nb) & mask;
        a &= (1 << nb) - 1;
      }
    }
    if (nb > 0) out[j] = (a << (w - nb)) & mask; // [LM-PACK-2] zero padding
    return out;
  }
  let acc = 0; // bit accumulator, at most w + 7 bits < 2^40; kept below 2^53
  let bits = 0;
  let j = 0;
  for (let i = 0; i < bytes.length; i++) {
    acc = acc * 256 + (bytes[i] as number);
    bits += 8;
    while (bits >= w) {
      bits -= w;
      const div = 2 ** bits;
      out[j++] = Math.floor(acc / div);
      acc = acc % div;
    }
  }
  if (bits > 0) out[j++] = acc * 2 ** (w - bits); // [LM-PACK-2] zero padding
  return out;
}

/**
 * Unpacks m symbols into exactly n bytes; refuses a wrong count, an out-of-range symbol or
 * non-zero padding with reason `padding` ([LM-PACK-3]).
 */
export function unpack(symbols: ArrayLike<number>, w: number, n: number): Uint8Array {
  checkWidth(w);
  if (!Number.isSafeInteger(n) || n < 0) throw new LmError(Reason.padding, `byte length ${n} is not a non-negative integer`);
  const m = symbolCount(n, w);
  if (symbols.length !== m) {
    throw new LmError(Reason.padding, `${symbols.length} symbols for ${n} bytes at w=${w}; expected ${m} ([LM-PACK-3])`);
  }
  const out = new Uint8Array(n);
  const limit = 2 ** w;
  if (w <= 24) {
    // whole groups first (the widths a stream uses), then bit by bit with at most 7 + w <= 31
    // bits pending, exact in 32-bit integer ops; the last symbol, with its padding, always so
    const g = unpackGroups(symbols, w, out);
    let a = 0;
    let nb = 0;
    let o = g.bytes;
    for (let j = g.symbols; j < m; j++) {
      const s = symbols[j] as number;
      if (!(s >= 0 && s < limit) || s !== Math.floor(s)) throw new LmError(Reason.padding, `symbol ${s} at index ${j} is not below 2^${w} ([LM-PACK-3])`);
      a = ((a << w) | s) >>> 0;
      nb += w;
      while (nb >= 8 && o < n) {
        nb -= 8;
        out[o++] = (a >>> nb) & 0xff;
      }
      a &= nb >= 32 ? 0xffffffff : (1 << nb) - 1;
    }
    if (a !== 0) throw new LmError(Reason.padding, `last symbol has ${nb} non-zero padding bits ([LM-PACK-3])`);
    return out;
  }
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let j = 0; j < m; j++) {
    const s = symbols[j] as number;
    if (!Number.isInteger(s) || s < 0 || s >= limit) throw new LmError(Reason.padding, `symbol ${s} at index ${j} is not below 2^${w} ([LM-PACK-3])`);
    acc = acc * limit + s;
    bits += w;
    while (bits >= 8 && o < n) {
      bits -= 8;
      const div = 2 ** bits;
      out[o++] = Math.floor(acc / div);
      acc = acc % div;
    }
  }
  if (acc !== 0) throw new LmError(Reason.padding, `last symbol has ${bits} non-zero padding bits ([LM-PACK-3])`);
  return out;
}

/** Bytes and symbols a group loop did: whole groups, so the rest starts on a byte and a symbol boundary. */
interface Groups {
  bytes: number;
  symbols: number;
}

const badSymbol = (s: number, j: number, w: number): LmError => new LmError(Reason.padding, `symbol ${s} at index ${j} is not below 2^${w} ([LM-PACK-3])`);

/**
 * [LM-PACK-1] for whole groups of bytes at the widths whose symbols and bytes meet every few
 * bytes (8, 16, 24: one symbol; 12: two in 3 bytes; 20: two in 5 bytes), several times faster
 * than bit by bit; other widths go bit by bit from the start.
 */
function packGroups(b: Uint8Array, w: number, out: Uint32Array): Groups {
  const n = b.length;
  let i = 0;
  let j = 0;
  if (w === 24) for (; i + 3 <= n; i += 3) out[j++] = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8) | (b[i + 2] as number);
  else if (w === 16) for (; i + 2 <= n; i += 2) out[j++] = ((b[i] as number) << 8) | (b[i + 1] as number);
  else if (w === 8) for (; i < n; i++) out[j++] = b[i] as number;
  else if (w === 20) {
    for (; i + 5 <= n; i += 5, j += 2) {
      const mid = b[i + 2] as number;
      out[j] = ((b[i] as number) << 12) | ((b[i + 1] as number) << 4) | (mid >>> 4);
      out[j + 1] = ((mid & 0xf) << 16) | ((b[i + 3] as number) << 8) | (b[i + 4] as number);
    }
  } else if (w === 12) {
    for (; i + 3 <= n; i += 3, j += 2) {
      const mid = b[i + 1] as number;
      out[j] = ((b[i] as number) << 4) | (mid >>> 4);
      out[j + 1] = ((mid & 0xf) << 8) | (b[i + 2] as number);
    }
  }
  return { bytes: i, symbols: j };
}

/**
 * The inverse of {@link packGroups} for whole groups that end before the last symbol (which
 * carries the padding, [LM-PACK-3]), each symbol checked to be an integer below 2^w.
 */
function unpackGroups(s: ArrayLike<number>, w: number, out: Uint8Array): Groups {
  const last = s.length - 1; // symbols below it are whole
  const limit = 2 ** w;
  let o = 0;
  let j = 0;
  const check = (x: number, at: number): number => {
    if (x >= limit || x !== x >>> 0) throw badSymbol(x, at, w);
    return x;
  };
  if (w === 24 || w === 16 || w === 8) {
    const k = w / 8;
    for (; j < last; j++) {
      const x = check(s[j] as number, j);
      if (k === 3) {
        out[o++] = x >>> 16;
        out[o++] = x >>> 8;
      } else if (k === 2) out[o++] = x >>> 8;
      out[o++] = x;
    }
  } else if (w === 20) {
    for (; j + 2 <= last; j += 2) {
      const x = check(s[j] as number, j);
      const y = check(s[j + 1] as number, j + 1);
      out[o] = x >>> 12;
      out[o + 1] = x >>> 4;
      out[o + 2] = (x << 4) | (y >>> 16);
      out[o + 3] = y >>> 8;
      out[o + 4] = y;
      o += 5;
    }
  } else if (w === 12) {
    for (; j + 2 <= last; j += 2) {
      const x = check(s[j] as number, j);
      const y = check(s[j + 1] as number, j + 1);
      out[o] = x >>> 4;
      out[o + 1] = (x << 4) | (y >>> 8);
      out[o + 2] = y;
      o += 3;
    }
  }
  return { bytes: o, symbols: j };
}

/**
 * The shifted symbol at position p of a symbol sequence ([LM-DLV-11]), a HINTS frame's own
 * symbols: the low `s` bits of g[p-1] followed by the high `w - s` bits of g[p], where
 * g[-1] = g[m] = 0. A shifted symbol
 * straddles two symbols, so under the same revision key it has a hint of its own: a gateway
 * re-sends an ambiguous symbol j as the shifted symbols at j and j + 1 without waiting for a
 * new revision.
 * @example shiftedSymbol(Uint32Array.of(0xab, 0xcd), 8, 4, 1) // 0xbc
 */
export function shiftedSymbol(symbols: ArrayLike<number>, w: number, s: number, p: number): number {
  checkShift(w, s);
  const m = symbols.length;
  if (!Number.isInteger(p) || p < 0 || p > m) throw new LmError(Reason.padding, `shifted position ${p} outside 0..${m} ([LM-DLV-11])`);
  const prev = p > 0 ? (symbols[p - 1] as number) : 0;
  const cur = p < m ? (symbols[p] as number) : 0;
  return ((prev % 2 ** s) * 2 ** (w - s)) + Math.floor(cur / 2 ** s);
}

/**
 * What a resolved shifted symbol `v` at position p says ([LM-DLV-11]): the low `s` bits of
 * g[p-1] (`prevLow`) and the high `w - s` bits of g[p] (`curHigh`, already in place: its low
 * `s` bits are zero).
 */
export function splitShifted(v: number, w: number, s: number): { prevLow: number; curHigh: number } {
  checkShift(w, s);
  const low = 2 ** (w - s);
  return { prevLow: Math.floor(v / low), curHigh: (v % low) * 2 ** s };
}

function checkShift(w: number, s: number): void {
  checkWidth(w);
  if (!Number.isInteger(s) || s < 1 || s >= w) throw new LmError(Reason.params, `shift ${s} outside 1..${w - 1} ([LM-DLV-11])`);
}
