/**
 * @module engine/build
 * Builds a revision table ([LM-HINT-2]) in its own memory, without a key scratch: a radix
 * partition by the key's top 8 bits while hashing, then a sort of each of the 256 groups in cache.
 *
 * Phase 1 (`partition`, one worker per range of candidates): the kernel hashes a block of
 * candidates at a time; each key goes to its group's region as a record of what the table keeps
 * of it below the group, and of g's low bits (the block gives the others: `marks` keeps each
 * region's cursor at the start of every block). Records are as long as the table's entries (5
 * bytes exact, 4 compact), so the regions fill the table's own entries buffer and, for the slack
 * every region keeps for the spread of its count, a small scratch (about 4 % of the table). Each
 * worker has its own part of every region: nothing is shared while hashing.
 *
 * Phase 2 (`finish`, workers take groups in increasing order): a group's records are read into
 * worker memory, sorted by key (a counting sort on the top bits, then an insertion pass), and
 * written as final entries at the group's place in the table, which lies at or before the
 * group's own region: a worker waits until every region its writes cover has been read.
 */
import type { SuiteId } from '../params.js';
import type { Kernel } from './kernel.js';
import { tableLayout } from './table.js';

/** Groups of the partition: the key's top 8 bits. */
export const GROUPS = 256;
/** Candidates hashed per kernel call and per block of the exact layout: g's bits above the block's are implied. */
export const BLOCK = 65536;
/**
 * Records of the partition. Exact layout: 5 bytes, `key & 0xffffff ‖ g & 0xffff`, blocks of 2^16.
 * Compact layout: 4 bytes, the key's bits 6 to 23 (all the table keeps below the group) and
 * `g & 0x3fff`, blocks of 2^14, so that the records fit the compact table's 4 bytes per entry.
 */
function format(compact: boolean): { rec: number; blockBits: number; keyBits: number } {
  return compact ? { rec: 4, blockBits: 14, keyBits: 18 } : { rec: 5, blockBits: 16, keyBits: 24 };
}

/** Geometry of one build, computed by the engine and shared by every worker. */
export interface BuildPlan {
  w: number;
  compact: boolean;
  /** bytes per record */
  rec: number;
  /** candidates per block: 2^14 or 2^16 */
  block: number;
  /** key bits a record keeps below the group */
  keyBits: number;
  /** candidates of each worker */
  ranges: [number, number][];
  /** records per (group, worker) region */
  cap: number;
  /** bytes of one group's region (all workers' parts) */
  regionBytes: number;
  /** groups whose region lies in the entries buffer; the others are in the scratch */
  inEntries: number;
  /** scratch bytes the regions need beyond the entries buffer */
  scratchBytes: number;
  /** u32 marks per worker: (blocks + 1) · GROUPS */
  marksPerWorker: number;
}

/** Number of blocks of `block` candidates that [s, e) touches. */
export function blocksOf(s: number, e: number, block: number): number {
  return e > s ? Math.floor((e - 1) / block) - Math.floor(s / block) + 1 : 0;
}

/**
 * The plan of a build of width w over `ranges`. `slack` is the headroom of each region in
 * standard deviations of its count (keys are uniform: a region's count is binomial).
 */
export function planBuild(w: number, ranges: [number, number][], slack: number, compact = false): BuildPlan {
  const { entries, entryBytes } = tableLayout(w, compact);
  const { rec, blockBits, keyBits } = format(compact);
  const block = 2 ** blockBits;
  const longest = Math.max(...ranges.map(([s, e]) => e - s));
  const mean = longest / GROUPS;
  const cap = Math.ceil(mean + slack * Math.sqrt(mean) + 16);
  const regionBytes = ranges.length * cap * rec;
  const inEntries = Math.min(GROUPS, Math.floor((entries * entryBytes) / regionBytes));
  const blocks = Math.max(...ranges.map(([s, e]) => blocksOf(s, e, block)));
  return { w, compact, rec, block, keyBits, ranges, cap, regionBytes, inEntries, scratchBytes: (GROUPS - inEntries) * regionBytes, marksPerWorker: (blocks + 1) * GROUPS };
}

