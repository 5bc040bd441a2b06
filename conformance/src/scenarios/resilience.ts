/**
 * @module scenarios/resilience
 * Resilience scenarios: loss, duplicates and reordering, tampered frames and chunks, bad
 * padding, garbage on the device's topic, a dropped connection, a gateway gone silent.
 */
import { FrameType, Reason, encodeCbor, randomBytes } from '@livematrix/spec';
import { type Chunk } from '../session.js';
import { type Scenario, background, check, deliverExact, open, sleep } from './common.js';

export const liveness: Scenario = {
  id: 'device/liveness', title: 'sends TIME_REQ at least once a second; ends a session whose gateway fell silent when a new OFFER comes', covers: ['LM-DLV-13'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const from = Date.now();
    await sleep(2600);
    const beats = s.timeRequestTimes.filter((x) => x >= from).length;
    check(beats >= 2, `${beats} TIME_REQ in 2.6 s of a session; expected at least one per second ([LM-DLV-13])`);
    s.mute = true; // the gateway is gone
    await sleep(3500);
    const next = await open(ctx, 16);
    await deliverExact(ctx, next);
  },
};

export const lossResend: Scenario = {
  id: 'device/loss-resend', title: 'a lost frame re-sent later completes the stream', covers: ['LM-DLV-1', 'LM-DLV-2'],
  async run(ctx) {
    await deliverExact(ctx, await open(ctx, 16), ctx.data, { skipFirstSending: (seq) => seq === 1 || seq === 4 });
  },
};

export const duplicateReorder: Scenario = {
  id: 'device/duplicate-reorder', title: 'duplicate and reordered frames give the exact stream', covers: ['LM-DLV-1', 'LM-DLV-6'],
  async run(ctx) {
    await deliverExact(ctx, await open(ctx, 16), ctx.data, {
      order: (frames) => {
        const head = frames.slice(0, 6).reverse();
        return [...head, ...frames.slice(0, 3), ...frames.slice(6)];
      },
    });
  },
};

export const tamperedFrame: Scenario = {
  id: 'device/tampered-frame', title: 'drops frames whose MAC fails; three raise a tamper alarm', covers: ['LM-FRAME-2', 'LM-ALARM-3'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const [ch] = s.plan(ctx.data) as [Chunk];
    await s.sendFrame(ch, 0, { tamper: true });
    await sleep(500);
    check(!s.received.has(ch.frames[0]!.seq), 'a frame with a bad MAC was accepted');
    await s.sendFrame(ch, 0, { tamper: true });
    await s.sendFrame(ch, 0, { tamper: true });
    await s.wait(() => s.alarms.find((a) => a.code === Reason.tamper) ?? s.errors.find((e) => e.code === Reason.tamper), 3000, 'ALARM tamper');
  },
};

export const tamperedChunk: Scenario = {
  id: 'device/tampered-chunk', title: 'delivers nothing of a chunk whose AEAD fails', covers: ['LM-AEAD-4'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const chunks = s.plan(ctx.data);
    chunks[0]!.key = randomBytes(32); // the KEY will not open chunk 0's ciphertext
    await s.deliver(ctx.data, { chunks, timeout: 8000 }).catch(() => undefined);
    const consumed = s.acks.length ? s.acks[s.acks.length - 1]!.consumed : 0;
    check(consumed === 0, `the device delivered ${consumed} bytes of a chunk that does not authenticate`);
    check(s.receipt === undefined, 'the device sent a receipt');
    check(s.errors.some((e) => e.code === Reason.auth), `no ERROR auth (errors: ${JSON.stringify(s.errors.map((e) => e.code))})`);
  },
};

export const padding: Scenario = {
  id: 'device/padding', title: 'refuses a chunk whose last symbol has non-zero padding', covers: ['LM-PACK-3'],
  async run(ctx) {
    const s = await open(ctx, 12);
    const chunks = s.plan(ctx.data);
    const c = chunks.find((x) => (x.symbols.length * 12) % 8 !== 0 || x.symbols.length * 12 > x.ct.length * 8)!;
    check(c, 'no chunk with padding bits at w=12');
    c.symbols[c.symbols.length - 1] = (c.symbols[c.symbols.length - 1] as number) | 1;
    await s.deliver(ctx.data, { chunks, timeout: 8000 }).catch(() => undefined);
    check(s.receipt === undefined, 'the device accepted a chunk with non-zero padding bits');
    check(s.errors.some((e) => e.code === Reason.padding), `no ERROR padding (errors: ${JSON.stringify(s.errors.map((e) => e.code))})`);
  },
};

export const garbageIn: Scenario = {
  id: 'device/garbage-in', title: 'malformed payloads and unknown versions on its topic change nothing', covers: ['LM-MQTT-4', 'LM-CBOR-6', 'LM-ROLE-2'],
  async run(ctx) {
    const t = ctx.tester;
    const topic = `lm/1/${t.o.fleet}/d/${t.o.deviceId}/in`;
    const s = await open(ctx, 16);
    const junk = [Uint8Array.of(0xff), randomBytes(300), Uint8Array.of(0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), encodeCbor([2, 6, new Map(), new Uint8Array(16)]), new Uint8Array(0)];
    for (const j of junk) await t.link.send(topic, j, FrameType.HINTS);
    await deliverExact(ctx, s);
  },
};

export const reconnect: Scenario = {
  id: 'device/reconnect', title: 'a dropped broker connection mid-stream still ends exact', covers: ['LM-DLV-8'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const run = background(deliverExact(ctx, s));
    await sleep(300);
    ctx.tester.link.client.stream.destroy();
    await run;
  },
};
