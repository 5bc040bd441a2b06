/**
 * @module stream-run
 * The streams of bench:stream: a gateway in this process and a device in a child process
 * (device-child.ts), over the broker at `url`. {@link streamOnce} streams a whole file (the
 * throughput run, optionally on the protected path); {@link firstLines} streams the start of a
 * job several times and measures, per stream, the time from the operator's stream command to the
 * first line handed to the device's consumer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type IdentityKeyPair, createTx, defaultChunk, digest, identityKeyPair, sealUpload, toHex } from '@livematrix/spec';
import { Gateway, type StreamReport } from '@livematrix/gateway';
import { openKeysService } from '@livematrix/gateway/keys-service';
import { openStore } from '@livematrix/gateway/store';

/** Progress and figures go to stderr; stdout carries the tables. */
export const log = (s: string): void => void process.stderr.write(`${s}\n`);

/** CPU seconds (user + system, all threads) this process used since `from`. */
export const cpuSince = (from: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
};

/** Unix ms with a fraction, comparable across the bench's processes. */
const now = (): number => performance.timeOrigin + performance.now();

/** The device child: its settings go in, one JSON line per stream comes out. */
interface Child {
  proc: ChildProcess;
  next(): Promise<string>;
}

async function deviceChild(url: string, device: IdentityKeyPair, operator: IdentityKeyPair, streams?: number): Promise<Child> {
  const proc = spawn(process.execPath, [...process.execArgv, join(dirname(fileURLToPath(import.meta.url)), 'device-child.js')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! });
  const queue: string[] = [];
  const waiting: ((s: string) => void)[] = [];
  lines.on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else queue.push(l);
  });
  const next = (): Promise<string> => {
    const l = queue.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise<string>((res) => waiting.push(res));
  };
  proc.stdin!.write(JSON.stringify({ url, seed: toHex(device.secretKey), operator: toHex(operator.publicKey), mem: 2 ** 30, ...(streams !== undefined ? { streams } : {}) }) + '\n');
  await next(); // ready
  return { proc, next };
}

function transaction(data: Uint8Array, device: IdentityKeyPair, operator: IdentityKeyPair, gateway: IdentityKeyPair, protectedJob?: { jid: Uint8Array; uh: Uint8Array }) {
  const t = Date.now();
  return createTx({
    job: 'bench', plaintext: { digest: digest(data), size: data.length }, device: 'bench-device', devicePublic: device.publicKey,
    operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: t - 60_000, notAfter: t + 3600_000, rate: 1e9, burst: 1e9, gatewayPublic: gateway.publicKey,
    ...(protectedJob ? { protectedJob } : {}),
  });
}

export interface StreamRun {
  report: StreamReport;
  secs: number;
  dev: { bytes: number; sha256: string; maxRSS: number; up: number; cpu: number; resolved: [number, number][] };
  /** ms from each frame's first publish to its resolution at the device */
  lat: number[];
  /** CPU seconds of this process (gateway and broker) during the stream */
  gwCpu: number;
  same: boolean;
}

