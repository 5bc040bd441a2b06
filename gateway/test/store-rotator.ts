/**
 * A child process for the store's crash test ([LM-SVC-3]): opens the store in DIR with an epoch
 * source at epoch E on chain CHAIN (hex), starts a rotation in batches of BATCH rows and, after
 * STOP batches were committed, prints `stopped` and blocks (the parent kills it with SIGKILL
 * there); prints `batch N` after each batch and `done` if the rotation ends.
 * `node gateway/dist/test/store-rotator.js DIR CHAIN E BATCH STOP`.
 */
import { writeSync } from 'node:fs';
import { fromHex } from '@livematrix/spec';
import { openStore } from '../src/store/index.js';
import { TestEpochs } from './store-epochs.js';

const [dir, chain, e, batch, stop] = process.argv.slice(2);
if (!dir || !chain || !e || !batch || !stop) {
  console.error('usage: store-rotator.js DIR CHAIN E BATCH STOP');
  process.exit(2);
}
let batches = 0;
const store = await openStore({
  dir,
  epochs: new TestEpochs(fromHex(chain), Number(e)),
  epochMs: 0,
  batch: Number(batch),
  onEvent: (ev) => {
    if (ev.kind !== 'batch') return;
    writeSync(1, `batch ${++batches} ${ev.total}\n`);
    if (batches === Number(stop)) {
      writeSync(1, 'stopped\n');
      // the batch is committed; wait here, between two batches, for SIGKILL
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
    }
  },
});
await store.rotate();
writeSync(1, 'done\n');
await store.close();
