/**
 * @module postgres
 * A throw-away PostgreSQL cluster for the project's tests: `initdb` in a temporary directory,
 * the server started with `pg_ctl` on a free loopback port (trust authentication, loopback
 * only, no fsync: nothing in it outlives the test), and removed again by `stop()`. PostgreSQL
 * refuses to run as root, so under root the cluster belongs to the user `postgres` (Debian's
 * package creates it) and its programs run as that user.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort, waitForPort } from './mosquitto.js';

/** Directory holding initdb, pg_ctl and postgres: from PATH, else the newest /usr/lib/postgresql/N/bin; undefined when not installed. */
export function postgresBinDir(): string | undefined {
  const has = (d: string) => ['initdb', 'pg_ctl', 'postgres'].every((p) => existsSync(join(d, p)));
  for (const d of (process.env['PATH'] ?? '').split(delimiter)) if (d && has(d)) return d;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (has(join(root, v, 'bin'))) return join(root, v, 'bin');
  return undefined;
}

export interface RunningPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication) */
  url: string;
  port: number;
  /** Stops the server and removes the cluster's directory; safe to call twice. */
  stop(): Promise<void>;
}

/** uid and gid of the user the cluster runs as: the user `postgres` under root, else none (the current user). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => {
    const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.trim()) : NaN;
  };
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('running as root, which initdb refuses, and there is no user "postgres" to run PostgreSQL as (apt-get install postgresql creates it)');
  return { uid, gid };
}

function run(bin: string, args: string[], as: { uid: number; gid: number } | undefined, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env, ...(as ?? {}) });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} ${args.join(' ')} exited with ${code}:\n${out}`))));
  });
}

/**
 * Starts a throw-away cluster on a free loopback port.
 *
 * @example
 * const pg = await startPostgres(); try { await openLicenceDb(pg.url) } finally { await pg.stop() }
 */
export async function startPostgres(): Promise<RunningPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed: no initdb and pg_ctl in PATH or /usr/lib/postgresql/*/bin (apt-get install postgresql)');
  const as = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'lm-pg-'));
  const data = join(dir, 'data');
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '', LC_ALL: 'C', LANG: 'C', HOME: dir, TZ: 'UTC' };
  let started = false;
  let stopped = false;
  const postmasterPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  // if the test process ends without stop(), take the server down with it (immediate shutdown) and remove the cluster
  const onExit = () => {
    const pid = postmasterPid();
    if (pid) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    try {
      if (started) await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop'], as, env);
    } catch {
      const pid = postmasterPid();
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  process.once('exit', onExit);
  try {
    mkdirSync(data, { mode: 0o700 });
    if (as) {
      chownSync(dir, as.uid, as.gid);
      chownSync(data, as.uid, as.gid);
    }
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], as, env);
    const port = await freePort();
    const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=40`;
    started = true;
    await run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-o', opts, '-w', '-t', '30', 'start'], as, env);
    await waitForPort(port);
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, stop };
  } catch (e) {
    let log = '';
    try {
      log = readFileSync(join(dir, 'server.log'), 'utf8').slice(-2000);
    } catch {
      // no log yet
    }
    await stop();
    throw new Error(`could not start PostgreSQL: ${e instanceof Error ? e.message : String(e)}${log ? `\nserver log:\n${log}` : ''}`);
  }
}
