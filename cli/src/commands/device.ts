/**
 * @module commands/device
 * `livematrix device`: a simulated machine. It accepts signed streams and writes each to a file
 * (FILE.part, renamed to FILE once complete and verified) or to stdout, at most --rate bytes per
 * second; it resumes a job from FILE.part after a restart, logs what it refuses without dying of
 * it, and stops within 2 s on SIGINT/SIGTERM.
 */
import type { EventEmitter } from 'node:events';
import { createWriteStream, existsSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync, type WriteStream } from 'node:fs';
import { Device, type IncomingStream, type ResumePoint } from '@livematrix/device-sdk';
import { SERIAL_OPTIONS, openSerial, toMachine } from '../machine-link.js';
import { type IdentityFile, readIdentityFile } from '@livematrix/spec/keyfile';
import { FrameType, LmError, SUITE_NAMES, errorMessage } from '@livematrix/spec';
import { EXIT, UsageError, type Values, hexKey, need, num, opt, parse } from '../args.js';
import { TLS_OPTIONS, connectAs, connection } from '../connection.js';
import { help } from '../help.js';
import { deviceStateDir } from '../state.js';
import { OfferSenders, RateLimitedLog, describeRefusal } from '../log.js';
import { Progress, Stopped, consume } from '../progress.js';

/** Where a device writes what it receives: `out` ('-' for stdout), `part` until complete. */
interface Output {
  out: string;
  part: string;
  /** the transaction hash of the job in `part`, so that a restart resumes only that job */
  progressFile: string;
}

/** A started device and how it consumes. */
interface DeviceRunner extends Output {
  dev: Device;
  identity: IdentityFile;
  /** bytes per second it consumes, at most */
  rate: number;
  /** ms between simulated temperature readings sent as telemetry while streaming; 0: none */
  telemetryMs: number;
}

/** The state of a run that its signal handler shares. */
interface Run {
  /** the exit code so far: 1 once a stream failed */
  code: number;
  /** the first signal received */
  signalled: string | undefined;
  /** aborted by the first signal */
  stopping: AbortController;
  /** resolves (to undefined) with the first signal */
  stopped: Promise<undefined>;
}

/**
 * [LM-DLV-10]: after a restart, what this machine already took of a job is the size of FILE.part.
 * The count is all the device needs: it kept points of the job's digest ([LM-DLV-20]) and never
 * reads FILE.part back; the stream then starts at or below the count, and openPart() truncates
 * FILE.part to that point and writes on from it.
 */
function resumeFrom({ out, part, progressFile }: Output): (txh: string) => ResumePoint | undefined {
  return (txh) => {
    if (out === '-' || !existsSync(progressFile) || !existsSync(part)) return undefined;
    const kept = JSON.parse(readFileSync(progressFile, 'utf8')) as { txh?: string };
    if (kept.txh !== txh) return undefined;
    return { bytes: statSync(part).size };
  };
}

/**
 * The footprint options: `--lite` for small hosts (no hashing worker threads, w at most 16, a
 * 1 MiB receive window: tables of at most 320 KiB, built on the main thread in milliseconds), and
 * each knob on its own. What a device reports it can do ([LM-CAP-1], [LM-CAP-2]) follows from them,
 * so gateways offer it only widths it keeps up with.
 */
export const LITE = { workers: 0, wmax: 16, memoryMiB: 16, windowKiB: 1024 } as const;
function footprint(values: Values): { workers?: number; wmax?: number; memory?: number; window?: number; resumePointInterval?: number } {
  const lite = values['lite'] === true;
  const o: { workers?: number; wmax?: number; memory?: number; window?: number; resumePointInterval?: number } = lite
    ? { workers: LITE.workers, wmax: LITE.wmax, memory: LITE.memoryMiB * 2 ** 20, window: LITE.windowKiB * 1024 }
    : {};
  if (values['workers'] !== undefined) o.workers = num(values, 'workers', 0, 0, 64);
  if (values['wmax'] !== undefined) o.wmax = num(values, 'wmax', 24, 8, 24); // [LM-PARAM-2]
  if (values['memory'] !== undefined) o.memory = num(values, 'memory', 512, 1, 65_536) * 2 ** 20;
  if (values['window'] !== undefined) o.window = num(values, 'window', 4096, 16, 1_048_576) * 1024;
  // [LM-DLV-20]: how often the device writes a resume point beside its ticket (each write replaces licences.json)
  if (values['resume-point-interval'] !== undefined) o.resumePointInterval = num(values, 'resume-point-interval', 10_000, 100, 3_600_000);
  for (const k of ['workers', 'wmax'] as const) {
    const v = o[k];
    if (v !== undefined && !Number.isInteger(v)) throw new UsageError(`--${k} must be an integer, got ${v}`);
  }
  return o;
}

