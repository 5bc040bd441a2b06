/**
 * @module engine/kernel
 * Loads the WebAssembly SIMD hash kernels (built from spec/assembly by `npm run build:wasm`) and
 * drives them: one call hashes a whole range of candidates; nothing crosses between JavaScript
 * and WebAssembly per hash.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LmError, Reason } from '../errors.js';
import type { SuiteId } from '../params.js';
import type { Verifier } from './table.js';

/** The part of the WebAssembly JS API used here (TypeScript's node lib does not declare it). */
interface WasmModule {
  readonly __wasmModule: unique symbol;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (m: WasmModule, imports: Record<string, Record<string, unknown>>) => { exports: unknown };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
export type KernelModule = WasmModule;

interface KernelExports {
  memory: { buffer: ArrayBuffer };
  initKeccak(): void;
  blake3Keys(w: number, start: number, count: number, out: number): void;
  blake3Digest(w: number, g: number): void;
  blake3List(w: number, inp: number, count: number, out: number): void;
  keccakList(w: number, inp: number, count: number, out: number, pad: number): void;
  keccakKeys(w: number, start: number, count: number, out: number, pad: number): void;
  keccakDigest(w: number, g: number, pad: number): void;
}

const KEY_PTR = 0;
const DIGEST_PTR = 64;
const OUT_PTR = 1024;
/** Candidates per kernel call; 256 KiB of keys in the module's memory. */
export const KERNEL_BATCH = 65536;

/** The spec package's root directory (holds package.json and assembly/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'assembly', 'gen-kernels.mjs'))) return dir;
    dir = dirname(dir);
  }
  throw new LmError(Reason.internal, 'cannot find the @livematrix/spec package root');
}

let compiled: WasmModule | undefined;

/** The compiled kernel module (shared by every instance in this thread). */
export function kernelModule(): WasmModule {
  if (compiled) return compiled;
  const path = join(packageRoot(), 'assembly', 'build', 'kernels.wasm');
  if (!existsSync(path)) throw new LmError(Reason.internal, `${path} is missing: run "npm run build" (it compiles the kernels from spec/assembly)`);
  const m = new WA.Module(readFileSync(path));
  compiled = m;
  return m;
}

const PAD: Record<1 | 2, number> = { 1: 0x01, 2: 0x06 };

/**
 * One instance of the kernels with its own memory. Not thread-safe; each worker has its own.
 *
 * @example
 * const k = new Kernel(); k.setKey(hk); const keys = new Uint32Array(1 << 16); k.keys(3, 20, 0, keys.length, keys, 0);
 */
export class Kernel {
  private readonly x: KernelExports;
  private mem: Uint8Array;
  constructor(module: WasmModule = kernelModule()) {
    const inst = new WA.Instance(module, { env: { abort: () => { throw new LmError(Reason.internal, 'kernel abort'); } } });
    this.x = inst.exports as unknown as KernelExports;
    this.x.initKeccak();
    this.mem = new Uint8Array(this.x.memory.buffer);
  }
  /** Loads the revision's hint key. */
  setKey(hk: Uint8Array): void {
    if (hk.length !== 32) throw new LmError(Reason.schema, `"hint key" expected Uint8Array of length 32, got length=${hk.length}`);
    this.mem.set(hk, KEY_PTR);
  }
  /** A copy of the loaded hint key (the caller erases it). */
  keyCopy(): Uint8Array {
    return this.mem.slice(KEY_PTR, KEY_PTR + 32);
  }
  /** Overwrites the key (and the last digest) with zeros; the scratch area is left as it is ([LM-KEY-4]). */
  wipeKey(): void {
    this.mem.fill(0, KEY_PTR, DIGEST_PTR + 32);
  }
  /** Overwrites the key and scratch areas with zeros ([LM-KEY-4]). */
  wipe(): void {
    this.mem.fill(0, KEY_PTR, DIGEST_PTR + 32); // [256, 1024) holds Keccak's round constants
    this.mem.fill(0, OUT_PTR, OUT_PTR + KERNEL_BATCH * 4);
  }
  /**
   * Writes into out[at + i] the key (first 4 digest bytes as a big-endian number) of candidate
   * start + i, for i < count.
   */
  keys(suite: SuiteId, w: number, start: number, count: number, out: Uint32Array, at: number): void {
    let done = 0;
    const view = new Uint32Array(this.x.memory.buffer, OUT_PTR, KERNEL_BATCH);
    while (done < count) {
      const n = Math.min(KERNEL_BATCH, count - done);
      const padded = (n + 7) & ~7; // kernels work in groups of 8 (blake3) or 2 (keccak)
      if (suite === 3) this.x.blake3Keys(w, start + done, padded, OUT_PTR);
      else this.x.keccakKeys(w, start + done, padded, OUT_PTR, PAD[suite]);
      out.set(n === KERNEL_BATCH ? view : view.subarray(0, n), at + done);
      done += n;
    }
  }
  /**
   * Hints of a list of symbols, concatenated (n·L bytes), as a sender needs them ([LM-HINT-1]).
   * L ≤ 4 runs in the kernel in batches; longer hints take one digest per symbol.
   */
  hintList(suite: SuiteId, w: number, L: number, symbols: ArrayLike<number>): Uint8Array {
    const n = symbols.length;
    const out = new Uint8Array(n * L);
    if (L > 4) {
      for (let i = 0; i < n; i++) out.set(this.digest(suite, w, symbols[i] as number).subarray(0, L), i * L);
      return out;
    }
    const half = KERNEL_BATCH / 2; // inputs in the first half of the output area, keys in the second
    const inView = new Uint32Array(this.x.memory.buffer, OUT_PTR, half);
    const keyView = new Uint32Array(this.x.memory.buffer, OUT_PTR + half * 4, half);
    for (let done = 0; done < n; done += half) {
      const m = Math.min(half, n - done);
      for (let i = 0; i < m; i++) inView[i] = symbols[done + i] as number;
      const padded = (m + 7) & ~7;
      inView.fill(0, m, padded);
      if (suite === 3) this.x.blake3List(w, OUT_PTR, padded, OUT_PTR + half * 4);
      else this.x.keccakList(w, OUT_PTR, padded, OUT_PTR + half * 4, PAD[suite]);
      for (let i = 0; i < m; i++) {
        const k = keyView[i] as number;
        const o = (done + i) * L;
        out[o] = k >>> 24;
        if (L > 1) out[o + 1] = (k >>> 16) & 0xff;
        if (L > 2) out[o + 2] = (k >>> 8) & 0xff;
        if (L > 3) out[o + 3] = k & 0xff;
      }
    }
    inView.fill(0);
    keyView.fill(0);
    return out;
  }

