/**
 * The aedes plugin against real MQTT.js clients over loopback: authentication, isolation,
 * frame checks, rate alarms, registry reload, metrics, and 10,000 hostile packets.
 */
import { connect as tcpConnect } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FrameType, Reason, decodeFrame, encodeFrame, identityKeyPair, makeConnectToken, randomBytes, topics, type IdentityKeyPair } from '@livematrix/spec';
import { Registry, livematrixPlugin, startBroker, type LivematrixPlugin, type RunningBroker } from '../src/index.js';

let broker: RunningBroker;
let plugin: LivematrixPlugin;
let registryPath: string;
const keys: Record<string, IdentityKeyPair> = { d1: identityKeyPair(), d2: identityKeyPair(), gw: identityKeyPair() };
const clients: MqttClient[] = [];

function registryJson(extra: object[] = [], limits = { framesPerSecond: 100, bytesPerSecond: 1_000_000 }) {
  return JSON.stringify({
    clients: [
      { id: 'd1', role: 'device', fleet: 'f1', publicKey: Buffer.from(keys['d1']!.publicKey).toString('hex'), limits },
      { id: 'd2', role: 'device', fleet: 'f1', publicKey: Buffer.from(keys['d2']!.publicKey).toString('hex') },
      { id: 'gw', role: 'gateway', fleet: 'f1', publicKey: Buffer.from(keys['gw']!.publicKey).toString('hex') },
      ...extra,
    ],
  });
}

beforeEach(async () => {
  registryPath = join(mkdtempSync(join(tmpdir(), 'lm-reg-')), 'registry.json');
  writeFileSync(registryPath, registryJson());
  broker = await startBroker({ setup: (a) => void (plugin = livematrixPlugin(a, { registry: Registry.load(registryPath) })) });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  await broker.close();
});

type As = { key?: Uint8Array; time?: number; token?: Uint8Array; username?: string; clientId?: string; will?: { topic: string; payload: Buffer; retain?: boolean; qos?: 0 | 1 } };
async function as(id: string, role: 1 | 2, o: As = {}): Promise<MqttClient> {
  const token = o.token ?? makeConnectToken(id, role, o.key ?? keys[id]!.secretKey, o.time);
  const clientId = o.clientId ?? `lm-${role === 1 ? 'dev' : 'gw'}-${id}-${Math.random().toString(16).slice(2, 8)}`;
  const c = await mqtt.connectAsync(broker.url, { clientId, username: o.username ?? id, password: Buffer.from(token), protocolVersion: 4, reconnectPeriod: 0, ...(o.will ? { will: o.will } : {}) });
  clients.push(c);
  return c;
}

/** The SUBACK return code for one filter (MQTT.js rejects on 128 and carries the packet). */
async function suback(c: MqttClient, topic: string): Promise<number> {
  try {
    return (await c.subscribeAsync(topic, { qos: 1 }))[0]?.qos ?? -1;
  } catch (e) {
    return ((e as { packet?: { granted?: number[] } }).packet?.granted ?? [-1])[0] ?? -1;
  }
}

const refused = (p: Promise<unknown>) => expect(p).rejects.toThrow(/Bad username or password/);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bye = (who: string) => Buffer.from(encodeFrame(FrameType.BYE, { who, reason: Reason.offline }, { kind: 'none' }));

describe('authentication [LM-BRK-1]', () => {
  it('accepts registered clients with a fresh token', async () => {
    await as('d1', 1);
    await as('gw', 2);
    expect(plugin.metrics.get('livematrix_connections_total')).toBe(2);
  });
  it('refuses no token, unknown ids, the wrong role, the wrong key, impersonation, stale and replayed tokens', async () => {
    await refused(mqtt.connectAsync(broker.url, { clientId: 'x', protocolVersion: 4, reconnectPeriod: 0 }));
    await refused(as('nobody', 1, { key: identityKeyPair().secretKey }));
    await refused(as('d1', 2)); // registered as a device
    await refused(as('d1', 1, { key: identityKeyPair().secretKey })); // not its key
    await refused(as('d2', 1, { key: keys['d1']!.secretKey })); // d1 pretending to be d2
    await refused(as('d2', 1, { username: 'd1' })); // user name and token disagree
    await refused(as('d1', 1, { time: Date.now() - 120_000 })); // stale
    const token = makeConnectToken('d1', 1, keys['d1']!.secretKey);
    await as('d1', 1, { token });
    await refused(as('d1', 1, { token })); // replayed
    await refused(as('d1', 1, { token: randomBytes(40) })); // garbage
    for (const reason of ['no-token', 'unknown-id', 'role', 'signature', 'impersonation', 'stale', 'replay', 'malformed']) {
      expect(plugin.metrics.get('livematrix_connections_refused_total', { reason }), reason).toBeGreaterThan(0);
    }
  });
});

