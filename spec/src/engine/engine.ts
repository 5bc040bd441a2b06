/**
 * @module engine/engine
 * The live matrix engine: builds revision tables ([LM-HINT-2]) in their own memory (engine/build),
 * resolves hints over its workers, scans batches of hints ([LM-HINT-5]) with the WebAssembly SIMD
 * kernels in worker threads over shared memory (or on the caller's thread), and measures this
 * host's hash and build rates for the capability report ([LM-CAP-1]).
 */
import { availableParallelism } from 'node:os';
import { LmError, Reason } from '../errors.js';
import { SUITES, type SuiteId, minHintLength } from '../params.js';
import { Kernel, kernelVerifier } from './kernel.js';
import { type EngineWorker, startWorkers } from './pool.js';
import { GROUPS, blocksOf, planBuild, splitCandidates } from './build.js';
import { ABSENT, AMBIGUOUS, COMPACT_FROM, RevisionTable, type TableMemory, type Verifier, allocTable, tableLayout } from './table.js';

export interface EngineOptions {
  /**
   * worker threads; default one per core. 0: no thread, every task runs on the caller's thread
   * (the smallest footprint, for scan mode on small hosts; a task blocks the event loop)
   */
  workers?: number;
  /**
   * Headroom of each partition region of a build, in standard deviations of its count (default
   * 8: an overflow, which costs a second pass, is then rarer than 1 in 10^14 per region). Small
   * values only serve to exercise that second pass.
   */
  slack?: number;
  /**
   * Width from which buildTable without `into` makes compact tables (engine/table); default 24,
   * as allocTable does. Lower values serve tests of the compact layout on small tables.
   */
  compactFrom?: number;
}

/** Timing of one table build. */
export interface BuildReport {
  suite: SuiteId;
  w: number;
  hashSeconds: number;
  sortSeconds: number;
  totalSeconds: number;
  /** bytes of scratch the build used beyond the table's own memory */
  scratchBytes: number;
  /** hashing passes: 1, or more when a partition region overflowed (see EngineOptions.slack) */
  attempts: number;
}

/** Splits [0, n) into k nearly equal ranges whose bounds are multiples of 8. */
function split(n: number, k: number): [number, number][] {
  const out: [number, number][] = [];
  const step = Math.ceil(n / k / 8) * 8;
  for (let s = 0; s < n; s += step) out.push([s, Math.min(n, s + step)]);
  return out;
}

/**
 * A pool of hashing workers. `start()` before use, `stop()` after.
 *
 * @example
 * const engine = new MatrixEngine(); await engine.start();
 * const { table } = await engine.buildTable(3, 20, 4, hk); table.lookup(hint);
 * await engine.stop();
 */
export class MatrixEngine {
  /** worker threads (0: tasks run on the caller's thread) */
  readonly workers: number;
  private pool: EngineWorker[] = [];
  private readonly slack: number;
  private readonly compactFrom: number;
  /** the verifiers of the tables this engine built, for lookups in workers */
  private readonly verifiers = new WeakMap<RevisionTable, Verifier>();
  /** kernels of wiped tables, for the next verifier */
  private readonly kernels: Kernel[] = [];
  /** shared buffers of builds (see shared()) */
  private readonly buffers = new Map<string, SharedArrayBuffer>();
  /** a frame-sized pair of buffers for lookups in workers */
  private io: { hints: SharedArrayBuffer; out: SharedArrayBuffer } | undefined;
  /** the build under way: builds take turns */
  private building: Promise<void> = Promise.resolve();
  constructor(opts: EngineOptions = {}) {
    this.workers = Math.max(0, Math.floor(opts.workers ?? availableParallelism()));
    this.slack = opts.slack ?? 8;
    this.compactFrom = opts.compactFrom ?? COMPACT_FROM;
  }

  async start(): Promise<void> {
    if (this.pool.length) return;
    this.pool = startWorkers(this.workers);
    await Promise.all(this.pool.map((p) => p.run({ op: 'wipe', buffer: new SharedArrayBuffer(8), start: 0, end: 8 })));
  }

  async stop(): Promise<void> {
    const pool = this.pool;
    this.pool = [];
    await Promise.all(pool.map((p) => p.stop()));
    for (const b of this.buffers.values()) new Uint8Array(b).fill(0);
    this.buffers.clear();
    this.io = undefined;
  }

