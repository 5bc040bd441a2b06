/**
 * @module scenarios/resilience
 * Resilience scenarios: loss, duplicates and reordering, tampered frames and chunks, bad
 * padding, garbage on the device's topic, a dropped connection, a gateway gone silent.
 */
import { FrameType, Reason, encodeCbor, encodeFrame, randomBytes, topics } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { type Chunk } from '../session.js';
import { type Scenario, background, check, deliverExact, open, sleep } from './common.js';

export const liveness: Scenario = {
  id: 'device/liveness', title: 'sends TIME_REQ at least once a second; ends a session whose gateway fell silent when a new OFFER comes', covers: ['LM-DLV-13', 'LM-DLV-19'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const from = Date.now();
    await sleep(2600);
    const beats = s.timeRequestTimes.filter((x) => x >= from).length;
    check(ctx, R.LM_DLV_13, beats >= 2, `${beats} TIME_REQ in 2.6 s of a session; expected at least one per second ([LM-DLV-13])`);
    s.mute = true; // the gateway is gone
    await sleep(3500);
    // a busy device whose gateway has been silent for over 2.5 s takes a verifying OFFER at once ([LM-DLV-19])
    const next = await ctx.checks.expect(R.LM_DLV_19, () => open(ctx, 16), 'a new OFFER after the gateway fell silent for 3.5 s');
    await deliverExact(ctx, next, [R.LM_DLV_19]);
  },
};

export const lossResend: Scenario = {
  id: 'device/loss-resend', title: 'a lost frame re-sent later completes the stream', covers: ['LM-DLV-1', 'LM-DLV-2'],
  async run(ctx) {
    await deliverExact(ctx, await open(ctx, 16), [R.LM_DLV_1, R.LM_DLV_2], ctx.data, { skipFirstSending: (seq) => seq === 1 || seq === 4 });
  },
};

