/**
 * @module engine/lookup
 * The fast paths of RevisionTable.lookupMany for 4-byte hints, a chunk of hints at a time: first
 * every hint's bucket and a guess of its place in it (keys are uniform: interpolation), then a
 * load of the guessed cache lines of the whole chunk, independent of each other so that their
 * misses overlap, then the short walks to the exact place, from cache. Plain functions over typed
 * arrays, so that the optimising compiler has seen every path before the loops get hot.
 */
import type { Verifier } from './table.js';

const ABSENT = -1;
const AMBIGUOUS = -2;
/** Hints per chunk. */
export const CHUNK = 256;
// Per-thread scratch (lookups are synchronous: one chunk at a time per thread).
const JS = new Int32Array(CHUNK);
const LOS = new Int32Array(CHUNK);
const HIS = new Int32Array(CHUNK);
const RR = new Int32Array(CHUNK);
const KEYS = new Uint32Array(CHUNK);
const FIRST = new Uint32Array(CHUNK + 1);
let candG = new Uint32Array(4 * CHUNK);
let candK = new Uint32Array(4 * CHUNK);

/**
 * The exact layout (engine/table): resolves hints [base, base + m) of 4 bytes each (m ≤ CHUNK)
 * from the table alone. Returns the xor of the prefetch loads (kept observable by the caller).
 */
export function lookupChunkExact(hints: Uint8Array, out: Int32Array, base: number, m: number, e: Uint8Array, off: Uint32Array, dv: DataView, w: number): number {
  const sh = 40 - w; // key >>> sh: bucket (b = w - 8 bits)
  const remMask = 2 ** (40 - w) - 1; // the key's bits below the bucket, stored in the entry
  const rs = 24 - w; // the remainder's top 16 bits scale the guess
  const shw = w - 8; // an entry's top 32 bits: remainder << shw | g >>> 8
  const gMask = 2 ** shw - 1;
  const last = e.length - 1;
  for (let t = 0; t < m; t++) {
    const p = (base + t) * 4;
    const key = (((hints[p] as number) << 24) | ((hints[p + 1] as number) << 16) | ((hints[p + 2] as number) << 8) | (hints[p + 3] as number)) >>> 0;
    const bk = key >>> sh;
    const lo = off[bk] as number;
    const hi = off[bk + 1] as number;
    const r = (key & remMask) >>> 0;
    JS[t] = lo + (((hi - lo) * (r >>> rs)) >>> 16);
    LOS[t] = lo;
    HIS[t] = hi;
    RR[t] = r;
  }
  // the guessed line and its neighbours (a guess is off by 8 entries, 40 bytes, on average)
  let sink = 0;
  for (let t = 0; t < m; t++) {
    const q = (JS[t] as number) * 5;
    sink ^= (e[q > last ? last : q] as number) ^ (e[q < 40 ? 0 : q - 40] as number) ^ (e[q + 44 > last ? last : q + 44] as number);
  }
  for (let t = 0; t < m; t++) {
    let j = JS[t] as number;
    const lo = LOS[t] as number;
    const hi = HIS[t] as number;
    const r = RR[t] as number;
    // one unaligned 32-bit read compares an entry's remainder; the symbol is read on a match
    while (j > lo && dv.getUint32((j - 1) * 5) >>> shw >= r) j--;
    while (j < hi && dv.getUint32(j * 5) >>> shw < r) j++;
    let found = ABSENT;
    if (j < hi) {
      const top = dv.getUint32(j * 5);
      if (top >>> shw === r) {
        found = (((top & gMask) << 8) | (e[j * 5 + 4] as number)) >>> 0;
        if (j + 1 < hi && dv.getUint32((j + 1) * 5) >>> shw === r) found = AMBIGUOUS; // [LM-HINT-3]
      }
    }
    out[base + t] = found;
  }
  return sink;
}

/**
 * The compact layout (engine/table): finds each hint's candidates (the bucket's entries with the
 * key's stored bits), computes all their keys in one kernel call, and keeps those equal to the
 * hint's. Returns the xor of the prefetch loads.
 */
export function lookupChunkCompact(hints: Uint8Array, out: Int32Array, base: number, m: number, e: Uint32Array, off: Uint32Array, w: number, verifier: Verifier): number {
  const b = w - 6;
  const sh = 32 - b;
  const q = 32 - w;
  const qMask = 2 ** q - 1;
  const gMask = 2 ** w - 1;
  const last = e.length - 1;
  for (let t = 0; t < m; t++) {
    const p = (base + t) * 4;
    const key = (((hints[p] as number) << 24) | ((hints[p + 1] as number) << 16) | ((hints[p + 2] as number) << 8) | (hints[p + 3] as number)) >>> 0;
    const bk = key >>> sh;
    const lo = off[bk] as number;
    const hi = off[bk + 1] as number;
    const s = (key >>> 6) & qMask;
    const f16 = q >= 16 ? s >>> (q - 16) : s << (16 - q);
    JS[t] = lo + (((hi - lo) * f16) >>> 16);
    LOS[t] = lo;
    HIS[t] = hi;
    RR[t] = s;
    KEYS[t] = key;
  }
  let sink = 0;
  for (let t = 0; t < m; t++) {
    const j = JS[t] as number;
    sink ^= (e[j > last ? last : j] as number) ^ (e[j < 8 ? 0 : j - 8] as number) ^ (e[j + 8 > last ? last : j + 8] as number);
  }
  let c = 0;
  for (let t = 0; t < m; t++) {
    let j = JS[t] as number;
    const lo = LOS[t] as number;
    const hi = HIS[t] as number;
    const s = RR[t] as number;
    while (j > lo && (e[j - 1] as number) >>> w >= s) j--;
    while (j < hi && (e[j] as number) >>> w < s) j++;
    FIRST[t] = c;
    for (; j < hi; j++) {
      const v = e[j] as number;
      if (v >>> w !== s) break;
      if (c === candG.length) {
        const g2 = new Uint32Array(c * 2);
        g2.set(candG);
        candG = g2;
        candK = new Uint32Array(c * 2);
      }
      candG[c++] = v & gMask;
    }
  }
  FIRST[m] = c;
  verifier.keys(candG, c, candK);
  for (let t = 0; t < m; t++) {
    const key = KEYS[t] as number;
    let found = ABSENT;
    for (let i = FIRST[t] as number; i < (FIRST[t + 1] as number); i++) {
      if (candK[i] !== key) continue;
      if (found !== ABSENT) {
        found = AMBIGUOUS; // [LM-HINT-3]
        break;
      }
      found = candG[i] as number;
    }
    out[base + t] = found;
  }
  candK.fill(0, 0, c);
  return sink;
}
