/**
 * @module engine/tasks
 * What a worker does with each task of the engine (table builds, lookups, scans, the
 * self-benchmark), on its own kernel instance. Runs in a worker thread (engine/worker) or, for an
 * engine without threads, on the caller's thread.
 */
import { FinishScratch, finish, partition } from './build.js';
import { Kernel, KERNEL_BATCH, type KernelModule, kernelVerifier } from './kernel.js';
import type { Reply, Task } from './protocol.js';
import { RevisionTable } from './table.js';

/** One kernel and its buffers; `run` executes a task synchronously. */
export class TaskRunner {
  private readonly kernel: Kernel;
  private readonly local = new Uint32Array(KERNEL_BATCH);
  private readonly finishScratch = new FinishScratch();
  constructor(module?: KernelModule) {
    this.kernel = module ? new Kernel(module) : new Kernel();
  }

  run(t: Task): Reply {
    const { kernel, local, finishScratch } = this;
    switch (t.op) {
      case 'partition': {
        kernel.setKey(t.hk);
        t.hk.fill(0);
        const marks = new Uint32Array(t.marks, t.wi * t.plan.marksPerWorker * 4, t.plan.marksPerWorker);
        try {
          return { ok: true, overflow: !partition(kernel, t.suite, t.plan, t.wi, t.entries, t.scratch, marks, local) };
        } finally {
          kernel.wipe();
        }
      }
      case 'finish':
        try {
          finish(t.plan, { starts: new Uint32Array(t.starts), marks: new Uint32Array(t.marks), ctl: new Int32Array(t.ctl) }, finishScratch, t.entries, t.scratch, new Uint32Array(t.offsets));
        } catch (e) {
          Atomics.store(new Int32Array(t.ctl), 1, 1);
          throw e;
        } finally {
          finishScratch.wipe();
        }
        return { ok: true };
      case 'wipe':
        new Uint8Array(t.buffer).fill(0, t.start, t.end);
        return { ok: true };
      case 'lookup': {
        // a compact table confirms candidates with the revision's key, on this worker's kernel
        if (t.hk) kernel.setKey(t.hk);
        t.hk?.fill(0);
        try {
          const table = new RevisionTable({ w: t.w, entries: t.entries, offsets: t.offsets, compact: t.compact }, t.suite, t.L, undefined, t.compact ? kernelVerifier(kernel, t.suite, t.w) : undefined);
          const hints = new Uint8Array(t.hints, t.start * t.L, (t.end - t.start) * t.L);
          table.lookupMany(hints, new Int32Array(t.out, t.start * 4, t.end - t.start));
          hints.fill(0); // done with them: each worker erases its own slice
        } finally {
          if (t.hk) kernel.wipeKey(); // keyList leaves no symbol nor key in the scratch area
        }
        return { ok: true };
      }
      case 'scan': {
        kernel.setKey(t.hk);
        t.hk.fill(0);
        // 64 Ki-bit filter on the top 16 key bits, then an exact set.
        const filter = new Uint8Array(8192);
        const exact = new Set<number>();
        for (const k of t.wanted) {
          filter[k >>> 19] = (filter[k >>> 19] as number) | (1 << ((k >>> 16) & 7));
          exact.add(k);
        }
        const matches: number[] = [];
        for (let s = t.start; s < t.end; s += KERNEL_BATCH) {
          const n = Math.min(KERNEL_BATCH, t.end - s);
          kernel.keys(t.suite, t.w, s, n, local, 0);
          for (let i = 0; i < n; i++) {
            const k = ((local[i] as number) & t.mask) >>> 0;
            if ((filter[k >>> 19] as number) & (1 << ((k >>> 16) & 7)) && exact.has(k)) matches.push(s + i, k);
          }
        }
        local.fill(0);
        kernel.wipe();
        return { ok: true, matches };
      }
      case 'bench': {
        kernel.setKey(new Uint8Array(32).fill(0x5a));
        const w = 24;
        let n = 0;
        const t0 = performance.now();
        while (performance.now() - t0 < t.ms) {
          kernel.keys(t.suite, w, n & 0xffffff, KERNEL_BATCH, local, 0);
          n += KERNEL_BATCH;
        }
        return { ok: true, hashes: n, seconds: (performance.now() - t0) / 1000 };
      }
    }
  }
}