  private need(): EngineWorker[] {
    if (!this.pool.length) throw new LmError(Reason.internal, 'engine not started: call start() first');
    return this.pool;
  }

  /** Digest of one candidate on this thread (used to confirm hints longer than 4 bytes). */
  digestFn(suite: SuiteId, w: number, hk: Uint8Array): (g: number) => Uint8Array {
    const k = new Kernel();
    k.setKey(hk);
    return (g) => k.digest(suite, w, g);
  }

  /**
   * Builds the table of a revision into `into` (or new memory): hashes all 2^w candidates in
   * parallel while partitioning them by key into the table's own memory, then sorts each
   * partition in place (engine/build). The caller owns and later wipes the table.
   */
  async buildTable(suite: SuiteId, w: number, L: number, hk: Uint8Array, into?: TableMemory): Promise<{ table: RevisionTable; report: BuildReport }> {
    // One build at a time: builds share the scratch and all the cores.
    const prev = this.building;
    let release!: () => void;
    this.building = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await this.buildTableNow(suite, w, L, new Uint8Array(hk), into); // a copy (a Buffer's slice() would be a view)
    } finally {
      release();
    }
  }
  private async buildTableNow(suite: SuiteId, w: number, L: number, hk: Uint8Array, into?: TableMemory): Promise<{ table: RevisionTable; report: BuildReport }> {
    const pool = this.need();
    const mem = into && into.w === w ? into : allocTable(w, w >= this.compactFrom);
    const compact = mem.compact === true;
    const layout = tableLayout(w, compact);
    if (compact && L < 4) throw new LmError(Reason.params, `a compact table (w=${w}) serves hints of L >= 4 only, got L=${L}`);
    const n = layout.entries;
    const t0 = performance.now();
    const ranges = splitCandidates(n, pool.length);
    let slack = this.slack;
    let plan = planBuild(w, ranges, slack, compact);
    let marks!: SharedArrayBuffer;
    let scratch!: SharedArrayBuffer;
    let attempts = 0;
    try {
      // Phase 1: hash and partition by the key's top 8 bits into the table's own memory.
      for (;;) {
        attempts++;
        scratch = this.shared('scratch', plan.scratchBytes, ranges.length);
        marks = this.shared('marks', ranges.length * plan.marksPerWorker * 4, ranges.length);
        const replies = await Promise.all(ranges.map((_, wi) => {
          const key = new Uint8Array(hk);
          const done = pool[wi]!.run({ op: 'partition', suite, hk: key, plan, wi, entries: mem.entries, scratch, marks });
          key.fill(0); // posted (copied) already
          return done;
        }));
        if (!replies.some((r) => r.overflow)) break;
        // A region overflowed (more than `slack` deviations above its mean): more room, again.
        if (attempts >= 4) throw new LmError(Reason.internal, `engine: partition regions overflow at w=${w} after ${attempts} attempts`);
        slack = slack * 2 + 8;
        plan = planBuild(w, ranges, slack, compact);
      }
      const t1 = performance.now();
      // Phase 2: each group's place in the table, then sort and write the groups in workers.
      const m = new Uint32Array(marks);
      const starts = this.shared('starts', (GROUPS + 1) * 4, 0);
      const st = new Uint32Array(starts);
      let acc = 0;
      for (let G = 0; G < GROUPS; G++) {
        st[G] = acc;
        ranges.forEach(([s, e], wi) => {
          acc += m[wi * plan.marksPerWorker + blocksOf(s, e, plan.block) * GROUPS + G] as number;
        });
      }
      st[GROUPS] = acc;
      if (acc !== n) throw new LmError(Reason.internal, `engine: partition holds ${acc} of ${n} candidates`);
      const offsets = new Uint32Array(mem.offsets);
      offsets[layout.buckets] = n;
      const ctl = this.shared('ctl', (GROUPS + 2) * 4, 0);
      new Int32Array(ctl).fill(0);
      await Promise.all(pool.map((p) => p.run({ op: 'finish', plan, entries: mem.entries, scratch, offsets: mem.offsets, marks, starts, ctl })));
      const t2 = performance.now();
      let verifier: Verifier | undefined;
      if (L > 4 || compact) verifier = this.verifierOf(suite, w, hk);
      const table = new RevisionTable(mem, suite, L, undefined, verifier);
      if (verifier) this.verifiers.set(table, verifier);
      return { table, report: { suite, w, hashSeconds: (t1 - t0) / 1000, sortSeconds: (t2 - t1) / 1000, totalSeconds: (t2 - t0) / 1000, scratchBytes: plan.scratchBytes, attempts } };
    } finally {
      // The records are the revision's hint prefixes: erase what is not the table ([LM-REV-3]).
      if (scratch) new Uint8Array(scratch).fill(0, 0, plan.scratchBytes);
      if (marks) new Uint8Array(marks).fill(0, 0, ranges.length * plan.marksPerWorker * 4);
      hk.fill(0);
    }
  }

  /**
   * A verifier holding hk on a kernel of this thread; its wipe() erases the key and returns the
   * kernel for the next table (a revision per period would otherwise leave a kernel's memory each).
   */
  private verifierOf(suite: SuiteId, w: number, hk: Uint8Array): Verifier {
    const k = this.kernels.pop() ?? new Kernel();
    k.setKey(hk);
    const v = kernelVerifier(k, suite, w);
    let held = true;
    // once wiped, the kernel may serve another revision: this table's verifier answers nothing
    return {
      digest: (g) => (held ? v.digest(g) : new Uint8Array(32)),
      keys: (symbols, n, out) => {
        if (held) v.keys(symbols, n, out);
        else out.fill(0, 0, n);
      },
      key: () => (held ? v.key() : new Uint8Array(32)),
      wipe: () => {
        k.wipe();
        if (held && this.kernels.length < 4) this.kernels.push(k);
        held = false;
      },
    };
  }

  /**
   * The engine's shared buffers of builds, kept across builds (zero between them) so that no
   * build leaves one behind: workers hold what they were sent until their own heap is collected,
   * which an idle thread may not do for long. Sized at first for the widest table (w = 24; pages
   * that a narrower build does not touch cost no memory).
   */
  private shared(name: 'scratch' | 'marks' | 'starts' | 'ctl', bytes: number, workers: number): SharedArrayBuffer {
    const have = this.buffers.get(name);
    if (have && have.byteLength >= bytes) return have;
    let size = bytes;
    if (workers > 0) {
      const widest = [true, false].map((c) => planBuild(24, splitCandidates(2 ** 24, workers), this.slack, c));
      size = Math.max(bytes, ...widest.map((p) => (name === 'scratch' ? p.scratchBytes : workers * p.marksPerWorker * 4)));
    }
    const buf = new SharedArrayBuffer(Math.max(size, 8));
    this.buffers.set(name, buf);
    return buf;
  }

  /**
   * Resolves n concatenated hints of `table` into `out` as {@link RevisionTable.lookupMany} does,
   * with every worker taking a slice (the table's memory is shared; the hints and results go
   * through shared buffers of this engine, wiped after each call). Pays off for batches of
   * thousands of hints; hints longer than 4 bytes, and an engine without threads, resolve on
   * this thread. `workers` caps the workers taking part (default all).
   */
  async lookupMany(table: RevisionTable, hints: Uint8Array, out: Int32Array = new Int32Array(Math.floor(hints.length / table.L)), workers = Infinity): Promise<Int32Array> {
    const pool = this.need().slice(0, Math.max(1, workers));
    const L = table.L;
    const n = Math.floor(hints.length / L);
    const compact = table.layout.compact;
    const verifier = this.verifiers.get(table);
    if (L > 4 || this.workers === 0 || n < 2 * pool.length || (compact && !verifier)) return table.lookupMany(hints, out);
    const io = this.ioOf(n * L, n * 4);
    const h = new Uint8Array(io.hints, 0, n * L);
    h.set(hints.subarray(0, n * L));
    let done = false;
    try {
      await Promise.all(split(n, pool.length).map(([s, e], i) => {
        const hk = compact ? verifier?.key() : undefined;
        const done = pool[i]!.run({ op: 'lookup', suite: table.suite, w: table.layout.w, L, compact, hk, entries: table.mem.entries, offsets: table.mem.offsets, hints: io.hints, out: io.out, start: s, end: e });
        hk?.fill(0); // posted (copied) already
        return done;
      }));
      out.set(new Int32Array(io.out, 0, n));
      done = true;
      return out;
    } finally {
      if (!done) h.fill(0); // the workers erase their slices of the hints when they finish
      new Int32Array(io.out, 0, n).fill(0);
      if (done && io.hints.byteLength <= 2 ** 20) this.io = io; // keep a frame-sized pair, not a benchmark's
    }
  }
  /** Shared buffers for lookups in workers; each call takes them (concurrent calls get their own). */
  private ioOf(hintBytes: number, outBytes: number): { hints: SharedArrayBuffer; out: SharedArrayBuffer } {
    const io = this.io;
    this.io = undefined;
    if (io && io.hints.byteLength >= hintBytes && io.out.byteLength >= outBytes) return io;
    return { hints: new SharedArrayBuffer(hintBytes), out: new SharedArrayBuffer(outBytes) };
  }

  /**
   * Scan mode ([LM-HINT-5]): resolves n concatenated L-byte hints by hashing every candidate
   * once, with memory proportional to the batch. Same results as a table lookup.
   */
  async scan(suite: SuiteId, w: number, L: number, hk: Uint8Array, hints: Uint8Array): Promise<Int32Array> {
    const pool = this.need();
    const n = Math.floor(hints.length / L);
    const Lc = Math.min(L, 4);
    const mask = (0xffffffff - (2 ** (32 - 8 * Lc) - 1)) >>> 0;
    const keyOf = (i: number): number => {
      let k = 0;
      for (let j = 0; j < Lc; j++) k = (k << 8) | (hints[i * L + j] as number);
      return (k << (8 * (4 - Lc))) >>> 0;
    };
    const wanted = new Uint32Array(n);
    for (let i = 0; i < n; i++) wanted[i] = keyOf(i);
    const replies = await Promise.all(split(2 ** w, pool.length).map(([s, e], i) => {
      const key = new Uint8Array(hk);
      const done = pool[i]!.run({ op: 'scan', suite, w, hk: key, start: s, end: e, wanted, mask });
      key.fill(0); // posted (copied) already
      return done;
    }));
    // key -> candidates with that key
    const byKey = new Map<number, number[]>();
    for (const r of replies) {
      const m = r.matches ?? [];
      for (let j = 0; j < m.length; j += 2) {
        const list = byKey.get(m[j + 1] as number);
        if (list) list.push(m[j] as number);
        else byKey.set(m[j + 1] as number, [m[j] as number]);
      }
    }
    const digest = L > 4 ? this.digestFn(suite, w, hk) : undefined;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let cands = byKey.get(wanted[i] as number) ?? [];
      if (digest) cands = cands.filter((g) => { const d = digest(g); for (let j = 4; j < L; j++) if (d[j] !== hints[i * L + j]) return false; return true; });
      out[i] = cands.length === 0 ? ABSENT : cands.length === 1 ? (cands[0] as number) : AMBIGUOUS;
    }
    return out;
  }

  /**
   * Measures candidate hashes per second per suite with all workers, in about `ms` per suite
   * (default 300: three suites within a second) ([LM-CAP-1]).
   */
  /**
   * Candidates per second at which this host builds complete revision tables ([LM-CAP-1]):
   * hashing, sorting and indexing with all workers, the best of two builds of width `w` per
   * suite. This, not the raw hash rate, is what a revision costs the device.
   */
  async buildRate(suites: readonly SuiteId[] = SUITES, w = 20): Promise<Map<SuiteId, number>> {
    const out = new Map<SuiteId, number>();
    const hk = new Uint8Array(32);
    crypto.getRandomValues(hk);
    const mem = allocTable(w); // one table's memory for every build, as a device reuses it
    for (const suite of suites) {
      let best = Infinity;
      for (let i = 0; i < 2; i++) {
        const { table, report } = await this.buildTable(suite, w, minHintLength(w), hk, mem);
        table.wipe();
        best = Math.min(best, report.totalSeconds);
      }
      out.set(suite, Math.round(2 ** w / best));
    }
    hk.fill(0);
    return out;
  }

  async benchmark(ms = 300, suites: readonly SuiteId[] = SUITES): Promise<Map<SuiteId, number>> {
    const pool = this.need();
    const out = new Map<SuiteId, number>();
    for (const suite of suites) {
      const r = await Promise.all(pool.map((p) => p.run({ op: 'bench', suite, ms })));
      out.set(suite, Math.round(r.reduce((a, x) => a + (x.hashes ?? 0) / (x.seconds ?? 1), 0)));
    }
    return out;
  }
}

export { ABSENT, AMBIGUOUS };