export const duplicateReorder: Scenario = {
  id: 'device/duplicate-reorder', title: 'duplicate and reordered frames give the exact stream', covers: ['LM-DLV-1', 'LM-DLV-6'],
  async run(ctx) {
    await deliverExact(ctx, await open(ctx, 16), [R.LM_DLV_1, R.LM_DLV_6], ctx.data, {
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
    check(ctx, R.LM_FRAME_2, !s.received.has(ch.frames[0]!.seq), 'a frame with a bad MAC was accepted');
    await s.sendFrame(ch, 0, { tamper: true });
    await s.sendFrame(ch, 0, { tamper: true });
    await ctx.checks.expect(R.LM_ALARM_3, () => s.wait(() => s.alarms.find((a) => a.code === Reason.tamper) ?? s.errors.find((e) => e.code === Reason.tamper), 3000, 'ALARM tamper'), 'three frames with a bad MAC');
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
    check(ctx, R.LM_AEAD_4, consumed === 0, `the device delivered ${consumed} bytes of a chunk that does not authenticate`);
    check(ctx, R.LM_AEAD_4, s.receipt === undefined, 'the device sent a receipt');
    check(ctx, R.LM_AEAD_4, s.errors.some((e) => e.code === Reason.auth), `no ERROR auth (errors: ${JSON.stringify(s.errors.map((e) => e.code))})`);
  },
};

export const padding: Scenario = {
  id: 'device/padding', title: 'refuses a chunk whose last symbol has non-zero padding', covers: ['LM-PACK-3'],
  async run(ctx) {
    const s = await open(ctx, 12);
    const chunks = s.plan(ctx.data);
    const c = chunks.find((x) => (x.symbols.length * 12) % 8 !== 0 || x.symbols.length * 12 > x.ct.length * 8)!;
    if (!c) throw new Error('no chunk with padding bits at w=12');
    c.symbols[c.symbols.length - 1] = (c.symbols[c.symbols.length - 1] as number) | 1;
    await s.deliver(ctx.data, { chunks, timeout: 8000 }).catch(() => undefined);
    check(ctx, R.LM_PACK_3, s.receipt === undefined, 'the device accepted a chunk with non-zero padding bits');
    check(ctx, R.LM_PACK_3, s.errors.some((e) => e.code === Reason.padding), `no ERROR padding (errors: ${JSON.stringify(s.errors.map((e) => e.code))})`);
  },
};

export const garbageIn: Scenario = {
  id: 'device/garbage-in', title: 'malformed payloads and a frame of another version on its topic change nothing', covers: ['LM-MQTT-4', 'LM-CBOR-6', 'LM-ROLE-2'],
  async run(ctx) {
    const t = ctx.tester;
    const topic = `lm/1/${t.o.fleet}/d/${t.o.deviceId}/in`;
    const s = await open(ctx, 16);
    const announced = t.hello;
    const from = Date.now();
    const junk = [Uint8Array.of(0xff), randomBytes(300), Uint8Array.of(0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), encodeCbor([2, 6, new Map(), new Uint8Array(16)]), new Uint8Array(0)];
    for (const j of junk) await t.link.send(topic, j, FrameType.HINTS);
    // a genuine HINTS frame of the session, MAC'd, whose only fault is its version ([LM-ROLE-2])
    const [c] = s.plan(ctx.data) as [Chunk];
    await s.sendFrameAsVersion(c, 0, 2);
    await s.wait(() => s.ackTimes.some((x) => x > from + 100), 3000, 'an ACK after the frames').catch(() => undefined);
    check(ctx, R.LM_ROLE_2, !s.received.has(c.frames[0]!.seq), 'the device took a version-2 HINTS frame as received');
    // the device dropped them all: no crash, no reconnect (no new HELLO, no Will), the session streams on ([LM-MQTT-4], [LM-CBOR-6])
    await deliverExact(ctx, s, [R.LM_MQTT_4, R.LM_CBOR_6]);
    // a reconnect is a HELLO of another connection (bd, [LM-STATE-3]) or boot, not the same HELLO again ([LM-STATE-4])
    const restarted = t.hello?.bd !== announced?.bd || t.hello?.boot?.join() !== announced?.boot?.join() || t.inbound.some((x) => x.at >= from && x.f.type === FrameType.BYE);
    for (const id of [R.LM_MQTT_4, R.LM_CBOR_6]) check(ctx, id, !restarted, 'the device reconnected (a new HELLO or its Will) after malformed payloads');
  },
};

export const reconnect: Scenario = {
  id: 'device/reconnect', title: 'a dropped broker connection mid-stream still ends exact', covers: ['LM-DLV-8'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const run = background(deliverExact(ctx, s, [R.LM_DLV_8]));
    await sleep(300);
    ctx.tester.link.client.stream.destroy();
    await run;
  },
};

export const unknownSession: Scenario = {
  id: 'device/unknown-session', title: 'ignores a session frame of a session it does not hold; answers it, if at all, with ERROR unknown-session without authentication', covers: ['LM-FRAME-8', 'LM-FRAME-23'],
  async run(ctx) {
    const t = ctx.tester;
    const s = await open(ctx, 16);
    const sid = randomBytes(16);
    const stray = encodeFrame(FrameType.HINTS, { sid, seq: 0, rev: s.rev(), chunk: 0, off: 0, ctlen: 2, hints: randomBytes(s.params.L) }, { kind: 'mac', key: randomBytes(32) });
    const from = Date.now();
    await t.link.send(topics.deviceIn(t.o.fleet, t.o.deviceId), stray, FrameType.HINTS);
    // the session it holds goes on: the stray frame changed nothing ([LM-FRAME-8])
    await deliverExact(ctx, s, [R.LM_FRAME_8]);
    const answers = t.inbound.filter((x) => x.at >= from && x.f.type === FrameType.ERROR && (x.f.body as { sid?: Uint8Array }).sid !== undefined && Buffer.from((x.f.body as { sid: Uint8Array }).sid).equals(Buffer.from(sid)));
    for (const a of answers) check(ctx, R.LM_FRAME_23, a.f.authKind === 'none' && (a.f.body as { code: number }).code === Reason.unknownSession, `the device answered a frame of an unknown session with ERROR ${(a.f.body as { code: number }).code} authenticated ${a.f.authKind}; only ERROR unknown-session (10) with NONE is allowed`);
    if (!answers.length) check(ctx, R.LM_FRAME_23, true, 'no answer: allowed');
  },
};

export const silentGateway: Scenario = {
  id: 'device/silent-gateway', title: 'ends a session as interrupted when its gateway falls silent: its TIME_REQs for it stop (or an ERROR timeout)', covers: ['LM-DLV-13'],
  async run(ctx) {
    const s = await open(ctx, 16);
    s.mute = true; // nothing more from the gateway: no TIME_RESP, no frame
    const from = Date.now();
    // a session it holds sends TIME_REQ every second ([LM-DLV-13]); once it ended the session it
    // sends none for it. The reference device waits 10 s; a bounded time, so allow 30 s
    const quiet = () => Date.now() - (s.timeRequestTimes[s.timeRequestTimes.length - 1] ?? from) > 3000;
    const ended = await s.wait(() => s.errors.find((e) => e.code === Reason.timeout) ?? (quiet() || undefined), 30_000, 'the session ended').catch(() => undefined);
    check(ctx, R.LM_DLV_13, ended, `the device still held the session after 30 s of silence from its gateway (TIME_REQ still coming: it never timed out)`);
    ctx.log(`device/silent-gateway: ended with timeout after ${Date.now() - from} ms of silence`);
  },
};