/** Splits [0, n) into k ranges: on 2^16 boundaries when each gets at least one block, else multiples of 8. */
export function splitCandidates(n: number, k: number): [number, number][] {
  const unit = n >= k * BLOCK ? BLOCK : 8;
  const step = Math.ceil(n / k / unit) * unit;
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += step) out.push([s, Math.min(n, s + step)]);
  return out;
}

/** Where group G's region starts: [view, byte offset]. */
function region(plan: BuildPlan, G: number, entries: DataView, scratch: DataView): [DataView, number] {
  return G < plan.inEntries ? [entries, G * plan.regionBytes] : [scratch, (G - plan.inEntries) * plan.regionBytes];
}

/**
 * Phase 1 for worker `wi`: hashes its range and appends every key to its group's region. Returns
 * false when a region overflows (the engine then retries with more slack).
 */
export function partition(kernel: Kernel, suite: SuiteId, plan: BuildPlan, wi: number, entries: SharedArrayBuffer, scratch: SharedArrayBuffer, marks: Uint32Array, keys: Uint32Array): boolean {
  const [s, e] = plan.ranges[wi] as [number, number];
  const { block, rec, cap } = plan;
  const dvE = new DataView(entries);
  const dvS = new DataView(scratch);
  const views: DataView[] = [];
  const bases = new Float64Array(GROUPS);
  for (let G = 0; G < GROUPS; G++) {
    const [v, b] = region(plan, G, dvE, dvS);
    views.push(v);
    bases[G] = b + wi * cap * rec;
  }
  const cur = new Uint32Array(GROUPS);
  const first = Math.floor(s / block);
  const nb = blocksOf(s, e, block);
  let ok = true;
  for (let j = 0; j < nb && ok; j++) {
    marks.set(cur, j * GROUPS);
    const gs = Math.max(s, (first + j) * block);
    const n = Math.min(e, (first + j + 1) * block) - gs;
    kernel.keys(suite, plan.w, gs, n, keys, 0);
    ok = plan.compact ? appendCompact(keys, n, gs & (block - 1), cur, cap, views, bases) : appendExact(keys, n, gs & (block - 1), cur, cap, views, bases);
  }
  marks.set(cur, nb * GROUPS);
  keys.fill(0);
  return ok;
}

/** Appends n keys as exact-layout records (`key & 0xffffff ‖ g16`); false on a full region. */
function appendExact(keys: Uint32Array, n: number, g0: number, cur: Uint32Array, cap: number, views: DataView[], bases: Float64Array): boolean {
  for (let i = 0; i < n; i++) {
    const k = keys[i] as number;
    const G = k >>> 24;
    const c = cur[G] as number;
    if (c >= cap) return false;
    cur[G] = c + 1;
    const g16 = g0 + i;
    const p = (bases[G] as number) + c * 5;
    const v = views[G] as DataView;
    v.setUint32(p, ((k << 8) | (g16 >>> 8)) >>> 0);
    v.setUint8(p + 4, g16 & 0xff);
  }
  return true;
}

/** Appends n keys as compact-layout records (the key's bits 6..23 ‖ g14); false on a full region. */
function appendCompact(keys: Uint32Array, n: number, g0: number, cur: Uint32Array, cap: number, views: DataView[], bases: Float64Array): boolean {
  for (let i = 0; i < n; i++) {
    const k = keys[i] as number;
    const G = k >>> 24;
    const c = cur[G] as number;
    if (c >= cap) return false;
    cur[G] = c + 1;
    (views[G] as DataView).setUint32((bases[G] as number) + c * 4, ((((k >>> 6) & 0x3ffff) << 14) | (g0 + i)) >>> 0);
  }
  return true;
}

