/**
 * The fleet's revocation topic through the aedes plugin ([LM-REVOKE-4]): gateways publish the
 * operator's REVOKE frame retained, devices and gateways read it, devices may not publish there,
 * and only REVOKE frames pass. Real MQTT.js clients over loopback; every wait is on an event.
 */
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FrameType, Reason, decodeFrame, encodeFrame, identityKeyPair, makeConnectToken, signRevocation, topics, verifyRevocation, type IdentityKeyPair,
} from '@livematrix/spec';
import { Registry, aclFor, checkPublish, livematrixPlugin, mosquittoAcl, startBroker, type LivematrixPlugin, type RunningBroker } from '../src/index.js';

const keys: Record<string, IdentityKeyPair> = { d1: identityKeyPair(), gw: identityKeyPair(), gwAssigned: identityKeyPair(), gwOther: identityKeyPair() };
const operator = identityKeyPair();
const limits = { framesPerSecond: 100, bytesPerSecond: 1_000_000 };
const registry = () => new Registry([
  { id: 'd1', role: 'device', fleet: 'f1', publicKey: keys['d1']!.publicKey, limits },
  { id: 'gw', role: 'gateway', fleet: 'f1', publicKey: keys['gw']!.publicKey, limits },
  { id: 'gwAssigned', role: 'gateway', fleet: 'f1', publicKey: keys['gwAssigned']!.publicKey, limits, devices: ['d1'] },
  { id: 'gwOther', role: 'gateway', fleet: 'f2', publicKey: keys['gwOther']!.publicKey, limits },
]);

let broker: RunningBroker;
let plugin: LivematrixPlugin;
const clients: MqttClient[] = [];

beforeEach(async () => {
  broker = await startBroker({ setup: (a) => void (plugin = livematrixPlugin(a, { registry: registry() })) });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  await broker.close();
});

async function as(id: string, role: 1 | 2): Promise<MqttClient> {
  const c = await mqtt.connectAsync(broker.url, {
    clientId: `lm-${role === 1 ? 'dev' : 'gw'}-${id}-${Math.random().toString(16).slice(2, 8)}`, username: id,
    password: Buffer.from(makeConnectToken(id, role, keys[id]!.secretKey)), protocolVersion: 4, reconnectPeriod: 0,
  });
  clients.push(c);
  return c;
}

/** The next message a client receives, with its packet (retain flag). */
const nextMessage = (c: MqttClient) => new Promise<{ topic: string; payload: Buffer; packet: IPublishPacket }>((res) => c.once('message', (topic, payload, packet) => res({ topic, payload, packet })));

async function suback(c: MqttClient, topic: string): Promise<number> {
  try {
    return (await c.subscribeAsync(topic, { qos: 1 }))[0]?.qos ?? -1;
  } catch (e) {
    return ((e as { packet?: { granted?: number[] } }).packet?.granted ?? [-1])[0] ?? -1;
  }
}

const now = Date.now();
const list = (seq: number) => Buffer.from(signRevocation({
  seq, time: now, next: now + 3_600_000, txs: [new Uint8Array(32).fill(seq)], devices: ['printer-13'], operatorSecret: operator.secretKey, operatorPublic: operator.publicKey,
}));
const bye = (who: string) => Buffer.from(encodeFrame(FrameType.BYE, { who, reason: Reason.offline }, { kind: 'none' }));
const REV = topics.revocation('f1');

