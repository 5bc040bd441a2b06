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
    // fast path: the accumulator holds at most w + 7 <= 31 bits, so 32-bit integer ops are exact
    let a = 0;
    let nb = 0;
    let j = 0;
    const mask = (1 << w) - 1;
    for (let i = 0; i < bytes.length; i++) {
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
    // fast path: at most 7 + w <= 31 bits pending, exact in 32-bit integer ops
    let a = 0;
    let nb = 0;
    let o = 0;
    for (let j = 0; j < m; j++) {
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
