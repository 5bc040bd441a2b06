/**
 * @module engine/engine
 * The live matrix engine: builds revision tables ([LM-HINT-2]) and scans batches of hints
 * ([LM-HINT-5]) with the WebAssembly SIMD kernels in worker threads over shared memory, and
 * measures this host's hash rate for the capability report ([LM-CAP-1]).
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { LmError, Reason } from '../errors.js';
import { SUITES, type SuiteId, minHintLength } from '../params.js';
import { Kernel, packageRoot } from './kernel.js';
import type { Envelope, Reply, Task } from './protocol.js';
import { ABSENT, AMBIGUOUS, RevisionTable, type TableMemory, allocTable, fineBits, tableLayout } from './table.js';

export interface EngineOptions {
  /** worker threads; default one per core */
  workers?: number;
}

/** Timing of one table build. */
export interface BuildReport {
  suite: SuiteId;
  w: number;
  hashSeconds: number;
  sortSeconds: number;
  totalSeconds: number;
}

class PoolWorker {
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private next = 1;
  readonly worker: Worker;
  constructor(file: string) {
    this.worker = new Worker(file);
    this.worker.on('message', (env: Envelope<Reply>) => {
      const p = this.pending.get(env.id);
      if (!p) return;
      this.pending.delete(env.id);
      p.resolve(env.msg);
    });
    this.worker.on('error', (e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
  }
  run(msg: Task): Promise<Extract<Reply, { ok: true }>> {
    const id = this.next++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, msg } satisfies Envelope<Task>);
    }).then((r) => {
      if (!r.ok) throw new LmError(Reason.internal, `engine worker: ${r.error}`);
      return r;
    });
  }
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
  readonly workers: number;
  private pool: PoolWorker[] = [];
  private kernel: Kernel | undefined;
  /** scratch for keys, one u32 per candidate, reused across builds and wiped after each */
  private scratch: SharedArrayBuffer | undefined;
  constructor(opts: EngineOptions = {}) {
    this.workers = Math.max(1, Math.floor(opts.workers ?? availableParallelism()));
  }

  async start(): Promise<void> {
    if (this.pool.length) return;
    const file = join(packageRoot(), 'dist', 'src', 'engine', 'worker.js');
    this.kernel = new Kernel();
    this.pool = Array.from({ length: this.workers }, () => new PoolWorker(file));
    await Promise.all(this.pool.map((p) => p.run({ op: 'wipe', buffer: new SharedArrayBuffer(8), start: 0, end: 8 })));
  }

  async stop(): Promise<void> {
    const pool = this.pool;
    this.pool = [];
    await Promise.all(pool.map((p) => p.worker.terminate()));
    if (this.scratch) new Uint8Array(this.scratch).fill(0);
    this.scratch = undefined;
    this.kernel?.wipe();
  }

  private need(): PoolWorker[] {
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
   * parallel, then counting-sorts them by key. The caller owns and later wipes the table.
   */
  async buildTable(suite: SuiteId, w: number, L: number, hk: Uint8Array, into?: TableMemory): Promise<{ table: RevisionTable; report: BuildReport }> {
    // One build at a time: builds share the key scratch and all the cores.
    const prev = this.building;
    let release!: () => void;
    this.building = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await this.buildTableNow(suite, w, L, hk.slice(), into);
    } finally {
      release();
    }
  }
  private building: Promise<void> = Promise.resolve();

  private async buildTableNow(suite: SuiteId, w: number, L: number, hk: Uint8Array, into?: TableMemory): Promise<{ table: RevisionTable; report: BuildReport }> {
    const pool = this.need();
    const layout = tableLayout(w);
    const mem = into && into.w === w ? into : allocTable(w);
    const n = layout.entries;
    if (!this.scratch || this.scratch.byteLength < n * 4) this.scratch = new SharedArrayBuffer(n * 4);
    const keys = this.scratch;
    const t0 = performance.now();
    const ranges = split(n, pool.length);
    // Counting sort by fine bucket (w - 4 key bits, 16 entries on average), then insertion sort
    // of each fine bucket; the table keeps only the coarse bucket index.
    const fine = fineBits(w);
    const nf = 2 ** fine;
    const hist = new SharedArrayBuffer(ranges.length * nf * 4);
    await Promise.all(ranges.map(([s, e], i) => pool[i]!.run({ op: 'hash', suite, w, hk: hk.slice(), start: s, end: e, keys, hist, histOffset: i * nf * 4, b: fine })));
    const t1 = performance.now();
    // Fine bucket starts and per-worker cursors (in place of the histograms).
    const fineOffsets = new SharedArrayBuffer((nf + 1) * 4);
    const fo = new Uint32Array(fineOffsets);
    const h = new Uint32Array(hist);
    let acc = 0;
    for (let bk = 0; bk < nf; bk++) {
      fo[bk] = acc;
      for (let i = 0; i < ranges.length; i++) {
        const idx = i * nf + bk;
        const c = h[idx] as number;
        h[idx] = acc;
        acc += c;
      }
    }
    fo[nf] = acc;
    const offsets = new Uint32Array(mem.offsets);
    const ratio = 2 ** (fine - layout.b);
    for (let bk = 0; bk <= layout.buckets; bk++) offsets[bk] = fo[Math.min(nf, bk * ratio)] as number;
    await Promise.all(ranges.map(([s, e], i) => pool[i]!.run({ op: 'scatter', w, fine, start: s, end: e, keys, cursor: hist, cursorOffset: i * nf * 4, entries: mem.entries })));
    await Promise.all(split(nf, pool.length).map(([a, b], i) => pool[i % pool.length]!.run({ op: 'sort', entries: mem.entries, offsets: fineOffsets, bStart: a, bEnd: Math.min(b, nf) })));
    // The keys are the revision's hint prefixes: erase them ([LM-REV-3]).
    await Promise.all(split(n * 4, pool.length).map(([s, e], i) => pool[i]!.run({ op: 'wipe', buffer: keys, start: s, end: e })));
    const t2 = performance.now();
    const table = new RevisionTable(mem, suite, L, L > 4 ? this.digestFn(suite, w, hk) : undefined);
    hk.fill(0);
    return { table, report: { suite, w, hashSeconds: (t1 - t0) / 1000, sortSeconds: (t2 - t1) / 1000, totalSeconds: (t2 - t0) / 1000 } };
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
    const replies = await Promise.all(split(2 ** w, pool.length).map(([s, e], i) => pool[i]!.run({ op: 'scan', suite, w, hk: hk.slice(), start: s, end: e, wanted, mask })));
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
    for (const suite of suites) {
      let best = Infinity;
      for (let i = 0; i < 2; i++) {
        const { table, report } = await this.buildTable(suite, w, minHintLength(w), hk);
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
