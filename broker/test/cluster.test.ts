/**
 * Two standalone brokers sharing one redis-server: instance A in a process of its own (so that it
 * can be killed without publishing anything), instance B in this one. Last Wills A's clients
 * leave behind are published by B only if they pass B's checks ([LM-BRK-7]), and a client id held
 * on one instance cannot be taken over from the other ([LM-BRK-8]). Needs redis-server (.ci/run
 * installs it); without it the suite is skipped locally and fails under CI=true.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameType, Reason, decodeFrame, encodeFrame, identityKeyPair, makeConnectToken, topics, type IdentityKeyPair } from '@livematrix/spec';
import { Registry, runBroker, type RegistryEntry, type StandaloneBroker } from '../src/index.js';
import { type BrokerProcess, type RunningRedis, redisBin, spawnBroker, startRedis } from './spawn.js';

const inCI = process.env['CI'] === 'true';
if (!redisBin) console.warn(inCI ? 'redis-server is not installed, and CI requires it: the broker cluster test will fail' : 'redis-server is not installed: skipping the broker cluster test (apt-get install redis-server)');

const HEARTBEAT_MS = 200; // B publishes a silent instance's Wills within about 7 heartbeats
const ids = ['d1', 'd2', 'evil', 'gw', 'gw2'] as const;
type Id = (typeof ids)[number];
const keys = Object.fromEntries(ids.map((id) => [id, identityKeyPair()])) as Record<Id, IdentityKeyPair>;
const limits = { framesPerSecond: 1000, bytesPerSecond: 10e6 };

/** The registry of an instance; gw2 serves `gw2Devices`. */
function registryFile(gw2Devices: string[]): string {
  const entry = (id: Id, role: RegistryEntry['role'], devices?: string[]): RegistryEntry => ({ id, role, fleet: 'f1', publicKey: keys[id].publicKey, limits, ...(devices ? { devices } : {}) });
  const path = join(mkdtempSync(join(tmpdir(), 'lm-cluster-reg-')), 'registry.json');
  new Registry([entry('d1', 'device'), entry('d2', 'device'), entry('evil', 'device'), entry('gw', 'gateway', ['d1', 'd2']), entry('gw2', 'gateway', gw2Devices)]).save(path);
  return path;
}

const bye = (who: string) => Buffer.from(encodeFrame(FrameType.BYE, { who, reason: Reason.offline }, { kind: 'none' }));
const whoOf = (p: Buffer) => (decodeFrame(new Uint8Array(p)).body as { who: string }).who;

interface As {
  clientId?: string;
  will?: { topic: string; payload: Buffer; retain?: boolean; qos?: 0 | 1 };
}
function as(port: number, id: Id, o: As = {}): Promise<MqttClient> {
  const role = id.startsWith('gw') ? 2 : 1;
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: o.clientId ?? `lm-${role === 1 ? 'dev' : 'gw'}-${id}-${Math.random().toString(16).slice(2, 8)}`, username: id,
    password: Buffer.from(makeConnectToken(id, role, keys[id].secretKey)), protocolVersion: 4, reconnectPeriod: 0, ...(o.will ? { will: o.will } : {}),
  });
}

/** Resolves with the first message of a client. */
const firstMessage = (c: MqttClient) => new Promise<{ topic: string; payload: Buffer; packet: IPublishPacket }>((r) => c.once('message', (topic, payload, packet) => r({ topic, payload, packet })));

