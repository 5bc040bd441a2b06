/**
 * Machine state outside sessions end to end (SPEC.md §10.2) over a real aedes broker on loopback,
 * with the repository's device and gateway: the device's signed, retained status through a session
 * ([LM-STATE-1], [LM-STATE-2]) as the gateway takes it ([LM-STATE-6]); the boot sequence across a
 * restart and in the Last Will ([LM-STATE-3]); and the late Will of an old connection after the
 * new connection's HELLO: the gateway still sees the device online and streams to it
 * ([LM-STATE-5]), and a gateway that starts later sees it too once the device announced itself
 * again ([LM-STATE-4]). The broker here has no plugin, so nothing spares the gateway the late Will
 * (the plugin's dropping of it, [LM-STATE-8], is broker/test/late-will.test.ts's).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { testEngine } from '@livematrix/testkit';
import { type AnyFrame, DeviceState, FrameType, type HelloBody, type StatusBody, decodeFrame, identityKeyPair, topics, verifyFrame } from '@livematrix/spec';
import { Device } from '@livematrix/device-sdk';
import { Gateway } from '@livematrix/gateway';
import { CAPS, type Rig, sign, withRig } from './harness.js';

const engine = testEngine();
const INTERVAL = 400;
const data = new TextEncoder().encode(Array.from({ length: 3000 }, (_, i) => `G1 X${i % 200} Y${(i * 7) % 200} E${(i * 0.01).toFixed(2)}`).join('\n') + '\n');

/** Resolves with the first event `name` of `em` whose arguments `pick` maps to a value. */
function when<A extends unknown[], T>(em: { on(n: string, f: (...a: A) => void): unknown; off(n: string, f: (...a: A) => void): unknown }, name: string, pick: (...a: A) => T | undefined): Promise<T> {
  return new Promise((resolve) => {
    const f = (...a: A) => {
      const v = pick(...a);
      if (v === undefined) return;
      em.off(name, f);
      resolve(v);
    };
    em.on(name, f);
  });
}

/** A plain MQTT subscriber to `topic` that keeps every frame, retained ones flagged. */
async function watch(url: string, topic: string): Promise<{ c: MqttClient; got: { f: AnyFrame; retain: boolean }[]; next: (pred: (f: AnyFrame) => boolean) => Promise<AnyFrame> }> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  const got: { f: AnyFrame; retain: boolean }[] = [];
  const waiters: { pred: (f: AnyFrame) => boolean; done: (f: AnyFrame) => void }[] = [];
  c.on('message', (t, p, packet) => {
    if (t !== topic) return;
    const f = decodeFrame(new Uint8Array(p));
    got.push({ f, retain: packet.retain });
    for (const w of waiters.splice(0)) {
      if (w.pred(f)) w.done(f);
      else waiters.push(w);
    }
  });
  await c.subscribeAsync(topic, { qos: 1 });
  const next = (pred: (f: AnyFrame) => boolean) => new Promise<AnyFrame>((done) => {
    const seen = got.find((x) => pred(x.f));
    if (seen) done(seen.f);
    else waiters.push({ pred, done });
  });
  return { c, got, next };
}

/** Streams `data` from the rig's gateway to `dev` and returns what its consumer took. */
async function streamTo(r: Rig, dev: Device): Promise<Buffer> {
  const { tx, licence } = sign(r, data);
  const incoming = dev.nextStream();
  const gs = await r.gateway.stream('p1', data, tx.bytes, licence, { policy: { w: 12 } });
  const s = await incoming;
  const parts: Uint8Array[] = [];
  for await (const b of s.bytes()) parts.push(b.slice());
  await gs.done;
  return Buffer.concat(parts);
}