/** Worker-local buffers of phase 2 (grown on demand, wiped after every build). */
export class FinishScratch {
  k = new Uint32Array(0);
  g = new Uint32Array(0);
  k2 = new Uint32Array(0);
  g2 = new Uint32Array(0);
  cnt = new Uint32Array(0);
  ensure(n: number, bins: number): void {
    if (this.k.length < n) {
      this.wipe();
      const m = Math.ceil(n * 1.25);
      this.k = new Uint32Array(m);
      this.g = new Uint32Array(m);
      this.k2 = new Uint32Array(m);
      this.g2 = new Uint32Array(m);
    }
    if (this.cnt.length < bins + 1) this.cnt = new Uint32Array(bins + 1);
  }
  wipe(): void {
    this.k.fill(0);
    this.g.fill(0);
    this.k2.fill(0);
    this.g2.fill(0);
  }
}

/** Shared state of phase 2. */
export interface FinishShared {
  /** starts[G]: index of group G's first entry in the table; starts[GROUPS] = 2^w */
  starts: Uint32Array;
  /** marks of every worker, worker-major */
  marks: Uint32Array;
  /** [0] the next group to take, [1] 1 when a worker failed, [2 + G] 1 once group G's records are read */
  ctl: Int32Array;
}

/** Reads group G's records (every worker's part, in increasing g) into fs.k / fs.g. */
function gather(plan: BuildPlan, G: number, sh: FinishShared, fs: FinishScratch, dvE: DataView, dvS: DataView): number {
  const [v, base] = region(plan, G, dvE, dvS);
  const { block, rec } = plan;
  let n = 0;
  for (let wi = 0; wi < plan.ranges.length; wi++) {
    const [s, e] = plan.ranges[wi] as [number, number];
    const first = Math.floor(s / block);
    const nb = blocksOf(s, e, block);
    const m0 = wi * plan.marksPerWorker;
    const rbase = base + wi * plan.cap * rec;
    for (let j = 0; j < nb; j++) {
      const from = sh.marks[m0 + j * GROUPS + G] as number;
      const to = sh.marks[m0 + (j + 1) * GROUPS + G] as number;
      const hi = (first + j) * block;
      if (plan.compact) {
        for (let c = from; c < to; c++) {
          const r = v.getUint32(rbase + c * 4);
          fs.k[n] = r >>> 14;
          fs.g[n] = hi + (r & 0x3fff);
          n++;
        }
      } else {
        for (let c = from; c < to; c++) {
          const p = rbase + c * 5;
          const top = v.getUint32(p);
          fs.k[n] = top >>> 8;
          fs.g[n] = hi + (((top & 0xff) << 8) | v.getUint8(p + 4));
          n++;
        }
      }
    }
  }
  return n;
}

/** Sorts fs.k / fs.g [0, n) by their `keyBits`-bit keys, stably (ties stay in increasing g), into fs.k2 / fs.g2. */
function sortGroup(fs: FinishScratch, n: number, keyBits: number): void {
  const f = Math.min(keyBits, Math.max(1, Math.round(Math.log2(Math.max(n, 2)))));
  const bins = 2 ** f;
  const sh = keyBits - f;
  fs.ensure(n, bins);
  const { k, g, k2, g2, cnt } = fs;
  cnt.fill(0, 0, bins + 1);
  for (let i = 0; i < n; i++) {
    const b = ((k[i] as number) >>> sh) + 1;
    cnt[b] = (cnt[b] as number) + 1;
  }
  for (let b = 1; b <= bins; b++) cnt[b] = (cnt[b] as number) + (cnt[b - 1] as number);
  for (let i = 0; i < n; i++) {
    const b = (k[i] as number) >>> sh;
    const p = cnt[b] as number;
    cnt[b] = p + 1;
    k2[p] = k[i] as number;
    g2[p] = g[i] as number;
  }
  // bins hold about one key each: one insertion pass finishes the order
  for (let i = 1; i < n; i++) {
    const kv = k2[i] as number;
    if ((k2[i - 1] as number) <= kv) continue;
    const gv = g2[i] as number;
    let j = i - 1;
    while (j >= 0 && (k2[j] as number) > kv) {
      k2[j + 1] = k2[j] as number;
      g2[j + 1] = g2[j] as number;
      j--;
    }
    k2[j + 1] = kv;
    g2[j + 1] = gv;
  }
}

