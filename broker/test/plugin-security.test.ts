/**
 * The plugin's rules against takeover and abuse, with real MQTT.js clients over loopback: client
 * ids bound to identities ([LM-BRK-8]), Last Will checks at CONNECT ([LM-BRK-7]), and gateways
 * kept to the devices the registry assigns them ([LM-BRK-9]). Wills published by another instance
 * of a cluster are tested in cluster.test.ts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FrameType, Reason, decodeFrame, encodeFrame, identityKeyPair, makeConnectToken, topics, type IdentityKeyPair } from '@livematrix/spec';
import { Registry, aclFor, livematrixPlugin, mosquittoAcl, startBroker, type LivematrixPlugin, type RunningBroker } from '../src/index.js';

const ids = ['d1', 'd2', 'd1-x', 'gw', 'gw1', 'gw2'] as const;
const keys = Object.fromEntries(ids.map((id) => [id, identityKeyPair()])) as Record<(typeof ids)[number], IdentityKeyPair>;
type Id = (typeof ids)[number];
const hex = (id: Id) => Buffer.from(keys[id].publicKey).toString('hex');

function registryJson(withD1x = false): string {
  return JSON.stringify({
    clients: [
      { id: 'd1', role: 'device', fleet: 'f1', publicKey: hex('d1') },
      { id: 'd2', role: 'device', fleet: 'f1', publicKey: hex('d2') },
      ...(withD1x ? [{ id: 'd1-x', role: 'device', fleet: 'f1', publicKey: hex('d1-x') }] : []),
      { id: 'gw', role: 'gateway', fleet: 'f1', publicKey: hex('gw') },
      { id: 'gw1', role: 'gateway', fleet: 'f1', publicKey: hex('gw1'), devices: ['d1'] },
      { id: 'gw2', role: 'gateway', fleet: 'f1', publicKey: hex('gw2'), devices: ['d2'] },
    ],
  });
}

let broker: RunningBroker;
let plugin: LivematrixPlugin;
let registryPath: string;
const logged: string[] = [];
const clients: MqttClient[] = [];

beforeEach(async () => {
  registryPath = join(mkdtempSync(join(tmpdir(), 'lm-reg-')), 'registry.json');
  writeFileSync(registryPath, registryJson());
  logged.length = 0;
  broker = await startBroker({ setup: (a) => void (plugin = livematrixPlugin(a, { registry: Registry.load(registryPath), log: (l) => logged.push(l) })) });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  await broker.close();
});

interface As {
  clientId?: string;
  will?: { topic: string; payload: Buffer; retain?: boolean; qos?: 0 | 1 };
}
async function as(id: Id, o: As = {}): Promise<MqttClient> {
  const role = id.startsWith('gw') ? 2 : 1;
  const clientId = o.clientId ?? `lm-${role === 1 ? 'dev' : 'gw'}-${id}-${Math.random().toString(16).slice(2, 8)}`;
  const c = await mqtt.connectAsync(broker.url, { clientId, username: id, password: Buffer.from(makeConnectToken(id, role, keys[id].secretKey)), protocolVersion: 4, reconnectPeriod: 0, ...(o.will ? { will: o.will } : {}) });
  clients.push(c);
  return c;
}

const bye = (who: string) => Buffer.from(encodeFrame(FrameType.BYE, { who, reason: Reason.offline }, { kind: 'none' }));
const whoOf = (p: Buffer) => (decodeFrame(new Uint8Array(p)).body as { who: string }).who;
const closedOf = (c: MqttClient) => new Promise<void>((r) => c.once('close', () => r()));
/** Collects a client's messages; `next(n)` resolves once n have arrived. */
function inbox(c: MqttClient) {
  const got: { topic: string; payload: Buffer; packet: IPublishPacket }[] = [];
  const waiting: { n: number; res: () => void }[] = [];
  c.on('message', (topic, payload, packet) => {
    got.push({ topic, payload, packet });
    for (const w of waiting.filter((x) => got.length >= x.n)) w.res();
  });
  return { got, next: (n: number) => new Promise<void>((res) => (got.length >= n ? res() : waiting.push({ n, res }))) };
}

