#!/usr/bin/env node
/**
 * @module cli
 * `livematrix`: one command for operators and vendors. Subcommands: demo, broker, gateway,
 * stream, device, keygen, sign. `livematrix <cmd> --help` says more.
 */
import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { createReadStream, createWriteStream, existsSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync, type WriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type BrokerConfig, Registry, mosquittoAcl, readBrokerConfig, runBroker, startBroker } from '@livematrix/broker';
import { Device, type IncomingStream } from '@livematrix/device-sdk';
import { type IdentityFile, createIdentityFile, readIdentityFile } from '@livematrix/spec/keyfile';
import type { BrokerAuth } from '@livematrix/spec/transport';
import {
  FRAME_TYPE_NAMES, FrameType, type FrameTypeId, type IdentityKeyPair, LmError, MatrixEngine, SUITE_NAMES, createTx, decodeFrame, digest, fromHex,
  identityKeyPair, isReasonCode, reasonName, toHex,
} from '@livematrix/spec';
import { Gateway, type GatewayStream, type StreamReport } from '@livematrix/gateway';

const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
const DEFAULT_URL = 'mqtt://127.0.0.1:1883';
const ENV_USER = 'LIVEMATRIX_MQTT_USERNAME';
const ENV_PASSWORD = 'LIVEMATRIX_MQTT_PASSWORD';
/** refusal and drop lines per window, at most; the rest are counted in one summary line */
const LOG_MAX_LINES = 10;
const LOG_WINDOW_MS = 10_000;
const isTTY = process.stderr.isTTY;

class UsageError extends Error {}
/** A failure with a message written for the operator: printed as it is, exit code 1. */
class Failure extends Error {}

const CONNECT_HELP = `Broker connection (the same for device, stream and gateway):
  --url URL           broker URL (default ${DEFAULT_URL}); mqtts:// or wss:// for TLS. It
                      must not hold a user name or password: ps and logs would show them.
  --credentials FILE  JSON { "username": "...", "password": "..." } for a broker with passwords
                      (Mosquitto). Only its owner may read it (chmod 600), or it is refused.
Environment:
  ${ENV_USER}, ${ENV_PASSWORD}
                      the same user name and password, when --credentials is not given
Without either, the client authenticates with a connect token signed by its --identity key,
which "livematrix broker --registry FILE" checks against its registry (brokers without the
Live Matrix plugin ignore it). A refused connection says which identity and what to check.`;

