/**
 * Running the built `livematrix` CLI (gateway/dist/src/cli.js) as child processes, the way an
 * operator does: keys, a signed transaction, a device process, a stream. Tests synchronise on
 * what the processes print and on their 'close' events, never on fixed sleeps.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src', 'cli.js');

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

export interface Running extends Promise<Ran> {
  readonly child: ChildProcessWithoutNullStreams;
  /** what it printed so far */
  readonly out: string;
  readonly err: string;
  /** Resolves with the first match of `re` on stderr (or stdout); rejects when the process ends first. */
  waitFor(re: RegExp, stream?: 'err' | 'out'): Promise<RegExpExecArray>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * The state directory of the processes a test file starts ([LM-LIC-2]): one per file, so that a
 * gateway started again finds its database and a device its licence state, and no test leaves
 * state in the working tree.
 */
export const STATE = mkdtempSync(join(tmpdir(), 'lm-cli-state-'));

/** Runs `livematrix ARGS`; `stdin` is a file piped in; `env` adds to (or, with undefined, removes from) the environment; `cwd` is its working directory. */
export function cli(args: string[], o: { stdin?: string; env?: Record<string, string | undefined>; cwd?: string } = {}): Running {
  const env: NodeJS.ProcessEnv = { ...process.env, LIVEMATRIX_STATE: STATE };
  for (const k of ['LIVEMATRIX_MQTT_USERNAME', 'LIVEMATRIX_MQTT_PASSWORD']) delete env[k];
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env, ...(o.cwd ? { cwd: o.cwd } : {}) });
  const acc = { out: '', err: '' };
  const watchers: (() => void)[] = [];
  const notify = () => {
    for (const w of [...watchers]) w();
  };
  child.stdout.on('data', (d: Buffer) => {
    acc.out += d.toString();
    notify();
  });
  child.stderr.on('data', (d: Buffer) => {
    acc.err += d.toString();
    notify();
  });
  if (o.stdin) createReadStream(o.stdin).pipe(child.stdin);
  else child.stdin.end();
  let closed = false;
  const done = new Promise<Ran>((res) => child.on('close', (code, signal) => {
    closed = true;
    notify();
    res({ code, signal, out: acc.out, err: acc.err });
  }));
  const waitFor = (re: RegExp, stream: 'err' | 'out' = 'err') => new Promise<RegExpExecArray>((res, rej) => {
    const check = () => {
      const m = re.exec(acc[stream]);
      if (m || closed) watchers.splice(watchers.indexOf(check), 1);
      if (m) res(m);
      else if (closed) rej(new Error(`livematrix ${args[0]} ended (code ${child.exitCode}, signal ${child.signalCode}) before printing ${re}:\n${acc.err}`));
    };
    watchers.push(check);
    check();
  });
  // (Object.assign would copy the getters' current values, not the getters)
  Object.defineProperties(done, { out: { get: () => acc.out }, err: { get: () => acc.err } });
  return Object.assign(done as Promise<Ran> & { readonly out: string; readonly err: string }, {
    child, waitFor,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => void child.kill(signal),
  });
}

export const publicKey = (r: Ran) => /public key: ([0-9a-f]{64})/.exec(r.out)?.[1] ?? '';

/** Identity files op.json, gw.json and dev.json (ids operator, gw-1, printer-1) in dir; their public keys. */
export async function keys(dir: string, ids: { gateway?: string; device?: string } = {}): Promise<{ op: string; gw: string; dev: string }> {
  const [op, gw, dev] = await Promise.all([
    cli(['keygen', '--id', 'operator', '--out', join(dir, 'op.json')]),
    cli(['keygen', '--id', ids.gateway ?? 'gw-1', '--out', join(dir, 'gw.json')]),
    cli(['keygen', '--id', ids.device ?? 'printer-1', '--out', join(dir, 'dev.json')]),
  ]);
  for (const k of [op, gw, dev]) if (k.code !== 0) throw new Error(`keygen failed: ${k.err}`);
  return { op: publicKey(op), gw: publicKey(gw), dev: publicKey(dev) };
}

/** Signs `file` for printer-1 and gw-1 into dir/tx.json (`rate` bytes/s, default 100 MB/s). */
export async function signJob(dir: string, k: { gw: string; dev: string }, file: string, o: { rate?: number; device?: string } = {}): Promise<string> {
  const rate = String(o.rate ?? 100_000_000);
  const tx = join(dir, 'tx.json');
  const r = await cli(['sign', '--operator', join(dir, 'op.json'), '--job', file, '--device', o.device ?? 'printer-1', '--device-key', k.dev,
    '--gateway-key', k.gw, '--rate', rate, '--burst', rate, '--out', tx]);
  if (r.code !== 0) throw new Error(`sign failed: ${r.err}`);
  return tx;
}

/** The last stdout line of `livematrix stream`: its JSON report. */
export function report(r: Ran): { bytes: number; receipt: { bytes: number } } {
  return JSON.parse(r.out.trim().split('\n').pop()!) as { bytes: number; receipt: { bytes: number } };
}

/** VmRSS and VmHWM of a process, in MB (Linux). */
export function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}
