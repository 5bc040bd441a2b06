/**
 * @module fleet/db/sqlite
 * The SQLite FleetDb (better-sqlite3): `:memory:` for tests, a file for a durable service (WAL,
 * synchronous=FULL, a busy timeout). Every change runs in one `BEGIN IMMEDIATE` transaction,
 * which takes the file's write lock first: service processes sharing the file serialise, so a
 * lease or a transition sees and changes one consistent state ([LM-FLEET-2], [LM-FLEET-3]).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError, errorMessage } from '@livematrix/spec';
import type { FleetDb } from '../types.js';
import { FleetDbBase, migrate, type Dialect, type Op, type Statement } from './common.js';

const SQLITE: Dialect = {
  int: 'INTEGER',
  serial: 'INTEGER PRIMARY KEY AUTOINCREMENT',
  bool: 'INTEGER',
  inList: (p) => `IN (SELECT value FROM json_each(${p}))`,
  forUpdate: '',
  skipLocked: '',
};

/** ms a writer waits for another process's write lock before it fails (busy_timeout) */
const BUSY_TIMEOUT_MS = 10_000;

/** Opens (creating when needed) the SQLite fleet database at `location` (a path or `:memory:`). */
export async function openSqliteFleetDb(location: string): Promise<FleetDb> {
  const memory = location === ':memory:';
  let db: Database.Database;
  try {
    if (!memory) mkdirSync(dirname(location), { recursive: true, mode: 0o700 });
    db = new Database(location, { timeout: BUSY_TIMEOUT_MS });
  } catch (e) {
    throw new ConfigError(`cannot open the fleet database ${location}: ${errorMessage(e)}`, { cause: e });
  }
  const fleet = new SqliteFleetDb(db, location);
  try {
    if (!memory) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    fleet.migrate();
  } catch (e) {
    db.close();
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot open the fleet database ${location}: ${errorMessage(e)}`, { cause: e });
  }
  return fleet;
}

/** A parameter as better-sqlite3 binds it: lists as JSON (for json_each), booleans as 0/1. */
function bindable(v: Statement['params'][number]): string | number | null {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (Array.isArray(v)) return JSON.stringify(v);
  return v as string | number | null;
}

/** Runs `op` synchronously (inside one better-sqlite3 transaction, nothing else runs meanwhile). */
function runSync<T>(op: Op<T>, exec: (s: Statement) => unknown[]): T {
  for (let step = op.next([]); ; step = op.next(exec(step.value))) if (step.done) return step.value;
}

class SqliteFleetDb extends FleetDbBase {
  readonly kind = 'sqlite';
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database, location: string) {
    super(SQLITE, location);
  }

  migrate(): void {
    this.db.transaction(() => runSync(migrate(SQLITE, this.location), (s) => this.exec(s))).immediate();
  }

  /** One statement: `$n` placeholders become SQLite's `?n`, bound by name; prepared once. */
  private exec(s: Statement): unknown[] {
    let st = this.statements.get(s.sql);
    if (!st) {
      st = this.db.prepare(s.sql.replace(/\$(\d+)/g, '?$1'));
      this.statements.set(s.sql, st);
    }
    const named = Object.fromEntries(s.params.map((v, i) => [String(i + 1), bindable(v)]));
    if (st.reader) return s.params.length > 0 ? st.all(named) : st.all();
    if (s.params.length > 0) st.run(named);
    else st.run();
    return [];
  }

  protected async read<T>(op: Op<T>): Promise<T> {
    this.live();
    return runSync(op, (s) => this.exec(s));
  }

  /** Takes the write lock first (BEGIN IMMEDIATE): processes sharing the file serialise here. */
  protected async write<T>(op: () => Op<T>): Promise<T> {
    this.live();
    return this.db.transaction(() => runSync(op(), (s) => this.exec(s))).immediate();
  }

  protected async shut(): Promise<void> {
    this.db.close();
  }
}