  /**
   * Keys (first 4 digest bytes as a big-endian number) of symbols[0, n) into out[0, n), in
   * batches in the kernel: what a compact table confirms its candidates with.
   */
  keyList(suite: SuiteId, w: number, symbols: Uint32Array, n: number, out: Uint32Array): void {
    const half = KERNEL_BATCH / 2; // inputs in the first half of the output area, keys in the second
    const inView = new Uint32Array(this.x.memory.buffer, OUT_PTR, half);
    const keyView = new Uint32Array(this.x.memory.buffer, OUT_PTR + half * 4, half);
    for (let done = 0; done < n; done += half) {
      const m = Math.min(half, n - done);
      inView.set(symbols.subarray(done, done + m));
      const padded = (m + 7) & ~7;
      inView.fill(0, m, padded);
      if (suite === 3) this.x.blake3List(w, OUT_PTR, padded, OUT_PTR + half * 4);
      else this.x.keccakList(w, OUT_PTR, padded, OUT_PTR + half * 4, PAD[suite]);
      out.set(keyView.subarray(0, m), done);
      inView.fill(0, 0, padded);
      keyView.fill(0, 0, padded);
    }
  }

  /** The full 32-byte digest D(HK, w, g) of SPEC.md §5.1. */
  digest(suite: SuiteId, w: number, g: number): Uint8Array {
    if (suite === 3) this.x.blake3Digest(w, g);
    else this.x.keccakDigest(w, g, PAD[suite]);
    return this.mem.slice(DIGEST_PTR, DIGEST_PTR + 32);
  }
}

/** A table's verifier on `kernel`, which holds the revision's hint key; wipe() erases the key. */
export function kernelVerifier(kernel: Kernel, suite: SuiteId, w: number): Verifier {
  return {
    digest: (g) => kernel.digest(suite, w, g),
    keys: (symbols, n, out) => kernel.keyList(suite, w, symbols, n, out),
    key: () => kernel.keyCopy(),
    wipe: () => kernel.wipe(),
  };
}
