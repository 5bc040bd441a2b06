/**
 * `npm run bench:broker`: frames per second through aedes without and with the Live Matrix
 * plugin, same load, same run; and the broker's memory. One table, into BENCHMARKS.md.
 *
 * The machine is shared (other processes come and go), so one run of each says little: after a
 * warm-up of each, the two alternate for BENCH_ROUNDS rounds (default 3, the order swapped every
 * round) and the table gives each one's median; beside frames per second of wall time, frames
 * per CPU second of this process (publisher, broker and subscriber all run in it), which another
 * process on the machine does not dilute.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { FrameType, encodeFrame, identityKeyPair, makeConnectToken, randomBytes, topics } from '@livematrix/spec';
import { machine, writeSection } from '@livematrix/spec/bench';
import { Registry, livematrixPlugin, startBroker } from '../src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const log = (s: string) => process.stderr.write(`${s}\n`);
const N = 50_000;
const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 3));

interface Run {
  /** frames per second of wall time */
  fps: number;
  /** frames per CPU second (user + system, every thread of this process) */
  cpuFps: number;
  mbps: number;
  heapMiB: number;
}

async function run(withPlugin: boolean, size: number, n = N): Promise<Run> {
  const dev = identityKeyPair();
  const gw = identityKeyPair();
  const registry = new Registry([
    { id: 'd1', role: 'device', fleet: 'b', publicKey: dev.publicKey, limits: { framesPerSecond: 1e9, bytesPerSecond: 1e12 } },
    { id: 'g1', role: 'gateway', fleet: 'b', publicKey: gw.publicKey, limits: { framesPerSecond: 1e9, bytesPerSecond: 1e12 } },
  ]);
  const broker = await startBroker({ setup: withPlugin ? (a) => void livematrixPlugin(a, { registry }) : undefined });
  // [LM-BRK-8] client ids of the form lm-dev-{id}-... / lm-gw-{id}-...
  const auth = (id: string, role: 1 | 2, sk: Uint8Array) => ({ clientId: `lm-${role === 1 ? 'dev' : 'gw'}-${id}-bench`, ...(withPlugin ? { username: id, password: Buffer.from(makeConnectToken(id, role, sk)) } : {}) });
  const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, ...auth('g1', 2, gw.secretKey) });
  const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, ...auth('d1', 1, dev.secretKey) });
  await sub.subscribeAsync('lm/1/b/d/+/out', { qos: 0 });
  const sid = randomBytes(16);
  const frame = Buffer.from(encodeFrame(FrameType.TELEMETRY, { sid, seq: 1, rev: 1, ctlen: 16, hints: randomBytes(size) }, { kind: 'mac', key: randomBytes(32) }));
  const topic = topics.deviceOut('b', 'd1');
  let got = 0;
  const done = new Promise<void>((r) => sub.on('message', () => {
    if (++got === n) r();
  }));
  global.gc?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    pub.publish(topic, frame, { qos: 0 });
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  await done;
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const heapMiB = process.memoryUsage().heapUsed / 2 ** 20;
  await pub.endAsync();
  await sub.endAsync();
  await broker.close();
  return { fps: n / s, cpuFps: n / ((cpu.user + cpu.system) / 1e6), mbps: (n * frame.length) / s / 1e6, heapMiB };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  const rows: string[] = [];
  const notes: string[] = [];
  for (const size of [64, 4096]) {
    log(`${size}-byte hints: warm-up ...`);
    await run(false, size, N / 5);
    await run(true, size, N / 5);
    const plain: Run[] = [];
    const plug: Run[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const withPlugin of r % 2 === 0 ? [false, true] : [true, false]) {
        const x = await run(withPlugin, size);
        (withPlugin ? plug : plain).push(x);
        log(`${size}-byte hints, round ${r + 1}, ${withPlugin ? 'aedes + plugin' : 'aedes alone   '}: ${Math.round(x.fps)} frames/s, ${Math.round(x.cpuFps)} frames per CPU s`);
      }
    }
    const m = (xs: Run[], k: keyof Run) => median(xs.map((x) => x[k]));
    const ratio = m(plug, 'fps') / m(plain, 'fps');
    const cpuRatio = m(plug, 'cpuFps') / m(plain, 'cpuFps');
    rows.push(`| ${size} | ${Math.round(m(plain, 'fps'))} | ${Math.round(m(plug, 'fps'))} | ${ratio.toFixed(3)} | ${Math.round(m(plain, 'cpuFps'))} / ${Math.round(m(plug, 'cpuFps'))} | ${cpuRatio.toFixed(3)} | ${m(plain, 'mbps').toFixed(1)} / ${m(plug, 'mbps').toFixed(1)} MB/s | ${m(plain, 'heapMiB').toFixed(0)} / ${m(plug, 'heapMiB').toFixed(0)} MiB |`);
    notes.push(`${size} bytes: ${plug.map((p, i) => (p.fps / (plain[i] as Run).fps).toFixed(3)).join(', ')}`);
  }
  const body = `## bench:broker

${new Date().toISOString().slice(0, 10)}; ${machine()}; ${N} TELEMETRY frames per run at QoS 0, one device publishing on its out topic, one gateway subscribed, loopback; the plugin authenticates both, checks every frame (CBOR profile and schema, SPEC.md §6 and §7) and counts rates. After a warm-up of each, aedes alone and aedes with the plugin alternate for ${ROUNDS} rounds; medians.

| hint bytes per frame | aedes frames/s | aedes + plugin frames/s | ratio | frames per CPU second (alone / plugin) | ratio per CPU second | payload throughput (alone / plugin) | heap after the run (alone / plugin) |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}

- The ratio is the plugin's cost. Every frame is checked: the plugin scans it in place (spec's cbor-scan, which accepts exactly what the decoder accepts and builds nothing), decodes only a payload the scan refuses (to name the reason), and decides a client's topics once per topic.
- Ratio per round (plugin / alone, wall time): ${notes.join('; ')}. Frames per CPU second count the publisher, the broker and the subscriber, which share this process: another process on the machine slows the wall-time figures, not these.`;
  console.log(body);
  log(`wrote ${writeSection(root, 'broker', body)}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
