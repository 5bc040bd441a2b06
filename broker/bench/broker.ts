/**
 * `npm run bench:broker`: frames per second through aedes without and with the Live Matrix
 * plugin, same load, same run; and the broker's memory. One table, into BENCHMARKS.md.
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

async function run(withPlugin: boolean, size: number): Promise<{ fps: number; mbps: number; heapMiB: number }> {
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
  let got = 0;
  const done = new Promise<void>((r) => sub.on('message', () => {
    if (++got === N) r();
  }));
  global.gc?.();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    pub.publish(topics.deviceOut('b', 'd1'), frame, { qos: 0 });
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  await done;
  const s = (performance.now() - t0) / 1000;
  const heapMiB = process.memoryUsage().heapUsed / 2 ** 20;
  await pub.endAsync();
  await sub.endAsync();
  await broker.close();
  return { fps: N / s, mbps: (N * frame.length) / s / 1e6, heapMiB };
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const size of [64, 4096]) {
    log(`${size}-byte hints: aedes alone ...`);
    const plain = await run(false, size);
    log(`${size}-byte hints: aedes with the plugin ...`);
    const plug = await run(true, size);
    rows.push(`| ${size} | ${Math.round(plain.fps)} | ${Math.round(plug.fps)} | ${(plug.fps / plain.fps).toFixed(3)} | ${plain.mbps.toFixed(1)} / ${plug.mbps.toFixed(1)} MB/s | ${plain.heapMiB.toFixed(0)} / ${plug.heapMiB.toFixed(0)} MiB |`);
  }
  const body = `## bench:broker

${new Date().toISOString().slice(0, 10)}; ${machine()}; ${N} TELEMETRY frames per run at QoS 0, one device publishing on its out topic, one gateway subscribed, loopback; the plugin authenticates both, checks every frame (decode and schema) and counts rates.

| hint bytes per frame | aedes frames/s | aedes + plugin frames/s | ratio | payload throughput (alone / plugin) | heap after the run (alone / plugin) |
|---|---|---|---|---|---|
${rows.join('\n')}

- The ratio is the plugin's cost: the frame check decodes every payload (SPEC.md §6 profile and §7 schema) before aedes forwards it.`;
  console.log(body);
  log(`wrote ${writeSection(root, 'broker', body)}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
