/**
 * @module state
 * Where the CLI keeps what must survive a restart ([LM-LIC-2]): `.livematrix/` under the current
 * directory, or `$LIVEMATRIX_STATE` when it is set. A device keeps its print counts, resume
 * tickets and seen OFFERs in `device-{id}/licences.json`; a gateway its counts, sessions and
 * receipt ledger in `gateway.db` (SQLite).
 */
import { join, resolve } from 'node:path';

/** The CLI's state directory. */
export function stateDir(): string {
  return resolve(process.env['LIVEMATRIX_STATE'] ?? '.livematrix');
}

/** The gateway's default database (SQLite file). */
export function gatewayDbPath(): string {
  return join(stateDir(), 'gateway.db');
}

/** A device's default state directory. */
export function deviceStateDir(id: string): string {
  return join(stateDir(), `device-${id}`);
}