describe.runIf(redisBin !== undefined || inCI)('two standalone brokers sharing Redis', () => {
  let redis: RunningRedis;
  let a: BrokerProcess;
  let b: StandaloneBroker;
  const bLog: string[] = [];
  const bLogged: { re: RegExp; res: (l: string) => void }[] = [];
  const clients: MqttClient[] = [];
  const on = async (port: number, id: Id, o: As = {}) => {
    const c = await as(port, id, o);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    redis = await startRedis();
    // A has the older registry, where gw2 still serves d1; B has the current one
    a = await spawnBroker({ port: 0, registry: registryFile(['d1', 'd2']), redis: redis.url, heartbeatMs: HEARTBEAT_MS });
    b = await runBroker({ port: 0, registry: registryFile(['d2']), redis: redis.url, heartbeatMs: HEARTBEAT_MS }, (l) => {
      bLog.push(l);
      for (const w of bLogged.filter((x) => x.re.test(l))) w.res(l);
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await b?.close();
    await a?.kill();
    await redis?.stop();
  });

  it('[LM-BRK-7] a device on A with a Last Will on another device\'s topic, or a Will that is not a frame, is refused at CONNECT', async () => {
    await expect(as(a.port, 'evil', { will: { topic: topics.deviceIn('f1', 'd1'), payload: Buffer.from('G28 ; home'), qos: 1 } })).rejects.toThrow(/Not authorized/);
    await expect(as(a.port, 'evil', { will: { topic: topics.deviceState('f1', 'd1'), payload: bye('d1'), retain: true, qos: 1 } })).rejects.toThrow(/Not authorized/);
    await expect(as(a.port, 'evil', { will: { topic: topics.deviceState('f1', 'evil'), payload: Buffer.from('offline'), retain: true, qos: 1 } })).rejects.toThrow(/Not authorized/);
    await a.logged(/refused CONNECT: Last Will of "evil" on lm\/1\/f1\/d\/evil\/state is not a valid frame/);
  });

  it('[LM-BRK-8] a device on B cannot take over a client id held on A: refused, and the holder keeps receiving', async () => {
    const d1 = await on(a.port, 'd1', { clientId: 'lm-dev-d1-held' });
    await d1.subscribeAsync(topics.deviceIn('f1', 'd1'), { qos: 1 });
    await expect(as(b.ports.tcp, 'd2', { clientId: 'lm-dev-d1-held' })).rejects.toThrow(/Identifier rejected/);
    const got = firstMessage(d1);
    await (await on(b.ports.tcp, 'gw')).publishAsync(topics.deviceIn('f1', 'd1'), bye('gw'), { qos: 1 });
    expect(whoOf((await got).payload)).toBe('gw');
    expect(d1.connected).toBe(true);
  });

  for (const same of [false, true]) {
    it(`[LM-BRK-14] [LM-BRK-15] d1 on A, then d1 on B with ${same ? 'the same client id' : 'another client id'}: A closes its connection and does not publish its Will`, async () => {
      const state = topics.deviceState('f1', 'd1');
      const gw = await on(b.ports.tcp, 'gw');
      await gw.subscribeAsync(state, { qos: 1 });
      const got: Buffer[] = [];
      gw.on('message', (_t, p) => got.push(p));
      const held = `lm-dev-d1-${same ? 'moving' : 'on-a'}`;
      const onA = await on(a.port, 'd1', { clientId: held, will: { topic: state, payload: bye('d1'), qos: 1 } });
      const closedOnA = new Promise<void>((r) => onA.once('close', () => r()));
      const onB = await on(b.ports.tcp, 'd1', same ? { clientId: held } : {});
      await closedOnA;
      if (!same) await a.logged(/device d1: closing its connection lm-dev-d1-on-a for a newer one \(lm-dev-d1-/);
      // a marker from the newer connection; once it is in, A's Will would be in (it is published as A closes)
      const marker = encodeFrame(FrameType.BYE, { who: 'd1', reason: Reason.aborted }, { kind: 'none' });
      const markerIn = new Promise<void>((r) => gw.on('message', (_t, p) => p.equals(Buffer.from(marker)) && r()));
      await onB.publishAsync(state, Buffer.from(marker), { qos: 1 });
      await markerIn;
      expect(got.map((p) => (decodeFrame(new Uint8Array(p)).body as { reason: number }).reason)).toEqual([Reason.aborted]);
      expect(onB.connected).toBe(true);
      await onB.endAsync();
    });
  }

  it('[LM-BRK-7] A is killed: B publishes the valid Will it left (retained) and drops the one B\'s registry no longer allows', async () => {
    // on B: d1 listens on its in topic, gw on the state topics
    const d1 = await on(b.ports.tcp, 'd1');
    await d1.subscribeAsync(topics.deviceIn('f1', 'd1'), { qos: 1 });
    const toD1: Buffer[] = [];
    d1.on('message', (_t, p) => toD1.push(p));
    const gw = await on(b.ports.tcp, 'gw');
    await gw.subscribeAsync('lm/1/f1/d/+/state', { qos: 1 });
    const stateWill = firstMessage(gw);
    // on A: d2 with the Will every device sets; gw2 with a Will on d1's in topic, which A's registry allows
    await on(a.port, 'd2', { will: { topic: topics.deviceState('f1', 'd2'), payload: bye('d2'), retain: true, qos: 1 } });
    await on(a.port, 'gw2', { will: { topic: topics.deviceIn('f1', 'd1'), payload: bye('gw2'), qos: 1 } });
    const dropped = new Promise<string>((res) => bLogged.push({ re: /dropped Last Will of "gw2"/, res }));
    const delivered = new Promise<void>((res) => d1.once('message', () => res()));
    await a.kill();
    const will = await stateWill;
    expect(will.topic).toBe(topics.deviceState('f1', 'd2'));
    expect(whoOf(will.payload)).toBe('d2');
    await Promise.race([dropped, delivered]);
    expect(toD1.map(whoOf)).toEqual([]); // the old behaviour delivered gw2's Will to d1
    expect(b.plugin!.metrics.get('livematrix_wills_dropped_total', { reason: 'will-acl' })).toBe(1);
    // the state Will was retained
    const late = await on(b.ports.tcp, 'gw');
    const retained = firstMessage(late);
    await late.subscribeAsync(topics.deviceState('f1', 'd2'), { qos: 1 });
    expect((await retained).packet.retain).toBe(true);
  });
});
