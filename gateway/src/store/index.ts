/**
 * @module store
 * `@livematrix/gateway/store`: the protected-job segment store ([LM-SVC-1], [LM-SVC-3],
 * [LM-SVC-4], [LM-SVC-5]) in SQLite or PostgreSQL. A separate entry point: the gateway that
 * streams jobs never loads it.
 */
export { EPOCH_MS, MAX_SEGMENT, MIN_SEGMENT, OUTER_OVERHEAD, ROTATION_BATCH, openStore, type ProtectedStore, type ReceiptSigner, type StoreOptions } from './store.js';
export { STORE_FILE, type Census, type EpochKey, type EpochSource, type ProtectedStoreStats, type SegmentTable, type StoreEvent, type StoreMeta, type StoredRow } from './types.js';
