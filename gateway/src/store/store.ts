/**
 * @module store/store
 * The protected-job store ([LM-SVC-1], [LM-SVC-3], [LM-SVC-4], [LM-SVC-5]): segments of one
 * size among decoys, each held as `sealOuter(K_e, e, id, segment)` tagged with its epoch e. K_e
 * is held in memory only, taken from the keys service's epoch chain ({@link EpochSource}).
 *
 * Rotation (every `epochMs`, default 120 s): the write epoch in the database moves to e+1 first
 * (new puts go there), then every row of e is re-encrypted into e+1 in batches, one database
 * transaction each, while reads go on (a row is opened under the epoch it is tagged with; both
 * keys are held until the end); then K_e is wiped and the source is told e+1 is established, so
 * it may erase c_e. A copy of the files taken in epoch e then opens nothing.
 *
 * Crash safety, the rule: the source erases c_e only after `established(e+1)`, which the store
 * calls only once no row of e remains. So at open, with the source at e:
 * - write epoch e, rows all of e: nothing to do;
 * - write epoch e+1 (a rotation was interrupted, or finished before it told the source): the
 *   store takes K_{e+1} = `next()` again (the chain is deterministic: the same key), finishes
 *   moving the rows of e and calls `established(e+1)`;
 * - rows of an epoch below e, or a write epoch other than e or e+1, with segments present: their
 *   keys are erased or the source is behind the store (a copy restored on one side): refused.
 * An empty store adopts the source's epoch.
 *
 * Several instances on one PostgreSQL database share one source: an instance reading a row of an
 * epoch it holds no key for asks the source again (`current()`, or `next()` during another's
 * rotation); an instance whose timer finds a rotation started less than 0.9 of a period ago (by
 * any instance) skips it; instances rotating at once each move rows until none of the old epoch
 * remain, and each confirms `established(e+1)`.
 */
import {
  type IdentityKeyPair, LmError, Reason, type Segment, openOuter, sealOuter, signDeletionReceipt, toHex, toLmError, verifyDelete, wipe,
} from '@livematrix/spec';
import { type Cancel, type Clock, systemClock } from '../clock.js';
import type { EpochSource, ProtectedStoreStats, SegmentTable, StoreEvent, StoredRow } from './types.js';

/** default epoch length ([LM-SVC-3]) */
export const EPOCH_MS = 120_000;
/** default rows re-encrypted per database transaction during a rotation */
export const ROTATION_BATCH = 256;
/** bytes the outer layer adds: a 12-byte nonce and a 16-byte tag ([LM-SVC-3]) */
export const OUTER_OVERHEAD = 28;
/** segment sizes: C + 16 with 256 <= C <= 65536 ([LM-SVC-1]) */
export const MIN_SEGMENT = 256 + 16;
export const MAX_SEGMENT = 65536 + 16;

export interface StoreOptions {
  /** SQLite: the store's directory (holding `store.db`) */
  dir?: string;
  /** PostgreSQL: a `postgres://` URL; store instances on one database serve the same segments */
  url?: string;
  /** the keys service's epoch chain */
  epochs: EpochSource;
  /** time and timers (default the host's) */
  clock?: Clock;
  /** epoch length, ms (default 120 000); 0: no timer, rotate() only */
  epochMs?: number;
  /** rows per rotation transaction (default 256) */
  batch?: number;
  /** batches, rotations, errors of timed rotations */
  onEvent?: (ev: StoreEvent) => void;
}

/** The store ([LM-SVC-4]); open one with {@link openStore}. */
export interface ProtectedStore {
  /** the database's kind and location (no password) */
  readonly location: string;
  /**
   * Stores segments under the current write epoch, in one transaction ([LM-SVC-1]): all of one
   * size (C + 16), ids of 16 bytes, none stored already; otherwise LmError `schema` and nothing
   * is stored.
   */
  put(segments: readonly Segment[]): Promise<void>;
  /** The segments of `ids` in their order, outer layer removed; an unknown id: LmError `unknown` naming it. */
  get(ids: readonly Uint8Array[]): Promise<Uint8Array[]>;
  /** Re-encrypts every segment into the next epoch ([LM-SVC-3]); concurrent calls share one rotation. */
  rotate(): Promise<void>;
  /** Removes the segments of `ids` ([LM-SVC-5]); returns how many were stored. Unknown ids are skipped. */
  delete(ids: readonly Uint8Array[]): Promise<number>;
  /**
   * The store's part of an owner's delete ([LM-SVC-5]): verifies the delete transaction's
   * signature (LmError, nothing removed), removes `ids` (the job's real and decoy ids, from the
   * keys service's answer to the same delete) and returns the store's signed deletion receipt.
   * That the signer owns the job is the keys service's check: the store never sees uploads.
   */
  deleteJob(deleteTx: Uint8Array, ids: readonly Uint8Array[], signer: ReceiptSigner): Promise<{ removed: number; receipt: Uint8Array }>;
  /** Gives the space of removed rows back (SQLite: VACUUM, then the WAL truncated). */
  compact(): Promise<void>;
  stats(): Promise<ProtectedStoreStats>;
  /** Stops the timer, ends a rotation at its next batch (the next open finishes it), wipes the keys. */
  close(): Promise<void>;
}

