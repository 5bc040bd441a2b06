/**
 * @module db/postgres
 * The PostgreSQL LicenceDb (node-postgres): for gateways that share one database. Counting
 * locks the transaction's row in `lm_prints` (SELECT ... FOR UPDATE), so two gateways cannot
 * both take the last print; appending takes a transaction-scoped advisory lock before it reads
 * the head, so two gateways can never fork the chain ([LM-LEDGER-3]). Tables are created on open
 * (under an advisory lock too, since gateways may start together).
 */
import pg from 'pg';
import { ConfigError, LmError, Reason, errorMessage, nextRecord } from '@livematrix/spec';

/** deadlock_detected, serialization_failure: a transaction worth running again */
const RETRY = new Set(['40P01', '40001']);

/**
 * Runs `f` in one transaction on one connection of `pool`; again, up to `attempts` times in all,
 * after a deadlock or a serialization failure. A connection whose ROLLBACK failed is discarded.
 */
export async function pgTransaction<T>(pool: pg.Pool, f: (c: pg.PoolClient) => Promise<T>, attempts = 1, before: () => void = () => undefined): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    before();
    const c = await pool.connect();
    let broken = false;
    try {
      await c.query('BEGIN');
      const r = await f(c);
      await c.query('COMMIT');
      return r;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => void (broken = true));
      if (attempt < attempts && RETRY.has(sqlState(e) ?? '')) continue;
      throw e;
    } finally {
      c.release(broken);
    }
  }
}
import {
  LEDGER_PAGE, checkAppend, checkNewSession, countUsed, endedSession, hexId, noSession, sessionKnown, sessionState, ticketUsed, toSession, uint,
  type SessionRow,
} from './common.js';
import { SCHEMA_VERSION, UNFINISHED_STATES, type LicenceDb, type NewSession, type ReceiptAppend, type SessionRecord, type SessionState } from './types.js';

/** Advisory lock keys (pg_advisory_xact_lock(int, int)): 'LM' and what they guard. */
const LOCK_CLASS = 0x4c4d;
const LOCK_SCHEMA = 0;
const LOCK_LEDGER = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS lm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lm_prints (txh TEXT PRIMARY KEY, used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lm_sessions (
  sid TEXT PRIMARY KEY, txh TEXT NOT NULL, device TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('offered', 'streaming', 'interrupted', 'resumed', 'failed', 'completed')),
  ticket TEXT UNIQUE, counted BOOLEAN NOT NULL DEFAULT FALSE, opened BIGINT NOT NULL, updated BIGINT NOT NULL,
  ord BIGSERIAL);
