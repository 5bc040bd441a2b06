/**
 * Late Last Wills ([LM-STATE-8]) and the status topic's access rules ([LM-STATE-7]) on the aedes
 * plugin, with real MQTT.js clients over loopback: a Will whose boot sequence is below that of the
 * HELLO retained on the device's state topic is neither forwarded nor retained, the Will of the
 * current connection is; a device publishes STATUS on its own status topic only, and only STATUS.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FrameType, Reason, decodeFrame, encodeFrame, identityKeyPair, makeConnectToken, topics, type IdentityKeyPair } from '@livematrix/spec';
import { Registry, livematrixPlugin, startBroker, type LivematrixPlugin, type RunningBroker } from '../src/index.js';
import { lateWill } from '../src/wills.js';

let broker: RunningBroker;
let plugin: LivematrixPlugin;
const keys: Record<'d1' | 'd2' | 'gw', IdentityKeyPair> = { d1: identityKeyPair(), d2: identityKeyPair(), gw: identityKeyPair() };
const clients: MqttClient[] = [];
/** the plugin's log lines, as events */
const logs = new EventEmitter<{ line: [string] }>();
const hex = (k: IdentityKeyPair) => Buffer.from(k.publicKey).toString('hex');

beforeEach(async () => {
  const registry = new Registry(Registry.parse(JSON.stringify({
    clients: [
      { id: 'd1', role: 'device', fleet: 'f1', publicKey: hex(keys.d1) },
      { id: 'd2', role: 'device', fleet: 'f1', publicKey: hex(keys.d2) },
      { id: 'gw', role: 'gateway', fleet: 'f1', publicKey: hex(keys.gw), devices: ['d1', 'd2'] },
    ],
  })).all());
  broker = await startBroker({ setup: (a) => void (plugin = livematrixPlugin(a, { registry, log: (l) => logs.emit('line', l) })) });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  await broker.close();
});

async function as(id: 'd1' | 'd2' | 'gw', will?: { topic: string; payload: Buffer; retain: boolean; qos: 1 }): Promise<MqttClient> {
  const role = id === 'gw' ? 2 : 1;
  const c = await mqtt.connectAsync(broker.url, {
    clientId: `lm-${role === 1 ? 'dev' : 'gw'}-${id}-${Math.random().toString(16).slice(2, 8)}`, username: id,
    password: Buffer.from(makeConnectToken(id, role, keys[id].secretKey)), protocolVersion: 4, reconnectPeriod: 0, ...(will ? { will } : {}),
  });
  clients.push(c);
  return c;
}

const state = topics.deviceState('f1', 'd1');
const byeOf = (bd: number | undefined) => Buffer.from(encodeFrame(FrameType.BYE, { who: 'd1', reason: Reason.offline, ...(bd !== undefined ? { bd } : {}) }, { kind: 'none' }));
const helloOf = (bd: number) => Buffer.from(encodeFrame(FrameType.HELLO, {
  device: 'd1', idpk: keys.d1.publicKey, caps: { suites: [[3, 1e6]], mem: 2 ** 24, wmax: 16, workers: 1 }, time: Date.now(), software: 'test', online: true, bd,
}, { kind: 'sig', secretKey: keys.d1.secretKey }));
const willOf = (bd: number | undefined) => ({ topic: state, payload: byeOf(bd), retain: true, qos: 1 as const });

/** Waits for the next message on `topic` at `c` (subscribed already or not). */
function next(c: MqttClient, topic: string): Promise<{ payload: Buffer; retain: boolean }> {
  return new Promise((resolve) => {
    const on = (t: string, payload: Buffer, packet: { retain: boolean }) => {
      if (t !== topic) return;
      c.off('message', on);
      resolve({ payload, retain: packet.retain });
    };
    c.on('message', on);
  });
}

/** The message retained on `topic`, as a new subscriber gets it. */
async function retainedOn(topic: string): Promise<Buffer> {
  const c = await as('gw');
  const got = next(c, topic);
  await c.subscribeAsync(topic, { qos: 1 });
  return (await got).payload;
}

/** Resolves with the plugin's next log line that says it dropped a late Will. */
function lateDropped(): Promise<string> {
  return new Promise((resolve) => {
    const on = (l: string) => {
      if (!/late.*LM-STATE-8/.test(l)) return;
      logs.off('line', on);
      resolve(l);
    };
    logs.on('line', on);
  });
}