/** Who signs the store's deletion receipts ([LM-SVC-5]). */
export interface ReceiptSigner {
  /** the store's Ed25519 identity */
  identity: IdentityKeyPair;
  /** its name in receipts (1 to 64 characters) */
  service: string;
}

/** what a finished rotation reports */
type Rotated = { epoch: number; moved: number; ms: number };

function checkId(id: unknown, what: string): Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== 16) throw new LmError(Reason.schema, `${what}: a segment id is 16 bytes`);
  return id;
}

/**
 * Opens a store: SQLite in `dir` or PostgreSQL at `url` (exactly one), reconciles it with the
 * epoch source (finishing an interrupted rotation), and starts the rotation timer.
 *
 * @example
 * const store = await openStore({ dir: '/var/lib/livematrix/store', epochs: keysService.epochs });
 * await store.put(upload.segments);
 */
export async function openStore(o: StoreOptions): Promise<ProtectedStore> {
  if ((o.dir === undefined) === (o.url === undefined)) throw new TypeError('openStore: give exactly one of "dir" (SQLite) and "url" (PostgreSQL)');
  const epochMs = o.epochMs ?? EPOCH_MS;
  const batch = o.batch ?? ROTATION_BATCH;
  if (!Number.isSafeInteger(epochMs) || epochMs < 0) throw new RangeError(`"epochMs" expected a non-negative integer, got ${epochMs}`);
  if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`"batch" expected a positive integer, got ${batch}`);
  const table = o.url !== undefined
    ? await (await import('./postgres.js')).openPostgresSegments(o.url)
    : (await import('./sqlite.js')).openSqliteSegments(o.dir as string);
  const store = new Store(table, o.epochs, o.clock ?? systemClock(), epochMs, batch, o.onEvent ?? (() => undefined));
  try {
    await store.reconcile();
  } catch (e) {
    await store.close();
    throw e;
  }
  store.start();
  return store;
}

class Store implements ProtectedStore {
  /** epoch keys held, by epoch: one, two during a rotation; the store's own copies, wiped when dropped */
  private readonly keys = new Map<number, Uint8Array>();
  private rotation: Promise<void> | undefined;
  private timer: Cancel | undefined;
  private closed = false;

  constructor(
    private readonly table: SegmentTable,
    private readonly source: EpochSource,
    private readonly clock: Clock,
    private readonly epochMs: number,
    private readonly batch: number,
    private readonly emit: (ev: StoreEvent) => void,
  ) {}

  get location(): string {
    return `${this.table.kind}:${this.table.location}`;
  }

