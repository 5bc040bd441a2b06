/**
 * The broker's rules for the services of protected jobs ([LM-SVC-7]), with real MQTT.js clients
 * over loopback: the roles store, keys and owner in the registry and their connect tokens and
 * client ids ([LM-BRK-8]); gateways, stores, keys services and owners of a fleet publish SVC
 * frames to that fleet's service inboxes and read only their own; devices reach none; a request
 * must name its publisher as its requester; and the Mosquitto ACL says the same.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FrameType, Role, type RoleName, encodeFrame, identityKeyPair, makeConnectToken, randomBytes, topics, type IdentityKeyPair } from '@livematrix/spec';
import { Registry, aclFor, livematrixPlugin, mosquittoAcl, startBroker, type LivematrixPlugin, type RunningBroker } from '../src/index.js';

const roles = { d1: 'device', gw1: 'gateway', st1: 'store', ks1: 'keys', own1: 'owner', ks9: 'keys' } as const satisfies Record<string, RoleName>;
type Id = keyof typeof roles;
const prefix: Record<RoleName, string> = { device: 'dev', gateway: 'gw', store: 'st', keys: 'ks', owner: 'own' };
const keys = Object.fromEntries(Object.keys(roles).map((id) => [id, identityKeyPair()])) as Record<Id, IdentityKeyPair>;
const hex = (id: Id) => Buffer.from(keys[id].publicKey).toString('hex');

function registry(): Registry {
  return Registry.parse(JSON.stringify({
    clients: (Object.keys(roles) as Id[]).map((id) => ({ id, role: roles[id], fleet: id === 'ks9' ? 'f9' : 'f1', publicKey: hex(id), ...(id === 'gw1' ? { devices: ['d1'] } : {}) })),
  }));
}

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

async function as(id: Id): Promise<MqttClient> {
  const role = roles[id];
  const c = await mqtt.connectAsync(broker.url, {
    clientId: `lm-${prefix[role]}-${id}-${Math.random().toString(16).slice(2, 8)}`, username: id,
    password: Buffer.from(makeConnectToken(id, Role[role], keys[id].secretKey)), protocolVersion: 4, reconnectPeriod: 0,
  });
  clients.push(c);
  return c;
}

/** An SVC_REQ from `from`, signed by `signer`'s key (the broker checks only that `from` and `pk` are the publisher's). */
function request(from: Id, signer: Id = from): Buffer {
  return Buffer.from(encodeFrame(FrameType.SVC_REQ, { id: randomBytes(16), op: 35, args: randomBytes(40), time: Date.now(), from, pk: keys[signer].publicKey }, { kind: 'sig', secretKey: keys[signer].secretKey }));
}

/** The SUBACK return code for one filter (MQTT.js rejects on 128 and carries the packet). */
async function suback(c: MqttClient, topic: string): Promise<number> {
  try {
    return (await c.subscribeAsync(topic, { qos: 1 }))[0]?.qos ?? -1;
  } catch (e) {
    return ((e as { packet?: { granted?: number[] } }).packet?.granted ?? [-1])[0] ?? -1;
  }
}

function received(c: MqttClient): { got: string[]; next(n: number): Promise<void> } {
  const got: string[] = [];
  const waiting: { n: number; res: () => void }[] = [];
  c.on('message', (topic) => {
    got.push(topic);
    for (const w of waiting.filter((x) => got.length >= x.n)) w.res();
  });
  return { got, next: (n) => new Promise<void>((res) => (got.length >= n ? res() : waiting.push({ n, res }))) };
}

