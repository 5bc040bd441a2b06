/**
 * One connection per device identity, against the plugin in aedes and MQTT.js clients over
 * loopback: a device's newer connection closes its older one whatever client ids they use
 * ([LM-BRK-14]), the older one's Last Will is not published ([LM-BRK-15]), and a device whose
 * connections keep taking each other over raises ALARM `tamper` ([LM-BRK-16]). The plugin's clock
 * is injected, so the 60 s window is stepped, not waited for.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FrameType, Reason, decodeFrame, encodeFrame, identityKeyPair, makeConnectToken, randomBytes, toHex, topics, type AlarmBody } from '@livematrix/spec';
import { Registry, livematrixPlugin, startBroker, type LivematrixPlugin, type RunningBroker } from '../src/index.js';

const keys = { d1: identityKeyPair(), d2: identityKeyPair(), gw: identityKeyPair() };
type Id = keyof typeof keys;
let broker: RunningBroker;
let plugin: LivematrixPlugin;
let clock: number;
const clients: MqttClient[] = [];
const log: string[] = [];

beforeEach(async () => {
  clock = Date.now();
  log.length = 0;
  const registry = new Registry([
    { id: 'd1', role: 'device', fleet: 'f1', publicKey: keys.d1.publicKey, limits: { framesPerSecond: 1000, bytesPerSecond: 1e7 } },
    { id: 'd2', role: 'device', fleet: 'f1', publicKey: keys.d2.publicKey, limits: { framesPerSecond: 1000, bytesPerSecond: 1e7 } },
    { id: 'gw', role: 'gateway', fleet: 'f1', publicKey: keys.gw.publicKey, limits: { framesPerSecond: 1000, bytesPerSecond: 1e7 }, devices: ['d1', 'd2'] },
  ]);
  broker = await startBroker({ setup: (a) => void (plugin = livematrixPlugin(a, { registry, now: () => clock, log: (l) => log.push(l) })) });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  await broker.close();
});

interface As {
  suffix?: string;
  will?: { topic: string; payload: Buffer; retain: boolean; qos: 1 };
}
/** Connects as `id` with client id lm-{dev|gw}-{id}-{suffix} and a token of the plugin's clock. */
async function as(id: Id, o: As = {}): Promise<MqttClient> {
  const role = id === 'gw' ? 2 : 1;
  const c = await mqtt.connectAsync(broker.url, {
    clientId: `lm-${role === 1 ? 'dev' : 'gw'}-${id}-${o.suffix ?? toHex(randomBytes(3))}`, username: id,
    password: Buffer.from(makeConnectToken(id, role, keys[id].secretKey, clock)), protocolVersion: 4, reconnectPeriod: 0, ...(o.will ? { will: o.will } : {}),
  });
  clients.push(c);
  return c;
}
const closed = (c: MqttClient) => new Promise<void>((r) => (c.disconnected || !c.connected ? r() : c.once('close', () => r())));
const bye = (who: string, sid = randomBytes(16)) => Buffer.from(encodeFrame(FrameType.BYE, { sid, who, reason: Reason.offline }, { kind: 'none' }));
/** Messages a client receives, and a wait for one that satisfies a test. */
function inbox(c: MqttClient) {
  const got: { topic: string; payload: Buffer; retain: boolean }[] = [];
  const waiters: { pred: (p: Buffer) => boolean; res: () => void }[] = [];
  c.on('message', (topic, payload, packet) => {
    got.push({ topic, payload, retain: packet.retain });
    for (const w of waiters.filter((x) => x.pred(payload))) w.res();
  });
  return { got, until: (pred: (p: Buffer) => boolean) => (got.some((m) => pred(m.payload)) ? Promise.resolve() : new Promise<void>((res) => waiters.push({ pred, res }))) };
}
const carries = (sid: Uint8Array) => (p: Buffer) => p.includes(Buffer.from(sid));
const alarmsIn = (got: { payload: Buffer }[]) => got.map((m) => decodeFrame(new Uint8Array(m.payload))).filter((f) => f.type === FrameType.ALARM).map((f) => f.body as AlarmBody);

