/**
 * @module receive
 * HINTS back to symbols: revision and schema checks, lookups in the revision table, shifted
 * re-sends ([LM-DLV-11]), NACKs of ambiguous and unknown hints ([LM-HINT-3], [LM-HINT-4]), and
 * the rule that a frame is received only when every symbol of it is known ([LM-DLV-1]).
 */
import { FrameType, type ReasonCode, Reason, type SessionParams, splitShifted, symbolCount } from '@livematrix/spec';
import { AMBIGUOUS } from '@livematrix/spec/engine';
import type { Clock } from './clock.js';
import type { HintsFrame } from './frames.js';
import type { RevisionPolicy } from './revisions.js';

/** The symbols of one chunk as they arrive. */
export interface ChunkState {
  ctlen: number;
  /** symbols in the chunk */
  m: number;
  symbols: Uint32Array;
  /** 1 for each symbol known */
  have: Uint8Array;
  missing: number;
}

/** One HINTS frame (a `seq`) until all its symbols are known. */
export interface FrameState {
  chunk: number;
  off: number;
  n: number;
  /** 1 for each symbol still missing */
  missing: Uint8Array;
  left: number;
  /** bits of missing symbols known from shifted hints ([LM-DLV-11]): rel -> value and mask */
  partial?: Map<number, { v: number; m: number }>;
}

/** A revision's table as the receive phase uses it. */
export interface HintTable {
  /** per hint: the symbol, ABSENT (-1) or AMBIGUOUS (-2) */
  lookupMany(hints: Uint8Array, out: Int32Array): Int32Array;
}

/** Where tables come from: the revision pipeline. */
export interface TableSource {
  table(r: number): HintTable | undefined;
  ready(r: number): Promise<HintTable | undefined>;
}

/** What the receive phase reports to the ACK builder ([LM-DLV-2]). */
export interface ReceiptLedger {
  received(seq: number): void;
  isReceived(seq: number): boolean;
  nack(seq: number, reason: ReasonCode, idx: number[]): void;
  soon(): void;
}

export interface ReceiveContext {
  readonly params: SessionParams;
  readonly clock: Clock;
  readonly revisions: RevisionPolicy;
  readonly tables: TableSource;
  readonly acks: ReceiptLedger;
  /** the next chunk the consumer gets: frames of chunks below it are done */
  nextChunk(): number;
  reject(f: HintsFrame, code: ReasonCode, detail: string): void;
  /** metrics hook: a HINTS frame is fully resolved */
  resolved?(seq: number): void;
}

export interface ReceivePhase {
  /** Takes a HINTS frame; true when its hints were looked up (a chunk may have completed). */
  onHints(f: HintsFrame): Promise<boolean>;
  has(chunk: number): boolean;
  /** the chunk when every symbol of it is known */
  complete(chunk: number): ChunkState | undefined;
  /** zero-fills and forgets a chunk */
  release(chunk: number): void;
  /** zero-fills and forgets everything ([LM-KEY-5]) */
  wipe(): void;
}

/** released chunks whose arrays are kept for the next ones (allocating them is most of a chunk's set-up) */
const SPARE_CHUNKS = 4;

/** Symbol `rel` of a frame is known: `g` ([LM-DLV-1]). */
export function resolveSymbol(fs: FrameState, ch: ChunkState, rel: number, g: number): void {
  const at = fs.off + rel;
  ch.symbols[at] = g;
  if (!ch.have[at]) {
    ch.have[at] = 1;
    ch.missing--;
  }
  fs.missing[rel] = 0;
  fs.left--;
}

/** The receive phase of the spec. Subclasses may replace a step (the conformance suite's broken devices do). */
export class HintReceiver implements ReceivePhase {
  private readonly chunks = new Map<number, ChunkState>();
  private readonly frames = new Map<number, FrameState>();
  /** lookup results of one frame, reused (zero-filled after each) */
  private results = new Int32Array(0);
  /** the zero-filled arrays of released chunks, for the next chunks of the same size */
  private readonly spare: { symbols: Uint32Array; have: Uint8Array }[] = [];

  constructor(protected readonly ctx: ReceiveContext) {}

  async onHints(f: HintsFrame): Promise<boolean> {
    const b = f.body;
    const { acks } = this.ctx;
    const n = this.admit(f);
    if (n === undefined) return false;
    if (b.chunk < this.ctx.nextChunk()) {
      acks.received(b.seq);
      acks.soon();
      return false;
    }
    const ch = this.chunkOf(f);
    const fs = ch && this.frameOf(f, n, ch);
    if (!ch || !fs) return false;
    if (acks.isReceived(b.seq)) {
      acks.soon();
      return false;
    }
    const table = this.ctx.tables.table(b.rev) ?? (await this.ctx.tables.ready(b.rev));
    if (!table) {
      acks.nack(b.seq, Reason.busy, b.idx ?? []); // [LM-REV-4]: no table yet, never "unknown"
      return false;
    }
    this.lookup(f, fs, ch, table, n);
    acks.soon();
    return true;
  }