describe('isolation [LM-BRK-2]', () => {
  it('a device subscribes only to its own in topic; other filters get SUBACK 128', async () => {
    const d1 = await as('d1', 1);
    const ok = await d1.subscribeAsync(topics.deviceIn('f1', 'd1'), { qos: 1 });
    expect(ok[0]?.qos).toBe(1);
    for (const t of [topics.deviceIn('f1', 'd2'), topics.deviceOut('f1', 'd2'), 'lm/1/f1/#', '#', 'lm/1/f1/d/+/in']) {
      expect(await suback(d1, t), t).toBe(128);
    }
    expect(d1.connected).toBe(true);
  });
  it('a device cannot publish to another device\'s topics: not forwarded, and disconnected', async () => {
    const gw = await as('gw', 2);
    const got: string[] = [];
    await gw.subscribeAsync('lm/1/f1/d/+/out', { qos: 1 });
    gw.on('message', (t) => got.push(t));
    const d1 = await as('d1', 1);
    const closed = new Promise<void>((r) => d1.once('close', () => r()));
    d1.publish(topics.deviceOut('f1', 'd2'), bye('d2'), { qos: 0 });
    await closed;
    await wait(100);
    expect(got).toEqual([]);
  });
  it('a gateway reaches every device of its fleet but no other fleet', async () => {
    const gw = await as('gw', 2);
    expect(await suback(gw, 'lm/1/f1/d/+/out')).toBe(1);
    expect(await suback(gw, 'lm/1/f2/d/+/out')).toBe(128);
  });
});

describe('frame checks [LM-BRK-3] [LM-MQTT-4]', () => {
  it('drops and counts malformed payloads, keeps the client, forwards the next valid frame', async () => {
    const gw = await as('gw', 2);
    const got: Buffer[] = [];
    await gw.subscribeAsync('lm/1/f1/d/+/state', { qos: 1 });
    gw.on('message', (_t, p) => got.push(p));
    const d1 = await as('d1', 1);
    await d1.publishAsync(topics.deviceState('f1', 'd1'), Buffer.from([0xff, 0x00]), { qos: 1 });
    await d1.publishAsync(topics.deviceState('f1', 'd1'), Buffer.from(encodeFrame(FrameType.TIME_REQ, { sid: randomBytes(16), t1: 1 }, { kind: 'mac', key: randomBytes(32) })), { qos: 1, retain: true });
    await d1.publishAsync(topics.deviceState('f1', 'd1'), bye('d1'), { qos: 1 });
    await wait(100);
    expect(got.length).toBe(1);
    expect(decodeFrame(new Uint8Array(got[0]!)).type).toBe(FrameType.BYE);
    expect(plugin.metrics.get('livematrix_frames_dropped_total')).toBe(2);
    expect(d1.connected).toBe(true);
    // nothing malformed was retained either
    const late = await as('gw', 2);
    const retained: Buffer[] = [];
    late.on('message', (_t, p) => retained.push(p));
    await late.subscribeAsync('lm/1/f1/d/+/state', { qos: 1 });
    await wait(100);
    expect(retained.length).toBe(0);
  });
});

describe('rate alarms [LM-BRK-4]', () => {
  it('a flood trips the alarm on the fleet alarm topic and disconnects the client', async () => {
    const gw = await as('gw', 2);
    const alarms: Buffer[] = [];
    await gw.subscribeAsync('lm/1/f1/alarm', { qos: 1 });
    gw.on('message', (_t, p) => alarms.push(p));
    const d1 = await as('d1', 1);
    const closed = new Promise<void>((r) => d1.once('close', () => r()));
    for (let i = 0; i < 300; i++) d1.publish(topics.deviceState('f1', 'd1'), bye('d1'), { qos: 0 });
    await closed;
    await wait(100);
    expect(alarms.length).toBe(1);
    const f = decodeFrame(new Uint8Array(alarms[0]!));
    expect(f.type).toBe(FrameType.ALARM);
    expect((f.body as { code: number }).code).toBe(Reason.rate);
    expect(plugin.metrics.get('livematrix_alarms_total')).toBe(1);
  });
});