describe('client ids bound to identities [LM-BRK-8]', () => {
  it('[LM-BRK-8] device d2 with device d1\'s client id is refused (identifier rejected); d1 stays connected and gets a later message', async () => {
    const d1 = await as('d1', { clientId: 'lm-dev-d1-abc123' });
    let d1Closed = false;
    d1.on('close', () => (d1Closed = true));
    await d1.subscribeAsync(topics.deviceIn('f1', 'd1'), { qos: 1 });
    const box = inbox(d1);
    await expect(as('d2', { clientId: 'lm-dev-d1-abc123' })).rejects.toThrow(/Identifier rejected/);
    const gw1 = await as('gw1');
    await gw1.publishAsync(topics.deviceIn('f1', 'd1'), bye('gw1'), { qos: 1 });
    await box.next(1);
    expect(whoOf(box.got[0]!.payload)).toBe('gw1');
    expect(d1Closed).toBe(false);
    expect(d1.connected).toBe(true);
    expect(plugin.metrics.get('livematrix_connections_refused_total', { reason: 'client-id' })).toBe(1);
  });

  it('[LM-BRK-8] refuses client ids outside the identity\'s prefix or owned by a longer registered id; a reload that gives a connected client\'s id to a new identity disconnects it', async () => {
    for (const clientId of ['mqttjs_0a1b2c3d', 'lm-gw-d1-1', 'lm-dev-d2-1', 'lm-dev-d1', 'd1', '']) {
      await expect(as('d1', { clientId }), JSON.stringify(clientId)).rejects.toThrow(/Identifier rejected/);
    }
    await expect(as('gw', { clientId: 'lm-dev-gw-1' })).rejects.toThrow(/Identifier rejected/);
    const held = await as('d1', { clientId: 'lm-dev-d1-x-1' }); // d1 owns it while no device d1-x exists
    const dropped = closedOf(held);
    writeFileSync(registryPath, registryJson(true));
    plugin.reload();
    await dropped;
    await expect(as('d1', { clientId: 'lm-dev-d1-x-2' })).rejects.toThrow(/Identifier rejected/);
    await as('d1-x', { clientId: 'lm-dev-d1-x-2' });
    await as('d1', { clientId: 'lm-dev-d1-y' });
  });
});

describe('Last Wills [LM-BRK-7]', () => {
  it('[LM-BRK-7] refuses (not authorized) a CONNECT whose Will is on another device\'s topic or is not a valid frame', async () => {
    await expect(as('d1', { will: { topic: topics.deviceIn('f1', 'd2'), payload: bye('d1') } })).rejects.toThrow(/Not authorized/);
    await expect(as('d1', { will: { topic: topics.deviceState('f1', 'd2'), payload: bye('d2'), retain: true } })).rejects.toThrow(/Not authorized/);
    await expect(as('d1', { will: { topic: topics.deviceState('f1', 'd1'), payload: Buffer.from('offline'), retain: true } })).rejects.toThrow(/Not authorized/);
    await expect(as('gw2', { will: { topic: topics.deviceIn('f1', 'd1'), payload: bye('gw2') } })).rejects.toThrow(/Not authorized/); // [LM-BRK-9]
    expect(plugin.metrics.get('livematrix_connections_refused_total', { reason: 'will-acl' })).toBe(3);
    expect(plugin.metrics.get('livematrix_connections_refused_total', { reason: 'will-frame' })).toBe(1);
  });

  it('[LM-BRK-7] a valid Will is still published, and retained, when its client drops', async () => {
    const gw = await as('gw');
    await gw.subscribeAsync('lm/1/f1/d/+/state', { qos: 1 });
    const box = inbox(gw);
    const d1 = await as('d1', { will: { topic: topics.deviceState('f1', 'd1'), payload: bye('d1'), retain: true, qos: 1 } });
    d1.stream.destroy(); // gone without DISCONNECT
    await box.next(1);
    expect(box.got[0]!.topic).toBe(topics.deviceState('f1', 'd1'));
    expect(whoOf(box.got[0]!.payload)).toBe('d1');
    const late = await as('gw1');
    const lateBox = inbox(late);
    await late.subscribeAsync(topics.deviceState('f1', 'd1'), { qos: 1 });
    await lateBox.next(1);
    expect(lateBox.got[0]!.packet.retain).toBe(true);
    expect(plugin.metrics.get('livematrix_wills_total')).toBe(1);
  });
});

