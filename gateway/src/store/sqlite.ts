/**
 * @module store/sqlite
 * The SQLite segment table ([LM-SVC-4]): `store.db` in the store's directory (WAL,
 * synchronous=FULL, secure_delete: removed and re-encrypted rows are overwritten with zeros).
 * Writers take the write lock first (`BEGIN IMMEDIATE`), so a put and a rotation's change of
 * the write epoch serialise, also across processes sharing the file.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError, LmError, Reason, errorMessage, toHex } from '@livematrix/spec';
import { STORE_FILE, type Census, type SegmentTable, type StoreMeta, type StoredRow } from './types.js';

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS lm_store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lm_segments (
  id BLOB PRIMARY KEY CHECK (length(id) = 16), epoch INTEGER NOT NULL, size INTEGER NOT NULL, bytes BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS lm_segments_epoch ON lm_segments (epoch);
`;

type Db = Database.Database;
interface Row {
  id: Buffer;
  epoch: number;
  size: number;
  bytes: Buffer;
}
const toRow = (r: Row): StoredRow => ({ id: new Uint8Array(r.id), epoch: r.epoch, size: r.size, bytes: r.bytes });

/** Opens (creating when needed) the SQLite segment table in `dir`. */
export function openSqliteSegments(dir: string): SegmentTable {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, STORE_FILE);
  let db: Db;
  try {
    db = new Database(file, { timeout: 10_000 });
  } catch (e) {
    throw new ConfigError(`cannot open the segment store ${file}: ${errorMessage(e)}`, { cause: e });
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('secure_delete = ON');
    db.transaction(() => {
      db.exec(SCHEMA);
      const v = db.prepare<[], { value: number }>("SELECT value FROM lm_store_meta WHERE key = 'schema'").get();
      if (!v) db.prepare("INSERT INTO lm_store_meta (key, value) VALUES ('schema', ?)").run(SCHEMA_VERSION);
      else if (v.value > SCHEMA_VERSION) throw new ConfigError(`${file}: segment store schema version ${v.value} is newer than this gateway's (${SCHEMA_VERSION})`);
    }).immediate();
  } catch (e) {
    db.close();
    throw e;
  }
  return new SqliteSegments(db, file);
}

class SqliteSegments implements SegmentTable {
  readonly kind = 'sqlite';
  private closed = false;
  private readonly q;

  constructor(private readonly db: Db, readonly location: string) {
    this.q = {
      meta: db.prepare<[string], { value: number }>('SELECT value FROM lm_store_meta WHERE key = ?'),
      setMeta: db.prepare<[string, number]>('INSERT INTO lm_store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      one: db.prepare<[Uint8Array], Row>('SELECT id, epoch, size, bytes FROM lm_segments WHERE id = ?'),
      has: db.prepare<[Uint8Array], { id: Buffer }>('SELECT id FROM lm_segments WHERE id = ?'),
      insert: db.prepare<[Uint8Array, number, number, Uint8Array]>('INSERT INTO lm_segments (id, epoch, size, bytes) VALUES (?, ?, ?, ?)'),
      batch: db.prepare<[number, number], Row>('SELECT id, epoch, size, bytes FROM lm_segments WHERE epoch = ? LIMIT ?'),
      retag: db.prepare<[number, Uint8Array, Uint8Array, number]>('UPDATE lm_segments SET epoch = ?, bytes = ? WHERE id = ? AND epoch = ?'),
      remove: db.prepare<[Uint8Array]>('DELETE FROM lm_segments WHERE id = ?'),
      epochs: db.prepare<[], { epoch: number; count: number }>('SELECT epoch, count(*) AS count FROM lm_segments GROUP BY epoch ORDER BY epoch'),
      sizes: db.prepare<[], { size: number; count: number; stored: number }>('SELECT size, count(*) AS count, sum(length(bytes)) AS stored FROM lm_segments GROUP BY size ORDER BY size'),
    };
  }

  private open(): void {
    if (this.closed) throw new LmError(Reason.internal, `the segment store ${this.location} is closed`);
  }

  private write<T>(f: () => T): T {
    this.open();
    return this.db.transaction(f).immediate();
  }

  private metaNow(): StoreMeta {
    return { epoch: this.q.meta.get('epoch')?.value, rotated: this.q.meta.get('rotated')?.value };
  }

  async meta(): Promise<StoreMeta> {
    this.open();
    return this.metaNow();
  }

  async setEpoch(from: number | undefined, to: number, now?: number): Promise<boolean> {
    return this.write(() => {
      if (this.q.meta.get('epoch')?.value !== from) return false;
      this.q.setMeta.run('epoch', to);
      if (now !== undefined) this.q.setMeta.run('rotated', now);
      return true;
    });
  }

  async insert(seal: (epoch: number) => StoredRow[]): Promise<void> {
    this.write(() => {
      const epoch = this.q.meta.get('epoch')?.value;
      if (epoch === undefined) throw new LmError(Reason.internal, `${this.location}: the store has no epoch yet`);
      const rows = seal(epoch);
      for (const r of rows) {
        if (this.q.has.get(r.id)) throw new LmError(Reason.schema, `segment ${toHex(r.id)} is stored already ([LM-SVC-4])`);
        this.q.insert.run(r.id, r.epoch, r.size, r.bytes);
      }
    });
  }

  async read(ids: readonly Uint8Array[]): Promise<(StoredRow | undefined)[]> {
    this.open();
    return this.db.transaction(() => ids.map((id) => {
      const r = this.q.one.get(id);
      return r ? toRow(r) : undefined;
    }))();
  }

  async move(from: number, to: number, limit: number, reseal: (row: StoredRow) => Uint8Array): Promise<number> {
    return this.write(() => {
      const rows = this.q.batch.all(from, limit);
      for (const r of rows) this.q.retag.run(to, reseal(toRow(r)), r.id, from);
      return rows.length;
    });
  }

  async remove(ids: readonly Uint8Array[]): Promise<number> {
    const n = this.write(() => ids.reduce((k, id) => k + this.q.remove.run(id).changes, 0));
    // the WAL still holds the removed rows' pages: copy what is live into the database and empty it
    if (n > 0) this.db.pragma('wal_checkpoint(TRUNCATE)');
    return n;
  }

  async census(): Promise<Census> {
    this.open();
    return this.db.transaction(() => {
      const sizes = this.q.sizes.all();
      return {
        epochs: this.q.epochs.all(),
        sizes: sizes.map(({ size, count }) => ({ size, count })),
        stored: sizes.reduce((n, s) => n + s.stored, 0),
      };
    })();
  }

  async compact(): Promise<void> {
    this.open();
    this.db.exec('VACUUM');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
