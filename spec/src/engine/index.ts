/**
 * @module engine
 * The live matrix engine: WebAssembly SIMD kernels, worker threads (or none), revision tables
 * built in place (exact up to w = 23, compact at w = 24), lookups on one thread or spread over
 * the workers, scan mode and the self-benchmark (the revision pipeline that drives it per
 * revision is the device's: @livematrix/device-sdk).
 */
export { KERNEL_BATCH, Kernel, kernelModule, kernelVerifier, packageRoot, type KernelModule } from './kernel.js';
export { COMPACT_FROM, ENTRY_BYTES, RevisionTable, allocTable, tableBytes, tableLayout, type DigestFn, type TableLayout, type TableMemory, type Verifier } from './table.js';
export { ABSENT, AMBIGUOUS, MatrixEngine, type BuildReport, type EngineOptions } from './engine.js';
