/**
 * @module engine
 * The live matrix engine: WebAssembly SIMD kernels, worker threads, compact revision tables,
 * scan mode, the revision pipeline and the self-benchmark.
 */
export * from './kernel.js';
export * from './table.js';
export * from './engine.js';
export * from './pipeline.js';