/** Reads the options and connects the device to the broker. */
async function startDevice(values: Values): Promise<DeviceRunner> {
  const identity = readIdentityFile(need(values, 'identity'));
  const conn = connection(values);
  const trustedOperators = [hexKey(values, 'operator-key')];
  const rate = num(values, 'rate', 1e9, 1);
  const out = opt(values, 'out', '-');
  const output: Output = { out, part: out + '.part', progressFile: out + '.part.json' };
  const fleet = opt(values, 'fleet', 'default');
  const dev = await connectAs(conn, identity, 'device', fleet, () => Device.start({
    url: conn.url, fleet, protocolVersion: conn.protocolVersion, ...(conn.tls ? { tls: conn.tls } : {}),
    id: identity.id, identity, trustedOperators, brokerAuth: conn.auth,
    resume: resumeFrom(output), ...footprint(values),
    // print counts, resume tickets and seen OFFERs survive a restart ([LM-LIC-2]), and so does the boot sequence ([LM-STATE-3])
    stateDir: opt(values, 'state', deviceStateDir(identity.id)),
    statusInterval: num(values, 'status-interval', 30_000, 1), // [LM-STATE-1]
  }));
  return { ...output, dev, identity, rate, telemetryMs: values['simulate-telemetry'] ? 500 : 0 };
}

/**
 * A device never dies of what arrives over the network: refused OFFERs and dropped frames are
 * logged (one line each, rate-limited) and it keeps serving. The SDK reports them as 'reject';
 * older SDKs emitted 'error' for a refused OFFER (twice for the same error object), which
 * with no listener is an uncaught exception.
 */
function logRefusals(dev: Device): RateLimitedLog {
  const refusals = new RateLimitedLog((l) => console.error(l), 'refusals');
  const senders = new OfferSenders();
  // ahead of the device's own handler, which may report a refusal before returning
  dev.link.client.prependListener('message', (_topic, payload) => senders.see(payload));
  dev.on('reject', (r) => refusals.line(describeRefusal(r, senders)));
  dev.link.onError((e) => console.error(`broker connection: ${errorMessage(e)}; reconnecting`));
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
  return refusals;
}

