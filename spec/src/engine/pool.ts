/**
 * @module engine/pool
 * The engine's workers: threads that run tasks over shared memory (engine/worker), or, for an
 * engine with `workers: 0`, one runner on the caller's own thread (no thread's heap to pay for;
 * each task then blocks the event loop while it runs).
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { LmError, Reason } from '../errors.js';
import { kernelModule, packageRoot } from './kernel.js';
import type { Envelope, Reply, Task } from './protocol.js';
import { TaskRunner } from './tasks.js';

export type OkReply = Extract<Reply, { ok: true }>;

/** One worker of the engine. */
export interface EngineWorker {
  run(msg: Task): Promise<OkReply>;
  stop(): Promise<void>;
}

function checked(r: Reply): OkReply {
  if (!r.ok) throw new LmError(Reason.internal, `engine worker: ${r.error}`);
  return r;
}

/**
 * Young generation of a worker thread, in MB: workers allocate little (their buffers are typed
 * arrays and shared memory), and V8's default lets a busy thread's nursery grow to several MB.
 */
const WORKER_YOUNG_MB = 2;

class ThreadWorker implements EngineWorker {
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private next = 1;
  private readonly worker: Worker;
  constructor(file: string) {
    // the compiled kernels go along: threads share their machine code instead of compiling their own
    this.worker = new Worker(file, { workerData: { module: kernelModule() }, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
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
  run(msg: Task): Promise<OkReply> {
    const id = this.next++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, msg } satisfies Envelope<Task>);
    }).then(checked);
  }
  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}

class InlineWorker implements EngineWorker {
  private readonly runner = new TaskRunner();
  run(msg: Task): Promise<OkReply> {
    try {
      return Promise.resolve(checked(this.runner.run(msg)));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/** `n` worker threads, or one runner on this thread when n is 0. */
export function startWorkers(n: number): EngineWorker[] {
  if (n === 0) return [new InlineWorker()];
  const file = join(packageRoot(), 'dist', 'src', 'engine', 'worker.js');
  return Array.from({ length: n }, () => new ThreadWorker(file));
}