/** Waits until every region that the table bytes [from, to) cover has been read. */
function awaitRegions(plan: BuildPlan, ctl: Int32Array, G: number, from: number, to: number): void {
  if (to <= from) return;
  const lo = Math.floor(from / plan.regionBytes);
  const hi = Math.min(G - 1, plan.inEntries - 1, Math.floor((to - 1) / plan.regionBytes));
  for (let q = lo; q <= hi; q++) {
    while (Atomics.load(ctl, 2 + q) === 0) {
      if (Atomics.load(ctl, 1) !== 0) throw new Error('another worker failed');
      Atomics.wait(ctl, 2 + q, 0, 50);
    }
  }
}

/** Phase 2: takes groups until none is left; writes their entries and bucket offsets. */
export function finish(plan: BuildPlan, sh: FinishShared, fs: FinishScratch, entries: SharedArrayBuffer, scratch: SharedArrayBuffer, offsets: Uint32Array): void {
  const dvE = new DataView(entries);
  const dvS = new DataView(scratch);
  const { b, entryBytes } = tableLayout(plan.w, plan.compact);
  for (;;) {
    const G = Atomics.add(sh.ctl, 0, 1);
    if (G >= GROUPS) return;
    const start = sh.starts[G] as number;
    const n = (sh.starts[G + 1] as number) - start;
    let got = -1;
    try {
      fs.ensure(n, 1);
      got = gather(plan, G, sh, fs, dvE, dvS);
    } finally {
      if (got !== n) Atomics.store(sh.ctl, 1, 1);
      Atomics.store(sh.ctl, 2 + G, 1);
      Atomics.notify(sh.ctl, 2 + G);
    }
    if (got !== n) throw new Error(`group ${G}: ${got} records, expected ${n}`);
    sortGroup(fs, n, plan.keyBits);
    awaitRegions(plan, sh.ctl, G, start * entryBytes, (start + n) * entryBytes);
    if (plan.compact) writeCompact(fs, G, start, n, plan.w, new Uint32Array(entries));
    else writeExact(fs, G, start, n, plan.w, dvE, new Uint8Array(entries));
    const { k2 } = fs;
    if (b >= 8) {
      // the group holds buckets [G · 2^(b-8), (G + 1) · 2^(b-8)): the record key's top b - 8 bits
      const per = 2 ** (b - 8);
      const bsh = plan.keyBits - (b - 8);
      let i = 0;
      for (let t = 0; t < per; t++) {
        while (i < n && (k2[i] as number) >>> bsh < t) i++;
        offsets[G * per + t] = start + i;
      }
    } else if (G % 2 ** (8 - b) === 0) offsets[G / 2 ** (8 - b)] = start;
  }
}

/** Exact entries: top 32 bits the key's low 40 - w bits and g's high w - 8 bits; last byte g's low 8. */
function writeExact(fs: FinishScratch, G: number, start: number, n: number, w: number, dv: DataView, u8: Uint8Array): void {
  const remBits = 40 - w;
  const remMask = remBits >= 32 ? 0xffffffff : 2 ** remBits - 1;
  const shw = w - 8;
  const hiKey = G * 2 ** 24;
  const { k2, g2 } = fs;
  for (let i = 0; i < n; i++) {
    const key = hiKey + (k2[i] as number);
    const g = g2[i] as number;
    const p = (start + i) * 5;
    dv.setUint32(p, ((((key & remMask) >>> 0) << shw) | (g >>> 8)) >>> 0);
    u8[p + 4] = g & 0xff;
  }
}

/** Compact entries: the key's 32 - w bits below the bucket (the record key's low bits), then g. */
function writeCompact(fs: FinishScratch, G: number, start: number, n: number, w: number, e32: Uint32Array): void {
  const qMask = 2 ** (32 - w) - 1;
  const { k2, g2 } = fs;
  for (let i = 0; i < n; i++) e32[start + i] = ((((k2[i] as number) & qMask) << w) | (g2[i] as number)) >>> 0;
}
