/**
 * @module engine/table
 * The compact revision table of [LM-HINT-2]: every candidate's 32-bit hint prefix, sorted,
 * packed as 5 bytes per entry, plus a bucket index of 4 bytes per 256 entries.
 *
 * Entry j (bytes 5j..5j+4, big-endian) holds `rem · 2^w + g`: `g` the symbol (w bits) and `rem`
 * the low 40 − w bits of the key k = the first 4 hint bytes as a big-endian number. The key's
 * top b = w − 8 bits select the bucket; entries are sorted by key, so a bucket is a sorted run
 * and the table as a whole is sorted. Hints of L ≤ 4 bytes are decided by the table alone;
 * longer hints are confirmed by recomputing the candidates' digests.
 */
import { LmError, Reason } from '../errors.js';
import type { SuiteId } from '../params.js';

export const ENTRY_BYTES = 5;
export const ABSENT = -1;
export const AMBIGUOUS = -2;

export interface TableLayout {
  w: number;
  /** bucket bits */
  b: number;
  buckets: number;
  entries: number;
}

export function tableLayout(w: number): TableLayout {
  if (!Number.isInteger(w) || w < 8 || w > 24) throw new LmError(Reason.params, `table width w=${w} outside 8..24 ([LM-PARAM-2])`);
  const b = w - 8;
  return { w, b, buckets: 2 ** b, entries: 2 ** w };
}

/** Bytes of memory a table of width w takes (entries + bucket index). */
export function tableBytes(w: number): number {
  const l = tableLayout(w);
  return l.entries * ENTRY_BYTES + (l.buckets + 1) * 4;
}

/** Shared memory of one table; transferable to workers as plain SharedArrayBuffers. */
export interface TableMemory {
  w: number;
  entries: SharedArrayBuffer;
  offsets: SharedArrayBuffer;
}

export function allocTable(w: number): TableMemory {
  const l = tableLayout(w);
  return { w, entries: new SharedArrayBuffer(l.entries * ENTRY_BYTES), offsets: new SharedArrayBuffer((l.buckets + 1) * 4) };
}

/** Bucket of a key (top b bits). */
export function bucketOf(key: number, b: number): number {
  return b === 0 ? 0 : key >>> (32 - b);
}

/** Digest function for confirming hints longer than 4 bytes. */
export type DigestFn = (g: number) => Uint8Array;

/**
 * Read side of a built table. Lookup results: a symbol (≥ 0), {@link AMBIGUOUS} or {@link ABSENT},
 * with exactly the semantics of [LM-HINT-2].
 */
export class RevisionTable {
  readonly layout: TableLayout;
  private readonly e: Uint8Array;
  private readonly off: Uint32Array;
  private readonly remBits: number;
  private readonly pow: number;
  /** keeps the prefetch loads of lookupMany observable */
  sink = 0;
  constructor(readonly mem: TableMemory, readonly suite: SuiteId, readonly L: number, private readonly digest?: DigestFn) {
    this.layout = tableLayout(mem.w);
    this.e = new Uint8Array(mem.entries);
    this.off = new Uint32Array(mem.offsets);
    this.remBits = 40 - mem.w;
    this.pow = 2 ** mem.w;
    this.dv = new DataView(mem.entries);
  }
  private readonly dv: DataView;

  private entry(j: number): number {
    const e = this.e;
    const p = j * 5;
    return (e[p] as number) * 0x100000000 + ((((e[p + 1] as number) << 24) | ((e[p + 2] as number) << 16) | ((e[p + 3] as number) << 8) | (e[p + 4] as number)) >>> 0);
  }

  /** Resolves one hint of this table's L bytes. */
  lookup(h: Uint8Array, at = 0): number {
    const L = this.L;
    const Lc = L < 4 ? L : 4;
    let k = 0;
    for (let i = 0; i < Lc; i++) k = (k << 8) | (h[at + i] as number);
    k = (k << (8 * (4 - Lc))) >>> 0;
    if (Lc === 4) return this.lookupKey(k, 0xffffffff, h, at);
    const low = 2 ** (32 - 8 * Lc) - 1; // bits of the key the hint does not fix
    return this.lookupKey(k, (0xffffffff - low) >>> 0, h, at);
  }

