/**
 * @module commands/demo
 * `livematrix demo`: the whole chain on this host (SPEC §16): an owner encrypts a G-code file
 * and uploads it, as ciphertext among decoys, to a store, with its chunk keys sealed to a keys
 * service; an embedded broker, a gateway that streams what it cannot read, and two simulated
 * printers; a transaction signed per printer whose licence only the keys service and the
 * printer hold; progress and telemetry on the way, the store changing epoch mid-stream, a
 * summary that says whether both printers received exactly the file, and which node held what.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker } from '@livematrix/broker';
import { Device, type IncomingStream } from '@livematrix/device-sdk';
import { type IdentityKeyPair, SUITE_NAMES, type SignedUpload, digest, identityKeyPair, sealUpload, toHex, errorMessage, verifyLedger } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { Gateway, type StreamReport } from '@livematrix/gateway';
import { FileStore, FleetService, type JobRecord, openFleetDb, operatorToken, serveApi } from '@livematrix/gateway/fleet';
import { type KeysService, openKeysService } from '@livematrix/gateway/keys-service';
import { type ProtectedStore, openStore } from '@livematrix/gateway/store';
import { EXIT, UsageError, num, parse } from '../args.js';
import { untilSignal } from '../services.js';
import { help } from '../help.js';
import { Progress, consume, isTTY, mb } from '../progress.js';

/** What the demo streams, and how. */
interface DemoJob {
  data: Uint8Array;
  /** segment width; undefined: negotiated */
  w: number | undefined;
  /** bytes per second each printer consumes */
  rate: number;
}

/** The broker, gateway and printers of a demo. */
interface DemoSetup {
  broker: Awaited<ReturnType<typeof startBroker>>;
  operator: IdentityKeyPair;
  gwKeys: IdentityKeyPair;
  engine: MatrixEngine;
  printers: string[];
  devKeys: Map<string, IdentityKeyPair>;
  devices: Device[];
  gw: Gateway;
  keys: KeysService;
  store: ProtectedStore;
  /** the store's and keys service's directories */
  dir: string;
  /** store epochs the demo saw change */
  rotations: number;
  /** the fleet service the jobs go through (SPEC §17), and its dashboard */
  fleet: FleetService;
  api: Awaited<ReturnType<typeof serveApi>>;
}

interface PrinterResult {
  id: string;
  report: StreamReport | undefined;
  /** SHA-256 (hex) of what the printer consumed */
  digest: string;
  alarms: number;
  error: string | undefined;
}

/** The repository root: this file is cli/dist/src/commands/demo.js once built. */
function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
}

/** Starts the keys service, the store, the broker, measures this host, starts two printers and a gateway. */
/** The service's API on `port`, or on a free port when that one is taken. */
async function listen(service: FleetService, port: number): Promise<Awaited<ReturnType<typeof serveApi>>> {
  try {
    return await serveApi(service, { port });
  } catch (e) {
    if ((e as { code?: string }).code !== 'EADDRINUSE' || port === 0) throw e;
    return serveApi(service, { port: 0 });
  }
}

