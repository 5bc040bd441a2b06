/**
 * Lookup figures of bench:matrix: the memory system's rate for random 8-byte reads from a buffer
 * of a table's size (the limit for this access pattern, measured in the same run), lookups on
 * one thread, and lookups spread over the engine's workers.
 */
import { type SuiteId } from '../src/index.js';
import { Kernel, type MatrixEngine, type RevisionTable } from '../src/engine/index.js';

/** Best of `rounds` timings of f, in calls per second times `per`. */
function best(f: () => void, per: number, ms = 400, rounds = 5): number {
  let top = 0;
  for (let r = 0; r < rounds; r++) {
    let k = 0;
    const t0 = performance.now();
    do {
      f();
      k++;
    } while (performance.now() - t0 < ms / rounds);
    top = Math.max(top, (k * per) / ((performance.now() - t0) / 1000));
  }
  return top;
}

/** Independent random 8-byte reads per second from a buffer of `bytes` (one thread, all pages present). */
export function readRate(bytes: number): number {
  const buf = new SharedArrayBuffer(bytes);
  const u = new Uint32Array(buf);
  for (let i = 0; i < u.length; i += 1024) u[i] = i; // every page present, as a built table's are
  const slots = Math.floor(bytes / 8);
  const n = 1 << 20;
  const idx = new Uint32Array(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    idx[i] = ((x >>> 0) % slots) * 2;
  }
  return best(() => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const p = idx[i] as number;
      s = (s + (u[p] as number) + (u[p + 1] as number)) | 0;
    }
    readSink ^= s;
  }, n);
}
/** Keeps the reads of readRate observable. */
export let readSink = 0;

/** The 4-byte hints of n pseudo-random symbols of a revision. */
export function hintsOf(suite: SuiteId, hk: Uint8Array, w: number, n: number): Uint8Array {
  const k = new Kernel();
  k.setKey(hk);
  const syms = new Uint32Array(n);
  for (let i = 0; i < n; i++) syms[i] = Math.imul(i, 2654435761) >>> (32 - w);
  const h = k.hintList(suite, w, 4, syms);
  k.wipe();
  return h;
}

/** Lookups per second on this thread (RevisionTable.lookupMany, 4096-hint frames). */
export function lookupRate(table: RevisionTable, hints: Uint8Array): number {
  const frame = 4096;
  const out = new Int32Array(frame);
  const frames = Math.floor(hints.length / 4 / frame);
  let f = 0;
  return best(() => {
    table.lookupMany(hints.subarray(f * frame * 4, (f + 1) * frame * 4), out);
    f = (f + 1) % frames;
  }, frame);
}

/** Lookups per second with `workers` workers of `engine` on one large batch (MatrixEngine.lookupMany). */
export async function workerRate(engine: MatrixEngine, table: RevisionTable, hints: Uint8Array, workers: number): Promise<number> {
  const n = hints.length / 4;
  const out = new Int32Array(n);
  await engine.lookupMany(table, hints, out, workers);
  let top = 0;
  for (let r = 0; r < 4; r++) {
    const t0 = performance.now();
    await engine.lookupMany(table, hints, out, workers);
    top = Math.max(top, n / ((performance.now() - t0) / 1000));
  }
  return top;
}
