/**
 * @module engine/table
 * The revision table of [LM-HINT-2]: every candidate sorted by its key (the first 4 hint bytes
 * as a big-endian number), in buckets by the key's top bits, in one of two layouts.
 *
 * Exact (w < 24): entry j (bytes 5j..5j+4, big-endian) holds `rem · 2^w + g`, `g` the symbol and
 * `rem` the key's low 40 − w bits; the top b = w − 8 bits select the bucket (4 bytes of index
 * per 256 entries). The table alone decides hints of L ≤ 4 bytes.
 *
 * Compact (w = 24, where two exact tables take 160 MiB): entry j is a 32-bit word `s · 2^w + g`,
 * `s` the key's bits 6 to 31 − b (32 − w bits) below the top b = w − 6 bits that select the
 * bucket (4 bytes of index per 64 entries): 4.06 bytes per entry, 65 MiB at w = 24. The table
 * knows 26 of a key's 32 bits, so every candidate it finds (the symbol, and 2^(w−26) others per
 * lookup on average) is confirmed by recomputing its key in the kernel, a batch per call.
 *
 * Longer hints (L > 4) are confirmed on the full digest in both layouts.
 */
import { LmError, Reason } from '../errors.js';
import type { SuiteId } from '../params.js';
import { lookupChunkCompact, lookupChunkExact, CHUNK } from './lookup.js';

/** Bytes per entry of the exact layout. */
export const ENTRY_BYTES = 5;
export const ABSENT = -1;
export const AMBIGUOUS = -2;
/** Tables of this width and wider are compact unless the caller says otherwise. */
export const COMPACT_FROM = 24;
/** Key bits a compact table knows (bucket and stored bits). */
export const COMPACT_KNOWN = 26;

export interface TableLayout {
  w: number;
  /** bucket bits */
  b: number;
  buckets: number;
  entries: number;
  compact: boolean;
  entryBytes: number;
  /** key bits stored in an entry below the bucket's */
  q: number;
}

export function tableLayout(w: number, compact = false): TableLayout {
  if (!Number.isInteger(w) || w < 8 || w > 24) throw new LmError(Reason.params, `table width w=${w} outside 8..24 ([LM-PARAM-2])`);
  if (compact && w < 14) throw new LmError(Reason.params, `a compact table needs w >= 14, got w=${w}`);
  const b = compact ? w - 6 : w - 8;
  return { w, b, buckets: 2 ** b, entries: 2 ** w, compact, entryBytes: compact ? 4 : ENTRY_BYTES, q: compact ? 32 - w : 40 - w };
}

/** Bytes of memory a table of width w takes (entries + bucket index). */
export function tableBytes(w: number, compact = w >= COMPACT_FROM): number {
  const l = tableLayout(w, compact);
  return l.entries * l.entryBytes + (l.buckets + 1) * 4;
}

/** Shared memory of one table; transferable to workers as plain SharedArrayBuffers. */
export interface TableMemory {
  w: number;
  entries: SharedArrayBuffer;
  offsets: SharedArrayBuffer;
  /** the compact layout (absent: exact) */
  compact?: boolean;
}

/** Memory for a table of width w (compact from w = {@link COMPACT_FROM} on, unless told). */
export function allocTable(w: number, compact = w >= COMPACT_FROM): TableMemory {
  const l = tableLayout(w, compact);
  return { w, entries: new SharedArrayBuffer(l.entries * l.entryBytes), offsets: new SharedArrayBuffer((l.buckets + 1) * 4), compact };
}

/** Bucket of a key (top b bits). */
export function bucketOf(key: number, b: number): number {
  return b === 0 ? 0 : key >>> (32 - b);
}

/** Digest function for confirming hints longer than 4 bytes. */
export type DigestFn = (g: number) => Uint8Array;

/** The revision's hint function on this thread, for confirming candidates. */
export interface Verifier {
  /** D(HK, w, g) ([LM-HINT-1]) */
  digest: DigestFn;
  /** keys of symbols[0, n) (first 4 digest bytes, big-endian) into out */
  keys(symbols: Uint32Array, n: number, out: Uint32Array): void;
  /** a copy of the hint key, for lookups in other threads (the caller erases it) */
  key(): Uint8Array;
  /** erases the hint key it holds ([LM-REV-3]) */
  wipe(): void;
}

/**
 * Read side of a built table. Lookup results: a symbol (≥ 0), {@link AMBIGUOUS} or {@link ABSENT},
 * with exactly the semantics of [LM-HINT-2].
 */