/** One stream of `data` at width `w`, the device in a child process; on the protected path with `protect`. */
export async function streamOnce(url: string, data: Uint8Array, w: number, protect = false): Promise<StreamRun> {
  const operator = identityKeyPair();
  const gwKeys = identityKeyPair();
  const devSeed = identityKeyPair();
  const child = await deviceChild(url, devSeed, operator);
  // the protected path: a keys service and a store on their own state, in this process ([LM-PROT-2])
  const dir = protect ? mkdtempSync(join(tmpdir(), 'lm-bench-protected-')) : undefined;
  const keys = dir ? openKeysService({ dir: join(dir, 'keys'), identity: identityKeyPair(), trustedOperators: [operator.publicKey] }) : undefined;
  const store = dir && keys ? await openStore({ dir: join(dir, 'store'), epochs: keys, epochMs: 0 }) : undefined;
  const gw = await Gateway.start({ url, fleet: 'bench', id: 'bench-gw', identity: gwKeys, trustedOperators: [operator.publicKey], workers: 1, ...(keys && store ? { protected: { keys, store } } : {}) });
  // the owner's upload, before the clock starts: same chunk size as the unprotected stream's, so that the framing is the same
  const up = keys && store ? sealUpload(data, { owner: identityKeyPair(), keysService: keys.x25519Public, C: defaultChunk(w), now: Date.now() }) : undefined;
  if (up && keys && store) {
    await store.put(up.segments);
    await keys.register(up.upload.bytes, up.envelope);
  }
  const { tx, licence } = transaction(data, devSeed, operator, gwKeys, up ? { jid: up.jid, uh: up.upload.hash } : undefined);
  if (keys) await keys.grant(tx.bytes, licence);
  const sent = new Map<number, number>();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const streamOpts = {
    policy: { w }, // the period is the shortest that keeps table building within 25% of the device's CPU ([LM-CAP-2])
    onFrameSent: (seq: number, again: boolean) => {
      if (!again) sent.set(seq, now());
    },
  };
  const gs = protect ? await gw.streamProtected('bench-device', tx.bytes, streamOpts) : await gw.stream('bench-device', data, tx.bytes, licence, streamOpts);
  let lastPct = -1;
  gs.on('progress', (p) => {
    const q = Math.floor((p.consumed / p.total) * 10);
    if (q !== lastPct) {
      lastPct = q;
      log(`  w=${w}: ${q * 10}%`);
    }
  });
  const result = child.next();
  const report = await gs.done;
  const secs = (performance.now() - t0) / 1000;
  const gwCpu = cpuSince(c0); // gateway and broker
  log(`  ${protect ? 'protected: ' : ''}${((data.length / secs) / 1e6).toFixed(2)} MB/s; frames ${report.frames}, sent ${report.framesSent}, resends ${report.resends} (shifted ${report.shiftedResends}, timeouts ${report.timeoutResends}), symbols re-sent ${report.symbolsResent}, wire ${(report.wireBytes / data.length).toFixed(3)}`);
  const dev = JSON.parse(await result) as StreamRun['dev'];
  await gw.stop();
  await store?.close();
  await keys?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  // from a frame's first publish to its resolution, re-sends (shifted or not) included
  const lat = dev.resolved.filter(([seq]) => sent.has(seq)).map(([seq, t]) => t - (sent.get(seq) as number));
  return { report, secs, dev, lat, gwCpu, same: dev.sha256 === toHex(digest(data)) };
}

export interface FirstLines {
  /** ms from the stream command to the first line handed to the consumer, one per stream */
  ms: number[];
  /** the revision period the streams negotiated */
  period: number;
}

/**
 * `runs` streams of `job` (the start of a file) to one device, one after the other, each from
 * `gateway.stream(...)` (the operator's stream command, the gateway and the device already
 * online) to the first line the device's consumer gets. Before each stream a random pause of up
 * to one revision period, so that the streams start at every phase of the revision clock.
 */
export async function firstLines(url: string, job: Uint8Array, w: number, runs: number): Promise<FirstLines> {
  const operator = identityKeyPair();
  const gwKeys = identityKeyPair();
  const devSeed = identityKeyPair();
  const child = await deviceChild(url, devSeed, operator, runs);
  const gw = await Gateway.start({ url, fleet: 'bench', id: 'bench-gw', identity: gwKeys, trustedOperators: [operator.publicKey], workers: 1 });
  const ms: number[] = [];
  let period = 0;
  try {
    for (let k = 0; k < runs; k++) {
      await new Promise((res) => setTimeout(res, Math.random() * period)); // a random phase, not a synchronisation
      const { tx, licence } = transaction(job, devSeed, operator, gwKeys);
      const t0 = now();
      const gs = await gw.stream('bench-device', job, tx.bytes, licence, { policy: { w } });
      const line = child.next();
      const report = await gs.done;
      period = report.params.period;
      const r = JSON.parse(await line) as { firstLine: number; lines: number };
      if (!r.lines) throw new Error('time to first line: the stream had no line');
      ms.push(r.firstLine - t0);
    }
  } finally {
    await gw.stop();
    child.proc.kill();
  }
  return { ms, period };
}