  private lookupKey(k: number, mask: number, h: Uint8Array, at: number): number {
    const { b } = this.layout;
    const loKey = (k & mask) >>> 0;
    const hiKey = (loKey | ~mask) >>> 0;
    const bLo = bucketOf(loKey, b);
    const bHi = bucketOf(hiKey, b);
    const remMask = this.remBits >= 32 ? 0xffffffff : 2 ** this.remBits - 1;
    let found = ABSENT;
    let count = 0;
    for (let bk = bLo; bk <= bHi; bk++) {
      let lo = this.off[bk] as number;
      let hi = this.off[bk + 1] as number;
      const remLo = bk === bLo ? (loKey & remMask) >>> 0 : 0;
      const remHi = bk === bHi ? (hiKey & remMask) >>> 0 : remMask;
      // lower bound of remLo in [lo, hi)
      const vLo = remLo * this.pow;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.entry(mid) < vLo) lo = mid + 1;
        else hi = mid;
      }
      const end = this.off[bk + 1] as number;
      const vHi = (remHi + 1) * this.pow; // exclusive
      for (let j = lo; j < end; j++) {
        const v = this.entry(j);
        if (v >= vHi) break;
        const g = v % this.pow;
        if (this.L > 4 && !this.confirms(g, h, at)) continue;
        count++;
        if (count > 1) return AMBIGUOUS; // [LM-HINT-3]
        found = g;
      }
    }
    return found;
  }

  private confirms(g: number, h: Uint8Array, at: number): boolean {
    if (!this.digest) throw new LmError(Reason.internal, `hints of L=${this.L} > 4 need a digest function to confirm candidates`);
    const d = this.digest(g);
    for (let i = 4; i < this.L; i++) if (d[i] !== h[at + i]) return false;
    return true;
  }

  /**
   * Resolves n concatenated hints into out (symbols, AMBIGUOUS or ABSENT). The fast path, for
   * L = 4 (every w from 17 to 24 at the minimum L): interpolation search in the bucket (keys are
   * uniform), then a short linear walk.
   */
  lookupMany(hints: Uint8Array, out: Int32Array): Int32Array {
    const L = this.L;
    const n = Math.floor(hints.length / L);
    if (L !== 4 || this.layout.b === 0) {
      for (let i = 0; i < n; i++) out[i] = this.lookup(hints, i * L);
      return out;
    }
    const e = this.e;
    const off = this.off;
    const sh = 32 - this.layout.b;
    const remBits = this.remBits; // 40 - w, 16..32
    const remMask = remBits >= 32 ? 0xffffffff : 2 ** remBits - 1;
    const remScale = 2 ** remBits;
    const dv = this.dv;
    const shw = this.layout.w - 8;
    const gMask = 2 ** shw - 1;
    // Blocks of B hints: first touch every bucket bound and guessed entry (independent loads,
    // so the cache misses overlap), then resolve them from cache.
    const B = 32;
    const los = new Uint32Array(B);
    const his = new Uint32Array(B);
    const rems = new Float64Array(B);
    const js = new Uint32Array(B);
    let sink = 0;
    for (let base = 0; base < n; base += B) {
      const m = Math.min(B, n - base);
      for (let t = 0; t < m; t++) {
        const p = (base + t) * 4;
        const k = (((hints[p] as number) << 24) | ((hints[p + 1] as number) << 16) | ((hints[p + 2] as number) << 8) | (hints[p + 3] as number)) >>> 0;
        const bk = k >>> sh;
        los[t] = bk;
        rems[t] = (k & remMask) >>> 0;
        sink ^= off[bk] as number;
      }
      for (let t = 0; t < m; t++) {
        const bk = los[t] as number;
        const lo = off[bk] as number;
        const hi = off[bk + 1] as number;
        let j = lo + Math.floor(((hi - lo) * (rems[t] as number)) / remScale);
        if (j >= hi) j = hi > lo ? hi - 1 : lo;
        los[t] = lo;
        his[t] = hi;
        js[t] = j;
        sink ^= e[j * 5] as number;
      }
      for (let t = 0; t < m; t++) {
        const lo = los[t] as number;
        const hi = his[t] as number;
        const r = rems[t] as number;
        // an entry's top 32 bits are its key remainder (40 - w bits) and the symbol's high w - 8
        // bits: one unaligned 32-bit read compares the key, the symbol is read only on a match
        let j = js[t] as number;
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
    }
    this.sink = sink;
    return out;
  }

  /** Overwrites the table with zeros ([LM-REV-3]). */
  wipe(): void {
    this.e.fill(0);
    this.off.fill(0);
  }
}

// ---- build phases (run in workers over shared memory) ----------------------------------------

/** Phase 1 tail: histogram of keys[start, end) by bucket, added into hist. */
export function histogram(keys: Uint32Array, start: number, end: number, b: number, hist: Uint32Array): void {
  if (b === 0) {
    hist[0] = (hist[0] as number) + (end - start);
    return;
  }
  const sh = 32 - b;
  for (let g = start; g < end; g++) {
    const bk = (keys[g] as number) >>> sh;
    hist[bk] = (hist[bk] as number) + 1;
  }
}

/** Bits of the fine buckets the build sorts by (16 entries each on average). */
export function fineBits(w: number): number {
  return w - 4;
}

/**
 * Phase 2: writes entries of candidates [start, end) at the cursors of their fine bucket (the
 * top `fine` key bits; advanced in place).
 */