describe('gateways kept to their devices [LM-BRK-9]', () => {
  it('[LM-BRK-9] gw2, not assigned d1, cannot publish to d1\'s in topic (d1 receives nothing); gw1, assigned, can', async () => {
    const d1 = await as('d1');
    await d1.subscribeAsync(topics.deviceIn('f1', 'd1'), { qos: 1 });
    const box = inbox(d1);
    const gw2 = await as('gw2');
    const gw2Closed = closedOf(gw2);
    gw2.publish(topics.deviceIn('f1', 'd1'), bye('gw2'), { qos: 1 });
    // refused: not forwarded, and disconnected as any publish outside its topics (the old
    // behaviour forwarded it to d1 instead)
    await Promise.race([gw2Closed, box.next(1)]);
    const gw1 = await as('gw1');
    const seen = box.got.length;
    await gw1.publishAsync(topics.deviceIn('f1', 'd1'), bye('gw1'), { qos: 1 });
    await box.next(seen + 1);
    expect(box.got.map((m) => whoOf(m.payload))).toEqual(['gw1']);
    expect(plugin.metrics.get('livematrix_publish_denied_total', { role: 'gateway' })).toBe(1);
  });

  it('[LM-BRK-9] a gateway\'s fleet-wide subscription delivers only its own devices\' topics', async () => {
    const gw2 = await as('gw2');
    const gw = await as('gw');
    const [b2, bAll] = [inbox(gw2), inbox(gw)];
    expect((await gw2.subscribeAsync('lm/1/f1/d/+/state', { qos: 1 }))[0]?.qos).toBe(1);
    await gw.subscribeAsync('lm/1/f1/d/+/state', { qos: 1 });
    await (await as('d1')).publishAsync(topics.deviceState('f1', 'd1'), bye('d1'), { qos: 1 });
    await (await as('d2')).publishAsync(topics.deviceState('f1', 'd2'), bye('d2'), { qos: 1 });
    await Promise.all([b2.next(1), bAll.next(2)]);
    expect(bAll.got.map((m) => whoOf(m.payload))).toEqual(['d1', 'd2']);
    expect(b2.got.map((m) => whoOf(m.payload))).toEqual(['d2']);
  });

  it('[LM-BRK-9] the registry: devices only on gateways, a warning for a gateway without, narrowed ACLs for aedes and Mosquitto', () => {
    expect(() => Registry.parse(JSON.stringify({ clients: [{ id: 'd1', role: 'device', fleet: 'f1', publicKey: hex('d1'), devices: ['d2'] }] }))).toThrow(/devices is only for gateways/);
    expect(() => Registry.parse(JSON.stringify({ clients: [{ id: 'g', role: 'gateway', fleet: 'f1', publicKey: hex('gw'), devices: ['no/slash'] }] }))).toThrow(/devices must be an array/);
    const reg = Registry.parse(registryJson());
    expect(reg.warnings).toEqual([expect.stringMatching(/gateway "gw" has no "devices" list/)]);
    expect(Registry.parse(JSON.stringify({ clients: [{ id: 'g', role: 'gateway', fleet: 'f1', publicKey: hex('gw'), devices: ['ghost'] }] })).warnings).toEqual([expect.stringMatching(/lists "ghost", which is not a registered device/)]);
    expect(logged.some((l) => /registry warning: gateway "gw"/.test(l))).toBe(true);
    // the fleet's revocation topic stays fleet-wide whatever the device list ([LM-REVOKE-4]), and
    // so do the service inboxes, of which the gateway reads only its own ([LM-SVC-7])
    expect(aclFor(reg.get('gw2')!)).toEqual({
      publish: ['lm/1/f1/d/d2/in', 'lm/1/f1/g/gw2/state', 'lm/1/f1/alarm', 'lm/1/f1/revocation', 'lm/1/f1/s/+/in'],
      subscribe: ['lm/1/f1/d/d2/state', 'lm/1/f1/d/d2/out', 'lm/1/f1/d/d2/status', 'lm/1/f1/alarm', 'lm/1/f1/revocation', 'lm/1/f1/s/gw2/in'], // status: [LM-STATE-7]
    });
    expect(aclFor(reg.get('gw')!).publish[0]).toBe('lm/1/f1/d/+/in');
    const block = mosquittoAcl(reg).split('\n\n').find((b) => b.startsWith('user gw2'))!;
    expect(block).toContain('topic write lm/1/f1/d/d2/in');
    expect(block).not.toMatch(/\/d\/\+\//); // no wildcard over devices
    expect(Registry.parse(reg.toJSON()).get('gw2')!.devices).toEqual(['d2']);
  });
});