describe('device status [LM-STATE-1] [LM-STATE-2] [LM-STATE-6]', () => {
  it('[LM-STATE-1] [LM-STATE-2] a signed, retained STATUS: idle after the HELLO, streaming while a stream runs, idle after, with the host\'s readings; the gateway takes each in order', () => withRig(engine(), { statusInterval: INTERVAL }, async ({ r, broker }) => {
    const taken: StatusBody[] = [];
    r.gateway.on('status', (d, s) => void (d === 'p1' && taken.push(s)));
    const hello = await r.gateway.hello('p1');
    expect(hello.bd).toBeGreaterThan(0);
    await r.device.setStatus({ readings: { nozzle_mC: 214_870, bed_mC: 60_125 } });
    const withReadings = await when(r.gateway, 'status', (_d: string, s: StatusBody) => (s.tel?.get('nozzle_mC') === 214_870 ? s : undefined));
    expect(withReadings).toMatchObject({ device: 'p1', state: DeviceState.idle, bd: hello.bd });
    const streaming = when(r.gateway, 'status', (_d: string, s: StatusBody) => (s.state === DeviceState.streaming ? s : undefined));
    const out = await streamTo(r, r.device);
    expect(out.equals(Buffer.from(data))).toBe(true);
    await streaming;
    await when(r.gateway, 'status', (_d: string, s: StatusBody) => (s.state === DeviceState.idle && s.seq > withReadings.seq ? s : undefined));
    // in order, all of the connection's boot sequence, each one more than the last taken
    const states = taken.map((s) => s.state).filter((x, i, a) => i === 0 || a[i - 1] !== x);
    expect(states).toEqual([DeviceState.idle, DeviceState.streaming, DeviceState.idle]);
    expect(taken.every((s, i) => s.bd === hello.bd && (i === 0 || s.seq > (taken[i - 1] as StatusBody).seq))).toBe(true);
    expect(r.gateway.status('p1')?.state).toBe(DeviceState.idle);
    // retained and signed by the device: a subscriber that comes now gets the latest at once
    const w = await watch(broker.url, topics.deviceStatus('f1', 'p1'));
    const kept = await w.next(() => true);
    expect(w.got[0]?.retain).toBe(true);
    expect(kept.type === FrameType.STATUS && verifyFrame(kept, { signer: r.deviceKeys.publicKey })).toBe(true);
    await w.c.endAsync();
  }));

  it('[LM-STATE-4] the HELLO is published again every interval, same boot and boot sequence; the gateway accepts each', () => withRig(engine(), { statusInterval: INTERVAL }, async ({ r }) => {
    const first = await r.gateway.hello('p1');
    const again = await when(r.gateway, 'hello', (_d: string, h: HelloBody) => (h.time > first.time ? h : undefined));
    expect(again.bd).toBe(first.bd);
    expect(Buffer.from(again.boot ?? []).equals(Buffer.from(first.boot ?? []))).toBe(true);
  }));
});

describe('the boot sequence [LM-STATE-3]', () => {
  it('[LM-STATE-3] a stop says offline and sends the BYE of its connection\'s bd; a restart on the same licence store announces a greater bd; its Last Will carries it', () => withRig(engine(), { statusInterval: INTERVAL }, async ({ r, broker }) => {
    const state = await watch(broker.url, topics.deviceState('f1', 'p1'));
    const before = await r.gateway.hello('p1');
    const offline = when(r.gateway, 'status', (_d: string, s: StatusBody) => (s.state === DeviceState.offline ? s : undefined));
    await r.device.stop();
    expect((await offline).bd).toBe(before.bd);
    const bye = await state.next((f) => f.type === FrameType.BYE);
    expect(bye.type === FrameType.BYE && bye.body.bd).toBe(before.bd);
    // the same identity and licence store: a new process
    const again = await Device.start({ url: r.url, fleet: 'f1', id: 'p1', identity: r.deviceKeys, trustedOperators: [r.operator.publicKey], caps: CAPS, licences: r.licences, statusInterval: INTERVAL }, r.engine);
    r.device = again; // closed with the rig
    const after = await state.next((f) => f.type === FrameType.HELLO && f.body.bd !== before.bd);
    const bd = after.type === FrameType.HELLO ? after.body.bd : undefined;
    expect(bd).toBeGreaterThan(before.bd ?? Infinity);
    // the connection dies without a DISCONNECT: its Will is the BYE of its bd
    again.link.client.options.reconnectPeriod = 0;
    again.link.client.stream.destroy();
    const will = await state.next((f) => f.type === FrameType.BYE && f.body.bd !== before.bd);
    expect(will.type === FrameType.BYE && will.authKind === 'none' && will.body.bd).toBe(bd);
    await state.c.endAsync();
  }));
});