export class RevisionTable {
  readonly layout: TableLayout;
  private readonly e: Uint8Array;
  private readonly e32: Uint32Array;
  private readonly off: Uint32Array;
  private readonly dv: DataView;
  private readonly digest: DigestFn | undefined;
  /** keeps the prefetch loads of lookupMany observable */
  sink = 0;
  /**
   * `digest` confirms hints longer than 4 bytes; a compact table needs `verifier` (which also
   * gives the digest) for every lookup.
   */
  constructor(readonly mem: TableMemory, readonly suite: SuiteId, readonly L: number, digest?: DigestFn, private readonly verifier?: Verifier) {
    this.layout = tableLayout(mem.w, mem.compact === true);
    if (this.layout.compact && (L < 4 || !verifier)) throw new LmError(Reason.internal, `a compact table needs L >= 4 (got ${L}) and a verifier`);
    this.e = new Uint8Array(mem.entries);
    this.e32 = new Uint32Array(mem.entries, 0, this.layout.compact ? this.layout.entries : 0);
    this.off = new Uint32Array(mem.offsets);
    this.dv = new DataView(mem.entries);
    this.digest = digest ?? verifier?.digest;
  }

  /** 40-bit value of exact entry j: rem · 2^w + g. */
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
    if (this.layout.compact) return this.lookupCompact(k, h, at);
    if (Lc === 4) return this.lookupKey(k, 0xffffffff, h, at);
    const low = 2 ** (32 - 8 * Lc) - 1; // bits of the key the hint does not fix
    return this.lookupKey(k, (0xffffffff - low) >>> 0, h, at);
  }

  private lookupKey(k: number, mask: number, h: Uint8Array, at: number): number {
    const { b, q, w } = this.layout;
    const pow = 2 ** w;
    const loKey = (k & mask) >>> 0;
    const hiKey = (loKey | ~mask) >>> 0;
    const bLo = bucketOf(loKey, b);
    const bHi = bucketOf(hiKey, b);
    const remMask = q >= 32 ? 0xffffffff : 2 ** q - 1;
    let found = ABSENT;
    let count = 0;
    for (let bk = bLo; bk <= bHi; bk++) {
      let lo = this.off[bk] as number;
      let hi = this.off[bk + 1] as number;
      const remLo = bk === bLo ? (loKey & remMask) >>> 0 : 0;
      const remHi = bk === bHi ? (hiKey & remMask) >>> 0 : remMask;
      // lower bound of remLo in [lo, hi)
      const vLo = remLo * pow;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.entry(mid) < vLo) lo = mid + 1;
        else hi = mid;
      }
      const end = this.off[bk + 1] as number;
      const vHi = (remHi + 1) * pow; // exclusive
      for (let j = lo; j < end; j++) {
        const v = this.entry(j);
        if (v >= vHi) break;
        const g = v % pow;
        if (this.L > 4 && !this.confirms(g, h, at, 4)) continue;
        count++;
        if (count > 1) return AMBIGUOUS; // [LM-HINT-3]
        found = g;
      }
    }
    return found;
  }

  /** A compact table's candidates for key k are the bucket's entries with the key's stored bits; each is confirmed. */
  private lookupCompact(k: number, h: Uint8Array, at: number): number {
    const { b, q, w } = this.layout;
    const bk = k >>> (32 - b);
    const s = (k >>> 6) & (2 ** q - 1);
    const gMask = 2 ** w - 1;
    let found = ABSENT;
    let count = 0;
    for (let j = this.off[bk] as number; j < (this.off[bk + 1] as number); j++) {
      const v = this.e32[j] as number;
      if (v >>> w !== s) continue;
      const g = v & gMask;
      if (!this.confirms(g, h, at, 0)) continue;
      count++;
      if (count > 1) return AMBIGUOUS; // [LM-HINT-3]
      found = g;
    }
    return found;
  }

  /** Whether g's hint equals h from byte `from` on. */
  private confirms(g: number, h: Uint8Array, at: number, from: number): boolean {
    if (!this.digest) throw new LmError(Reason.internal, `hints of L=${this.L} > 4 need a digest function to confirm candidates`);
    const d = this.digest(g);
    for (let i = from; i < this.L; i++) if (d[i] !== h[at + i]) return false;
    return true;
  }

  /**
   * Resolves n concatenated hints into out (symbols, AMBIGUOUS or ABSENT). The fast paths, for
   * L = 4 (every w from 17 to 24 at the minimum L), work in chunks of hints (engine/lookup).
   */
  lookupMany(hints: Uint8Array, out: Int32Array): Int32Array {
    const L = this.L;
    const n = Math.floor(hints.length / L);
    if (L !== 4 || this.layout.b === 0) {
      for (let i = 0; i < n; i++) out[i] = this.lookup(hints, i * L);
      return out;
    }
    let sink = 0;
    const w = this.layout.w;
    if (this.layout.compact) {
      const v = this.verifier as Verifier;
      for (let base = 0; base < n; base += CHUNK) sink ^= lookupChunkCompact(hints, out, base, Math.min(CHUNK, n - base), this.e32, this.off, w, v);
    } else for (let base = 0; base < n; base += CHUNK) sink ^= lookupChunkExact(hints, out, base, Math.min(CHUNK, n - base), this.e, this.off, this.dv, w);
    this.sink = sink;
    return out;
  }

  /** Overwrites the table, and the key its verifier holds, with zeros ([LM-REV-3]). */
  wipe(): void {
    this.e.fill(0);
    this.off.fill(0);
    this.verifier?.wipe();
  }
}
