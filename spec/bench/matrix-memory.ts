/**
 * The memory side of bench:matrix, in a process of its own so that its peak RSS is its own: a
 * device-like process (the engine, its workers, the tables of a revision pipeline and lookups
 * between builds; no MQTT) runs a few revisions and prints one JSON line with its peak RSS.
 *
 * `node matrix-memory.js tables W SUITE HELD WORKERS`: HELD = 2 is the budget of issue 16 (the
 * serving table, and the next one built into the erased revision's memory: erase, then reuse);
 * HELD = 3 is the most [LM-REV-3] allows (c - 1 and c serving, c + 1 under construction), what
 * device-sdk's pipeline holds while it builds ahead ([LM-REV-4]).
 * `node matrix-memory.js scan W SUITE 0 WORKERS`: scan mode ([LM-HINT-5]), no tables; WORKERS = 0
 * runs the scans on the main thread. `idle`: the engine started, nothing else (the baseline).
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { type SuiteId, minHintLength } from '../src/params.js';
import { Kernel, MatrixEngine, type RevisionTable, type TableMemory, allocTable } from '../src/engine/index.js';

const [mode = 'tables', wArg = '20', suiteArg = '3', heldArg = '2', workersArg = '2'] = process.argv.slice(2);
const w = Number(wArg);
const suite = Number(suiteArg) as SuiteId;
const held = Number(heldArg);
const L = minHintLength(w);
const REVISIONS = 4;
const BATCH = 4096; // hints per HINTS frame at most ([LM-PARAM-6])

const engine = new MatrixEngine({ workers: Number(workersArg) });
await engine.start();
const kernel = new Kernel();
// A device measures its build rate when it starts ([LM-CAP-1]); in scan mode it never builds a
// table, and what a scan costs is its hash rate.
if (mode === 'tables') await engine.buildRate([suite], Math.min(20, w));
else if (mode === 'scan') await engine.benchmark(200, [suite]);
let lookups = 0;

/** Resolves `frames` frames of random symbols of revision key hk through `resolve`. */
async function frames(hk: Uint8Array, count: number, resolve: (hints: Uint8Array) => Promise<Int32Array> | Int32Array): Promise<void> {
  kernel.setKey(hk);
  for (let f = 0; f < count; f++) {
    const syms = Array.from({ length: BATCH }, () => Math.floor(Math.random() * 2 ** w));
    const res = await resolve(kernel.hintList(suite, w, L, syms));
    for (let i = 0; i < BATCH; i++) if (res[i] !== syms[i] && res[i] !== -2) throw new Error(`lookup of ${syms[i]} gave ${res[i]}`);
    lookups += BATCH;
  }
  kernel.wipe();
}

if (mode === 'idle') {
  // the engine alone: started, its workers up, nothing built
} else if (mode === 'scan') {
  for (let r = 0; r < REVISIONS; r++) {
    const hk = new Uint8Array(nodeRandomBytes(32));
    await frames(hk, 2, (h) => engine.scan(suite, w, L, hk, h));
    hk.fill(0);
  }
} else {
  // Revision r's table lives in slot r mod held; building revision r reuses the memory of
  // revision r - held, erased first.
  const mems: TableMemory[] = [];
  const tables: (RevisionTable | undefined)[] = [];
  for (let r = 0; r < REVISIONS + held; r++) {
    const slot = r % held;
    tables[slot]?.wipe(); // [LM-REV-3]
    tables[slot] = undefined;
    mems[slot] ??= allocTable(w);
    const hk = new Uint8Array(nodeRandomBytes(32));
    const { table } = await engine.buildTable(suite, w, L, hk, mems[slot]);
    tables[slot] = table;
    await frames(hk, 8, (h) => table.lookupMany(h, new Int32Array(BATCH)));
    hk.fill(0);
  }
  for (const t of tables) t?.wipe();
}
await engine.stop();
process.stdout.write(`${JSON.stringify({ mode, w, suite, held, workers: engine.workers, peakMiB: peakRss(), lookups })}\n`);

/**
 * This process's peak RSS in MiB: VmHWM, the high-water mark of its own memory. Not
 * resourceUsage().maxRSS: Linux carries ru_maxrss across exec, so a child started by a large
 * parent reports at least the parent's RSS at the fork.
 */
function peakRss(): number {
  const m = existsSync('/proc/self/status') ? /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8')) : null;
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}