CREATE INDEX IF NOT EXISTS lm_sessions_txh ON lm_sessions (txh);
CREATE TABLE IF NOT EXISTS lm_ledger (seq BIGINT PRIMARY KEY, sid TEXT NOT NULL UNIQUE, hash BYTEA NOT NULL, record BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS lm_revocation (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, bytes BYTEA NOT NULL);
`;

/** The URL with any password replaced, for messages: no message or log shows a password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** SQLSTATE of a PostgreSQL error, if it is one. */
export function sqlState(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** Opens the licence database at a `postgres://` or `postgresql://` URL, creating its tables when needed. */
export async function openPostgresLicenceDb(url: string): Promise<LicenceDb> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // an idle client whose server went away: the next query on the pool reports it
  pool.on('error', () => undefined);
  const db = new PostgresLicenceDb(pool);
  try {
    await db.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, LOCK_SCHEMA]);
      await c.query(SCHEMA);
      const row = (await c.query<{ value: string }>("SELECT value FROM lm_meta WHERE key = 'schema'")).rows[0];
      if (!row) await c.query("INSERT INTO lm_meta (key, value) VALUES ('schema', $1)", [String(SCHEMA_VERSION)]);
      else if (Number(row.value) > SCHEMA_VERSION) throw new ConfigError(`${redactUrl(url)}: licence database schema version ${row.value} is newer than this gateway's (${SCHEMA_VERSION})`);
    });
  } catch (e) {
    await pool.end().catch(() => undefined);
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot open the licence database ${redactUrl(url)}: ${errorMessage(e)}`, { cause: e });
  }
  return db;
}

class PostgresLicenceDb implements LicenceDb {
  private closed = false;

  constructor(private readonly pool: pg.Pool) {}

  /** Runs `f` in one database transaction on one connection. */
  async tx<T>(f: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new LmError(Reason.internal, 'the licence database is closed');
    return pgTransaction(this.pool, f);
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    if (this.closed) throw new LmError(Reason.internal, 'the licence database is closed');
    return (await this.pool.query<R>(text, values)).rows;
  }

  private static async sessionOf(c: pg.PoolClient, sid: string): Promise<SessionRecord | undefined> {
    const r = (await c.query<SessionRow>('SELECT * FROM lm_sessions WHERE sid = $1 FOR UPDATE', [sid])).rows[0];
    return r ? toSession(r) : undefined;
  }

  async printsUsed(txh: string): Promise<number> {
    const rows = await this.query<{ used: number }>('SELECT used FROM lm_prints WHERE txh = $1', [hexId('txh', txh, 32)]);
    return rows[0]?.used ?? 0;
  }

  async openSession(s: NewSession): Promise<void> {
    const n = checkNewSession(s);
    try {
      await this.query("INSERT INTO lm_sessions (sid, txh, device, state, ticket, counted, opened, updated) VALUES ($1, $2, $3, 'offered', $4, FALSE, $5, $5)", [n.sid, n.txh, n.device, n.ticket ?? null, n.time]);
    } catch (e) {
      if (sqlState(e) !== '23505') throw e; // unique_violation: the sid, or the ticket, is taken
      const known = await this.query<{ sid: string }>('SELECT sid FROM lm_sessions WHERE sid = $1', [n.sid]);
      if (known.length > 0) throw sessionKnown(n.sid);
      throw ticketUsed(n.ticket ?? '');
    }
  }

  async countPrint(sid: string, limit: number, time: number): Promise<number> {
    const id = hexId('sid', sid, 16);
    uint('limit', limit);
    uint('time', time);
    return this.tx(async (c) => {
      const s = await PostgresLicenceDb.sessionOf(c, id);
      if (!s) throw noSession(id);
      if (s.state === 'completed' || s.state === 'failed') throw endedSession(id, s.state);
      // the transaction's row, locked: counters of the same transaction wait here ([LM-LEDGER-3])
      await c.query('INSERT INTO lm_prints (txh, used) VALUES ($1, 0) ON CONFLICT (txh) DO NOTHING', [s.txh]);
      const used = (await c.query<{ used: number }>('SELECT used FROM lm_prints WHERE txh = $1 FOR UPDATE', [s.txh])).rows[0]?.used ?? 0;
      if (s.counted) return used; // counted once ([LM-TX-7])
      if (s.ticket !== undefined) {
        await c.query("UPDATE lm_sessions SET state = 'streaming', updated = $1 WHERE sid = $2", [time, id]); // a resume counts no print
        return used;
      }
      if (used >= limit) throw countUsed(s.txh, used, limit);
      await c.query('UPDATE lm_prints SET used = $1 WHERE txh = $2', [used + 1, s.txh]);
      await c.query("UPDATE lm_sessions SET state = 'streaming', counted = TRUE, updated = $1 WHERE sid = $2", [time, id]);
      return used + 1;
    });
  }

  async setState(sid: string, state: SessionState, time: number): Promise<void> {
    const id = hexId('sid', sid, 16);
    const st = sessionState(state);
    uint('time', time);
    await this.tx(async (c) => {
      const s = await PostgresLicenceDb.sessionOf(c, id);
      if (!s) throw noSession(id);
      if (s.state === 'completed') throw endedSession(id, s.state);
      await c.query('UPDATE lm_sessions SET state = $1, updated = $2 WHERE sid = $3', [st, time, id]);
    });
  }

  async session(sid: string): Promise<SessionRecord | undefined> {
    const r = (await this.query<SessionRow>('SELECT * FROM lm_sessions WHERE sid = $1', [hexId('sid', sid, 16)]))[0];
    return r ? toSession(r) : undefined;
  }

  async unfinished(txh: string): Promise<SessionRecord[]> {
    const rows = await this.query<SessionRow>('SELECT * FROM lm_sessions WHERE txh = $1 AND state = ANY($2) ORDER BY opened, ord', [hexId('txh', txh, 32), UNFINISHED_STATES]);
    return rows.map(toSession);
  }

  async appendReceipt(sid: string, r: ReceiptAppend): Promise<{ seq: number; hash: Uint8Array }> {
    const id = hexId('sid', sid, 16);
    return this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, LOCK_LEDGER]); // one appender at a time ([LM-LEDGER-3])
      const done = (await c.query<{ seq: string; hash: Buffer }>('SELECT seq, hash FROM lm_ledger WHERE sid = $1', [id])).rows[0];
      if (done) return { seq: Number(done.seq), hash: new Uint8Array(done.hash) }; // one record per session ([LM-LEDGER-4])
      const s = await PostgresLicenceDb.sessionOf(c, id);
      if (!s) throw noSession(id);
      const entry = checkAppend(id, s, r); // [LM-LEDGER-5]
      const head = (await c.query<{ seq: string; hash: Buffer }>('SELECT seq, hash FROM lm_ledger ORDER BY seq DESC LIMIT 1')).rows[0];
      const rec = nextRecord(head ? { seq: Number(head.seq), hash: new Uint8Array(head.hash) } : undefined, entry); // [LM-LEDGER-2]
      await c.query('INSERT INTO lm_ledger (seq, sid, hash, record) VALUES ($1, $2, $3, $4)', [rec.seq, id, Buffer.from(rec.hash), Buffer.from(rec.bytes)]);
      await c.query("UPDATE lm_sessions SET state = 'completed', updated = $1 WHERE sid = $2", [entry.time, id]);
      return { seq: rec.seq, hash: rec.hash };
    });
  }

  async *ledger(fromSeq = 1): AsyncIterable<Uint8Array> {
    let next = uint('fromSeq', fromSeq);
    for (;;) {
      const rows = await this.query<{ seq: string; record: Buffer }>('SELECT seq, record FROM lm_ledger WHERE seq >= $1 ORDER BY seq LIMIT $2', [next, LEDGER_PAGE]);
      for (const row of rows) yield new Uint8Array(row.record);
      if (rows.length < LEDGER_PAGE) return;
      next = Number((rows[rows.length - 1] as { seq: string }).seq) + 1;
    }
  }

  async revocation(): Promise<Uint8Array | undefined> {
    const row = (await this.query<{ bytes: Buffer }>('SELECT bytes FROM lm_revocation WHERE id = 1'))[0];
    return row ? new Uint8Array(row.bytes) : undefined;
  }

  async saveRevocation(bytes: Uint8Array, seq: number): Promise<boolean> {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('"bytes" expected Uint8Array');
    uint('seq', seq);
    const rows = await this.query<{ id: number }>(
      'INSERT INTO lm_revocation (id, seq, bytes) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, bytes = excluded.bytes WHERE lm_revocation.seq < excluded.seq RETURNING id',
      [seq, Buffer.from(bytes)],
    );
    return rows.length === 1;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