const HELP: Record<string, string> = {
  main: `livematrix: stream machine code to manufacturing machines as expiring hints over MQTT

Usage: livematrix <command> [options]

Commands:
  demo      embedded broker, a gateway and two simulated printers; streams a real G-code file
  broker    run an embedded MQTT broker (aedes)
  gateway   stream the jobs listed in a jobs file, then exit
  stream    stream one G-code file to one device, then exit
  device    run a device that writes what it receives to a file (a simulated machine)
  keygen    create an identity key file (device, gateway or operator)
  sign      sign a streaming transaction as the operator
  acl       write a Mosquitto ACL file from the broker registry

Run "livematrix <command> --help" for a command's options.`,
  demo: `livematrix demo [--file FILE] [--w BITS] [--rate BYTES_PER_S]

Starts an MQTT broker on 127.0.0.1 (a free port), a gateway and two simulated printers, signs a
transaction per printer, streams FILE (default: examples/cylinder_annular.gcode) to both, shows
progress and telemetry, and ends with a summary. Exit code 0 when both outputs match the file.

  --file FILE         G-code to stream
  --w BITS            segment width, 8..24 (default: negotiated from the printers' measured rate)
  --rate N            bytes per second each simulated printer consumes (default 4000000)`,
  broker: `livematrix broker [--config FILE] [--port 1883] [--host 127.0.0.1] [--registry FILE]
                  [--cert FILE --key FILE [--tls-port 8883]] [--ws-port N] [--metrics-port N]
                  [--max-packet-size BYTES]

Runs an aedes broker until Ctrl-C or SIGTERM (graceful: clients are disconnected first).
With --registry it runs the Live Matrix plugin: clients authenticate with connect tokens, each
reaches only its own topics, malformed frames are dropped, floods raise rate alarms; the
registry reloads on SIGHUP or when the file changes. Without it: no authentication
(development only). A connection that announces an MQTT packet larger than --max-packet-size
(default 262144) is closed before the packet is read, authenticated or not ([LM-BRK-6]).
--config reads the same settings from JSON:
  { "host", "port", "registry", "maxPacketSize", "tls": { "port", "cert", "key" }, "ws": { "port" }, "metrics": { "port" } }`,
  acl: `livematrix acl --registry FILE [--out FILE]

Writes a Mosquitto acl_file from the Live Matrix registry, with the same per-client topic
isolation as the plugin (user name = client id).`,
  keygen: `livematrix keygen --id ID --out FILE

Writes a new Ed25519 identity (JSON, mode 0600) and prints its public key. Refuses to overwrite.`,
  sign: `livematrix sign --operator FILE --job FILE --device ID --device-key HEX --out FILE
                [--gateway-key HEX] [--rate BYTES_PER_S] [--burst BYTES] [--hours H] [--prints N]

Signs a streaming transaction with the operator's identity file. Writes JSON { tx, licence } (mode
0600): the transaction for the gateway and the device, and the licence secret for the gateway.
  --rate      most bytes per second the machine may consume (default 100000)
  --burst     bytes it may take beyond the rate (default 1048576)
  --hours     validity from now (default 24, at most 720)
  --prints    how many times the job may be streamed (default 1)`,
  stream: `livematrix stream FILE --device ID --tx FILE --identity FILE --operator-key HEX
                  [--url ${DEFAULT_URL}] [--credentials FILE] [--fleet default] [--w BITS]

Runs a gateway for one stream: FILE (or - for standard input) to device ID under the signed
transaction in --tx (from "livematrix sign"), with the gateway identity --identity. The job is
read as a stream, as the device's window allows; its size and SHA-256 must match the
transaction, checked as the bytes pass (a mismatch fails the stream before the device could see
it complete). Prints progress and a report. Exit code 0 when the job was delivered.

${CONNECT_HELP}`,
  gateway: `livematrix gateway --jobs FILE --identity FILE --operator-key HEX [--url URL] [--credentials FILE]
                   [--fleet ID] [--w BITS]

Streams every job of a jobs file (JSON array of { "file", "device", "tx" }) in parallel, prints
progress and one report per job. Exit code 0 when every job was delivered.

${CONNECT_HELP}`,
  device: `livematrix device --identity FILE --operator-key HEX [--out FILE|-] [--rate BYTES_PER_S]
                  [--url ${DEFAULT_URL}] [--credentials FILE] [--fleet default] [--once]

Runs a device that accepts signed streams and writes each to --out (default: stdout), consuming
at most --rate bytes per second like a real machine. Writes to FILE.part and renames it to FILE
only when the stream completed and its digest verified. Restarted mid-job, it resumes from what
FILE.part holds. --once exits after the first stream.

Every OFFER it refuses and every frame it drops (forged, replayed, malformed) is one line on
stderr, at most ${LOG_MAX_LINES} lines per ${LOG_WINDOW_MS / 1000} s and then a count; the device keeps serving.

SIGINT or SIGTERM stops it within 2 s, even mid-stream: the running stream is aborted (its bytes
so far stay in FILE.part, which the next start resumes), BYE is published. A second signal
exits at once (exit code 1).
Exit codes: 0 stopped by --once or by SIGINT/SIGTERM, 1 a stream failed (or the broker refused
the connection), 2 usage.

${CONNECT_HELP}`,
};

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean'; short?: string }>): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function need(v: Record<string, string | boolean | undefined>, name: string): string {
  const x = v[name];
  if (typeof x !== 'string' || !x) throw new UsageError(`--${name} is required`);
  return x;
}

