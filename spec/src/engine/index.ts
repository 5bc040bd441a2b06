/**
 * @module engine
 * The live matrix engine: WebAssembly SIMD kernels, worker threads, compact revision tables,
 * scan mode and the self-benchmark (the revision pipeline that drives it per revision is the
 * device's: @livematrix/device-sdk).
 */
export * from './kernel.js';
export * from './table.js';
export * from './engine.js';
