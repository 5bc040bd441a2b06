/**
 * @module fleet/db
 * `openFleetDb(location)`: the fleet service's durable state (jobs and their events, device
 * quarantines, alarms, API keys; SPEC §17) in SQLite or PostgreSQL, behind the {@link FleetDb}
 * contract of fleet/types. Only the backend asked for is loaded.
 */
import { ConfigError } from '@livematrix/spec';
import { isPostgresUrl } from '../../db/index.js';
import type { FleetDb } from '../types.js';

/**
 * Opens the fleet database at `location`: a `postgres://` or `postgresql://` URL selects
 * PostgreSQL (instances may share it: the tables, prefixed `lm_fleet_`, may sit beside the
 * licence tables); `:memory:` or a file path selects SQLite (a file is durable: WAL,
 * synchronous=FULL; its directory is created when missing). Tables are created on open.
 * Throws ConfigError when the location is empty or the database cannot be opened.
 *
 * @example
 * const db = await openFleetDb(process.env.LIVEMATRIX_FLEET_DB ?? '.livematrix/fleet.db');
 * const job = await db.lease('fleet-1', ['printer-1'], Date.now(), 30_000);
 */
export async function openFleetDb(location: string): Promise<FleetDb> {
  if (typeof location !== 'string' || location.length === 0) throw new ConfigError('fleet database: the location is empty (a path, :memory: or a postgres:// URL)');
  if (isPostgresUrl(location)) return (await import('./postgres.js')).openPostgresFleetDb(location);
  return (await import('./sqlite.js')).openSqliteFleetDb(location);
}

export { FLEET_SCHEMA_VERSION } from './common.js';
export * from '../types.js';
