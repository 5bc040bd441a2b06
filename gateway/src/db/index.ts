/**
 * @module db
 * `openLicenceDb(location)`: the gateway's durable licence state (print counts, sessions,
 * tickets, the receipt ledger of SPEC §11.6, the revocation list) in SQLite or PostgreSQL. Only
 * the backend asked for is loaded.
 */
import { ConfigError } from '@livematrix/spec';
import type { LicenceDb } from './types.js';

/** The default location: SQLite in memory (nothing survives the process; give a path for that). */
export const DEFAULT_LICENCE_DB = ':memory:';

/** True when `location` names a PostgreSQL database. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(location);
}

/**
 * Opens the licence database at `location`: a `postgres://` or `postgresql://` URL selects
 * PostgreSQL; `:memory:` (the default) or a file path selects SQLite (a file is durable: WAL,
 * synchronous=FULL; its directory is created when missing). Tables are created on open.
 * Throws ConfigError when it cannot open it.
 *
 * @example
 * const db = await openLicenceDb(process.env.LIVEMATRIX_DB ?? '.livematrix/gateway.db');
 */
export async function openLicenceDb(location: string = DEFAULT_LICENCE_DB): Promise<LicenceDb> {
  if (typeof location !== 'string' || location.length === 0) throw new ConfigError('licence database: the location is empty (a path, :memory: or a postgres:// URL)');
  if (isPostgresUrl(location)) return (await import('./postgres.js')).openPostgresLicenceDb(location);
  return (await import('./sqlite.js')).openSqliteLicenceDb(location);
}

export { type LicenceDb, type NewSession, type ReceiptAppend, type SessionRecord, type SessionState } from './types.js';