function num(v: Record<string, string | boolean | undefined>, name: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const x = v[name];
  if (x === undefined) return dflt;
  const n = Number(x);
  if (typeof x !== 'string' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number in ${min}..${max}, got "${String(x)}"`);
  return n;
}

function hexKey(v: Record<string, string | boolean | undefined>, name: string): Uint8Array {
  const s = need(v, name);
  if (!/^[0-9a-fA-F]{64}$/.test(s)) throw new UsageError(`--${name} must be 64 hex digits (an Ed25519 public key)`);
  return fromHex(s);
}

const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

// ---- hostile input: refusals as bounded, one-line log entries ---------------------------------

/**
 * At most `max` lines per window of `windowMs` (a window opens with its first line); what is
 * held back is counted and reported in one line when the window closes, so a flood of bad
 * frames cannot fill a disk with log lines.
 */
class RateLimitedLog {
  private shown = 0;
  private held = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly write: (line: string) => void, private readonly what: string, private readonly max = LOG_MAX_LINES, private readonly windowMs = LOG_WINDOW_MS) {}

  line(text: string): void {
    if (!this.timer) {
      this.shown = 0;
      this.held = 0;
      this.timer = setTimeout(() => this.close(), this.windowMs);
      this.timer.unref();
    }
    if (this.shown < this.max) {
      this.shown++;
      this.write(text);
    } else this.held++;
  }

  /** Closes the current window now (reports what it held back). */
  flush(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.close();
  }

  private close(): void {
    this.timer = undefined;
    if (this.held > 0) this.write(`... and ${this.held} more ${this.what} in the last ${this.windowMs / 1000} s`);
    this.held = 0;
  }
}

/** Text from the wire on one line: control characters (newlines, terminal escapes) escaped, length capped. */
function oneLine(text: string, max = 300): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** What a device or gateway reports about a frame it refused or dropped. */
interface Refusal {
  code: number;
  /** frame type: 0 when the frame did not decode; absent when the reporter does not say (the gateway) */
  type?: number;
  detail: string;
}

/**
 * The claimed gateway key of recent OFFERs, by session id: names the sender in refusal lines.
 * The key is what the OFFER says; for an OFFER whose signature does not verify it is a claim.
 */
class OfferSenders {
  private readonly bySid = new Map<string, string>();
  private last: string | undefined;

  /** Looks at a payload the device receives; decodes only OFFERs (envelope 0x84, version 1, type 2). */
  see(payload: Uint8Array): void {
    if (payload.length < 4 || payload[0] !== 0x84 || payload[2] !== FrameType.OFFER) return;
    try {
      const f = decodeFrame(payload);
      if (f.type !== FrameType.OFFER) return;
      const b = f.body as { sid: Uint8Array; gwpk: Uint8Array };
      this.last = toHex(b.gwpk);
      this.bySid.set(toHex(b.sid).slice(0, 8), this.last);
      if (this.bySid.size > 256) this.bySid.delete(this.bySid.keys().next().value as string);
    } catch {
      // not an OFFER that decodes: the device reports it
    }
  }

  /** The sender of the OFFER with this session id prefix, else of the latest OFFER. */
  of(sid: string | undefined): string | undefined {
    return (sid !== undefined ? this.bySid.get(sid) : undefined) ?? this.last;
  }
}

/** One readable line for a refusal: `refused OFFER from gateway key ab12...: auth (9): ...`. */
function describeRefusal(r: Refusal, senders?: OfferSenders): string {
  const reason = isReasonCode(r.code) ? reasonName(r.code) : 'code';
  let detail = r.detail;
  // details may repeat what this line says first: the session id and "reason (code): "
  const sid = /^OFFER ([0-9a-f]{8}) refused: /.exec(detail);
  if (sid) detail = detail.slice(sid[0].length);
  const prefix = `${reason} (${r.code}): `;
  const at = detail.indexOf(prefix);
  if (at >= 0 && at < 200) detail = detail.slice(0, at) + detail.slice(at + prefix.length);
  const type = r.type;
  let what: string;
  if (type === undefined) what = 'dropped a frame';
  else if (type === FrameType.OFFER) {
    const gw = senders?.of(sid?.[1]);
    what = `refused OFFER${sid ? ` ${sid[1]}` : ''}${gw ? ` from gateway key ${gw.slice(0, 16)}...` : ''}`;
  } else if (type === 0) what = 'dropped a frame that does not decode';
  else what = `dropped ${FRAME_TYPE_NAMES[type as FrameTypeId] ?? `frame type ${type}`}`;
  return `${what}: ${prefix}${oneLine(detail)}`;
}

// ---- broker connection ---------------------------------------------------------------------------

interface Connection {
  url: string;
  auth: BrokerAuth;
  /** where the user name and password came from, for messages ('token' for a connect token) */
  source: string;
}

/**
 * The broker URL and how to authenticate: --credentials FILE, else the environment, else a
 * connect token from the identity file. A password never comes from the URL (ps shows it).
 */
function connection(values: Record<string, string | boolean | undefined>): Connection {
  const url = typeof values['url'] === 'string' ? values['url'] : DEFAULT_URL;
  // never echo the URL here: it may hold the very password this refuses
  if (url.includes('@')) throw new UsageError(`--url must not carry a user name or password (anyone can read them in ps, and they end up in logs): put them in a --credentials FILE (mode 600) or in ${ENV_USER} and ${ENV_PASSWORD}`);
  if (typeof values['credentials'] === 'string') {
    const path = values['credentials'];
    return { url, auth: readCredentials(path), source: `the credentials file ${path}` };
  }
  const user = process.env[ENV_USER];
  const password = process.env[ENV_PASSWORD];
  if (user) return { url, auth: { username: user, password: password ?? '' }, source: `${ENV_USER}${password !== undefined ? ` and ${ENV_PASSWORD}` : ''}` };
  if (password !== undefined) throw new UsageError(`${ENV_PASSWORD} is set but ${ENV_USER} is not`);
  return { url, auth: 'token', source: 'token' };
}

/** Reads { "username", "password" } from a file that only its owner can read (like ssh keys). */
function readCredentials(path: string): { username: string; password: string } {
  if (!existsSync(path)) throw new UsageError(`credentials file ${path} not found`);
  const mode = statSync(path).mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new UsageError(`credentials file ${path} has mode ${mode.toString(8).padStart(4, '0')}: it holds a password and must be readable by its owner only (run "chmod 600 ${path}")`);
  }
  let j: { username?: unknown; password?: unknown };
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as typeof j;
  } catch {
    // not the parser's message: it quotes the file, password included
    throw new UsageError(`credentials file ${path} is not JSON (expected { "username": "...", "password": "..." })`);
  }
  if (typeof j !== 'object' || j === null || typeof j.username !== 'string' || !j.username || typeof j.password !== 'string') {
    throw new UsageError(`credentials file ${path} must hold { "username": "...", "password": "..." } (two strings)`);
  }
  return { username: j.username, password: j.password };
}

/** MQTT CONNACK codes that mean "who you are was refused": 3.1.1 (4, 5) and 5 (134, 135). */
const AUTH_REFUSED = new Set([4, 5, 134, 135]);

/**
 * Connects through `start`; a broker's refusal of the credentials becomes an error that says
 * which identity was refused and what to check.
 */
async function connectAs<T>(c: Connection, identity: IdentityFile, role: 'device' | 'gateway', fleet: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    const cause = e instanceof Error ? (e.cause as { code?: unknown } | undefined) : undefined;
    const refused = typeof cause?.code === 'number' ? AUTH_REFUSED.has(cause.code) : e instanceof Error && /Bad username or password|Not authorized/i.test(e.message);
    if (!refused) throw e;
    const why = cause instanceof Error ? cause.message : e instanceof Error ? e.message : String(e);
    const hint = c.auth === 'token'
      ? `the broker at ${c.url} refused the connect token of "${identity.id}" (${why}).\n`
        + `  Is ${identity.id} in the broker's registry with public key ${toHex(identity.publicKey)} (role ${role}, fleet ${fleet})?\n`
        + `  Is this machine's clock within 30 s of the broker's?\n`
        + `  (A broker with passwords instead, such as Mosquitto, needs --credentials FILE or ${ENV_USER} and ${ENV_PASSWORD}.)`
      : `the broker at ${c.url} refused the user name "${oneLine((c.auth as { username: string }).username, 64)}" and password from ${c.source} (${why}): `
        + 'check them against the broker\'s password file';
    throw new Failure(hint);
  }
}

