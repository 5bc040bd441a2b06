/**
 * Test helpers: a standalone broker as a child process (broker-process.ts, built by `npm run
 * build`), its memory from /proc, and a redis-server on a free loopback port.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { freePort, waitForPort } from '@livematrix/testkit';
import type { BrokerConfig } from '../src/index.js';

// this file runs from broker/test (vitest) or broker/dist/test (built)
const SCRIPT = join(import.meta.dirname, ...(basename(dirname(import.meta.dirname)) === 'dist' ? [] : ['..', 'dist', 'test']), 'broker-process.js');

export interface BrokerProcess {
  proc: ChildProcess;
  port: number;
  /** what it logged so far */
  log(): string;
  /** resolves when a log line matches */
  logged(re: RegExp): Promise<string>;
  /** SIGKILL: no Last Wills published, no goodbye to the cluster */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function spawnBroker(config: BrokerConfig): Promise<BrokerProcess> {
  const proc = spawn(process.execPath, [SCRIPT, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const waiters: { re: RegExp; res: (l: string) => void }[] = [];
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of [...waiters]) {
      const m = err.split('\n').find((l) => w.re.test(l));
      if (m !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.res(m);
      }
    }
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const port = await new Promise<number>((res, rej) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    void exited.then(() => rej(new Error(`broker process exited: ${err}`)));
  });
  const end = (signal: NodeJS.Signals) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  return {
    proc, port, log: () => err,
    logged: (re) => new Promise((res) => {
      const m = err.split('\n').find((l) => re.test(l));
      if (m !== undefined) res(m);
      else waiters.push({ re, res });
    }),
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
  };
}

/** Resident and peak resident memory of a process, bytes (Linux /proc). */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

export const redisBin = ['/usr/bin/redis-server', '/usr/sbin/redis-server'].find((p) => spawnSync(p, ['--version']).status === 0);

export interface RunningRedis {
  url: string;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RunningRedis> {
  if (!redisBin) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const port = await freePort();
  const proc = spawn(redisBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', mkdtempSync(join(tmpdir(), 'lm-redis-'))], { stdio: 'ignore' });
  await waitForPort(port, () => (proc.exitCode !== null ? 'redis-server exited' : undefined));
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => new Promise<void>((r) => {
      if (proc.exitCode !== null) return r();
      proc.once('exit', () => r());
      proc.kill('SIGTERM');
    }),
  };
}
