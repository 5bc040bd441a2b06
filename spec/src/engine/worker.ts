/**
 * @module engine/worker
 * A hashing worker thread: one task runner (engine/tasks), tasks from the engine over shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { KernelModule } from './kernel.js';
import type { Envelope, Reply, Task } from './protocol.js';
import { TaskRunner } from './tasks.js';

const runner = new TaskRunner((workerData as { module?: KernelModule } | null)?.module);

parentPort?.on('message', (env: Envelope<Task>) => {
  let reply: Reply;
  try {
    reply = runner.run(env.msg);
  } catch (e) {
    reply = { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort?.postMessage({ id: env.id, msg: reply });
});