/** A progress line on stderr: a bar on a terminal, a line every 10% otherwise. */
class Progress {
  private last = -1;
  constructor(private readonly label: string, private readonly total: number) {}
  update(done: number, extra = ''): void {
    const frac = this.total ? Math.min(1, done / this.total) : 1;
    if (isTTY) {
      const width = 30;
      const fill = Math.round(frac * width);
      process.stderr.write(`\r${this.label.padEnd(12)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb(done)} ${extra}`.padEnd(100));
    } else {
      const step = Math.floor(frac * 10);
      if (step !== this.last) {
        this.last = step;
        process.stderr.write(`${this.label}: ${(frac * 100).toFixed(0)}% ${mb(done)} ${extra}\n`);
      }
    }
  }
  done(): void {
    if (isTTY) process.stderr.write('\n');
  }
}

/** The consumer was told to stop (a signal): not a failure of the stream. */
class Stopped extends Error {}

/**
 * Reads a stream at most `rate` bytes per second, like a machine that prints. `signal` ends it
 * at once, whatever it waits for (the next bytes, the pace, the sink), with {@link Stopped}.
 */
async function consume(s: IncomingStream, rate: number, sink: (b: Uint8Array) => void | Promise<void>, onProgress?: (n: number) => void, signal?: AbortSignal): Promise<Uint8Array> {
  const h = createHash('sha256');
  const t0 = Date.now();
  let n = 0;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Stopped('stopped'));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  stopped.catch(() => undefined);
  const it = s.bytes()[Symbol.asyncIterator]();
  try {
    for (;;) {
      const r = await Promise.race([it.next(), stopped]);
      if (r.done) break;
      const b = r.value;
      h.update(b);
      const wrote = sink(b);
      if (wrote) await Promise.race([wrote, stopped]);
      n += b.length;
      onProgress?.(n);
      const ahead = (n / rate) * 1000 - (Date.now() - t0);
      if (ahead > 5) await Promise.race([sleep(ahead, undefined, signal ? { signal } : {}).catch(() => undefined), stopped]);
    }
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    // leaves the iterator without waiting for it: a pending read ends when the session does
    if (signal?.aborted) void it.return?.().catch(() => undefined);
  }
  return new Uint8Array(h.digest());
}

function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

// ---- demo ---------------------------------------------------------------------------------

