/**
 * @module keys-service/db
 * The keys service's SQLite file `dir/keys.db` (better-sqlite3; WAL, synchronous=FULL, writes
 * under BEGIN IMMEDIATE, as gateway/src/db/sqlite.ts). `secure_delete=ON` zeroes deleted and
 * overwritten content in the file, and {@link scrub} checkpoints the WAL with TRUNCATE so
 * that no older page image (an erased epoch chain key [LM-SVC-3], a deleted job's sealed keys
 * [LM-SVC-5]) stays in the write-ahead log.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError, LmError, Reason } from '@livematrix/spec';

export const KEYS_SCHEMA_VERSION = 1;
export const KEYS_DB_FILE = 'keys.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ks_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ks_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), e INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ks_jobs (
  jid BLOB PRIMARY KEY, uh BLOB NOT NULL, okp BLOB NOT NULL, size INTEGER NOT NULL, jd BLOB NOT NULL,
  chunk INTEGER NOT NULL, n INTEGER NOT NULL, segments INTEGER NOT NULL, last INTEGER NOT NULL,
  upload BLOB NOT NULL, playbook BLOB NOT NULL, registered INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ks_chunk_keys (jid BLOB NOT NULL, j INTEGER NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (jid, j)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ks_licences (txh BLOB PRIMARY KEY, jid BLOB NOT NULL, rate INTEGER NOT NULL, burst INTEGER NOT NULL, tx BLOB NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS ks_licences_jid ON ks_licences (jid);
CREATE TABLE IF NOT EXISTS ks_alarms (txh BLOB PRIMARY KEY, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ks_deleted (jid BLOB PRIMARY KEY, dh BLOB NOT NULL, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ks_deleted_tx (txh BLOB PRIMARY KEY, jid BLOB NOT NULL);
`;

export type Db = Database.Database;

export interface JobRow {
  jid: Buffer;
  uh: Buffer;
  okp: Buffer;
  size: number;
  jd: Buffer;
  chunk: number;
  n: number;
  segments: number;
  last: number;
  upload: Buffer;
  playbook: Buffer;
  registered: number;
}

export interface LicenceRow {
  txh: Buffer;
  jid: Buffer;
  rate: number;
  burst: number;
  tx: Buffer;
  sealed: Buffer;
}

/** Opens (creating when needed) `dir/keys.db`, owner-only, and migrates it; checks it belongs to this X25519 key. */
export function openKeysDb(dir: string, x25519PublicHex: string): Db {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, KEYS_DB_FILE);
  const fresh = !existsSync(file);
  let db: Db;
  try {
    db = new Database(file, { timeout: 10_000 });
  } catch (e) {
    throw new ConfigError(`cannot open the keys database ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  try {
    if (fresh) chmodSync(file, 0o600); // SQLite gives the -wal and -shm files the same mode
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('secure_delete = ON');
    db.transaction(() => {
      db.exec(SCHEMA);
      const get = db.prepare<[string], { value: string }>('SELECT value FROM ks_meta WHERE key = ?');
      const put = db.prepare<[string, string]>('INSERT INTO ks_meta (key, value) VALUES (?, ?)');
      const schema = get.get('schema');
      if (!schema) put.run('schema', String(KEYS_SCHEMA_VERSION));
      else if (Number(schema.value) > KEYS_SCHEMA_VERSION) throw new ConfigError(`${file}: keys database schema version ${schema.value} is newer than this service's (${KEYS_SCHEMA_VERSION})`);
      const owner = get.get('x25519');
      if (!owner) put.run('x25519', x25519PublicHex);
      else if (owner.value !== x25519PublicHex) throw new ConfigError(`${file} belongs to the keys service with X25519 key ${owner.value}, not to this identity (${x25519PublicHex})`);
    }).immediate();
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/**
 * Moves every committed page into the database file and truncates the WAL to zero bytes, so
 * that overwritten or deleted rows survive in neither file ([LM-SVC-3], [LM-SVC-5]). Throws
 * when a reader elsewhere holds the WAL; calling it again later completes it.
 */
export function scrub(db: Db): void {
  const r = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
  const row = r[0];
  if (!row || row.busy !== 0) {
    throw new LmError(Reason.busy, 'keys database: the WAL could not be truncated (another connection reads it); erased rows may remain in keys.db-wal until the next checkpoint');
  }
}
