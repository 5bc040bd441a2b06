/**
 * @module engine/worker
 * A hashing worker: one kernel instance, tasks from the engine over shared memory.
 */
import { parentPort } from 'node:worker_threads';
import { Kernel, KERNEL_BATCH } from './kernel.js';
import type { Envelope, Reply, Task } from './protocol.js';
import { histogram, scatter, sortBuckets } from './table.js';

const kernel = new Kernel();
const local = new Uint32Array(KERNEL_BATCH);

function run(t: Task): Reply {
  switch (t.op) {
    case 'hash': {
      kernel.setKey(t.hk);
      t.hk.fill(0);
      const keys = new Uint32Array(t.keys);
      kernel.keys(t.suite, t.w, t.start, t.end - t.start, keys, t.start);
      kernel.wipe();
      const hist = new Uint32Array(t.hist, t.histOffset, 2 ** t.b);
      histogram(keys, t.start, t.end, t.b, hist);
      return { ok: true };
    }
    case 'scatter': {
      const cursor = new Uint32Array(t.cursor, t.cursorOffset, 2 ** t.fine);
      scatter(new Uint32Array(t.keys), t.start, t.end, t.w, cursor, new Uint8Array(t.entries), t.fine);
      return { ok: true };
    }
    case 'sort':
      sortBuckets(new Uint8Array(t.entries), new Uint32Array(t.offsets), t.bStart, t.bEnd);
      return { ok: true };
    case 'wipe':
      new Uint8Array(t.buffer).fill(0, t.start, t.end);
      return { ok: true };
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

parentPort?.on('message', (env: Envelope<Task>) => {
  let reply: Reply;
  try {
    reply = run(env.msg);
  } catch (e) {
    reply = { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort?.postMessage({ id: env.id, msg: reply });
});