async function demo(argv: string[]): Promise<number> {
  const { values } = parse(argv, { file: { type: 'string' }, w: { type: 'string' }, rate: { type: 'string' } });
  if (values['help']) return help('demo');
  const file = typeof values['file'] === 'string' ? values['file'] : join(repoRoot(), 'examples', 'cylinder_annular.gcode');
  if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
  const data = new Uint8Array(readFileSync(file));
  const w = values['w'] !== undefined ? num(values, 'w', 20, 8, 24) : undefined;
  const rate = num(values, 'rate', 4_000_000, 1000);
  const fileDigest = toHex(digest(data));
  console.log(`Live Matrix demo: ${file} (${mb(data.length)}, sha256 ${fileDigest.slice(0, 16)}...)`);

  const broker = await startBroker({ host: '127.0.0.1', port: 0 });
  console.log(`broker     aedes on ${broker.url}`);
  const operator = identityKeyPair();
  const gwKeys = identityKeyPair();
  const fleet = 'demo';
  // The two printers share one hashing engine here because they share this machine's cores.
  const engine = new MatrixEngine();
  await engine.start();
  console.log(`devices    measuring the hash rate of this host (${engine.workers} workers) ...`);
  const rates = await engine.benchmark(250);
  const caps = { suites: [...rates.entries()].map(([s, r]) => [s, Math.floor(r / 2)] as [1 | 2 | 3, number]), mem: 512 * 2 ** 20, wmax: 24, workers: engine.workers };
  console.log(`           ${[...rates.entries()].map(([s, r]) => `${SUITE_NAMES[s]} ${(r / 1e6).toFixed(1)} M/s`).join(', ')} (each printer reports half)`);
  const printers = ['printer-a', 'printer-b'];
  const devKeys = new Map<string, IdentityKeyPair>(printers.map((p) => [p, identityKeyPair()]));
  const devices = await Promise.all(printers.map((id) => Device.start({ url: broker.url, fleet, id, identity: devKeys.get(id)!, trustedOperators: [operator.publicKey], caps }, engine)));
  console.log(`devices    ${printers.join(', ')} online`);
  const gw = await Gateway.start({ url: broker.url, fleet, id: 'gateway-1', identity: gwKeys, trustedOperators: [operator.publicKey] });
  gw.on('log', (l) => console.log(`gateway    ${l}`));
  console.log('gateway    gateway-1 online');

  const now = Date.now();
  const results = await Promise.all(printers.map(async (id, i) => {
    const { tx, licence } = createTx({
      job: 'cylinder_annular', plaintext: { digest: digest(data), size: data.length }, device: id, devicePublic: devKeys.get(id)!.publicKey,
      operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: now - 60_000, notAfter: now + 3600_000,
      rate: rate * 2, burst: 8 * 2 ** 20, prints: 1, gatewayPublic: gwKeys.publicKey,
    });
    const incoming = devices[i]!.nextStream();
    const gs: GatewayStream = await gw.stream(id, data, tx.bytes, licence, { policy: w !== undefined ? { w } : {} });
    const stream = await incoming;
    if (i === 0) console.log(`session    suite ${SUITE_NAMES[gs.params.suite]}, w=${gs.params.w}, L=${gs.params.L}, revision period ${gs.params.period} ms, grace ${gs.params.grace} ms`);
    let telemetryShown = 0;
    gs.on('telemetry', (t) => {
      if (telemetryShown++ % 4 === 0 && !isTTY) console.log(`telemetry  ${id}: ${JSON.stringify(t)}`);
    });
    const progress = new Progress(id, data.length);
    const sent = { n: 0 };
    const tel = setInterval(() => {
      void devices[i]!.telemetry({ nozzle_mC: 215000 + Math.round(Math.random() * 800), bed_mC: 60000, progress_ppm: Math.round((sent.n / data.length) * 1e6), bytes_done: sent.n }).catch(() => undefined);
    }, 500);
    let lastAlarm = 0;
    gs.on('alarm', () => lastAlarm++);
    const got = consume(stream, rate, () => undefined, (n) => {
      sent.n = n;
      progress.update(n, `rev ${stream.params ? Math.floor((Date.now() - stream.params.epoch) / stream.params.period) : ''}`);
    });
    try {
      const [report, d] = await Promise.all([gs.done, got]);
      return { id, report, digest: toHex(d), alarms: lastAlarm, error: undefined as string | undefined };
    } catch (e) {
      return { id, report: undefined, digest: '', alarms: lastAlarm, error: (e as Error).message };
    } finally {
      clearInterval(tel);
      progress.done();
    }
  }));

  console.log('\nSummary');
  console.log('| device | sha256 equal | bytes | wire bytes | wire/plain | revisions | resends | alarms | seconds |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  let ok = true;
  for (const r of results) {
    const same = r.digest === fileDigest;
    ok &&= same && !r.error;
    const rep: StreamReport | undefined = r.report;
    console.log(`| ${r.id} | ${same ? 'yes' : 'NO'} | ${rep?.bytes ?? 0} | ${rep?.wireBytes ?? 0} | ${rep ? (rep.wireBytes / rep.bytes).toFixed(3) : '-'} | ${rep?.revisions ?? 0} | ${rep?.resends ?? 0} | ${r.alarms} | ${rep?.seconds.toFixed(2) ?? '-'} |`);
    if (r.error) console.log(`  ${r.id} failed: ${r.error}`);
  }
  await Promise.all(devices.map((d) => d.stop()));
  await gw.stop();
  await engine.stop();
  await broker.close();
  console.log(ok ? '\nBoth printers received exactly the file; only hints and key wraps crossed the broker.' : '\nDEMO FAILED');
  return ok ? EXIT.ok : EXIT.failure;
}

// ---- broker -------------------------------------------------------------------------------

async function brokerCmd(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, registry: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
    'tls-port': { type: 'string' }, 'ws-port': { type: 'string' }, 'metrics-port': { type: 'string' },
    'max-packet-size': { type: 'string' },
  });
  if (values['help']) return help('broker');
  const c: BrokerConfig = typeof values['config'] === 'string' ? readBrokerConfig(values['config']) : {};
  if (values['port'] !== undefined) c.port = num(values, 'port', 1883, 0, 65535);
  if (typeof values['host'] === 'string') c.host = values['host'];
  if (typeof values['registry'] === 'string') c.registry = values['registry'];
  if (values['cert'] !== undefined || values['key'] !== undefined) c.tls = { cert: need(values, 'cert'), key: need(values, 'key'), port: num(values, 'tls-port', 8883, 0, 65535) };
  if (values['ws-port'] !== undefined) c.ws = { port: num(values, 'ws-port', 8080, 0, 65535) };
  if (values['metrics-port'] !== undefined) c.metrics = { port: num(values, 'metrics-port', 9464, 0, 65535) };
  if (values['max-packet-size'] !== undefined) c.maxPacketSize = num(values, 'max-packet-size', 262_144, 64, 268_435_455);
  const b = await runBroker(c, (l) => console.error(l));
  const p = b.ports;
  console.log(`livematrix broker on ${c.host ?? '127.0.0.1'}: mqtt ${p.tcp}${p.tls ? `, mqtts ${p.tls}` : ''}${p.ws ? `, ws ${p.ws}` : ''}${p.metrics ? `, metrics http://${c.host ?? '127.0.0.1'}:${p.metrics}/metrics` : ''}${c.registry ? `, registry ${c.registry} (SIGHUP or edit to reload)` : ''}. Ctrl-C stops it.`);
  await new Promise<void>((r) => {
    process.once('SIGINT', r);
    process.once('SIGTERM', r);
  });
  console.error('stopping: closing client connections ...');
  await b.close();
  console.error('broker stopped');
  return EXIT.ok;
}