describe('the revocation topic [LM-REVOKE-4]', () => {
  it('a gateway\'s REVOKE is retained and delivered to a device that subscribes later; it verifies under the operator key [LM-REVOKE-2]', async () => {
    const gw = await as('gw', 2);
    await gw.publishAsync(REV, list(5), { qos: 1, retain: true });
    const d1 = await as('d1', 1);
    const got = nextMessage(d1);
    expect(await suback(d1, REV)).toBe(1);
    const m = await got;
    expect(m.topic).toBe(REV);
    expect(m.packet.retain).toBe(true);
    const body = verifyRevocation(new Uint8Array(m.payload), [operator.publicKey]);
    expect(body.seq).toBe(5);
    expect(body.devices).toEqual(['printer-13']);
  });

  it('a device subscribed live receives a newer list, and a gateway with a device list may publish it too [LM-BRK-9]', async () => {
    const d1 = await as('d1', 1);
    expect(await suback(d1, REV)).toBe(1);
    const gw = await as('gwAssigned', 2);
    expect(await suback(gw, REV)).toBe(1);
    const [atDevice, atGateway] = [nextMessage(d1), nextMessage(gw)];
    await gw.publishAsync(REV, list(6), { qos: 1, retain: true });
    for (const m of await Promise.all([atDevice, atGateway])) expect(decodeFrame(new Uint8Array(m.payload)).type).toBe(FrameType.REVOKE);
  });

  it('a device\'s publish on the revocation topic is refused: not forwarded, not retained, and the device is disconnected', async () => {
    const gw = await as('gw', 2);
    expect(await suback(gw, REV)).toBe(1);
    const first = nextMessage(gw);
    const d1 = await as('d1', 1);
    const closed = new Promise<void>((r) => d1.once('close', () => r()));
    d1.publish(REV, list(99), { qos: 1, retain: true });
    await closed;
    expect(plugin.metrics.get('livematrix_publish_denied_total', { role: 'device' })).toBe(1);
    // the gateway's own list is the first thing the topic carries, and what is retained
    await gw.publishAsync(REV, list(7), { qos: 1, retain: true });
    expect(verifyRevocation(new Uint8Array((await first).payload), [operator.publicKey]).seq).toBe(7);
    const late = await as('gwAssigned', 2);
    const retained = nextMessage(late);
    await late.subscribeAsync(REV, { qos: 1 });
    expect(verifyRevocation(new Uint8Array((await retained).payload), [operator.publicKey]).seq).toBe(7);
  });

  it('a frame other than REVOKE on the revocation topic is dropped and counted, the gateway stays connected [LM-BRK-3]', async () => {
    const d1 = await as('d1', 1);
    expect(await suback(d1, REV)).toBe(1);
    const first = nextMessage(d1);
    const gw = await as('gw', 2);
    await gw.publishAsync(REV, bye('gw'), { qos: 1, retain: true });
    await gw.publishAsync(REV, Buffer.from([0xff, 0x00]), { qos: 1, retain: true });
    expect(plugin.metrics.get('livematrix_frames_dropped_total', { reason: 'schema' })).toBe(1);
    expect(plugin.metrics.get('livematrix_frames_dropped_total', { reason: 'malformed' })).toBe(1);
    expect(gw.connected).toBe(true);
    await gw.publishAsync(REV, list(8), { qos: 1, retain: true });
    const m = await first;
    expect(decodeFrame(new Uint8Array(m.payload)).type).toBe(FrameType.REVOKE);
    // nothing dropped was retained: a late subscriber gets the list
    const late = await as('gwAssigned', 2);
    const retained = nextMessage(late);
    await late.subscribeAsync(REV, { qos: 1 });
    expect(verifyRevocation(new Uint8Array((await retained).payload), [operator.publicKey]).seq).toBe(8);
  });

  it('a REVOKE on any other topic is dropped: the alarm topic and a device\'s in topic carry no lists', async () => {
    const d1 = await as('d1', 1);
    expect(await suback(d1, topics.deviceIn('f1', 'd1'))).toBe(1);
    const first = nextMessage(d1);
    const gw = await as('gw', 2);
    await gw.publishAsync(topics.deviceIn('f1', 'd1'), list(9), { qos: 1 });
    await gw.publishAsync(topics.alarm('f1'), list(9), { qos: 1 });
    expect(plugin.metrics.get('livematrix_frames_dropped_total', { reason: 'schema' })).toBe(2);
    await gw.publishAsync(topics.deviceIn('f1', 'd1'), bye('gw'), { qos: 1 });
    expect(decodeFrame(new Uint8Array((await first).payload)).type).toBe(FrameType.BYE);
  });

  it('each client reaches its own fleet\'s revocation topic only', async () => {
    const d1 = await as('d1', 1);
    expect(await suback(d1, topics.revocation('f2'))).toBe(128);
    expect(await suback(d1, 'lm/1/+/revocation')).toBe(128);
    const other = await as('gwOther', 2);
    expect(await suback(other, REV)).toBe(128);
    const closed = new Promise<void>((r) => other.once('close', () => r()));
    other.publish(REV, list(10), { qos: 1, retain: true });
    await closed;
    expect(plugin.metrics.get('livematrix_publish_denied_total', { role: 'gateway' })).toBe(1);
    expect(d1.connected).toBe(true);
  });
});

describe('revocation topic rules outside aedes [LM-REVOKE-4]', () => {
  it('the frame check takes only REVOKE on the revocation topic', () => {
    expect(checkPublish(REV, list(1))).toEqual({ ok: true, type: FrameType.REVOKE });
    expect(checkPublish(REV, bye('gw'))).toMatchObject({ ok: false, reason: Reason.schema });
    expect(checkPublish(topics.deviceIn('f1', 'd1'), list(1))).toMatchObject({ ok: false, reason: Reason.schema });
  });

  it('ACLs and the Mosquitto ACL file: gateways write and read it, devices only read it', () => {
    const r = registry();
    const d = aclFor(r.get('d1')!);
    const g = aclFor(r.get('gwAssigned')!);
    expect(d.subscribe).toContain(REV);
    expect(d.publish).not.toContain(REV);
    expect(g.publish).toContain(REV);
    expect(g.subscribe).toContain(REV);
    const acl = mosquittoAcl(r);
    const block = (user: string) => acl.split('\n\n').find((b) => b.startsWith(`user ${user}\n`)) ?? '';
    expect(block('d1')).toContain(`topic read ${REV}`);
    expect(block('d1')).not.toContain(`topic write ${REV}`);
    expect(block('gw')).toContain(`topic write ${REV}`);
    expect(block('gw')).toContain(`topic read ${REV}`);
    expect(block('gwOther')).toContain(`topic write ${topics.revocation('f2')}`);
    expect(block('gwOther')).not.toContain(REV);
  });
});