  /** Brings the store and the source into agreement at open (the rule in the module's doc). */
  async reconcile(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = this.learn();
      const meta = await this.table.meta();
      const census = await this.table.census();
      const count = census.epochs.reduce((n, x) => n + x.count, 0);
      if (count === 0) {
        if (meta.epoch === cur.e || (await this.table.setEpoch(meta.epoch, cur.e))) return;
        continue; // another instance moved it: look again
      }
      const d = meta.epoch;
      const stray = census.epochs.filter((x) => x.epoch !== cur.e && x.epoch !== d);
      if (d === undefined || (d !== cur.e && d !== cur.e + 1) || stray.length > 0) {
        const tags = census.epochs.map((x) => `${x.count} of epoch ${x.epoch}`).join(', ');
        throw new LmError(
          Reason.auth,
          `${this.location}: segments ${tags}, write epoch ${String(d)}, but the keys service is at epoch ${cur.e}: ` +
            `${d !== undefined && d > cur.e + 1 ? 'the keys service is behind this store' : 'their epoch keys are erased (are these files a copy from an earlier epoch?)'} ([LM-SVC-3])`,
        );
      }
      if (d === cur.e + 1) this.emit({ kind: 'rotated', ...(await this.sweep(cur.e, d)) }); // an interrupted rotation: finish it
      return;
    }
    throw new LmError(Reason.internal, `${this.location}: the write epoch kept changing while opening`);
  }

  start(): void {
    if (this.epochMs > 0) this.timer = this.clock.every(this.epochMs, () => void this.tick());
  }

  private async tick(): Promise<void> {
    if (this.closed || this.rotation) return;
    try {
      // an instance on the same database rotated within this period (0.9 of it, for timer
      // jitter): done. Instances out of phase thus leave the rotating to the earliest.
      const { rotated } = await this.table.meta();
      const ago = rotated === undefined ? Infinity : this.clock.now() - rotated;
      if (ago < this.epochMs * 0.9) {
        this.emit({ kind: 'skipped', ago });
        return;
      }
      await this.rotate();
    } catch (e) {
      if (!this.closed) this.emit({ kind: 'error', error: toLmError(e, 'rotation') });
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new LmError(Reason.internal, `the store ${this.location} is closed`);
  }

  /**
   * The source's current epoch, its key held; keys of epochs before it dropped and wiped (the
   * source erased them: every row has left them).
   */
  private learn(): { e: number } {
    const cur = this.source.current();
    if (this.keys.has(cur.e)) wipe(cur.key);
    else this.keys.set(cur.e, cur.key);
    for (const [e, k] of this.keys) {
      if (e < cur.e) {
        wipe(k);
        this.keys.delete(e);
      }
    }
    return { e: cur.e };
  }

  /** K_t when it still exists: the source's current epoch, or the next one (during a rotation). */
  private keyFor(t: number): Uint8Array | undefined {
    const held = this.keys.get(t);
    if (held) return held;
    const cur = this.learn();
    if (t === cur.e) return this.keys.get(t);
    if (t === cur.e + 1) {
      const n = this.source.next();
      if (n.e !== t) {
        wipe(n.key);
        throw new LmError(Reason.internal, `the epoch source's next epoch is ${n.e}, not ${t}`);
      }
      this.keys.set(t, n.key);
      return n.key;
    }
    return undefined;
  }

  async put(segments: readonly Segment[]): Promise<void> {
    this.ensureOpen();
    if (segments.length === 0) return;
    const size = segments[0]?.bytes.length ?? 0;
    if (!Number.isInteger(size) || size < MIN_SEGMENT || size > MAX_SEGMENT) {
      throw new LmError(Reason.schema, `put: a segment of ${size} bytes; a segment is C + 16 bytes, ${MIN_SEGMENT}..${MAX_SEGMENT} ([LM-SVC-1])`);
    }
    const seen = new Set<string>();
    for (const s of segments) {
      const id = checkId(s.id, 'put');
      if (!(s.bytes instanceof Uint8Array) || s.bytes.length !== size) {
        throw new LmError(Reason.schema, `put: segment ${toHex(id)} has ${s.bytes.length} bytes, the others ${size}: one put holds segments of one size ([LM-SVC-1])`);
      }
      const h = toHex(id);
      if (seen.has(h)) throw new LmError(Reason.schema, `put: segment ${h} is given twice`);
      seen.add(h);
    }
    await this.table.insert((epoch) => {
      const key = this.keyFor(epoch);
      if (!key) throw new LmError(Reason.internal, `put: no key for the write epoch ${epoch}`);
      return segments.map((s): StoredRow => ({ id: s.id.slice(), epoch, size, bytes: sealOuter(key, epoch, s.id, s.bytes) }));
    });
  }

  async get(ids: readonly Uint8Array[]): Promise<Uint8Array[]> {
    this.ensureOpen();
    ids.forEach((id) => checkId(id, 'get'));
    const out: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(ids.length);
    let pending = ids.map((_, i) => i);
    // a row read just before a rotation re-tagged it may find its old key wiped: read it again
    for (let attempt = 0; attempt < 3 && pending.length > 0; attempt++) {
      const rows = await this.table.read(pending.map((i) => ids[i] as Uint8Array));
      this.ensureOpen();
      const again: number[] = [];
      rows.forEach((row, k) => {
        const i = pending[k] as number;
        if (!row) throw new LmError(Reason.unknown, `get: no segment ${toHex(ids[i] as Uint8Array)} in the store`);
        const key = this.keyFor(row.epoch); // looked up now: a key is only wiped between awaits
        if (key) out[i] = openOuter(key, row.epoch, row.id, row.bytes);
        else again.push(i);
      });
      pending = again;
    }
    const first = pending[0];
    if (first !== undefined) {
      throw new LmError(Reason.auth, `get: segment ${toHex(ids[first] as Uint8Array)} is tagged with an epoch whose key is erased ([LM-SVC-3])`);
    }
    return out as Uint8Array[];
  }

  rotate(): Promise<void> {
    this.ensureOpen();
    this.rotation ??= (async () => {
      let done: Rotated;
      try {
        done = await this.rotateNow();
      } finally {
        this.rotation = undefined;
      }
      this.emit({ kind: 'rotated', ...done }); // reported once the store can rotate again
    })();
    return this.rotation;
  }

  private async rotateNow(): Promise<Rotated> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const from = this.learn().e;
      const to = from + 1;
      const { epoch } = await this.table.meta();
      // new puts go to e+1 from here on; an instance already rotating set it: join its sweep
      if (epoch === from && !(await this.table.setEpoch(from, to, this.clock.now()))) continue;
      if (epoch !== from && epoch !== to) {
        if (epoch !== undefined && epoch < from) continue; // read before another instance's update: look again
        throw new LmError(Reason.internal, `${this.location}: write epoch ${String(epoch)}, the keys service at ${from}`);
      }
      return await this.sweep(from, to);
    }
    throw new LmError(Reason.internal, `${this.location}: the write epoch kept changing during a rotation`);
  }

  /** Moves every row of `from` into `to`, batch by batch, then establishes `to` ([LM-SVC-3]). */
  private async sweep(from: number, to: number): Promise<Rotated> {
    const started = this.clock.now();
    const kFrom = this.keyFor(from);
    const kTo = this.keyFor(to);
    if (!kFrom || !kTo) throw new LmError(Reason.internal, `rotation ${from} -> ${to}: the epoch source has no key for ${kFrom ? to : from}`);
    let total = 0;
    for (;;) {
      if (this.closed) throw new LmError(Reason.aborted, `rotation ${from} -> ${to} stopped by close() after ${total} segments; the next open finishes it`);
      const moved = await this.table.move(from, to, this.batch, (row) => {
        const inner = openOuter(kFrom, from, row.id, row.bytes);
        try {
          return sealOuter(kTo, to, row.id, inner);
        } finally {
          wipe(inner);
        }
      });
      if (moved === 0) break;
      total += moved;
      this.emit({ kind: 'batch', from, to, moved, total });
      await new Promise<void>((resolve) => setImmediate(resolve)); // reads go on between batches
    }
    const k = this.keys.get(from);
    if (k) wipe(k);
    this.keys.delete(from);
    this.source.established(to); // the source may now erase c_from
    return { epoch: to, moved: total, ms: this.clock.now() - started };
  }

  async delete(ids: readonly Uint8Array[]): Promise<number> {
    this.ensureOpen();
    ids.forEach((id) => checkId(id, 'delete'));
    return this.table.remove(ids);
  }

  async deleteJob(deleteTx: Uint8Array, ids: readonly Uint8Array[], signer: ReceiptSigner): Promise<{ removed: number; receipt: Uint8Array }> {
    this.ensureOpen();
    const d = verifyDelete(deleteTx);
    const removed = await this.delete(ids);
    const receipt = signDeletionReceipt({ jid: d.jid, service: signer.service, removed, time: this.clock.now(), dh: d.hash }, signer.identity);
    return { removed, receipt };
  }

  async compact(): Promise<void> {
    this.ensureOpen();
    await this.table.compact();
  }

  async stats(): Promise<ProtectedStoreStats> {
    this.ensureOpen();
    const [meta, c] = await Promise.all([this.table.meta(), this.table.census()]);
    const segments = c.epochs.reduce((n, x) => n + x.count, 0);
    return {
      epoch: meta.epoch ?? this.learn().e,
      segments,
      bytes: c.sizes.reduce((n, s) => n + s.size * s.count, 0),
      stored: c.stored,
      sizes: c.sizes,
      epochs: c.epochs,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.();
    await this.rotation?.catch(() => undefined);
    await this.table.close();
    for (const k of this.keys.values()) wipe(k);
    this.keys.clear();
  }
}