async function startDemo(port: number): Promise<DemoSetup> {
  const dir = mkdtempSync(join(tmpdir(), 'livematrix-demo-'));
  const operator = identityKeyPair();
  const gwKeys = identityKeyPair();
  const keys = openKeysService({ dir: join(dir, 'keys'), identity: identityKeyPair(), trustedOperators: [operator.publicKey] });
  console.log(`keys       keys service: chunk keys, playbooks and licences, sealed at rest in ${join(dir, 'keys')}`);
  const s0 = { rotations: 0 };
  // a short epoch, so that the store changes its outer key while the printers print ([LM-SVC-3])
  const store = await openStore({ dir: join(dir, 'store'), epochs: keys, epochMs: 1500, onEvent: (ev) => void (ev.kind === 'rotated' && s0.rotations++) });
  console.log(`store      segments under an outer key that changes every 1.5 s, in ${join(dir, 'store')}`);
  const broker = await startBroker({ host: '127.0.0.1', port: 0 });
  console.log(`broker     aedes on ${broker.url}`);
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
  const devices = await Promise.all(printers.map((id) => Device.start({ url: broker.url, fleet, id, identity: devKeys.get(id)!, trustedOperators: [operator.publicKey], caps,
    // a status every 2 s, so that the dashboard's machine readings move while a job runs ([LM-STATE-1])
    statusInterval: 2000 }, engine)));
  console.log(`devices    ${printers.join(', ')} online`);
  const deviceKeys = new Map([...devKeys].map(([id, k]) => [id, k.publicKey]));
  const gw = await Gateway.start({ url: broker.url, fleet, id: 'gateway-1', identity: gwKeys, trustedOperators: [operator.publicKey], protected: { keys, store }, deviceKeys });
  gw.on('log', (l) => console.log(`gateway    ${l}`));
  console.log('gateway    gateway-1 online: it streams from the store and relays the keys service\'s key wraps');
  // the fleet service queues the jobs and runs them through the gateway; it signs with the
  // operator's key, and a protected job's licence goes straight to the keys service ([LM-SVC-4])
  const service = await FleetService.start({
    id: 'serve-demo', gateway: gw, db: await openFleetDb(join(dir, 'fleet.db')), files: new FileStore(join(dir, 'files')), trustedOperators: [operator.publicKey], operator,
    deviceKeys, grant: async (tx, licence) => void (await keys.grant(tx, licence)),
  });
  const api = await listen(service, port);
  console.log(`fleet      dashboard: ${api.url}#token=${operatorToken(operator, Date.now(), 12 * 3600_000, 'demo')}`);
  return {
    broker, operator, gwKeys, engine, printers, devKeys, devices, gw, keys, store, dir, fleet: service, api,
    get rotations() {
      return s0.rotations;
    },
  };
}

/** The owner's machine: the file is encrypted here; only ciphertext and a sealed envelope leave ([LM-PROT-1]). */
async function upload(s: DemoSetup, data: Uint8Array): Promise<{ jid: Uint8Array; upload: SignedUpload }> {
  const owner = identityKeyPair();
  const up = sealUpload(data, { owner, keysService: s.keys.x25519Public, now: Date.now() });
  await s.store.put(up.segments);
  await s.keys.register(up.upload.bytes, up.envelope);
  const b = up.upload.body;
  console.log(`owner      encrypted ${mb(data.length)} into ${b.n} chunks under ${b.n} fresh keys; uploaded ${b.segments} segments of ${b.C + 16} bytes (${b.segments - b.n} decoys) to the store, the keys sealed to the keys service`);
  return { jid: up.jid, upload: up.upload };
}

/**
 * The operator's job for one printer, through the fleet service: one print of the protected job,
 * its transaction signed by the service with the operator's key, its licence secret handed to the
 * keys service, never to the gateway.
 */
async function submit(s: DemoSetup, job: DemoJob, up: { jid: Uint8Array; upload: SignedUpload }, id: string): Promise<JobRecord> {
  return s.fleet.submit({
    device: id, jid: toHex(up.jid), uploadHash: toHex(up.upload.hash), digest: toHex(digest(job.data)), size: job.data.length, prints: 1,
    rate: job.rate * 2, burst: 8 * 2 ** 20, hours: 1,
  }, 'demo');
}

/** The printer's telemetry every 500 ms: temperatures and how far it is. */
function sendTelemetry(dev: Device, sent: { n: number }, size: number): NodeJS.Timeout {
  return setInterval(() => {
    const readings = { nozzle_mC: 215000 + Math.round(Math.random() * 800), bed_mC: 60000, progress_ppm: Math.round((sent.n / size) * 1e6) };
    // to the session's gateway under the session's keys ([LM-TEL-1]), the byte count included
    void dev.telemetry({ ...readings, bytes_done: sent.n }).catch(() => undefined);
    // and, in clear but signed, to the fleet's view of the machine ([LM-STATE-1]): no job content
    void dev.setStatus({ readings }).catch(() => undefined);
  }, 500);
}

