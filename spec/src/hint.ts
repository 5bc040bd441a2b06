/**
 * @module hint
 * The hint function of SPEC.md §5.1 for the three suites, and revision tables with the
 * ambiguity semantics of [LM-HINT-2]. This is the reference: simple and per-hash. The batched
 * engine must produce the same bytes.
 */
import { blake3 } from '@noble/hashes/blake3.js';
import { keccak_256, sha3_256 } from '@noble/hashes/sha3.js';
import { LmError, Reason } from './errors.js';
import type { SuiteId } from './params.js';

/** Input bytes of the hash for keccak-256 and sha3-256: HK ‖ u32be(w) ‖ u32be(g). */
export function hintInput(hk: Uint8Array, w: number, g: number): Uint8Array {
  const m = new Uint8Array(40);
  m.set(hk, 0);
  const dv = new DataView(m.buffer);
  dv.setUint32(32, w);
  dv.setUint32(36, g >>> 0);
  return m;
}

/** Message bytes for keyed blake3: u32be(w) ‖ u32be(g). */
export function blake3Message(w: number, g: number): Uint8Array {
  const m = new Uint8Array(8);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, g >>> 0);
  return m;
}

function checkArgs(hk: Uint8Array, w: number, g: number): void {
  if (!(hk instanceof Uint8Array) || hk.length !== 32) throw new LmError(Reason.schema, `"hint key" expected Uint8Array of length 32, got length=${(hk as Uint8Array | undefined)?.length}`);
  if (!Number.isInteger(w) || w < 1 || w > 32) throw new LmError(Reason.params, `w=${w} out of range`);
  if (!Number.isInteger(g) || g < 0 || g >= 2 ** w) throw new LmError(Reason.padding, `symbol ${g} is not below 2^${w} ([LM-HINT-6])`);
}

/** Full 32-byte digest D(HK, w, g) of SPEC.md §5.1. */
export function hintDigest(suite: SuiteId, hk: Uint8Array, w: number, g: number): Uint8Array {
  checkArgs(hk, w, g);
  switch (suite) {
    case 1:
      return keccak_256(hintInput(hk, w, g));
    case 2:
      return sha3_256(hintInput(hk, w, g));
    case 3:
      return blake3(blake3Message(w, g), { key: hk });
    default:
      throw new LmError(Reason.params, `unknown suite ${String(suite)}`);
  }
}

/** The hint: first L bytes of the digest ([LM-HINT-1]). */
export function hint(suite: SuiteId, hk: Uint8Array, w: number, L: number, g: number): Uint8Array {
  if (!Number.isInteger(L) || L < 1 || L > 32) throw new LmError(Reason.params, `L=${L} out of range 1..32`);
  return hintDigest(suite, hk, w, g).subarray(0, L);
}

/** Hints of many symbols, concatenated (n·L bytes), as a HINTS frame carries them. */
export function hintSymbols(suite: SuiteId, hk: Uint8Array, w: number, L: number, symbols: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(symbols.length * L);
  for (let i = 0; i < symbols.length; i++) out.set(hint(suite, hk, w, L, symbols[i] as number), i * L);
  return out;
}

/** Result of a lookup ([LM-HINT-2]). */
export type Lookup = { kind: 'symbol'; symbol: number } | { kind: 'ambiguous' } | { kind: 'absent' };

const AMBIGUOUS = -1;

/**
 * A revision table built by hashing all 2^w candidates: the reference form, a `Map` from the
 * hint (as a hex or numeric key) to a symbol or AMBIGUOUS. Memory-hungry; for tests, vectors
 * and small w. The engine has the compact form.
 */
export class ReferenceTable {
  private readonly map = new Map<string, number>();
  constructor(readonly suite: SuiteId, hk: Uint8Array, readonly w: number, readonly L: number) {
    if (w > 20) throw new LmError(Reason.params, `reference tables are limited to w <= 20, got ${w}`);
    const n = 2 ** w;
    for (let g = 0; g < n; g++) {
      const key = hexOf(hint(suite, hk, w, L, g));
      const prev = this.map.get(key);
      this.map.set(key, prev === undefined ? g : AMBIGUOUS);
    }
  }
  lookup(h: Uint8Array): Lookup {
    if (h.length !== this.L) return { kind: 'absent' };
    const v = this.map.get(hexOf(h));
    if (v === undefined) return { kind: 'absent' };
    if (v === AMBIGUOUS) return { kind: 'ambiguous' };
    return { kind: 'symbol', symbol: v };
  }
  /** Number of distinct hint values that are ambiguous. */
  ambiguousCount(): number {
    let n = 0;
    for (const v of this.map.values()) if (v === AMBIGUOUS) n++;
    return n;
  }
}

/**
 * Scan mode ([LM-HINT-5]): resolves a batch of hints by hashing every candidate once, with
 * memory proportional to the batch. Same results as a table lookup.
 */
export function scanResolve(suite: SuiteId, hk: Uint8Array, w: number, L: number, hints: readonly Uint8Array[]): Lookup[] {
  const want = new Map<string, number[]>();
  hints.forEach((h, i) => {
    const k = hexOf(h);
    const list = want.get(k);
    if (list) list.push(i);
    else want.set(k, [i]);
  });
  const found = new Map<string, number>();
  const n = 2 ** w;
  for (let g = 0; g < n; g++) {
    const k = hexOf(hint(suite, hk, w, L, g));
    if (!want.has(k)) continue;
    const prev = found.get(k);
    found.set(k, prev === undefined ? g : AMBIGUOUS);
  }
  return hints.map((h) => {
    if (h.length !== L) return { kind: 'absent' };
    const v = found.get(hexOf(h));
    if (v === undefined) return { kind: 'absent' };
    if (v === AMBIGUOUS) return { kind: 'ambiguous' };
    return { kind: 'symbol', symbol: v };
  });
}

export function hexOf(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i] as number).toString(16).padStart(2, '0');
  return s;
}