describe('registry and metrics [LM-BRK-5]', () => {
  it('reloads without a restart: a removed device is disconnected and refused', async () => {
    const d2 = await as('d2', 1);
    const closed = new Promise<void>((r) => d2.once('close', () => r()));
    writeFileSync(registryPath, JSON.stringify({ clients: JSON.parse(registryJson()).clients.filter((c: { id: string }) => c.id !== 'd2') }));
    plugin.reload();
    await closed;
    await refused(as('d2', 1));
    await as('d1', 1);
  });
  it('a bad registry file keeps the current one and says why', () => {
    writeFileSync(registryPath, '{"clients": [{"id": "x"}]}');
    expect(() => plugin.reload()).toThrow(/role/);
    expect(plugin.registry.get('d1')).toBeDefined();
  });
  it('serves Prometheus text', async () => {
    await as('d1', 1);
    const { server, port } = await plugin.metrics.serve(0);
    try {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toMatch(/# TYPE livematrix_connections_total counter/);
      expect(text).toMatch(/livematrix_connections_total\{role="device"\} 1/);
      expect(text).toMatch(/livematrix_clients 1/);
    } finally {
      server.close();
    }
  });
});

describe('hostile input', () => {
  it('10,000 random and mutated packets leave the broker up and answering', async () => {
    // A valid CONNECT and PUBLISH to mutate, as raw bytes.
    const token = Buffer.from(makeConnectToken('d1', 1, keys['d1']!.secretKey));
    const connectPkt = (() => {
      const proto = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0xc2, 0, 30]);
      const cid = Buffer.concat([Buffer.from([0, 2]), Buffer.from('zz')]);
      const user = Buffer.concat([Buffer.from([0, 2]), Buffer.from('d1')]);
      const pass = Buffer.concat([Buffer.from([token.length >> 8, token.length & 0xff]), token]);
      const body = Buffer.concat([proto, cid, user, pass]);
      return Buffer.concat([Buffer.from([0x10, body.length & 0x7f | 0x80, body.length >> 7]), body]);
    })();
    const seeds = [connectPkt, Buffer.from([0x30, 0x05, 0x00, 0x01, 0x61, 0x62, 0x63]), Buffer.from([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x23, 0x01])];
    let x = 12345;
    const rnd = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff), x);
    let sent = 0;
    while (sent < 10_000) {
      await Promise.all(Array.from({ length: 50 }, () => new Promise<void>((res) => {
        const s = tcpConnect(broker.port, '127.0.0.1');
        s.on('error', () => res());
        s.on('close', () => res());
        s.on('connect', () => {
          for (let k = 0; k < 4; k++) {
            const base = Buffer.from(seeds[rnd() % seeds.length]!);
            const m = rnd() % 4;
            if (m === 0) for (let i = 0; i < 1 + (rnd() % 4); i++) base[rnd() % base.length] = rnd() & 0xff;
            const pkt = m === 1 ? Buffer.from(Array.from({ length: rnd() % 64 }, () => rnd() & 0xff)) : m === 2 ? base.subarray(0, rnd() % base.length) : base;
            s.write(pkt);
            sent++;
          }
          setTimeout(() => s.destroy(), 5);
        });
      })));
    }
    expect(sent).toBeGreaterThanOrEqual(10_000);
    // still up: a registered device connects and a frame round-trips to the gateway
    const gw = await as('gw', 2);
    await gw.subscribeAsync('lm/1/f1/d/+/state', { qos: 1 });
    const got = new Promise<Buffer>((r) => gw.once('message', (_t, p) => r(p)));
    const d1 = await as('d1', 1);
    await d1.publishAsync(topics.deviceState('f1', 'd1'), bye('d1'), { qos: 1 });
    expect(decodeFrame(new Uint8Array(await got)).type).toBe(FrameType.BYE);
  }, 120_000);
});
