/**
 * @module gateway-profile/launcher
 * How the suite makes the gateway under test stream: a {@link StreamLauncher} starts one stream
 * and reports how it ended. The command line's is {@link shellLauncher}, a command template run
 * through the shell with placeholders filled per stream; tests of the suite itself plug in a
 * gateway library in-process.
 */
import { spawn } from 'node:child_process';
import type { SignedTx } from '@livematrix/spec';
import { fromHex, toHex } from '@livematrix/spec';

/** One stream the suite asks for. */
export interface StreamJob {
  /** 1, 2, ...: the stream's number in this run */
  n: number;
  /** the device to stream to (the transaction names it, except where a test says otherwise) */
  device: string;
  /** the job's plaintext, a file */
  file: string;
  /** the transaction as `livematrix sign` writes it: JSON { "tx": HEX, "licence": HEX } */
  txFile: string;
  tx: SignedTx;
  licence: Uint8Array;
  /** a directory of this stream's own (deleted after the run) */
  dir: string;
  /** a directory that lasts the whole run, for the gateway's state (its licence database) */
  state: string;
  url: string;
  fleet: string;
}

/** How a stream ended: 0 when the gateway reports it delivered. */
export interface StreamExit {
  code: number | null;
  signal: string | null;
}

/** A running stream of the gateway under test. */
export interface StreamRun {
  /** resolves when the stream ended */
  readonly exit: Promise<StreamExit>;
  /** how it ended; undefined while it runs */
  readonly exited: StreamExit | undefined;
  /** the last lines it printed (for messages) */
  output(): string;
  /** everything it printed so far (up to 1 MiB), where the suite looks for telemetry it was told shows there */
  transcript?(): string;
  /** ends it (the test is done with it) and waits for its end */
  stop(): Promise<StreamExit>;
}

export type StreamLauncher = (job: StreamJob) => StreamRun;

/** The placeholders of a stream command, with what the suite puts there. */
export const PLACEHOLDERS: Readonly<Record<string, string>> = {
  file: 'the job file (plaintext G-code)',
  tx: 'a transaction file, JSON { "tx": HEX, "licence": HEX } as "livematrix sign" writes it',
  'tx-hex': 'the signed transaction, hex',
  'licence-hex': 'the licence secret K_lic, hex (64 digits)',
  device: 'the device id to stream to',
  fleet: 'the fleet (--fleet)',
  url: 'the broker URL (--url)',
  dir: 'a directory of the stream\'s own',
  state: 'a directory kept for the whole run (for the gateway\'s licence database)',
  n: 'the stream\'s number in the run: 1, 2, ...',
};

/** The placeholders of a ledger command ({@link shellLedgerReader}). */
export const LEDGER_PLACEHOLDERS: Readonly<Record<string, string>> = {
  state: PLACEHOLDERS['state'] as string,
  url: PLACEHOLDERS['url'] as string,
  fleet: PLACEHOLDERS['fleet'] as string,
};

/** Placeholders of a template that the suite does not know (a usage error). */
export function unknownPlaceholders(template: string, known: Readonly<Record<string, string>> = PLACEHOLDERS): string[] {
  return [...template.matchAll(/\{([a-z-]+)\}/g)].map((m) => m[1] as string).filter((k) => !(k in known));
}

const SAFE = /^[A-Za-z0-9._/:=@%+,-]+$/;

