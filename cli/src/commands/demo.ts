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
import { type IdentityKeyPair, SUITE_NAMES, type SignedUpload, createTx, digest, identityKeyPair, sealUpload, toHex, errorMessage, verifyLedger } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { Gateway, type GatewayStream, type StreamReport } from '@livematrix/gateway';
import { type KeysService, openKeysService } from '@livematrix/gateway/keys-service';
import { type ProtectedStore, openStore } from '@livematrix/gateway/store';
import { EXIT, UsageError, num, parse } from '../args.js';
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
async function startDemo(): Promise<DemoSetup> {
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
  const devices = await Promise.all(printers.map((id) => Device.start({ url: broker.url, fleet, id, identity: devKeys.get(id)!, trustedOperators: [operator.publicKey], caps }, engine)));
  console.log(`devices    ${printers.join(', ')} online`);
  const gw = await Gateway.start({ url: broker.url, fleet, id: 'gateway-1', identity: gwKeys, trustedOperators: [operator.publicKey], protected: { keys, store } });
  gw.on('log', (l) => console.log(`gateway    ${l}`));
  console.log('gateway    gateway-1 online: it streams from the store and relays the keys service\'s key wraps');
  return {
    broker, operator, gwKeys, engine, printers, devKeys, devices, gw, keys, store, dir,
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
 * The operator's transaction for one printer: one print of the protected job, valid for an
 * hour, this gateway only; its licence secret goes to the keys service, never to the gateway.
 */
async function demoTx(s: DemoSetup, job: DemoJob, up: { jid: Uint8Array; upload: SignedUpload }, id: string, now: number): Promise<Uint8Array> {
  const { tx, licence } = createTx({
    job: 'cylinder_annular', plaintext: { digest: digest(job.data), size: job.data.length }, device: id, devicePublic: s.devKeys.get(id)!.publicKey,
    operatorSecret: s.operator.secretKey, operatorPublic: s.operator.publicKey, notBefore: now - 60_000, notAfter: now + 3600_000,
    rate: job.rate * 2, burst: 8 * 2 ** 20, prints: 1, gatewayPublic: s.gwKeys.publicKey, protectedJob: { jid: up.jid, uh: up.upload.hash },
  });
  await s.keys.grant(tx.bytes, licence);
  licence.fill(0);
  return tx.bytes;
}

/** The printer's telemetry every 500 ms: temperatures and how far it is. */
function sendTelemetry(dev: Device, sent: { n: number }, size: number): NodeJS.Timeout {
  return setInterval(() => {
    void dev.telemetry({ nozzle_mC: 215000 + Math.round(Math.random() * 800), bed_mC: 60000, progress_ppm: Math.round((sent.n / size) * 1e6), bytes_done: sent.n }).catch(() => undefined);
  }, 500);
}

/** One printer: consumes the stream at the job's rate, with progress and telemetry. */
async function simulatePrinter(s: DemoSetup, job: DemoJob, id: string, i: number, gs: GatewayStream, stream: IncomingStream): Promise<PrinterResult> {
  let telemetryShown = 0;
  gs.on('telemetry', (t) => {
    if (telemetryShown++ % 4 === 0 && !isTTY) console.log(`telemetry  ${id}: ${JSON.stringify(t)}`);
  });
  const progress = new Progress(id, job.data.length);
  const sent = { n: 0 };
  const tel = sendTelemetry(s.devices[i]!, sent, job.data.length);
  let lastAlarm = 0;
  gs.on('alarm', () => lastAlarm++);
  const got = consume(stream, job.rate, () => undefined, (n) => {
    sent.n = n;
    progress.update(n, `rev ${stream.params ? Math.floor((Date.now() - stream.params.epoch) / stream.params.period) : ''}`);
  });
  try {
    const [report, d] = await Promise.all([gs.done, got]);
    return { id, report, digest: toHex(d), alarms: lastAlarm, error: undefined };
  } catch (e) {
    return { id, report: undefined, digest: '', alarms: lastAlarm, error: errorMessage(e) };
  } finally {
    clearInterval(tel);
    progress.done();
  }
}

/** Signs a transaction for printer `i` and streams the protected job to it. */
async function streamToPrinter(s: DemoSetup, job: DemoJob, up: { jid: Uint8Array; upload: SignedUpload }, i: number, now: number): Promise<PrinterResult> {
  const id = s.printers[i]!;
  const tx = await demoTx(s, job, up, id, now);
  const incoming = s.devices[i]!.nextStream();
  const gs: GatewayStream = await s.gw.streamProtected(id, tx, { policy: job.w !== undefined ? { w: job.w } : {} });
  const stream = await incoming;
  if (i === 0) console.log(`session    suite ${SUITE_NAMES[gs.params.suite]}, w=${gs.params.w}, L=${gs.params.L}, revision period ${gs.params.period} ms, grace ${gs.params.grace} ms`);
  return simulatePrinter(s, job, id, i, gs, stream);
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
  await Promise.all(s.devices.map((d) => d.stop()));
  await s.gw.stop();
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
  console.log('| broker | hints and key wraps | no |');
  console.log('| printers | each the plaintext it printed, as any printer | one print each, as licensed |');
}

export async function demo(argv: string[]): Promise<number> {
  const { values } = parse(argv, { file: { type: 'string' }, w: { type: 'string' }, rate: { type: 'string' } });
  if (values['help']) return help('demo');
  const file = typeof values['file'] === 'string' ? values['file'] : join(repoRoot(), 'examples', 'cylinder_annular.gcode');
  if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
  const data = new Uint8Array(readFileSync(file));
  const job: DemoJob = { data, w: values['w'] !== undefined ? num(values, 'w', 20, 8, 24) : undefined, rate: num(values, 'rate', 4_000_000, 1000) };
  const expected = toHex(digest(data));
  console.log(`Live Matrix demo: ${file} (${mb(data.length)}, sha256 ${expected.slice(0, 16)}...)`);

  const s = await startDemo();
  const up = await upload(s, data);
  const now = Date.now();
  const results = await Promise.all(s.printers.map((_, i) => streamToPrinter(s, job, up, i, now)));
  let ok = summary(results, expected);
  // every signed receipt is a record of the gateway's hash-chained ledger ([LM-LEDGER-1])
  const ledger = await verifyLedger(s.gw.db.ledger());
  console.log(`receipt ledger: ${ledger.count} records, ${ledger.ok ? 'chain and every device signature verified' : `PROBLEMS: ${ledger.problems.map((p) => `seq ${p.seq}: ${p.detail}`).join('; ')}`}`);
  ok &&= ledger.ok && ledger.count === results.length;
  await whoHoldsWhat(s, up.upload.body.n);
  await stopDemo(s);
  console.log(ok ? '\nBoth printers received exactly the file; only hints and key wraps crossed the broker.' : '\nDEMO FAILED');
  return ok ? EXIT.ok : EXIT.failure;
}
