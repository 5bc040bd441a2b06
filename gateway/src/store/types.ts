/**
 * @module store/types
 * The contracts of the protected-job store ([LM-SVC-3], [LM-SVC-4]): where its epoch keys come
 * from ({@link EpochSource}, the keys service), the table its backends implement
 * ({@link SegmentTable}: SQLite, PostgreSQL) and what it reports.
 */

/** The SQLite database file inside a store's directory. */
export const STORE_FILE = 'store.db';

/** An epoch and its key K_e. The caller owns `key` (a fresh copy): the store wipes it when it drops it. */
export interface EpochKey {
  e: number;
  key: Uint8Array;
}

/**
 * Where the store's epoch keys come from: the keys service's epoch chain ([LM-SVC-3]).
 * `current()` must reflect `established()` calls from every store instance sharing one database.
 */
export interface EpochSource {
  /** K_e of the current epoch e */
  current(): EpochKey;
  /** K_{e+1}: derived from c_e, not yet established; the same key on every call until then */
  next(): EpochKey;
  /**
   * The store finished re-encrypting every segment into `e`: the source may erase c_{e-1} and
   * K_{e-1}. Idempotent: an epoch already established is a no-op (several store instances on
   * one database each confirm it).
   */
  established(e: number): void;
}

/** A segment as the table holds it: the outer-sealed bytes, tagged with their epoch ([LM-SVC-3]). */
export interface StoredRow {
  id: Uint8Array;
  epoch: number;
  /** length of the inner segment (the outer layer adds 28 bytes) */
  size: number;
  /** nonce ‖ AEAD(K_epoch, nonce, segment, aad = "lm2 outer" ‖ id ‖ u64(epoch)) */
  bytes: Uint8Array;
}

/** What the store's database says about its epochs. */
export interface StoreMeta {
  /** the epoch new segments are written under; undefined in a new database */
  epoch: number | undefined;
  /** when (ms) the last rotation into `epoch` began */
  rotated: number | undefined;
}

/** Counts of a table, for {@link ProtectedStoreStats}. */
export interface Census {
  epochs: { epoch: number; count: number }[];
  sizes: { size: number; count: number }[];
  /** bytes at rest (outer-sealed) */
  stored: number;
}

/**
 * One backend of the store ([LM-SVC-4]): a table of (id, epoch, size, bytes) and the write
 * epoch. Writes that depend on the write epoch read it under a lock that `setEpoch` must wait
 * for, so no segment is ever written under an epoch a rotation has left.
 */
export interface SegmentTable {
  readonly kind: 'sqlite' | 'postgres';
  /** a name for messages (a path, or a URL without its password) */
  readonly location: string;
  meta(): Promise<StoreMeta>;
  /**
   * Compare and set of the write epoch: sets it to `to` (and the rotation time to `now` when
   * given) when it is `from` (undefined: when it was never set); true when it did.
   */
  setEpoch(from: number | undefined, to: number, now?: number): Promise<boolean>;
  /**
   * In one transaction: reads the write epoch (locked against `setEpoch`), calls `seal(epoch)`
   * and inserts the rows it returns. Refuses the whole batch (LmError, nothing stored) when an
   * id is present already.
   */
  insert(seal: (epoch: number) => StoredRow[]): Promise<void>;
  /** The rows of `ids`, in their order (undefined where absent). */
  read(ids: readonly Uint8Array[]): Promise<(StoredRow | undefined)[]>;
  /**
   * In one transaction: takes up to `limit` rows tagged `from`, replaces each one's bytes with
   * `reseal(row)` and tags it `to`. Returns how many it moved (0: none tagged `from` remain).
   */
  move(from: number, to: number, limit: number, reseal: (row: StoredRow) => Uint8Array): Promise<number>;
  /** Removes the rows of `ids`; returns how many there were. */
  remove(ids: readonly Uint8Array[]): Promise<number>;
  census(): Promise<Census>;
  /** Gives the space of removed rows back (SQLite VACUUM and a WAL truncation; PostgreSQL VACUUM). */
  compact(): Promise<void>;
  close(): Promise<void>;
}

/** What a store reports as it works (rotations run on a timer, so errors come here too). */
export type StoreEvent =
  /** a batch of a rotation was committed */
  | { kind: 'batch'; from: number; to: number; moved: number; total: number }
  /** every segment is under `epoch` and the source was told */
  | { kind: 'rotated'; epoch: number; moved: number; ms: number }
  /** a timer tick did not rotate: an instance on the same database rotated `ago` ms before */
  | { kind: 'skipped'; ago: number }
  /** a timed rotation failed; the next one finishes it */
  | { kind: 'error'; error: Error };

export interface ProtectedStoreStats {
  /** the epoch new segments are written under */
  epoch: number;
  segments: number;
  /** bytes of the segments (inner) */
  bytes: number;
  /** bytes at rest (outer-sealed, 28 more per segment) */
  stored: number;
  /** inner sizes and how many segments have each, by size ([LM-SVC-1]: one size per job) */
  sizes: { size: number; count: number }[];
  /** segments by epoch tag: one entry except during a rotation */
  epochs: { epoch: number; count: number }[];
}
