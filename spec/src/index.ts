/**
 * @module @livematrix/spec
 * Reference code of the Live Matrix protocol v1 (SPEC.md): the one implementation of the
 * primitives that the gateway, the device SDK, the broker plugin and the conformance suite share.
 */
export * from './errors.js';
export * from './bytes.js';
export * from './cbor.js';
export * from './params.js';
export * from './hint.js';
export * from './pack.js';
export * from './keys.js';
export * from './aead.js';
export * from './frames.js';
export * from './identity.js';
export * from './tx.js';
export * from './timesync.js';
export * from './negotiate.js';
export * from './topics.js';
export * from './engine/index.js';
export * from './token.js';