/** A value for the shell: as it is when it has no special characters, otherwise single-quoted. */
export function shellQuote(v: string): string {
  return SAFE.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** The command for one stream: every placeholder filled and quoted for the shell. */
export function fillTemplate(template: string, job: StreamJob): string {
  const values: Record<string, string> = {
    file: job.file, tx: job.txFile, 'tx-hex': toHex(job.tx.bytes), 'licence-hex': toHex(job.licence), device: job.device,
    fleet: job.fleet, url: job.url, dir: job.dir, state: job.state, n: String(job.n),
  };
  return template.replace(/\{([a-z-]+)\}/g, (all, k: string) => (k in values ? shellQuote(values[k] as string) : all));
}

/** Output kept per stream for messages. */
const KEEP = 4000;
/** Output kept per stream for {@link StreamRun.transcript}. */
const KEEP_ALL = 1 << 20;

/**
 * Runs `template` through the shell for each stream, in a process group of its own so that
 * stop() ends the gateway and whatever it started.
 *
 * @example
 * const launch = shellLauncher('livematrix stream {file} --device {device} --tx {tx} ...');
 */
export function shellLauncher(template: string, log: (line: string) => void = () => undefined): StreamLauncher {
  return (job) => {
    const cmd = fillTemplate(template, job);
    log(`stream ${job.n}: ${cmd}`);
    const child = spawn('/bin/sh', ['-c', cmd], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let all = '';
    const keep = (d: Buffer) => {
      const text = d.toString();
      out = (out + text).slice(-KEEP);
      if (all.length < KEEP_ALL) all += text.slice(0, KEEP_ALL - all.length);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let exited: StreamExit | undefined;
    const exit = new Promise<StreamExit>((resolve) => {
      child.on('error', (e) => {
        out += `\n${e.message}`;
        exited ??= { code: null, signal: 'spawn-error' };
        resolve(exited);
      });
      child.on('close', (code, signal) => {
        exited ??= { code, signal };
        resolve(exited);
      });
    });
    const signal = (s: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, s);
      } catch {
        // already gone
      }
    };
    return {
      exit,
      get exited() {
        return exited;
      },
      output: () => out,
      transcript: () => all,
      async stop() {
        if (exited) return exited;
        signal('SIGTERM');
        const t = setTimeout(() => signal('SIGKILL'), 3000);
        const e = await exit;
        clearTimeout(t);
        return e;
      },
    };
  };
}

/** Where a ledger command reads the gateway's ledger: the run's state directory and broker. */
export interface LedgerWhere {
  state: string;
  url: string;
  fleet: string;
}

/** Reads the gateway's receipt ledger: its records (SPEC.md §11.6, each the bytes of one record) in seq order. */
export type LedgerReader = (where: LedgerWhere) => Promise<Uint8Array[]>;

const HEX = /^(?:[0-9a-fA-F]{2})+$/;

/**
 * The records in a ledger command's output: JSON, either an array of records or an object whose
 * `records` is one; a record is the hex of its bytes, or an object with that hex as `record`.
 * Throws an Error that says what it found otherwise.
 */
export function parseLedgerOutput(out: string): Uint8Array[] {
  let v: unknown;
  try {
    v = JSON.parse(out);
  } catch (e) {
    throw new Error(`the ledger command printed no JSON (${e instanceof Error ? e.message : String(e)}): ${out.trim().slice(0, 200) || '(nothing)'}`);
  }
  const list = Array.isArray(v) ? v : typeof v === 'object' && v !== null && Array.isArray((v as { records?: unknown }).records) ? (v as { records: unknown[] }).records : undefined;
  if (!list) throw new Error('the ledger command\'s JSON is neither an array of records nor an object with "records"');
  return list.map((x, i) => {
    const hex = typeof x === 'string' ? x : typeof x === 'object' && x !== null ? (x as { record?: unknown }).record : undefined;
    if (typeof hex !== 'string' || !HEX.test(hex)) throw new Error(`record ${i + 1} of the ledger command's output is not hex (or an object with the hex as "record")`);
    return fromHex(hex);
  });
}

/** How long a ledger command may take. */
const LEDGER_TIMEOUT_MS = 30_000;

/**
 * Runs `template` through the shell, with {state}, {url} and {fleet} filled in, and reads the
 * records it prints ({@link parseLedgerOutput}). Its exit code counts only when its output does
 * not parse: a command that exits non-zero because the ledger does not verify still shows it.
 *
 * @example
 * const read = shellLedgerReader('livematrix ledger verify --json --db {state}/gw.db');
 */
export function shellLedgerReader(template: string, log: (line: string) => void = () => undefined): LedgerReader {
  return (where) => new Promise((resolve, reject) => {
    const values: Record<string, string> = { state: where.state, url: where.url, fleet: where.fleet };
    const cmd = template.replace(/\{([a-z-]+)\}/g, (all, k: string) => (k in values ? shellQuote(values[k] as string) : all));
    log(`ledger: ${cmd}`);
    const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-KEEP)));
    const timer = setTimeout(() => child.kill('SIGKILL'), LEDGER_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`the ledger command did not start: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        resolve(parseLedgerOutput(out));
      } catch (e) {
        const how = signal ? `signal ${signal}${signal === 'SIGKILL' ? ` (after ${LEDGER_TIMEOUT_MS / 1000} s)` : ''}` : `exit code ${code}`;
        reject(new Error(`${e instanceof Error ? e.message : String(e)}; the command ended with ${how}${err.trim() ? `: ${err.trim().split('\n').slice(-3).join(' | ')}` : ''}`));
      }
    });
  });
}