function aclCmd(argv: string[]): number {
  const { values } = parse(argv, { registry: { type: 'string' }, out: { type: 'string' } });
  if (values['help']) return help('acl');
  const reg = Registry.load(need(values, 'registry'));
  const text = mosquittoAcl(reg);
  const out = typeof values['out'] === 'string' ? values['out'] : '-';
  if (out === '-') process.stdout.write(text);
  else {
    writeFileSync(out + '.tmp', text);
    renameSync(out + '.tmp', out);
    console.error(`wrote ${out}: ${reg.all().length} clients (set acl_file ${out} in mosquitto.conf)`);
  }
  return EXIT.ok;
}

// ---- keys and transactions -----------------------------------------------------------------

function keygen(argv: string[]): number {
  const { values } = parse(argv, { id: { type: 'string' }, out: { type: 'string' } });
  if (values['help']) return help('keygen');
  const f = createIdentityFile(need(values, 'out'), need(values, 'id'));
  console.log(`wrote ${need(values, 'out')} (mode 600) for "${f.id}"\npublic key: ${toHex(f.publicKey)}`);
  return EXIT.ok;
}

/** SHA-256 and size of a file, read as a stream (jobs may be larger than memory allows). */
async function fileDigest(path: string): Promise<{ digest: Uint8Array; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const b of createReadStream(path)) {
    h.update(b as Buffer);
    size += (b as Buffer).length;
  }
  return { digest: new Uint8Array(h.digest()), size };
}

async function sign(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    operator: { type: 'string' }, job: { type: 'string' }, device: { type: 'string' }, 'device-key': { type: 'string' }, 'gateway-key': { type: 'string' },
    rate: { type: 'string' }, burst: { type: 'string' }, hours: { type: 'string' }, prints: { type: 'string' }, out: { type: 'string' },
  });
  if (values['help']) return help('sign');
  const op = readIdentityFile(need(values, 'operator'));
  const jobFile = need(values, 'job');
  if (!existsSync(jobFile)) throw new UsageError(`no such job file: ${jobFile}`);
  const plaintext = await fileDigest(jobFile);
  const now = Date.now();
  const { tx, licence } = createTx({
    job: jobFile.split('/').pop()!.slice(0, 128), plaintext, device: need(values, 'device'),
    devicePublic: hexKey(values, 'device-key'), operatorSecret: op.secretKey, operatorPublic: op.publicKey, notBefore: now - 60_000,
    notAfter: now + num(values, 'hours', 24, 0.01, 720) * 3600_000, rate: num(values, 'rate', 100_000, 1), burst: num(values, 'burst', 2 ** 20, 256),
    prints: num(values, 'prints', 1, 1, 1e6), ...(values['gateway-key'] ? { gatewayPublic: hexKey(values, 'gateway-key') } : {}),
  });
  const out = need(values, 'out');
  writeFileSync(out + '.tmp', JSON.stringify({ kind: 'livematrix-transaction', tx: toHex(tx.bytes), licence: toHex(licence), txh: toHex(tx.hash) }, null, 2) + '\n', { mode: 0o600 });
  renameSync(out + '.tmp', out);
  console.log(`wrote ${out}: job ${tx.body.job}, ${plaintext.size} bytes, device ${tx.body.device}, valid until ${new Date(tx.body.naf).toISOString()}`);
  return EXIT.ok;
}

function readTx(path: string): { tx: Uint8Array; licence: Uint8Array } {
  if (!existsSync(path)) throw new UsageError(`no such transaction file: ${path}`);
  const j = JSON.parse(readFileSync(path, 'utf8')) as { tx?: string; licence?: string };
  if (typeof j.tx !== 'string' || typeof j.licence !== 'string') throw new UsageError(`${path} is not a transaction file from "livematrix sign"`);
  return { tx: fromHex(j.tx), licence: fromHex(j.licence) };
}

// ---- gateway and stream --------------------------------------------------------------------

