/**
 * @module engine
 * The live matrix engine: WebAssembly SIMD kernels, worker threads, compact revision tables,
 * scan mode and the self-benchmark (the revision pipeline that drives it per revision is the
 * device's: @livematrix/device-sdk).
 */
export { KERNEL_BATCH, Kernel, kernelModule, packageRoot, type KernelModule } from './kernel.js';
export { ENTRY_BYTES, RevisionTable, allocTable, tableBytes, type DigestFn, type TableLayout, type TableMemory } from './table.js';
export { ABSENT, AMBIGUOUS, MatrixEngine, type BuildReport, type EngineOptions } from './engine.js';
