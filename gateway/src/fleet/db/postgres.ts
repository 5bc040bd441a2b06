/**
 * @module fleet/db/postgres
 * The PostgreSQL FleetDb (node-postgres): for service instances that share one database. A
 * lease locks rows with `FOR UPDATE SKIP LOCKED`: the job it takes over, and, before it chooses
 * a QUEUED job, that job's device row in `lm_fleet_devices` (created on demand); two instances
 * therefore never lease one job, nor two jobs of one device ([LM-FLEET-3]). A transition locks
 * its job's row (`FOR UPDATE`). Tables are created on open under an advisory lock, since
 * instances may start together.
 */
import pg from 'pg';
import { ConfigError, errorMessage } from '@livematrix/spec';
import { pgTransaction, redactUrl } from '../../db/postgres.js';
import type { FleetDb } from '../types.js';
import { FleetDbBase, migrate, type Dialect, type Op, type Statement } from './common.js';

/** Advisory lock keys (pg_advisory_xact_lock(int, int)): 'LM' and the fleet database's schema. */
const LOCK_CLASS = 0x4c4d;
const LOCK_SCHEMA = 32;

const POSTGRES: Dialect = {
  int: 'BIGINT',
  serial: 'BIGSERIAL PRIMARY KEY',
  bool: 'BOOLEAN',
  inList: (p) => `= ANY(${p})`,
  forUpdate: ' FOR UPDATE',
  skipLocked: ' FOR UPDATE SKIP LOCKED',
};

/** Opens the fleet database at a `postgres://` or `postgresql://` URL, creating its tables when needed. */
export async function openPostgresFleetDb(url: string): Promise<FleetDb> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // an idle client whose server went away: the next query on the pool reports it
  pool.on('error', () => undefined);
  const fleet = new PostgresFleetDb(pool, redactUrl(url));
  try {
    await pgTransaction(pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, LOCK_SCHEMA]);
      await runAsync(migrate(POSTGRES, fleet.location), c);
    });
  } catch (e) {
    await pool.end().catch(() => undefined);
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot open the fleet database ${fleet.location}: ${errorMessage(e)}`, { cause: e });
  }
  return fleet;
}

/** Runs `op`, one round trip per statement, on `c` (the pool, or the one connection of a transaction). */
async function runAsync<T>(op: Op<T>, c: pg.Pool | pg.PoolClient): Promise<T> {
  const exec = async (s: Statement): Promise<unknown[]> => (await c.query(s.sql, [...s.params])).rows;
  for (let step = op.next([]); ; step = op.next(await exec(step.value))) if (step.done) return step.value;
}

class PostgresFleetDb extends FleetDbBase {
  readonly kind = 'postgres';

  constructor(private readonly pool: pg.Pool, location: string) {
    super(POSTGRES, location);
  }

  protected async read<T>(op: Op<T>): Promise<T> {
    this.live();
    return runAsync(op, this.pool);
  }

  /** One transaction on one connection; run again (up to 3 times in all) after a deadlock. */
  protected write<T>(op: () => Op<T>): Promise<T> {
    return pgTransaction(this.pool, (c) => runAsync(op(), c), 3, () => this.live());
  }

  protected async shut(): Promise<void> {
    await this.pool.end();
  }
}