describe('late Last Wills [LM-STATE-8]', () => {
  it('[LM-STATE-8] drops the Will of a connection older than the retained HELLO; publishes and retains the current connection\'s Will', async () => {
    const gw = await as('gw');
    await gw.subscribeAsync(state, { qos: 1 });
    const seen: Buffer[] = [];
    gw.on('message', (t, p) => void (t === state && seen.push(p)));
    // the old connection (bd 5) is still open at the broker when the HELLO of a newer connection
    // (bd 6) is retained; the broker judges the Will by the retained HELLO alone, so the old
    // connection publishes it here (two open connections of one identity may not coexist on a
    // broker that disconnects the older one, which then sends its Will before the new HELLO)
    const old = await as('d1', willOf(5));
    const announced = next(gw, state);
    await old.publishAsync(state, helloOf(6), { qos: 1, retain: true });
    expect(decodeFrame(new Uint8Array((await announced).payload)).type).toBe(FrameType.HELLO);
    const dropped = lateDropped();
    old.stream.destroy(); // the old connection dies: its Will is late
    expect(await dropped).toMatch(/bd 5 is late.*bd 6/);
    expect(decodeFrame(new Uint8Array(await retainedOn(state))).body).toMatchObject({ bd: 6 }); // the HELLO stays retained
    expect(seen.map((p) => decodeFrame(new Uint8Array(p)).type)).toEqual([FrameType.HELLO]); // the late Will reached nobody
    // the current connection's Will goes out and is retained: the device is offline
    const fresh = await as('d1', willOf(6));
    const gone = next(gw, state);
    fresh.stream.destroy();
    const will = decodeFrame(new Uint8Array((await gone).payload));
    expect(will.type === FrameType.BYE && will.body.bd).toBe(6);
    expect(decodeFrame(new Uint8Array(await retainedOn(state))).body).toMatchObject({ who: 'd1', bd: 6 });
    expect(plugin.metrics.get('livematrix_wills_dropped_total', { reason: 'late' })).toBe(1);
  });

  it('[LM-STATE-8] a Will without bd, or with a bd not below the retained HELLO\'s, is published', async () => {
    for (const [retained, bd] of [[7, undefined], [7, 7], [7, 8]] as const) {
      const gw = await as('gw');
      await gw.subscribeAsync(state, { qos: 1 });
      const d = await as('d1', willOf(bd));
      const hello = next(gw, state);
      await d.publishAsync(state, helloOf(retained), { qos: 1, retain: true });
      expect(decodeFrame(new Uint8Array((await hello).payload)).type).toBe(FrameType.HELLO);
      const gone = next(gw, state);
      d.stream.destroy();
      const will = decodeFrame(new Uint8Array((await gone).payload));
      expect(will.type).toBe(FrameType.BYE);
      expect(will.type === FrameType.BYE ? will.body.bd : 'not a BYE').toBe(bd);
    }
    expect(plugin.metrics.get('livematrix_wills_dropped_total', { reason: 'late' })).toBe(0);
    expect(plugin.metrics.get('livematrix_wills_total')).toBe(3);
  });

  it('lateWill judges only a BYE with bd on a state topic against a retained HELLO with bd, and never throws', async () => {
    const reader = (held: Uint8Array | undefined) => async () => held;
    const failing = async (): Promise<Uint8Array> => {
      throw new Error('persistence down');
    };
    expect(await lateWill({ topic: state, payload: byeOf(1) }, reader(helloOf(2)))).toMatch(/bd 1 is late.*bd 2.*LM-STATE-8/);
    expect(await lateWill({ topic: state, payload: byeOf(2) }, reader(helloOf(2)))).toBeUndefined();
    expect(await lateWill({ topic: state, payload: byeOf(undefined) }, reader(helloOf(2)))).toBeUndefined();
    expect(await lateWill({ topic: state, payload: byeOf(1) }, reader(byeOf(2)))).toBeUndefined(); // a retained BYE is no announcement
    expect(await lateWill({ topic: state, payload: byeOf(1) }, reader(undefined))).toBeUndefined();
    expect(await lateWill({ topic: state, payload: byeOf(1) }, failing)).toBeUndefined();
    expect(await lateWill({ topic: topics.deviceOut('f1', 'd1'), payload: byeOf(1) }, reader(helloOf(2)))).toBeUndefined();
    expect(await lateWill({ topic: state, payload: 42 }, reader(helloOf(2)))).toBeUndefined();
    expect(await lateWill({ topic: state, payload: Buffer.from([0xff]) }, reader(helloOf(2)))).toBeUndefined();
  });
});

describe('the status topic [LM-STATE-7]', () => {
  const status = (who: 'd1' | 'd2') => Buffer.from(encodeFrame(FrameType.STATUS, { device: who, state: 1, seq: 0, time: Date.now(), bd: 1 }, { kind: 'sig', secretKey: keys[who].secretKey }));
  it('[LM-STATE-7] a device publishes STATUS on its own status topic, a gateway reads it; another device\'s publish there, or another frame there, is not forwarded', async () => {
    const own = topics.deviceStatus('f1', 'd1');
    const gw = await as('gw');
    await gw.subscribeAsync(own, { qos: 1 });
    const got: Buffer[] = [];
    gw.on('message', (t, p) => void (t === own && got.push(p)));
    const d1 = await as('d1');
    // a HELLO on the status topic: dropped by the frame check, the client kept
    await d1.publishAsync(own, helloOf(1), { qos: 1 });
    expect(plugin.metrics.get('livematrix_frames_dropped_total', { reason: 'schema' })).toBe(1);
    // a STATUS on the state topic: dropped likewise
    await d1.publishAsync(state, status('d1'), { qos: 1 });
    expect(plugin.metrics.get('livematrix_frames_dropped_total', { reason: 'schema' })).toBe(2);
    // device 2 on device 1's status topic: refused ([LM-BRK-2]), aedes closes its connection
    const d2 = await as('d2');
    const closed = new Promise<void>((r) => d2.once('close', () => r()));
    d2.publish(own, status('d2'), { qos: 1 });
    await closed;
    const arrived = next(gw, own);
    await d1.publishAsync(own, status('d1'), { qos: 1, retain: true });
    const s = decodeFrame(new Uint8Array((await arrived).payload));
    expect(s.type).toBe(FrameType.STATUS);
    expect(got).toHaveLength(1); // only device 1's STATUS came through
    expect(decodeFrame(new Uint8Array(await retainedOn(own))).type).toBe(FrameType.STATUS);
  });
});