/** A job's end: its state and, once SUCCEEDED, the stream's report. */
function jobEnd(s: DemoSetup, id: string, reports: Map<string, StreamReport>): Promise<{ job: JobRecord; report: StreamReport | undefined }> {
  return new Promise((resolve) => {
    const on = (j: JobRecord) => {
      if (j.id !== id || !['SUCCEEDED', 'FAILED', 'REJECTED', 'TIMED_OUT', 'CANCELED'].includes(j.state)) return;
      s.fleet.off('job', on);
      resolve({ job: j, report: reports.get(j.device) });
    };
    s.fleet.on('job', on);
  });
}

/** One printer: takes its next stream, consumes it at the job's rate, with progress and telemetry. */
async function simulatePrinter(s: DemoSetup, job: DemoJob, i: number, end: Promise<{ job: JobRecord; report: StreamReport | undefined }>): Promise<PrinterResult> {
  const id = s.printers[i]!;
  const dev = s.devices[i]!;
  const stream = await Promise.race([dev.nextStream(), end.then(() => undefined)]);
  if (!stream) {
    const e = await end;
    return { id, report: undefined, digest: '', alarms: 0, error: `${e.job.state}: ${e.job.reason}` };
  }
  if (i === 0 && stream.params) console.log(`session    suite ${SUITE_NAMES[stream.params.suite]}, w=${stream.params.w}, L=${stream.params.L}, revision period ${stream.params.period} ms, grace ${stream.params.grace} ms`);
  const progress = new Progress(id, job.data.length);
  const sent = { n: 0 };
  const tel = sendTelemetry(dev, sent, job.data.length);
  const got = consume(stream, job.rate, () => undefined, (n) => {
    sent.n = n;
    progress.update(n, `rev ${stream.params ? Math.floor((Date.now() - stream.params.epoch) / stream.params.period) : ''}`);
  });
  try {
    const [e, d] = await Promise.all([end, got]);
    return { id, report: e.report, digest: toHex(d), alarms: e.report?.alarms ?? 0, error: e.job.state === 'SUCCEEDED' ? undefined : `${e.job.state}: ${e.job.reason}` };
  } catch (e) {
    return { id, report: undefined, digest: '', alarms: 0, error: errorMessage(e) };
  } finally {
    clearInterval(tel);
    progress.done();
  }
}