async function runJobs(values: Record<string, string | boolean | undefined>, jobs: { file: string; device: string; tx: string }[]): Promise<number> {
  const identity = readIdentityFile(need(values, 'identity'));
  const conn = connection(values);
  const trustedOperators = [hexKey(values, 'operator-key')];
  const fleet = typeof values['fleet'] === 'string' ? values['fleet'] : 'default';
  const gw = await connectAs(conn, identity, 'gateway', fleet, () => Gateway.start({
    url: conn.url, fleet,
    id: identity.id, identity, trustedOperators, brokerAuth: conn.auth,
  }));
  gw.on('log', (l) => console.error(l));
  // frames the gateway drops (forged, replayed, malformed) are logged, never fatal
  const refusals = new RateLimitedLog((l) => console.error(`gateway: ${l}`), 'dropped frames');
  gw.on('reject', (r) => refusals.line(describeRefusal(r)));
  let ok = true;
  await Promise.all(jobs.map(async (job) => {
    const { tx, licence } = readTx(job.tx);
    // read as a stream: the gateway checks size and digest against the transaction as the bytes
    // pass and fails the stream before END on a mismatch ([LM-TX-6])
    // a file can be opened again, so that a device that restarts and kept nothing is served from
    // byte 0 ([LM-DLV-10]); standard input cannot
    const input = job.file === '-' ? process.stdin : () => createReadStream(job.file);
    try {
      const s = await gw.stream(job.device, input, tx, licence, { policy: values['w'] !== undefined ? { w: num(values, 'w', 20, 8, 24) } : {} });
      let p: Progress | undefined;
      s.on('progress', (e) => (p ??= new Progress(job.device, e.total)).update(e.consumed));
      s.on('telemetry', (t) => console.error(`telemetry ${job.device}: ${JSON.stringify(t)}`));
      const r = await s.done;
      p?.done();
      console.log(JSON.stringify({ ...r, params: { ...r.params, suite: SUITE_NAMES[r.params.suite] } }));
    } catch (e) {
      ok = false;
      console.error(`${job.device}: ${(e as Error).message}`);
    }
  }));
  refusals.flush();
  await gw.stop();
  return ok ? EXIT.ok : EXIT.failure;
}

async function stream(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    device: { type: 'string' }, tx: { type: 'string' }, identity: { type: 'string' }, 'operator-key': { type: 'string' }, url: { type: 'string' },
    credentials: { type: 'string' }, fleet: { type: 'string' }, w: { type: 'string' },
  });
  if (values['help']) return help('stream');
  const file = positionals[0];
  if (!file) throw new UsageError('the G-code FILE to stream is required');
  if (file !== '-' && !existsSync(file)) throw new UsageError(`no such file: ${file}`);
  return runJobs(values, [{ file, device: need(values, 'device'), tx: need(values, 'tx') }]);
}

async function gateway(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    jobs: { type: 'string' }, identity: { type: 'string' }, 'operator-key': { type: 'string' }, url: { type: 'string' }, credentials: { type: 'string' },
    fleet: { type: 'string' }, w: { type: 'string' },
  });
  if (values['help']) return help('gateway');
  const path = need(values, 'jobs');
  let jobs: { file: string; device: string; tx: string }[];
  try {
    jobs = JSON.parse(readFileSync(path, 'utf8')) as typeof jobs;
    if (!Array.isArray(jobs) || !jobs.every((j) => typeof j.file === 'string' && typeof j.device === 'string' && typeof j.tx === 'string')) throw new Error('expected an array of { file, device, tx }');
  } catch (e) {
    throw new UsageError(`jobs file ${path}: ${(e as Error).message}`);
  }
  return runJobs(values, jobs);
}

// ---- device --------------------------------------------------------------------------------