export function scatter(keys: Uint32Array, start: number, end: number, w: number, cursor: Uint32Array, entries: Uint8Array, fine = fineBits(w)): void {
  const sh = 32 - fine;
  const remBits = 40 - w;
  if (w >= 8 && fine > 0) {
    // integer path: the entry's top 32 bits are rem << (w - 8) | g >>> 8, its last byte g & 0xff
    const dv = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
    const s = w - 8;
    const remMask32 = remBits >= 32 ? 0xffffffff : (1 << remBits) - 1;
    for (let g = start; g < end; g++) {
      const k = keys[g] as number;
      const bk = k >>> sh;
      const pos = cursor[bk] as number;
      cursor[bk] = pos + 1;
      const p = pos * 5;
      dv.setUint32(p, ((((k & remMask32) >>> 0) << s) | (g >>> 8)) >>> 0);
      entries[p + 4] = g & 0xff;
    }
    return;
  }
  const remMask = remBits >= 32 ? 0xffffffff : 2 ** remBits - 1;
  const pow = 2 ** w;
  for (let g = start; g < end; g++) {
    const k = keys[g] as number;
    const bk = fine === 0 ? 0 : k >>> sh;
    const pos = cursor[bk] as number;
    cursor[bk] = pos + 1;
    const v = ((k & remMask) >>> 0) * pow + g;
    const p = pos * 5;
    const hi = Math.floor(v / 0x100000000);
    const lo = v >>> 0;
    entries[p] = hi;
    entries[p + 1] = lo >>> 24;
    entries[p + 2] = (lo >>> 16) & 0xff;
    entries[p + 3] = (lo >>> 8) & 0xff;
    entries[p + 4] = lo & 0xff;
  }
}

/**
 * Phase 3: sorts each run [offsets[i], offsets[i + 1]) for i in [bStart, bEnd) by entry value:
 * insertion sort for the short runs of fine buckets, a typed-array sort for long ones.
 */
export function sortBuckets(entries: Uint8Array, offsets: Uint32Array, bStart: number, bEnd: number): void {
  // Entries compare as (top 32 bits, last byte): integer compares, no 40-bit floats. The order
  // is exactly that of the 40-bit values.
  const dv = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
  let his = new Uint32Array(64);
  let los = new Uint8Array(64);
  for (let bk = bStart; bk < bEnd; bk++) {
    const lo = offsets[bk] as number;
    const hi = offsets[bk + 1] as number;
    const n = hi - lo;
    if (n < 2 || n > 48) continue;
    if (his.length < n) {
      his = new Uint32Array(n * 2);
      los = new Uint8Array(n * 2);
    }
    let sorted = true;
    for (let j = 0; j < n; j++) {
      const p = (lo + j) * 5;
      const h = dv.getUint32(p);
      const l = entries[p + 4] as number;
      let i = j - 1;
      if (i >= 0 && ((his[i] as number) > h || ((his[i] as number) === h && (los[i] as number) > l))) sorted = false;
      while (i >= 0 && ((his[i] as number) > h || ((his[i] as number) === h && (los[i] as number) > l))) {
        his[i + 1] = his[i] as number;
        los[i + 1] = los[i] as number;
        i--;
      }
      his[i + 1] = h;
      los[i + 1] = l;
    }
    if (sorted) continue;
    for (let j = 0; j < n; j++) {
      const p = (lo + j) * 5;
      dv.setUint32(p, his[j] as number);
      entries[p + 4] = los[j] as number;
    }
  }
  his.fill(0);
  los.fill(0);
  sortLongBuckets(entries, offsets, bStart, bEnd);
}

/** Runs longer than 48 entries (rare with 16 per fine bucket on average): a typed-array sort. */
function sortLongBuckets(entries: Uint8Array, offsets: Uint32Array, bStart: number, bEnd: number): void {
  let tmp = new Float64Array(256);
  for (let bk = bStart; bk < bEnd; bk++) {
    const lo = offsets[bk] as number;
    const hi = offsets[bk + 1] as number;
    const n = hi - lo;
    if (n <= 48) continue;
    if (tmp.length < n) tmp = new Float64Array(n * 2);
    for (let j = 0; j < n; j++) {
      const p = (lo + j) * 5;
      tmp[j] = (entries[p] as number) * 0x100000000 + ((((entries[p + 1] as number) << 24) | ((entries[p + 2] as number) << 16) | ((entries[p + 3] as number) << 8) | (entries[p + 4] as number)) >>> 0);
    }
    if (n <= 48) {
      for (let i = 1; i < n; i++) {
        const v = tmp[i] as number;
        let j = i - 1;
        while (j >= 0 && (tmp[j] as number) > v) {
          tmp[j + 1] = tmp[j] as number;
          j--;
        }
        tmp[j + 1] = v;
      }
    } else tmp.subarray(0, n).sort();
    for (let j = 0; j < n; j++) {
      const v = tmp[j] as number;
      const p = (lo + j) * 5;
      const lo32 = v >>> 0;
      entries[p] = Math.floor(v / 0x100000000);
      entries[p + 1] = lo32 >>> 24;
      entries[p + 2] = (lo32 >>> 16) & 0xff;
      entries[p + 3] = (lo32 >>> 8) & 0xff;
      entries[p + 4] = lo32 & 0xff;
    }
  }
  tmp.fill(0);
}