  has(chunk: number): boolean {
    return this.chunks.has(chunk);
  }

  complete(chunk: number): ChunkState | undefined {
    const ch = this.chunks.get(chunk);
    return ch && ch.missing === 0 ? ch : undefined;
  }

  release(chunk: number): void {
    const ch = this.chunks.get(chunk);
    if (!ch) return;
    ch.symbols.fill(0);
    this.chunks.delete(chunk);
    if (this.spare.length < SPARE_CHUNKS) {
      ch.have.fill(0);
      this.spare.push({ symbols: ch.symbols, have: ch.have });
    }
  }

  wipe(): void {
    for (const ch of this.chunks.values()) ch.symbols.fill(0);
    this.chunks.clear();
    this.frames.clear();
    this.spare.length = 0;
  }

  /** Revision ([LM-REV-2]) and schema checks; the frame's symbol count when it passes. */
  private admit(f: HintsFrame): number | undefined {
    const b = f.body;
    const p = this.ctx.params;
    const rc = this.ctx.revisions.admit(FrameType.HINTS, b.rev, this.ctx.clock(), p); // [LM-REV-2]
    if (rc !== null) {
      this.ctx.reject(f, rc, `HINTS seq ${b.seq} of revision ${b.rev}`);
      this.ctx.acks.nack(b.seq, rc, b.idx ?? []);
      return undefined;
    }
    if (b.hints.length % p.L !== 0) return this.refuse(f, `hints of ${b.hints.length} bytes are not a multiple of L=${p.L}`);
    const n = b.hints.length / p.L;
    if (n > p.symbolsPerFrame + (b.sh ? 1 : 0) || (b.idx && b.idx.length !== n)) return this.refuse(f, 'symbol count');
    if (b.sh !== undefined && b.sh >= p.w) return this.refuse(f, `shift ${b.sh} is not below w=${p.w} ([LM-DLV-11])`);
    return n;
  }

  private refuse(f: HintsFrame, detail: string): undefined {
    this.ctx.reject(f, Reason.schema, detail);
    return undefined;
  }

  private chunkOf(f: HintsFrame): ChunkState | undefined {
    const b = f.body;
    const ch = this.chunks.get(b.chunk);
    if (ch) return ch.ctlen === b.ctlen ? ch : this.refuse(f, `ctlen ${b.ctlen} differs from ${ch.ctlen}`);
    if (b.ctlen < 16 || b.ctlen > this.ctx.params.chunk + 16) return this.refuse(f, `ctlen ${b.ctlen}`);
    const m = symbolCount(b.ctlen, this.ctx.params.w);
    const at = this.spare.findIndex((x) => x.symbols.length === m);
    const { symbols, have } = at >= 0 ? (this.spare.splice(at, 1)[0] as { symbols: Uint32Array; have: Uint8Array }) : { symbols: new Uint32Array(m), have: new Uint8Array(m) };
    const fresh: ChunkState = { ctlen: b.ctlen, m, symbols, have, missing: m };
    this.chunks.set(b.chunk, fresh);
    return fresh;
  }

  private frameOf(f: HintsFrame, n: number, ch: ChunkState): FrameState | undefined {
    const b = f.body;
    const fs = this.frames.get(b.seq);
    if (fs) return fs;
    if (b.idx) {
      this.ctx.acks.nack(b.seq, Reason.unknown, []); // a partial re-send of a frame we never saw: ask for all
      return undefined;
    }
    if (b.off + n > ch.m) return this.refuse(f, 'symbols beyond the chunk');
    const fresh: FrameState = { chunk: b.chunk, off: b.off, n, missing: new Uint8Array(n).fill(1), left: n };
    this.frames.set(b.seq, fresh);
    return fresh;
  }

  private lookup(f: HintsFrame, fs: FrameState, ch: ChunkState, table: HintTable, n: number): void {
    const b = f.body;
    if (this.results.length < n) this.results = new Int32Array(n);
    const res = table.lookupMany(b.hints, this.results.subarray(0, n));
    const amb: number[] = [];
    const unk: number[] = [];
    if (b.sh !== undefined && b.idx) this.resolveShifted(fs, ch, b.idx, b.sh, res, amb, unk);
    else this.resolveDirect(fs, ch, b.idx, res, amb, unk);
    res.fill(0);
    if (amb.length) this.ctx.acks.nack(b.seq, Reason.ambiguous, amb);
    if (unk.length) this.ctx.acks.nack(b.seq, Reason.unknown, unk);
    if (fs.left === 0) {
      this.ctx.resolved?.(b.seq);
      this.ctx.acks.received(b.seq); // [LM-DLV-1]: received once every symbol is known
      this.frames.delete(b.seq);
    }
  }