/** The summary table; true when every printer consumed exactly the file. */
function summary(results: PrinterResult[], expected: string): boolean {
  console.log('\nSummary');
  console.log('| device | sha256 equal | bytes | wire bytes | wire/plain | revisions | resends | alarms | seconds | ledger record |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  let ok = true;
  for (const r of results) {
    const same = r.digest === expected;
    ok &&= same && !r.error;
    const rep = r.report;
    console.log(`| ${r.id} | ${same ? 'yes' : 'NO'} | ${rep?.bytes ?? 0} | ${rep?.wireBytes ?? 0} | ${rep ? (rep.wireBytes / rep.bytes).toFixed(3) : '-'} | ${rep?.revisions ?? 0} | ${rep?.resends ?? 0} | ${r.alarms} | ${rep?.seconds.toFixed(2) ?? '-'} | ${rep?.ledger ? `#${rep.ledger.seq} ${rep.ledger.hash.slice(0, 12)}...` : '-'} |`);
    if (r.error) console.log(`  ${r.id} failed: ${r.error}`);
  }
  return ok;
}

async function stopDemo(s: DemoSetup): Promise<void> {
  await s.api.app.close();
  await Promise.all(s.devices.map((d) => d.stop()));
  await s.fleet.stop(); // stops the gateway too
  await s.fleet.o.db.close();
  await s.engine.stop();
  await s.broker.close();
  await s.store.close();
  await s.keys.close();
  rmSync(s.dir, { recursive: true, force: true });
}

/** Which node held what ([LM-SVC-4]): no single one a usable file. */
async function whoHoldsWhat(s: DemoSetup, n: number): Promise<void> {
  const st = await s.store.stats();
  console.log('\nWho held what');
  console.log('| node | held | could it print the file alone? |');
  console.log('|---|---|---|');
  console.log(`| owner | the file; encrypted it before upload | yes: it is the owner |`);
  console.log(`| store | ${st.segments} segments of ${st.sizes.map((x) => x.size).join('/')} bytes, real and decoy alike, under the epoch ${st.epoch} key (${s.rotations} changes during the demo) | no: no chunk key, no order, and its files go stale each epoch |`);
  console.log(`| keys service | ${n} chunk keys and the playbook, sealed at rest; 2 licences; the epoch chain | no: no segment |`);
  console.log('| gateway | the ciphertext in flight, hint keys, key wraps it cannot open | no: no chunk key, no licence |');
  console.log('| fleet service | the queue: each job\'s state, its signed transaction (no licence: it went to the keys service) | no: no segment, no key |');
  console.log('| broker | hints and key wraps | no |');
  console.log('| printers | each the plaintext it printed, as any printer | one print each, as licensed |');
}

export async function demo(argv: string[]): Promise<number> {
  const { values } = parse(argv, { file: { type: 'string' }, w: { type: 'string' }, rate: { type: 'string' }, port: { type: 'string' }, keep: { type: 'boolean' }, exit: { type: 'boolean' } });
  if (values['help']) return help('demo');
  const file = typeof values['file'] === 'string' ? values['file'] : join(repoRoot(), 'examples', 'cylinder_annular.gcode');
  if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
  // kept running for the dashboard when someone watches (a terminal), unless told otherwise
  const keep = values['keep'] === true || (isTTY && values['exit'] !== true);
  const data = new Uint8Array(readFileSync(file));
  const job: DemoJob = { data, w: values['w'] !== undefined ? num(values, 'w', 20, 8, 24) : undefined, rate: num(values, 'rate', keep ? 1_000_000 : 4_000_000, 1000) };
  const expected = toHex(digest(data));
  console.log(`Live Matrix demo: ${file} (${mb(data.length)}, sha256 ${expected.slice(0, 16)}...)`);

  const s = await startDemo(num(values, 'port', 8080, 0, 65535));
  const up = await upload(s, data);
  const reports = new Map<string, StreamReport>();
  s.fleet.on('report', (r) => reports.set(r.device, r));
  const jobs = await Promise.all(s.printers.map((id) => submit(s, job, up, id)));
  console.log(`fleet      ${jobs.map((j) => `job ${j.id} queued for ${j.device}`).join('; ')}`);
  const results = await Promise.all(jobs.map((j, i) => simulatePrinter(s, job, i, jobEnd(s, j.id, reports))));
  let ok = summary(results, expected);
  // every signed receipt is a record of the gateway's hash-chained ledger ([LM-LEDGER-1])
  const ledger = await verifyLedger(s.gw.db.ledger());
  console.log(`receipt ledger: ${ledger.count} records, ${ledger.ok ? 'chain and every device signature verified' : `PROBLEMS: ${ledger.problems.map((p) => `seq ${p.seq}: ${p.detail}`).join('; ')}`}`);
  ok &&= ledger.ok && ledger.count === results.length;
  await whoHoldsWhat(s, up.upload.body.n);
  console.log(ok ? '\nBoth printers received exactly the file; only hints and key wraps crossed the broker.' : '\nDEMO FAILED');
  if (keep) {
    console.log(`\nThe fleet service goes on: dashboard ${s.api.url} (the link above signs you in). Ctrl-C ends the demo.`);
    await untilSignal();
  }
  await stopDemo(s);
  return ok ? EXIT.ok : EXIT.failure;
}