describe('one connection per device identity [LM-BRK-14]', () => {
  it('[LM-BRK-14] a second connection of d1 with another client id closes the first; the second works; d2 and the gateway are untouched', async () => {
    const gw = await as('gw');
    await gw.subscribeAsync(topics.deviceOut('f1', 'd1'), { qos: 1 });
    const seen = inbox(gw);
    const d2 = await as('d2');
    const first = await as('d1', { suffix: 'one' });
    const firstClosed = closed(first);
    const second = await as('d1', { suffix: 'two' });
    await firstClosed;
    expect(first.connected).toBe(false);
    // the newer connection publishes and is forwarded
    const sid = randomBytes(16);
    await second.publishAsync(topics.deviceOut('f1', 'd1'), bye('d1', sid), { qos: 1 });
    await seen.until(carries(sid));
    expect(second.connected && d2.connected && gw.connected).toBe(true);
    expect(plugin.metrics.get('livematrix_takeovers_total', { role: 'device', client_id: 'other' })).toBe(1);
    expect(log.some((l) => /device d1: closing its connection lm-dev-d1-one for a newer one \(lm-dev-d1-two\)/.test(l))).toBe(true);
  });

  it('[LM-BRK-14] the same client id again: the older connection is closed too, counted apart', async () => {
    const first = await as('d1', { suffix: 'same' });
    const firstClosed = closed(first);
    const second = await as('d1', { suffix: 'same' });
    await firstClosed;
    expect(second.connected).toBe(true);
    expect(plugin.metrics.get('livematrix_takeovers_total', { role: 'device', client_id: 'same' })).toBe(1);
    expect(plugin.metrics.get('livematrix_takeovers_total', { role: 'device', client_id: 'other' })).toBe(0);
  });

  it('a gateway keeps several connections of its identity (not a device: exempt)', async () => {
    const a = await as('gw');
    const b = await as('gw');
    const c = await as('gw');
    const seen = inbox(a);
    await a.subscribeAsync(topics.deviceOut('f1', 'd1'), { qos: 1 });
    const sid = randomBytes(16);
    await (await as('d1')).publishAsync(topics.deviceOut('f1', 'd1'), bye('d1', sid), { qos: 1 });
    await seen.until(carries(sid));
    expect([a.connected, b.connected, c.connected]).toEqual([true, true, true]);
    expect(plugin.metrics.get('livematrix_takeovers_total')).toBe(0);
  });
});

describe('the older connection\'s Last Will [LM-BRK-15]', () => {
  it('[LM-BRK-15] is neither forwarded nor retained; the newer connection\'s Will, when it drops, is', async () => {
    const state = topics.deviceState('f1', 'd1');
    const gw = await as('gw');
    await gw.subscribeAsync(state, { qos: 1 });
    const seen = inbox(gw);
    const oldWill = randomBytes(16);
    const first = await as('d1', { will: { topic: state, payload: bye('d1', oldWill), retain: true, qos: 1 } });
    const firstClosed = closed(first);
    const newWill = randomBytes(16);
    const second = await as('d1', { will: { topic: state, payload: bye('d1', newWill), retain: true, qos: 1 } });
    await firstClosed;
    // a marker from the newer connection, retained: once it is in, the older Will would be too
    const marker = randomBytes(16);
    await second.publishAsync(state, bye('d1', marker), { qos: 1, retain: true });
    await seen.until(carries(marker));
    expect(seen.got.filter((m) => carries(oldWill)(m.payload))).toEqual([]);
    expect(plugin.metrics.get('livematrix_wills_dropped_total', { reason: 'takeover' })).toBe(1);
    const late = await as('gw');
    const kept = inbox(late);
    await late.subscribeAsync(state, { qos: 1 });
    await kept.until(() => true);
    expect(kept.got.map((m) => [m.retain, carries(marker)(m.payload)])).toEqual([[true, true]]);
    // the accepted case: the newer connection drops without a DISCONNECT, and its Will goes out
    (second.stream as unknown as { destroy(): void }).destroy();
    await seen.until(carries(newWill));
    expect(plugin.metrics.get('livematrix_wills_total')).toBe(1);
    expect(plugin.metrics.get('livematrix_wills_dropped_total')).toBe(1);
  });

  it('[LM-BRK-15] with the same client id too', async () => {
    const state = topics.deviceState('f1', 'd1');
    const gw = await as('gw');
    await gw.subscribeAsync(state, { qos: 1 });
    const seen = inbox(gw);
    const oldWill = randomBytes(16);
    const first = await as('d1', { suffix: 'x', will: { topic: state, payload: bye('d1', oldWill), retain: false, qos: 1 } });
    const firstClosed = closed(first);
    const second = await as('d1', { suffix: 'x' });
    await firstClosed;
    const marker = randomBytes(16);
    await second.publishAsync(state, bye('d1', marker), { qos: 1 });
    await seen.until(carries(marker));
    expect(seen.got.filter((m) => carries(oldWill)(m.payload))).toEqual([]);
    expect(plugin.metrics.get('livematrix_wills_dropped_total', { reason: 'takeover' })).toBe(1);
  });
});

