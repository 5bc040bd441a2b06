/**
 * One throw-away PostgreSQL cluster per test file (testkit startPostgres), and a fresh empty
 * schema per test on it: much faster to make than a database. Whether PostgreSQL is here, and
 * saying so plainly when it is not (a failure under CI, where .ci/run installs it).
 */
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { type RunningPostgres, postgresBinDir, startPostgres } from '@livematrix/testkit';

/** Whether the PostgreSQL tests of `what` run: PostgreSQL is installed, or CI requires it (and then fails without it). */
export function postgresHere(what: string): boolean {
  const have = postgresBinDir() !== undefined;
  const inCI = process.env['CI'] === 'true';
  if (!have) console.warn(inCI ? `PostgreSQL is not installed, and CI requires it: the PostgreSQL ${what} tests will fail` : `PostgreSQL is not installed: skipping the PostgreSQL ${what} tests (apt-get install postgresql; .ci/run installs it)`);
  return have || inCI;
}

/**
 * Starts a cluster before the describe block's tests and stops it after; `newUrl()` makes a new
 * empty schema named `{prefix}_{n}` and returns a URL whose connections use it. Call inside describe.
 */
export function postgresSchemas(prefix: string): { newUrl(): Promise<string> } {
  let server: RunningPostgres | undefined;
  let admin: pg.Client | undefined;
  let n = 0;
  beforeAll(async () => {
    server = await startPostgres();
    admin = new pg.Client(server.url);
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await server?.stop();
  });
  return {
    async newUrl() {
      if (!server || !admin) throw new Error('PostgreSQL did not start');
      const name = `${prefix}_${++n}`;
      await admin.query(`CREATE SCHEMA ${name}`);
      const u = new URL(server.url);
      u.searchParams.set('options', `-c search_path=${name}`);
      return u.toString();
    },
  };
}