/** SIGINT/SIGTERM: abort the running stream (its bytes stay in FILE.part), BYE, exit 0 */
function handleSignals(): Run {
  const stopping = new AbortController();
  const stopped = new Promise<undefined>((r) => stopping.signal.addEventListener('abort', () => r(undefined), { once: true }));
  const run: Run = { code: EXIT.ok, signalled: undefined, stopping, stopped };
  const onSignal = (sig: NodeJS.Signals) => {
    if (run.signalled) {
      console.error(`${sig} again: exiting at once`);
      process.exit(EXIT.failure);
    }
    run.signalled = sig;
    console.error(`${sig}: stopping`);
    stopping.abort();
    // the stop below takes milliseconds; should the broker hang, the process still ends in time
    setTimeout(() => {
      console.error('stopping took longer than 1.5 s: exiting without waiting for the broker');
      process.exit(run.code);
    }, 1500).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return run;
}

/** Opens FILE.part for a stream (undefined for stdout), keeping what a resumed job already has. */
function openPart(next: IncomingStream, o: Output): WriteStream | undefined {
  if (o.out === '-') return undefined;
  writeFileSync(o.progressFile, JSON.stringify({ txh: next.txh }) + '\n');
  if (next.offset > 0) {
    truncateSync(o.part, next.offset); // a resumed job: keep what is before the resume point
    console.error(`resuming ${next.job} at byte ${next.offset}`);
  }
  return createWriteStream(o.part, next.offset > 0 ? { flags: 'r+', start: next.offset } : { mode: 0o600 });
}

/** Writes to `ws`, waiting when it is full; to stdout without it. */
function sinkTo(ws: WriteStream | undefined): (b: Uint8Array) => Promise<void> | undefined {
  return (b) => {
    // the SDK zeroes a piece once the loop moves on, and a write stream may still hold it:
    // the writes get copies
    const copy = Buffer.from(b);
    // taken once written: what a kill -9 leaves in FILE.part is then all the consumer took, so a
    // restart resumes from there ([LM-DLV-5], [LM-DLV-10])
    if (ws) return new Promise<void>((r, j) => ws.write(copy, (e) => (e ? j(e) : r())));
    process.stdout.write(copy);
    return undefined;
  };
}

const close = (ws: WriteStream) => new Promise<void>((r) => ws.end(() => r()));

/** Receives one stream into FILE (through FILE.part) or stdout. */
async function receive(next: IncomingStream, d: DeviceRunner, run: Run): Promise<'done' | 'stopped' | 'failed'> {
  console.error(`stream ${next.job}: ${next.size} bytes`);
  const p = new Progress(d.identity.id, next.size);
  const ws = openPart(next, d);
  let taken = next.offset;
  // a simulated machine's readings: a nozzle near 215 °C, a bed near 60 °C, and how far it is ([LM-TEL-1])
  const tel = d.telemetryMs > 0 ? setInterval(() => {
    const t = Date.now() / 1000;
    const readings = { nozzle_mC: Math.round(215_000 + 1500 * Math.sin(t / 3) + 300 * Math.random()), bed_mC: Math.round(60_000 + 400 * Math.sin(t / 7)), progress_ppm: Math.round((taken / Math.max(1, next.size)) * 1e6) };
    void d.dev.telemetry({ ...readings, bytes_done: taken }).catch(() => undefined);
    // the same temperatures and progress in the signed status, in clear (SPEC §10.2); not the byte count
    void d.dev.setStatus({ readings }).catch(() => undefined);
  }, d.telemetryMs) : undefined;
  try {
    await consume(next, d.rate, sinkTo(ws), (n) => {
      taken = next.offset + n;
      p.update(taken); // of the whole job, also when it resumed
    }, run.stopping.signal);
    p.done();
    if (ws) {
      await close(ws);
      renameSync(d.part, d.out); // complete and verified: only now under its name
      rmSync(d.progressFile, { force: true });
      console.error(`wrote ${d.out}`);
    }
    return 'done';
  } catch (e) {
    p.done();
    if (e instanceof Stopped) {
      // what the machine took is kept (FILE.part and its progress file): a restart resumes
      if (ws) await close(ws);
      console.error(`stream ${next.job} aborted by ${run.signalled ?? 'a stop'} at byte ${taken} of ${next.size}${ws ? `: partial data left in ${d.part}, not ${d.out}; the next start resumes it` : ''}`);
      return 'stopped';
    }
    ws?.destroy();
    console.error(`stream failed: ${errorMessage(e)}${ws ? ` (partial data left in ${d.part}, not ${d.out})` : ''}`);
    return 'failed';
  } finally {
    clearInterval(tel);
  }
}

export async function device(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    identity: { type: 'string' }, 'operator-key': { type: 'string' }, out: { type: 'string' }, rate: { type: 'string' }, url: { type: 'string' }, ...TLS_OPTIONS,
    credentials: { type: 'string' }, mqtt: { type: 'string' }, fleet: { type: 'string' }, once: { type: 'boolean' }, state: { type: 'string' }, 'simulate-telemetry': { type: 'boolean' },
    'status-interval': { type: 'string' }, lite: { type: 'boolean' }, workers: { type: 'string' }, wmax: { type: 'string' }, memory: { type: 'string' }, window: { type: 'string' }, 'resume-point-interval': { type: 'string' },
    ...SERIAL_OPTIONS, // --serial PATH: to a Marlin-style firmware instead of --out (machine-link.ts)
  });
  if (values['help']) return help('device');
  const serial = await openSerial(values); // before the broker: a wrong port fails at once
  const d = await startDevice(values);
  if (values['lite'] === true && !`${process.env['NODE_OPTIONS'] ?? ''} ${process.execArgv.join(' ')}`.includes('max-semi-space-size')) {
    console.error('--lite: for the smallest footprint also start Node with NODE_OPTIONS="--v8-pool-size=0 --max-semi-space-size=1" (about 50 MiB less at a printer\'s rate; BENCHMARKS.md, bench:footprint)');
  }
  const refusals = logRefusals(d.dev);
  console.error(`device ${d.identity.id} online; capabilities ${JSON.stringify(d.dev.caps.suites.map(([s, r]) => `${SUITE_NAMES[s]} ${(r / 1e6).toFixed(1)} M/s`))}`);
  const run = handleSignals();
  while (!run.stopping.signal.aborted) {
    const next = await Promise.race([d.dev.nextStream(), run.stopped]);
    if (!next) break;
    const result = serial ? await toMachine(next, serial, d.identity.id, run.stopping.signal, () => run.signalled) : await receive(next, d, run);
    if (result === 'stopped') break;
    if (result === 'failed') run.code = EXIT.failure;
    if (values['once']) break;
  }
  refusals.flush();
  await serial?.close();
  await d.dev.stop();
  console.error(`device ${d.identity.id} stopped${run.signalled ? ` (${run.signalled})` : ''}`);
  return run.code;
}