describe('the boot sequence of a reconnect [LM-STATE-3]', () => {
  it('[LM-STATE-3] a dropped connection that the device makes again takes the next bd: the old connection\'s Will carries the old one, the new HELLO and its STATUS numbered 0 the new', () => withRig(engine(), { statusInterval: INTERVAL }, async ({ r, broker }) => {
    const state = await watch(broker.url, topics.deviceState('f1', 'p1'));
    const status = await watch(broker.url, topics.deviceStatus('f1', 'p1'));
    const before = await r.gateway.hello('p1');
    r.device.link.client.stream.destroy(); // the device reconnects by itself
    const will = await state.next((f) => f.type === FrameType.BYE);
    expect(will.type === FrameType.BYE && will.body.bd).toBe(before.bd);
    const again = await state.next((f) => f.type === FrameType.HELLO && f.body.bd !== before.bd);
    const bd = again.type === FrameType.HELLO ? again.body.bd : undefined;
    expect(bd).toBeGreaterThan(before.bd ?? Infinity);
    const first = await status.next((f) => f.type === FrameType.STATUS && f.body.bd === bd);
    expect(first.type === FrameType.STATUS && first.body.seq).toBe(0);
    // the gateway saw the Will of the connection it knew, then the new HELLO: online again
    await when(r.gateway, 'hello', (_d: string, h: HelloBody) => (h.bd === bd ? h : undefined));
    expect(r.gateway.online()).toContain('p1');
    await Promise.all([state.c.endAsync(), status.c.endAsync()]);
  }));
});

describe('the late Will of an old connection [LM-STATE-5] [LM-STATE-4]', () => {
  it('[LM-STATE-5] arrives after the new connection\'s HELLO: the gateway still sees the device online and streams to it; [LM-STATE-4] a gateway started later sees it once it announced again', () => withRig(engine(), { statusInterval: INTERVAL }, async ({ r, broker }) => {
    const old = r.device;
    const oldHello = await r.gateway.hello('p1');
    // the device restarts while the broker still holds its old connection (no FIN reached it)
    const fresh = await Device.start({ url: r.url, fleet: 'f1', id: 'p1', identity: r.deviceKeys, trustedOperators: [r.operator.publicKey], caps: CAPS, licences: r.licences, statusInterval: INTERVAL }, r.engine);
    const newHello = await when(r.gateway, 'hello', (_d: string, h: HelloBody) => (h.bd !== oldHello.bd ? h : undefined));
    expect(newHello.bd).toBeGreaterThan(oldHello.bd ?? Infinity);
    // now the broker notices the old connection is gone: its Will (the old bd) comes last
    const ignored = when(r.gateway, 'reject', (x: { detail: string }) => (/BYE of "p1" ignored/.test(x.detail) ? x.detail : undefined));
    const offline: string[] = [];
    r.gateway.on('offline', (d) => offline.push(d));
    old.link.client.options.reconnectPeriod = 0;
    old.link.client.stream.destroy();
    expect(await ignored).toMatch(new RegExp(`bd ${oldHello.bd} is below that of the device's current connection \\(${newHello.bd}\\).*LM-STATE-5`));
    expect(offline).toEqual([]);
    expect(r.gateway.online()).toContain('p1');
    // the retained state is now the late Will (nothing dropped it) ...
    const state = await watch(broker.url, topics.deviceState('f1', 'p1'));
    const first = await state.next(() => true);
    expect(first.type === FrameType.BYE && first.body.bd).toBe(oldHello.bd);
    // ... until the device announces itself again ([LM-STATE-4]): a gateway started now finds it
    const late = await Gateway.start({ url: r.url, fleet: 'f1', id: 'gw2', identity: identityKeyPair(), trustedOperators: [r.operator.publicKey], workers: 1 });
    try {
      const seen = await late.hello('p1', 5 * INTERVAL);
      expect(seen.bd).toBe(newHello.bd);
    } finally {
      await late.stop();
    }
    // and the first gateway streams to the device's new connection
    r.device = fresh;
    const out = await streamTo(r, fresh);
    expect(out.equals(Buffer.from(data))).toBe(true);
    await state.c.endAsync();
    await old.stop(); // its connection is gone: it says nothing, and does not hang
  }));
});
