/**
 * @module db/sqlite
 * The SQLite LicenceDb (better-sqlite3): `:memory:` for tests and throw-away gateways, a file
 * for a durable one (WAL, synchronous=FULL: a committed count or record survives a crash or a
 * power cut). Writers that may count or append take the write lock first (`BEGIN IMMEDIATE`),
 * so gateway processes sharing the file serialise ([LM-LEDGER-3]).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError, LmError, Reason, nextRecord } from '@livematrix/spec';
import {
  LEDGER_PAGE, checkAppend, checkNewSession, countUsed, endedSession, hexId, noSession, sessionKnown, sessionState, ticketUsed, toSession, uint,
  type SessionRow,
} from './common.js';
import { SCHEMA_VERSION, UNFINISHED_STATES, type LicenceDb, type NewSession, type ReceiptAppend, type SessionRecord, type SessionState } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS lm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lm_prints (txh TEXT PRIMARY KEY, used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lm_sessions (
  sid TEXT PRIMARY KEY, txh TEXT NOT NULL, device TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('offered', 'streaming', 'interrupted', 'resumed', 'failed', 'completed')),
  ticket TEXT UNIQUE, counted INTEGER NOT NULL DEFAULT 0, opened INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS lm_sessions_txh ON lm_sessions (txh);
CREATE TABLE IF NOT EXISTS lm_ledger (seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, hash BLOB NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lm_revocation (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, bytes BLOB NOT NULL);
`;

type Db = Database.Database;

function migrate(db: Db, location: string): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(SCHEMA);
    const row = db.prepare<[], { value: string }>("SELECT value FROM lm_meta WHERE key = 'schema'").get();
    if (!row) db.prepare("INSERT INTO lm_meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    else if (Number(row.value) > SCHEMA_VERSION) throw new ConfigError(`${location}: licence database schema version ${row.value} is newer than this gateway's (${SCHEMA_VERSION})`);
    db.exec('COMMIT');
  } catch (e) {
    db.exec('ROLLBACK');
    throw e;
  }
}

/** Opens (creating when needed) the SQLite licence database at `location` (a path or `:memory:`). */
export async function openSqliteLicenceDb(location: string): Promise<LicenceDb> {
  const memory = location === ':memory:';
  if (!memory) mkdirSync(dirname(location), { recursive: true, mode: 0o700 });
  let db: Db;
  try {
    db = new Database(location, { timeout: 10_000 });
  } catch (e) {
    throw new ConfigError(`cannot open the licence database ${location}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  try {
    if (!memory) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    migrate(db, location);
  } catch (e) {
    db.close();
    throw e;
  }
  return new SqliteLicenceDb(db);
}

class SqliteLicenceDb implements LicenceDb {
  private readonly q;
  private closed = false;

  constructor(private readonly db: Db) {
    this.q = {
      used: db.prepare<[string], { used: number }>('SELECT used FROM lm_prints WHERE txh = ?'),
      session: db.prepare<[string], SessionRow>('SELECT * FROM lm_sessions WHERE sid = ?'),
      byTicket: db.prepare<[string], { sid: string }>('SELECT sid FROM lm_sessions WHERE ticket = ?'),
      insertSession: db.prepare<[string, string, string, string | null, number, number]>("INSERT INTO lm_sessions (sid, txh, device, state, ticket, counted, opened, updated) VALUES (?, ?, ?, 'offered', ?, 0, ?, ?)"),
      setState: db.prepare<[string, number, string]>('UPDATE lm_sessions SET state = ?, updated = ? WHERE sid = ?'),
      setCounted: db.prepare<[number, string]>("UPDATE lm_sessions SET state = 'streaming', counted = 1, updated = ? WHERE sid = ?"),
      upsertUsed: db.prepare<[string, number]>('INSERT INTO lm_prints (txh, used) VALUES (?, ?) ON CONFLICT (txh) DO UPDATE SET used = excluded.used'),
      unfinished: db.prepare<[string], SessionRow>(`SELECT * FROM lm_sessions WHERE txh = ? AND state IN (${UNFINISHED_STATES.map((s) => `'${s}'`).join(', ')}) ORDER BY opened, rowid`),
      recordOf: db.prepare<[string], { seq: number; hash: Buffer }>('SELECT seq, hash FROM lm_ledger WHERE sid = ?'),
      head: db.prepare<[], { seq: number; hash: Buffer }>('SELECT seq, hash FROM lm_ledger ORDER BY seq DESC LIMIT 1'),
      append: db.prepare<[number, string, Uint8Array, Uint8Array]>('INSERT INTO lm_ledger (seq, sid, hash, record) VALUES (?, ?, ?, ?)'),
      page: db.prepare<[number, number], { seq: number; record: Buffer }>('SELECT seq, record FROM lm_ledger WHERE seq >= ? ORDER BY seq LIMIT ?'),
      revocation: db.prepare<[], { bytes: Buffer }>('SELECT bytes FROM lm_revocation WHERE id = 1'),
      saveRevocation: db.prepare<[number, Uint8Array]>('INSERT INTO lm_revocation (id, seq, bytes) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, bytes = excluded.bytes WHERE excluded.seq > lm_revocation.seq'),
    };
  }

  /** Runs `f` in a write transaction taken at its start (BEGIN IMMEDIATE, [LM-LEDGER-3]). */
  private write<T>(f: () => T): T {
    this.open();
    return this.db.transaction(f).immediate();
  }

  private open(): void {
    if (this.closed) throw new LmError(Reason.internal, 'the licence database is closed');
  }

  private sessionOf(sid: string): SessionRecord | undefined {
    const r = this.q.session.get(sid);
    return r ? toSession(r) : undefined;
  }

  async printsUsed(txh: string): Promise<number> {
    this.open();
    return this.q.used.get(hexId('txh', txh, 32))?.used ?? 0;
  }

  async openSession(s: NewSession): Promise<void> {
    const n = checkNewSession(s);
    this.write(() => {
      if (this.q.session.get(n.sid)) throw sessionKnown(n.sid);
      if (n.ticket !== undefined && this.q.byTicket.get(n.ticket)) throw ticketUsed(n.ticket);
      this.q.insertSession.run(n.sid, n.txh, n.device, n.ticket ?? null, n.time, n.time);
    });
  }

  async countPrint(sid: string, limit: number, time: number): Promise<number> {
    const id = hexId('sid', sid, 16);
    uint('limit', limit);
    uint('time', time);
    return this.write(() => {
      const s = this.sessionOf(id);
      if (!s) throw noSession(id);
      if (s.state === 'completed' || s.state === 'failed') throw endedSession(id, s.state);
      const used = this.q.used.get(s.txh)?.used ?? 0;
      if (s.counted) return used; // counted once ([LM-TX-7])
      if (s.ticket !== undefined) {
        this.q.setState.run('streaming', time, id); // a resume counts no print
        return used;
      }
      if (used >= limit) throw countUsed(s.txh, used, limit);
      this.q.upsertUsed.run(s.txh, used + 1);
      this.q.setCounted.run(time, id);
      return used + 1;
    });
  }

  async setState(sid: string, state: SessionState, time: number): Promise<void> {
    const id = hexId('sid', sid, 16);
    const st = sessionState(state);
    uint('time', time);
    this.write(() => {
      const s = this.sessionOf(id);
      if (!s) throw noSession(id);
      if (s.state === 'completed') throw endedSession(id, s.state);
      this.q.setState.run(st, time, id);
    });
  }

  async session(sid: string): Promise<SessionRecord | undefined> {
    this.open();
    return this.sessionOf(hexId('sid', sid, 16));
  }

  async unfinished(txh: string): Promise<SessionRecord[]> {
    this.open();
    return this.q.unfinished.all(hexId('txh', txh, 32)).map(toSession);
  }

  async appendReceipt(sid: string, r: ReceiptAppend): Promise<{ seq: number; hash: Uint8Array }> {
    const id = hexId('sid', sid, 16);
    return this.write(() => {
      const done = this.q.recordOf.get(id);
      if (done) return { seq: done.seq, hash: new Uint8Array(done.hash) }; // one record per session ([LM-LEDGER-4])
      const s = this.sessionOf(id);
      if (!s) throw noSession(id);
      const entry = checkAppend(id, s, r); // [LM-LEDGER-5]
      const head = this.q.head.get();
      const rec = nextRecord(head ? { seq: head.seq, hash: new Uint8Array(head.hash) } : undefined, entry); // [LM-LEDGER-2]
      this.q.append.run(rec.seq, id, rec.hash, rec.bytes);
      this.q.setState.run('completed', entry.time, id);
      return { seq: rec.seq, hash: rec.hash };
    });
  }

  async *ledger(fromSeq = 1): AsyncIterable<Uint8Array> {
    let next = uint('fromSeq', fromSeq);
    for (;;) {
      this.open();
      const rows = this.q.page.all(next, LEDGER_PAGE);
      for (const row of rows) yield new Uint8Array(row.record);
      if (rows.length < LEDGER_PAGE) return;
      next = (rows[rows.length - 1] as { seq: number }).seq + 1;
    }
  }

  async revocation(): Promise<Uint8Array | undefined> {
    this.open();
    const row = this.q.revocation.get();
    return row ? new Uint8Array(row.bytes) : undefined;
  }

  async saveRevocation(bytes: Uint8Array, seq: number): Promise<boolean> {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('"bytes" expected Uint8Array');
    uint('seq', seq);
    return this.write(() => this.q.saveRevocation.run(seq, bytes).changes === 1);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