  private resolveDirect(fs: FrameState, ch: ChunkState, idx: number[] | undefined, res: Int32Array, amb: number[], unk: number[]): void {
    if (!idx) return this.resolveFrame(fs, ch, res, amb, unk);
    for (let i = 0; i < res.length; i++) {
      const rel = idx ? (idx[i] as number) : i;
      if (rel >= fs.n || !fs.missing[rel]) continue; // resolved symbols stay across re-sends ([LM-DLV-1])
      const r = res[i] as number;
      if (r >= 0) resolveSymbol(fs, ch, rel, r);
      else if (r === AMBIGUOUS) this.ambiguous(fs, ch, rel, amb);
      else unk.push(rel); // [LM-HINT-4]
    }
  }

  /**
   * The hints of a whole frame, in order: {@link resolveSymbol} for each symbol found, in one
   * loop with the counts kept aside (most symbols of a stream go this way).
   */
  private resolveFrame(fs: FrameState, ch: ChunkState, res: Int32Array, amb: number[], unk: number[]): void {
    const { symbols, have } = ch;
    const missing = fs.missing;
    const off = fs.off;
    const n = Math.min(res.length, fs.n);
    let found = 0;
    let fresh = 0;
    for (let i = 0; i < n; i++) {
      if (!missing[i]) continue; // resolved symbols stay across re-sends ([LM-DLV-1])
      const r = res[i] as number;
      if (r >= 0) {
        symbols[off + i] = r;
        missing[i] = 0;
        found++;
        if (!have[off + i]) {
          have[off + i] = 1;
          fresh++;
        }
      } else if (r === AMBIGUOUS) this.ambiguous(fs, ch, i, amb);
      else unk.push(i); // [LM-HINT-4]
    }
    fs.left -= found;
    ch.missing -= fresh;
  }

  /** A hint ambiguous in its revision table is NACKed, never guessed ([LM-HINT-3]). */
  protected ambiguous(_fs: FrameState, _ch: ChunkState, rel: number, amb: number[]): void {
    amb.push(rel); // [LM-HINT-3]
  }

  /** The bits a resolved shifted hint gives: the low `sh` of the symbol before, the high `w - sh` of its own ([LM-DLV-11]). */
  protected shiftedBits(r: number, w: number, sh: number): { prevLow: number; curHigh: number } {
    return splitShifted(r, w, sh);
  }

  /**
   * A shifted re-send ([LM-DLV-11]): each resolved hint gives the low `sh` bits of the symbol
   * before its position and the high `w - sh` bits of the symbol at it; a symbol is resolved
   * once all its bits are known. Failed hints NACK the frame's symbols they would have completed.
   */
  private resolveShifted(fs: FrameState, ch: ChunkState, idx: number[], sh: number, res: Int32Array, amb: number[], unk: number[]): void {
    const w = this.ctx.params.w;
    const lowMask = 2 ** sh - 1;
    const highMask = 2 ** w - 1 - lowMask;
    const failed = new Set<number>();
    for (let i = 0; i < idx.length; i++) {
      const j = idx[i] as number;
      if (j > fs.n) continue;
      const r = res[i] as number;
      if (r >= 0) {
        const { prevLow, curHigh } = this.shiftedBits(r, w, sh);
        learnBits(fs, ch, w, j - 1, prevLow, lowMask);
        learnBits(fs, ch, w, j, curHigh, highMask);
        continue;
      }
      for (const rel of [j - 1, j]) {
        if (rel < 0 || rel >= fs.n || !fs.missing[rel] || failed.has(rel)) continue;
        failed.add(rel);
        (r === AMBIGUOUS ? amb : unk).push(rel);
      }
    }
    // a symbol listed as failed may have been completed by another shifted hint of the frame
    const still = (xs: number[]) => xs.filter((rel) => fs.missing[rel]).sort((x, y) => x - y);
    amb.splice(0, amb.length, ...still(amb));
    unk.splice(0, unk.length, ...still(unk));
  }
}

/** Bits `v` under `mask` of missing symbol `rel` are known; all `w` of them resolve it ([LM-DLV-11]). */
function learnBits(fs: FrameState, ch: ChunkState, w: number, rel: number, v: number, mask: number): void {
  if (rel < 0 || rel >= fs.n || !fs.missing[rel]) return; // bits of other symbols are ignored
  const partial = (fs.partial ??= new Map());
  const cur = partial.get(rel) ?? { v: 0, m: 0 };
  cur.v = (cur.v | v) >>> 0;
  cur.m = (cur.m | mask) >>> 0;
  if (cur.m !== 2 ** w - 1) {
    partial.set(rel, cur);
    return;
  }
  partial.delete(rel);
  resolveSymbol(fs, ch, rel, cur.v);
}
