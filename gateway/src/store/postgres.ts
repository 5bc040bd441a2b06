/**
 * @module store/postgres
 * The PostgreSQL segment table ([LM-SVC-4]), for store instances that share one database. A put
 * reads the write epoch `FOR SHARE`, so a rotation's change of it waits for puts in flight and
 * every later put sees the new epoch; a rotation batch locks its rows (`FOR UPDATE`, in id
 * order), so instances that rotate at once move each row once and an instance's last, empty
 * batch comes only after the others' batches committed. Tables are created on open under an
 * advisory lock. Removed rows are gone from the table; the space is PostgreSQL's to reclaim
 * (`compact()` runs VACUUM on the table).
 */
import pg from 'pg';
import { ConfigError, LmError, Reason, errorMessage, toHex } from '@livematrix/spec';
import { pgTransaction, redactUrl, sqlState } from '../db/postgres.js';
import type { Census, SegmentTable, StoreMeta, StoredRow } from './types.js';

/** Advisory lock keys (pg_advisory_xact_lock(int, int)): 'LM' and the segment store's schema. */
const LOCK_CLASS = 0x4c4d;
const LOCK_SCHEMA = 16;
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS lm_store_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS lm_segments (
  id BYTEA PRIMARY KEY CHECK (length(id) = 16), epoch INTEGER NOT NULL, size INTEGER NOT NULL, bytes BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS lm_segments_epoch ON lm_segments (epoch);
`;

interface Row {
  id: Buffer;
  epoch: number;
  size: number;
  bytes: Buffer;
}
const toRow = (r: Row): StoredRow => ({ id: new Uint8Array(r.id), epoch: r.epoch, size: r.size, bytes: r.bytes });
const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** Opens the segment table at a `postgres://` URL, creating its tables when needed. */
export async function openPostgresSegments(url: string): Promise<SegmentTable> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  const t = new PostgresSegments(pool, redactUrl(url));
  try {
    await t.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, LOCK_SCHEMA]);
      await c.query(SCHEMA);
      const v = (await c.query<{ value: string }>("SELECT value FROM lm_store_meta WHERE key = 'schema'")).rows[0];
      if (!v) await c.query("INSERT INTO lm_store_meta (key, value) VALUES ('schema', $1)", [SCHEMA_VERSION]);
      else if (Number(v.value) > SCHEMA_VERSION) throw new ConfigError(`${t.location}: segment store schema version ${v.value} is newer than this gateway's (${SCHEMA_VERSION})`);
    });
  } catch (e) {
    await pool.end().catch(() => undefined);
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot open the segment store ${t.location}: ${errorMessage(e)}`, { cause: e });
  }
  return t;
}

class PostgresSegments implements SegmentTable {
  readonly kind = 'postgres';
  private closed = false;

  constructor(private readonly pool: pg.Pool, readonly location: string) {}

  private open(): void {
    if (this.closed) throw new LmError(Reason.internal, `the segment store ${this.location} is closed`);
  }

  /** Runs `f` in one transaction on one connection; again (up to 3 times) after a deadlock. */
  tx<T>(f: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return pgTransaction(this.pool, f, 3, () => this.open());
  }

  async meta(): Promise<StoreMeta> {
    this.open();
    const rows = (await this.pool.query<{ key: string; value: string }>("SELECT key, value FROM lm_store_meta WHERE key IN ('epoch', 'rotated')")).rows;
    const get = (k: string) => {
      const r = rows.find((x) => x.key === k);
      return r ? Number(r.value) : undefined;
    };
    return { epoch: get('epoch'), rotated: get('rotated') };
  }

  async setEpoch(from: number | undefined, to: number, now?: number): Promise<boolean> {
    return this.tx(async (c) => {
      let done: boolean;
      if (from === undefined) {
        done = (await c.query("INSERT INTO lm_store_meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING", [to])).rowCount === 1;
      } else {
        // waits for puts holding the epoch FOR SHARE
        done = (await c.query("UPDATE lm_store_meta SET value = $1 WHERE key = 'epoch' AND value = $2", [to, from])).rowCount === 1;
      }
      if (done && now !== undefined) {
        await c.query("INSERT INTO lm_store_meta (key, value) VALUES ('rotated', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [now]);
      }
      return done;
    });
  }

  async insert(seal: (epoch: number) => StoredRow[]): Promise<void> {
    await this.tx(async (c) => {
      const m = (await c.query<{ value: string }>("SELECT value FROM lm_store_meta WHERE key = 'epoch' FOR SHARE")).rows[0];
      if (!m) throw new LmError(Reason.internal, `${this.location}: the store has no epoch yet`);
      const rows = seal(Number(m.value));
      if (rows.length === 0) return;
      const ids = rows.map((r) => buf(r.id));
      const present = (await c.query<{ id: Buffer }>('SELECT id FROM lm_segments WHERE id = ANY($1::bytea[]) LIMIT 1', [ids])).rows[0];
      if (present) throw new LmError(Reason.schema, `segment ${toHex(present.id)} is stored already ([LM-SVC-4])`);
      try {
        await c.query(
          'INSERT INTO lm_segments (id, epoch, size, bytes) SELECT * FROM unnest($1::bytea[], $2::int[], $3::int[], $4::bytea[])',
          [ids, rows.map((r) => r.epoch), rows.map((r) => r.size), rows.map((r) => buf(r.bytes))],
        );
      } catch (e) {
        // another instance stored one of these ids between the check and the insert
        if (sqlState(e) === '23505') throw new LmError(Reason.schema, `a segment of this put is stored already ([LM-SVC-4])`, { cause: e });
        throw e;
      }
    });
  }

  async read(ids: readonly Uint8Array[]): Promise<(StoredRow | undefined)[]> {
    this.open();
    if (ids.length === 0) return [];
    const rows = (await this.pool.query<Row>('SELECT id, epoch, size, bytes FROM lm_segments WHERE id = ANY($1::bytea[])', [ids.map(buf)])).rows;
    const by = new Map(rows.map((r) => [r.id.toString('hex'), r]));
    return ids.map((id) => {
      const r = by.get(toHex(id));
      return r ? toRow(r) : undefined;
    });
  }

  async move(from: number, to: number, limit: number, reseal: (row: StoredRow) => Uint8Array): Promise<number> {
    return this.tx(async (c) => {
      const rows = (await c.query<Row>('SELECT id, epoch, size, bytes FROM lm_segments WHERE epoch = $1 ORDER BY id LIMIT $2 FOR UPDATE', [from, limit])).rows;
      if (rows.length === 0) return 0;
      const bytes = rows.map((r) => buf(reseal(toRow(r))));
      await c.query(
        'UPDATE lm_segments s SET epoch = $1, bytes = u.bytes FROM unnest($2::bytea[], $3::bytea[]) AS u(id, bytes) WHERE s.id = u.id AND s.epoch = $4',
        [to, rows.map((r) => r.id), bytes, from],
      );
      return rows.length;
    });
  }

  async remove(ids: readonly Uint8Array[]): Promise<number> {
    this.open();
    if (ids.length === 0) return 0;
    return (await this.pool.query('DELETE FROM lm_segments WHERE id = ANY($1::bytea[])', [ids.map(buf)])).rowCount ?? 0;
  }

  async census(): Promise<Census> {
    return this.tx(async (c) => {
      await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      const epochs = (await c.query<{ epoch: number; count: string }>('SELECT epoch, count(*) AS count FROM lm_segments GROUP BY epoch ORDER BY epoch')).rows;
      const sizes = (await c.query<{ size: number; count: string; stored: string }>('SELECT size, count(*) AS count, sum(length(bytes)) AS stored FROM lm_segments GROUP BY size ORDER BY size')).rows;
      return {
        epochs: epochs.map((r) => ({ epoch: r.epoch, count: Number(r.count) })),
        sizes: sizes.map((r) => ({ size: r.size, count: Number(r.count) })),
        stored: sizes.reduce((n, r) => n + Number(r.stored), 0),
      };
    });
  }

  async compact(): Promise<void> {
    this.open();
    await this.pool.query('VACUUM lm_segments');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
