/**
 * @module keys-service/epochs
 * The epoch chain of the store's outer layer ([LM-SVC-3]): `c_0` random at the first open,
 * `c_{e+1} = HKDF-Expand(c_e, "lm2 epoch chain")`, `K_e = HKDF-Expand(c_e, "lm2 epoch key")`.
 * The service holds the current `c_e` (in memory, and sealed at rest in one row); `next()`
 * derives `c_{e+1}` without erasing `c_e`; `established(e + 1)` overwrites the row with
 * `c_{e+1}`, truncates the WAL and wipes `c_e`, after which no method can produce `K_e`.
 * `established(e)` of an epoch already established changes nothing (each store instance
 * confirms), and every call follows the row, so services sharing one database agree.
 */
import { LmError, Reason, epochKey, nextEpochChain, randomBytes, wipe } from '@livematrix/spec';
import { AtRest, u64be } from './at-rest.js';
import { type Db, scrub } from './db.js';

// the one contract between the store and its source of epoch keys ([LM-SVC-3]) is the store's
export type { EpochKey, EpochSource } from '../store/types.js';
import type { EpochKey, EpochSource } from '../store/types.js';

const rowKey = (e: number): Uint8Array => u64be(e);

/** The keys service's epoch chain over its database row `ks_epoch` (id 1). */
export class EpochChain implements EpochSource {
  private e: number;
  private c: Uint8Array;
  private pending: { e: number; c: Uint8Array } | undefined;
  private readonly q;

  private constructor(private readonly db: Db, private readonly rest: AtRest, e: number, c: Uint8Array) {
    this.e = e;
    this.c = c;
    this.q = {
      row: db.prepare<[], { e: number; sealed: Buffer }>('SELECT e, sealed FROM ks_epoch WHERE id = 1'),
      // only from e: another service process on the database may have moved it already, to the same c_{e+1}
      advance: db.prepare<[number, Uint8Array, number]>('UPDATE ks_epoch SET e = ?, sealed = ? WHERE id = 1 AND e = ?'),
    };
  }

  /** Loads the chain, starting it with a random `c_0` in a new database. */
  static load(db: Db, rest: AtRest): EpochChain {
    const row = db.prepare<[], { e: number; sealed: Buffer }>('SELECT e, sealed FROM ks_epoch WHERE id = 1').get();
    if (row) return new EpochChain(db, rest, row.e, rest.open('ks_epoch', rowKey(row.e), row.sealed));
    const c0 = randomBytes(32);
    db.prepare<[number, Uint8Array]>('INSERT INTO ks_epoch (id, e, sealed) VALUES (1, ?, ?)').run(0, rest.seal('ks_epoch', rowKey(0), c0));
    return new EpochChain(db, rest, 0, c0);
  }

  current(): EpochKey {
    this.sync();
    return { e: this.e, key: epochKey(this.c) };
  }

  next(): EpochKey {
    this.sync();
    this.pending ??= { e: this.e + 1, c: nextEpochChain(this.c) };
    return { e: this.pending.e, key: epochKey(this.pending.c) };
  }

  established(e: number): void {
    this.sync();
    if (Number.isSafeInteger(e) && e <= this.e) {
      scrub(this.db); // a repeat (or another store instance confirming): only finishes a checkpoint an earlier call could not complete
      return;
    }
    if (!Number.isSafeInteger(e) || e !== this.e + 1) {
      throw new LmError(Reason.schema, `epoch ${e} cannot be established: the current epoch is ${this.e}, and only ${this.e + 1} follows it ([LM-SVC-3])`);
    }
    const next = this.pending ?? { e, c: nextEpochChain(this.c) };
    this.pending = undefined;
    // the one row is overwritten (secure_delete zeroes the old cell), then the WAL is truncated
    this.q.advance.run(next.e, this.rest.seal('ks_epoch', rowKey(next.e), next.c), this.e);
    wipe(this.c);
    this.c = next.c;
    this.e = next.e;
    scrub(this.db);
  }

  /** Erases the chain from memory ([LM-KEY-4]). */
  destroy(): void {
    wipe(this.c, this.pending?.c);
    this.pending = undefined;
    this.e = -1;
  }

  /** Follows an epoch that another keys service process on the same database established. */
  private sync(): void {
    if (this.e < 0) throw new LmError(Reason.internal, 'the keys service is closed');
    const row = this.q.row.get();
    if (!row || row.e === this.e) return;
    if (row.e < this.e) throw new LmError(Reason.internal, `keys database: epoch ${row.e} is older than the service's ${this.e} (restored from a copy?)`);
    const c = this.rest.open('ks_epoch', rowKey(row.e), row.sealed);
    wipe(this.c, this.pending?.c);
    this.pending = undefined;
    this.c = c;
    this.e = row.e;
  }
}