describe('repeated takeovers raise ALARM tamper [LM-BRK-16]', () => {
  /** Connects d1 `n` times with fresh client ids, each closing the one before, `stepMs` of the plugin's clock apart. */
  async function flap(n: number, stepMs: number, suffix?: string): Promise<MqttClient> {
    let c = await as('d1', suffix ? { suffix } : {});
    for (let i = 0; i < n; i++) {
      clock += stepMs;
      const was = closed(c);
      c = await as('d1', suffix ? { suffix } : {});
      await was;
    }
    return c;
  }
  /** The gateway's alarm topic after a marker ALARM it publishes itself has come back. */
  async function alarmsAfter(gw: MqttClient, seen: ReturnType<typeof inbox>): Promise<AlarmBody[]> {
    const sid = randomBytes(16);
    await gw.publishAsync(topics.alarm('f1'), Buffer.from(encodeFrame(FrameType.ALARM, { sid, code: Reason.aborted, detail: 'marker', time: clock }, { kind: 'none' })), { qos: 1 });
    await seen.until(carries(sid));
    return alarmsIn(seen.got).filter((a) => a.code !== Reason.aborted);
  }

  it('[LM-BRK-16] three takeovers by other client ids within 60 s: one ALARM tamper (NONE) naming d1; two do not raise it', async () => {
    const gw = await as('gw');
    await gw.subscribeAsync(topics.alarm('f1'), { qos: 1 });
    const seen = inbox(gw);
    await flap(2, 10_000);
    expect(await alarmsAfter(gw, seen)).toEqual([]);
    await flap(1, 10_000); // the first connection of flap() takes over the last one above: 4 in all
    const alarms = await alarmsAfter(gw, seen);
    expect(alarms).toHaveLength(1);
    expect(alarms[0]).toMatchObject({ code: Reason.tamper, device: 'd1', limit: 3, observed: 3 });
    expect(alarms[0]?.detail).toMatch(/^d1: 3 connections of device d1 closed within 60 s for a newer one with another client id/);
    const raw = seen.got.find((m) => decodeFrame(new Uint8Array(m.payload)).type === FrameType.ALARM && (decodeFrame(new Uint8Array(m.payload)).body as AlarmBody).code === Reason.tamper);
    expect(decodeFrame(new Uint8Array(raw!.payload)).authKind).toBe('none');
    expect(plugin.metrics.get('livematrix_alarms_total', { reason: 'takeover' })).toBe(1);
    // more within the window: no second alarm; past it, the count starts again
    await flap(2, 1000);
    expect(await alarmsAfter(gw, seen)).toHaveLength(1);
    clock += 61_000;
    await flap(3, 1000);
    expect(await alarmsAfter(gw, seen)).toHaveLength(2);
  });

  it('[LM-BRK-16] takeovers spread over more than 60 s, or by the same client id, raise nothing', async () => {
    const gw = await as('gw');
    await gw.subscribeAsync(topics.alarm('f1'), { qos: 1 });
    const seen = inbox(gw);
    await flap(5, 31_000); // never 3 within 60 s
    clock += 61_000;
    await flap(5, 1000, 'same'); // a client reconnecting with its own client id (its first connection takes over the one above)
    expect(await alarmsAfter(gw, seen)).toEqual([]);
    expect(plugin.metrics.get('livematrix_takeovers_total', { role: 'device', client_id: 'other' })).toBe(6);
    expect(plugin.metrics.get('livematrix_takeovers_total', { role: 'device', client_id: 'same' })).toBe(5);
  });
});