async function device(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    identity: { type: 'string' }, 'operator-key': { type: 'string' }, out: { type: 'string' }, rate: { type: 'string' }, url: { type: 'string' },
    credentials: { type: 'string' }, fleet: { type: 'string' }, once: { type: 'boolean' },
  });
  if (values['help']) return help('device');
  const identity = readIdentityFile(need(values, 'identity'));
  const conn = connection(values);
  const trustedOperators = [hexKey(values, 'operator-key')];
  const rate = num(values, 'rate', 1e9, 1);
  const out = typeof values['out'] === 'string' ? values['out'] : '-';
  const part = out + '.part';
  const progressFile = out + '.part.json';
  const fleet = typeof values['fleet'] === 'string' ? values['fleet'] : 'default';
  const dev = await connectAs(conn, identity, 'device', fleet, () => Device.start({
    url: conn.url, fleet,
    id: identity.id, identity, trustedOperators, brokerAuth: conn.auth,
    // [LM-DLV-10]: after a restart, what this machine already took of a job is in FILE.part
    resume: (txh) => {
      if (out === '-' || !existsSync(progressFile) || !existsSync(part)) return undefined;
      const kept = JSON.parse(readFileSync(progressFile, 'utf8')) as { txh?: string };
      if (kept.txh !== txh) return undefined;
      return { bytes: statSync(part).size, read: (n: number) => (n > 0 ? createReadStream(part, { start: 0, end: n - 1 }) : []) };
    },
  }));

  // A device never dies of what arrives over the network: refused OFFERs and dropped frames are
  // logged (one line each, rate-limited) and it keeps serving. The SDK reports them as 'reject';
  // older SDKs emitted 'error' for a refused OFFER (twice for the same error object), which
  // with no listener is an uncaught exception.
  const refusals = new RateLimitedLog((l) => console.error(l), 'refusals');
  const senders = new OfferSenders();
  // ahead of the device's own handler, which may report a refusal before returning
  dev.link.client.prependListener('message', (_topic, payload) => senders.see(payload));
  dev.on('reject', (r) => refusals.line(describeRefusal(r, senders)));
  const seen = new WeakSet<object>();
  // untyped: 'error' is in the SDK's event map only as long as it still emits it
  (dev as unknown as EventEmitter).on('error', (e: unknown) => {
    if (typeof e === 'object' && e !== null) {
      if (seen.has(e)) return;
      seen.add(e);
    }
    const err = e instanceof LmError ? e : undefined;
    refusals.line(describeRefusal({ code: err?.code ?? 80, type: FrameType.OFFER, detail: err?.message ?? String(e) }, senders));
  });

  console.error(`device ${identity.id} online; capabilities ${JSON.stringify(dev.caps.suites.map(([s, r]) => `${SUITE_NAMES[s]} ${(r / 1e6).toFixed(1)} M/s`))}`);

  // SIGINT/SIGTERM: abort the running stream (its bytes stay in FILE.part), BYE, exit 0
  let code: number = EXIT.ok;
  const stopping = new AbortController();
  let signalled: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      console.error(`${sig} again: exiting at once`);
      process.exit(EXIT.failure);
    }
    signalled = sig;
    console.error(`${sig}: stopping`);
    stopping.abort();
    // the stop below takes milliseconds; should the broker hang, the process still ends in time
    setTimeout(() => {
      console.error('stopping took longer than 1.5 s: exiting without waiting for the broker');
      process.exit(code);
    }, 1500).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stopped = new Promise<undefined>((r) => stopping.signal.addEventListener('abort', () => r(undefined), { once: true }));

  while (!stopping.signal.aborted) {
    const next = await Promise.race([dev.nextStream(), stopped]);
    if (!next) break;
    console.error(`stream ${next.job}: ${next.size} bytes`);
    const p = new Progress(identity.id, next.size);
    let ws: WriteStream | undefined;
    if (out !== '-') {
      writeFileSync(progressFile, JSON.stringify({ txh: next.txh }) + '\n');
      if (next.offset > 0) {
        truncateSync(part, next.offset); // a resumed job: keep what is before the resume point
        console.error(`resuming ${next.job} at byte ${next.offset}`);
      }
      ws = createWriteStream(part, next.offset > 0 ? { flags: 'r+', start: next.offset } : { mode: 0o600 });
    }
    let taken = next.offset;
    try {
      await consume(next, rate, (b) => {
        // the SDK zeroes a piece once the loop moves on, and a write stream may still hold it:
        // the writes get copies
        const copy = Buffer.from(b);
        if (ws) return new Promise<void>((r) => (ws!.write(copy) ? r() : ws!.once('drain', () => r())));
        process.stdout.write(copy);
        return undefined;
      }, (n) => {
        taken = next.offset + n;
        p.update(n);
      }, stopping.signal);
      p.done();
      if (ws) {
        await new Promise<void>((r) => ws!.end(() => r()));
        renameSync(part, out); // complete and verified: only now under its name
        rmSync(progressFile, { force: true });
        console.error(`wrote ${out}`);
      }
    } catch (e) {
      p.done();
      if (e instanceof Stopped) {
        // what the machine took is kept (FILE.part and its progress file): a restart resumes
        if (ws) await new Promise<void>((r) => ws!.end(() => r()));
        console.error(`stream ${next.job} aborted by ${signalled ?? 'a stop'} at byte ${taken} of ${next.size}${ws ? `: partial data left in ${part}, not ${out}; the next start resumes it` : ''}`);
        break;
      }
      ws?.destroy();
      console.error(`stream failed: ${(e as Error).message}${ws ? ` (partial data left in ${part}, not ${out})` : ''}`);
      code = EXIT.failure;
    }
    if (values['once']) break;
  }
  refusals.flush();
  await dev.stop();
  console.error(`device ${identity.id} stopped${signalled ? ` (${signalled})` : ''}`);
  return code;
}

function help(cmd: string): number {
  console.log(HELP[cmd] ?? HELP['main']);
  return EXIT.ok;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'demo':
        return await demo(rest);
      case 'broker':
        return await brokerCmd(rest);
      case 'keygen':
        return keygen(rest);
      case 'sign':
        return await sign(rest);
      case 'acl':
        return aclCmd(rest);
      case 'stream':
        return await stream(rest);
      case 'gateway':
        return await gateway(rest);
      case 'device':
        return await device(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        return help('main');
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`livematrix: ${e.message}\nRun "livematrix ${cmd && HELP[cmd] ? cmd + ' ' : ''}--help" for usage.`);
      return EXIT.usage;
    }
    if (e instanceof LmError || e instanceof Failure) {
      console.error(`livematrix: ${e.message}`);
      return EXIT.failure;
    }
    console.error(`livematrix: unexpected error: ${(e as Error).stack ?? String(e)}`);
    return EXIT.failure;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e: unknown) => {
    console.error(e);
    process.exit(EXIT.failure);
  });
}