describe('service inboxes [LM-SVC-7]', () => {
  it('the registry takes the roles store, keys and owner; their client ids and ACLs', () => {
    const reg = registry();
    expect(reg.clientIdOwner('lm-st-st1-abc')?.id).toBe('st1');
    expect(reg.clientIdOwner('lm-ks-ks1-abc')?.id).toBe('ks1');
    expect(reg.clientIdOwner('lm-own-own1-abc')?.id).toBe('own1');
    expect(reg.clientIdOwner('lm-gw-st1-abc')).toBeUndefined(); // a store's id with a gateway's prefix
    expect(() => Registry.parse(JSON.stringify({ clients: [{ id: 'x', role: 'printer', fleet: 'f1', publicKey: hex('d1') }] }))).toThrow(/role must be one of "device", "gateway", "store", "keys", "owner"/);
    expect(aclFor(reg.get('st1')!)).toEqual({ publish: ['lm/1/f1/s/+/in'], subscribe: ['lm/1/f1/s/st1/in'] });
    expect(aclFor(reg.get('gw1')!).publish).toContain('lm/1/f1/s/+/in');
    expect(aclFor(reg.get('gw1')!).subscribe).toContain('lm/1/f1/s/gw1/in');
    expect(JSON.stringify(aclFor(reg.get('d1')!))).not.toMatch(/\/s\//);
    const acl = mosquittoAcl(reg);
    expect(acl).toContain('user own1\ntopic write lm/1/f1/s/+/in\ntopic read lm/1/f1/s/own1/in\n');
    expect(acl).not.toMatch(/user d1\n(topic [^\n]*\n)*topic (read|write) lm\/1\/f1\/s\//);
  });

  it('an owner\'s request reaches the store\'s inbox; the store\'s answer reaches the owner\'s; a gateway asks too', async () => {
    const st = await as('st1');
    await st.subscribeAsync(topics.serviceIn('f1', 'st1'), { qos: 1 });
    const atStore = received(st);
    const own = await as('own1');
    await own.subscribeAsync(topics.serviceIn('f1', 'own1'), { qos: 1 });
    const atOwner = received(own);
    await own.publishAsync(topics.serviceIn('f1', 'st1'), request('own1'), { qos: 1 });
    await atStore.next(1);
    const answer = encodeFrame(FrameType.SVC_RESP, { id: randomBytes(16), code: 0, result: randomBytes(30), detail: '', time: Date.now() }, { kind: 'sig', secretKey: keys.st1.secretKey });
    await st.publishAsync(topics.serviceIn('f1', 'own1'), Buffer.from(answer), { qos: 1 });
    await atOwner.next(1);
    const gw = await as('gw1');
    await gw.publishAsync(topics.serviceIn('f1', 'st1'), request('gw1'), { qos: 1 });
    await atStore.next(2);
    expect(atStore.got).toEqual([topics.serviceIn('f1', 'st1'), topics.serviceIn('f1', 'st1')]);
  });

  it('a device may neither publish to a service inbox nor read one: refused, disconnected, nothing delivered', async () => {
    const st = await as('st1');
    await st.subscribeAsync(topics.serviceIn('f1', 'st1'), { qos: 1 });
    const atStore = received(st);
    const d1 = await as('d1');
    expect(await suback(d1, topics.serviceIn('f1', 'st1'))).toBe(128);
    const closed = new Promise<void>((r) => d1.once('close', () => r()));
    d1.publish(topics.serviceIn('f1', 'st1'), request('d1'), { qos: 1 });
    await closed;
    expect(plugin.metrics.get('livematrix_publish_denied_total', { role: 'device' })).toBe(1);
    // the store still gets what an owner sends after it, and only that
    const own = await as('own1');
    await own.publishAsync(topics.serviceIn('f1', 'st1'), request('own1'), { qos: 1 });
    await atStore.next(1);
    expect(atStore.got.length).toBe(1);
  });

  it('each party reads only its own inbox; another fleet\'s inboxes are out of reach', async () => {
    const own = await as('own1');
    expect(await suback(own, topics.serviceIn('f1', 'st1'))).toBe(128);
    expect(await suback(own, 'lm/1/f1/s/+/in')).toBe(128);
    expect(await suback(own, topics.serviceIn('f1', 'own1'))).toBe(1);
    const ks9 = await as('ks9');
    const closed = new Promise<void>((r) => ks9.once('close', () => r()));
    ks9.publish(topics.serviceIn('f1', 'st1'), request('ks9'), { qos: 1 });
    await closed;
    expect(plugin.metrics.get('livematrix_publish_denied_total', { role: 'keys' })).toBe(1);
  });

  it('a request that names another party as its requester, or another key, is dropped: answers cannot be sent to another inbox', async () => {
    const st = await as('st1');
    await st.subscribeAsync(topics.serviceIn('f1', 'st1'), { qos: 1 });
    const atStore = received(st);
    const own = await as('own1');
    await own.publishAsync(topics.serviceIn('f1', 'st1'), request('gw1', 'own1'), { qos: 1 }); // from: gw1, signed by own1
    await own.publishAsync(topics.serviceIn('f1', 'st1'), request('own1', 'gw1'), { qos: 1 }); // from: own1, gw1's key
    expect(plugin.metrics.get('livematrix_frames_dropped_total', { reason: 'svc-from' })).toBe(2);
    await own.publishAsync(topics.serviceIn('f1', 'st1'), request('own1'), { qos: 1 });
    await atStore.next(1);
    expect(atStore.got.length).toBe(1);
  });
});
