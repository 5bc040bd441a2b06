/**
 * @module scenarios/flow
 * Flow scenarios: back-pressure and rate alarms, CONTROL (abort, pause, resume), ALARM,
 * telemetry, and clock skew.
 */
import { ControlOp, FrameType, Reason, digest, minHintLength } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { type Scenario, background, check, deliverExact, open, sleep } from './common.js';

export const rateAlarm: Scenario = {
  id: 'device/rate-alarm', title: 'raises ALARM rate when its consumer runs faster than the transaction allows', covers: ['LM-ALARM-2'],
  async run(ctx) {
    // a transaction for an eighth of the consumer's pace, and a gateway that ignores it: every
    // KEY goes as soon as its chunk is received
    const s = await open(ctx, 16, { tx: { rate: Math.max(256, Math.floor(ctx.consumeRate / 8)), burst: 4096 } });
    const delivery = background(s.deliver(ctx.data, { timeout: 15_000 }));
    const alarm = await ctx.checks.expect(R.LM_ALARM_2, () => s.wait(() => s.alarms.find((a) => a.code === Reason.rate) ?? s.receipt, 12_000, 'an ALARM with reason rate from the device'), 'no rate alarm');
    check(ctx, R.LM_ALARM_2, !s.receipt, 'the device completed a stream its consumer took faster than the transaction allows');
    check(ctx, R.LM_ALARM_2, !('observed' in alarm) || alarm.observed === undefined || alarm.limit === undefined || alarm.observed > alarm.limit, `ALARM says ${'observed' in alarm ? alarm.observed : '?'} bytes observed, limit ${'limit' in alarm ? alarm.limit : '?'}`);
    // the device ended the session with its alarm: nothing more to deliver
    s.end();
    await delivery.catch(() => undefined);
    check(ctx, R.LM_ALARM_2, !s.receipt, 'the device completed a stream its consumer took faster than the transaction allows');
  },
};

export const skewInGrace: Scenario = {
  id: 'device/skew-in-grace', title: 'streams with a clock offset inside the grace window, keeping its own clock', covers: ['LM-TIME-2', 'LM-TIME-5'],
  async run(ctx) {
    // P = 4000 ms, G = 1000 ms: an offset of 250 ms stays inside the grace window even when a
    // loaded host stretches the time-sync round trips
    const s = await open(ctx, 16, { timeShift: 250, period: 4000 });
    await deliverExact(ctx, s, [R.LM_TIME_2]);
    // the device kept its own clock: its t1 stamps did not move by the 250 ms the answers claimed ([LM-TIME-5])
    const d = s.timeSamples.map((x) => x.t1 - x.at);
    const spread = Math.max(...d) - Math.min(...d);
    check(ctx, R.LM_TIME_5, d.length >= 2 && spread < 150, `the device's TIME_REQ stamps moved by ${spread} ms against the suite's clock over ${d.length} exchanges: it adopted the gateway's time (answers 250 ms ahead)`);
  },
};

export const skewBeyondGrace: Scenario = {
  id: 'device/skew-beyond-grace', title: 'refuses to stream with a clock offset beyond the grace window', covers: ['LM-TIME-2'],
  async run(ctx) {
    const t = ctx.tester;
    const { tx, licence } = t.tx(ctx.data);
    const s = await t.offer(t.params({ w: 16 }), tx, licence, { timeShift: 2000, waitReady: false });
    if ('refused' in s) throw new Error(`offer refused before time sync: ${s.refused.detail}`);
    await ctx.checks.expect(R.LM_TIME_2, () => s.wait(() => s.errors.find((e) => e.code === Reason.skew), 5000, 'ERROR skew'), 'a clock 2 s off with G = 500 ms');
    check(ctx, R.LM_TIME_2, s.acks.length === 0, 'the device acknowledged (was ready to stream) despite the skew');
  },
};

export const backPressure: Scenario = {
  id: 'device/back-pressure', title: 'acknowledges as consumed only what its consumer took', covers: ['LM-DLV-4', 'LM-DLV-5'],
  async run(ctx) {
    // more than the consumer can take at once, so that decrypted data waits in the device
    const data = ctx.data.length >= 150_000 ? ctx.data : new Uint8Array(Array.from({ length: 4 }, () => [...ctx.data]).flat());
    const s = await open(ctx, 16, { data });
    const t0 = s.offeredAt; // the device's consumer may start with the stream
    const run = background(s.deliver(data));
    let worst = 0;
    while (!s.receipt && !s.errors.length && Date.now() - t0 < 60_000) {
      const a = s.acks[s.acks.length - 1];
      if (a) worst = Math.max(worst, a.consumed - (ctx.consumeRate * (Date.now() - t0)) / 1000);
      check(ctx, R.LM_DLV_4, worst <= 8192, `the device reported ${a?.consumed} bytes consumed ${Date.now() - t0} ms after the offer; its consumer takes at most ${ctx.consumeRate} bytes/s`);
      await sleep(20);
    }
    await run;
    // [LM-DLV-5]: credit is what the device will still buffer beyond consumed: never negative, never
    // beyond the window its ACCEPT announced
    const credits = s.acks.map((a) => a.credit);
    check(ctx, R.LM_DLV_5, credits.length > 0 && credits.every((c) => c >= 0 && c <= s.acceptedWindow), `ACK credits ${JSON.stringify([Math.min(...credits), Math.max(...credits)])} outside 0..${s.acceptedWindow} (the ACCEPT's window)`);
  },
};

export const abort: Scenario = {
  id: 'device/abort', title: 'after an abort the session is gone: later frames are ignored', covers: ['LM-DLV-9', 'LM-FRAME-8'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const chunks = s.plan(ctx.data);
    await s.sendFrame(chunks[0]!, 0);
    await sleep(300);
    await s.send(FrameType.CONTROL, { sid: s.sid, op: ControlOp.abort, reason: Reason.aborted });
    await sleep(300);
    const acks = s.acks.length;
    await s.sendFrame(chunks[0]!, 1);
    await sleep(600);
    // the session is gone: its frames are those of a session the device does not hold, ignored ([LM-FRAME-8])
    for (const id of [R.LM_DLV_9, R.LM_FRAME_8]) check(ctx, id, s.acks.length === acks, 'the device acknowledged a frame of an aborted session');
  },
};

export const pauseResume: Scenario = {
  id: 'device/pause-resume', title: 'a paused session keeps its state and completes after resume', covers: ['LM-DLV-9'],
  async run(ctx) {
    const s = await open(ctx, 16);
    await s.send(FrameType.CONTROL, { sid: s.sid, op: ControlOp.pause, reason: 0 });
    await sleep(300);
    await s.send(FrameType.CONTROL, { sid: s.sid, op: ControlOp.resume, reason: 0 });
    await deliverExact(ctx, s, [R.LM_DLV_9]);
  },
};

export const alarm: Scenario = {
  id: 'device/alarm', title: 'an authenticated ALARM ends the session: no receipt, no more acknowledgements', covers: ['LM-ALARM-5'],
  async run(ctx) {
    const data = new Uint8Array(Array.from({ length: 3 }, () => [...ctx.data]).flat());
    const s = await open(ctx, 16, { data });
    const chunks = s.plan(data);
    await s.sendFrame(chunks[0]!, 0);
    await sleep(300);
    await s.send(FrameType.ALARM, { sid: s.sid, code: Reason.rate, detail: 'conformance: consumption faster than allowed', time: Date.now() });
    await sleep(300);
    const acks = s.acks.length;
    await s.sendFrame(chunks[0]!, 1);
    await s.sendFrame(chunks[1]!, 0);
    await sleep(800);
    check(ctx, R.LM_ALARM_5, s.acks.length === acks, 'the device kept acknowledging after an ALARM');
    check(ctx, R.LM_ALARM_5, s.receipt === undefined, 'the device sent a receipt after an ALARM');
  },
};

export const telemetry: Scenario = {
  id: 'device/telemetry', title: 'telemetry sent as hints under the d2g chain decodes', covers: ['LM-TEL-1'],
  async run(ctx) {
    const data = new Uint8Array(Array.from({ length: 3 }, () => [...ctx.data]).flat()); // long enough for a few reports
    const s = await open(ctx, 16, { data });
    const run = background(s.deliver(data));
    await ctx.checks.expect(R.LM_TEL_1, () => s.wait(() => s.telemetry.length > 0, 10_000, 'a decodable TELEMETRY frame'), 'telemetry while streaming');
    await run;
  },
};

export const slowTimeSync: Scenario = {
  id: 'device/slow-time-sync', title: 'one slow time-sync round trip does not make it refuse: it takes the best of several exchanges', covers: ['LM-TIME-6'],
  async run(ctx) {
    const t = ctx.tester;
    // P = 2000 ms, G = 500 ms; the first answer comes 1200 ms late, as over a congested link: that
    // sample alone gives |theta| + delta/2 of about 1200 ms, beyond G; the others are prompt
    const params = t.params({ w: 16, L: 4, period: 2000 });
    const { tx, licence } = t.tx(ctx.data);
    const s = await t.offer(params, tx, licence, { timeRespDelay: (n) => (n === 0 ? 1200 : 0) });
    check(ctx, R.LM_TIME_6, !('refused' in s), `the OFFER was refused: ${'refused' in s ? s.refused.code : ''}`);
    await deliverExact(ctx, s, [R.LM_TIME_6]);
    check(ctx, R.LM_TIME_6, !s.errors.some((e) => e.code === Reason.skew), 'the device refused with skew over one slow round trip');
  },
};

export const skewMidSession: Scenario = {
  id: 'device/skew-mid-session', title: 'repeats time sync during a session (at least every 60 s) and refuses to go on when the offset moves beyond the grace window', covers: ['LM-TIME-3'],
  needs: 'long',
  async run(ctx) {
    // P = 2000 ms, G = 500 ms; a job long enough to outlast the test at the consumer's pace
    // a job long enough to outlast the test at the consumer's pace: 80 s of printing
    const data = new Uint8Array(Array.from({ length: Math.ceil((80 * ctx.consumeRate) / ctx.data.length) }, () => [...ctx.data]).flat());
    const s = await open(ctx, 16, { period: 2000, data });
    const delivery = background(s.deliver(data, { timeout: 90_000 }));
    await s.wait(() => s.acks.some((a) => a.consumed > 0), 10_000, 'the consumer taking bytes');
    s.timeShift = 2000; // from now on the gateway's answers say its clock is 2 s ahead
    // the next exchange may be up to 60 s away ([LM-TIME-3]); allow 65 s
    const got = await s.wait(() => s.errors.find((e) => e.code === Reason.skew), 65_000, 'ERROR skew').catch(() => undefined);
    s.end();
    await delivery.catch(() => undefined);
    check(ctx, R.LM_TIME_3, got, 'the device kept streaming for 65 s after the time-sync answers moved 2 s off (G = 500 ms): it does not repeat the exchange every 60 s, or ignores its result');
    check(ctx, R.LM_TIME_3, !s.receipt, 'the device completed the stream with its clock 2 s off the gateway\'s');
  },
};

export const timeSyncFirst: Scenario = {
  id: 'device/time-sync-first', title: 'takes no HINTS before its time sync: a frame sent right after ACCEPT is not received before the first TIME_RESP', covers: ['LM-TIME-1'],
  async run(ctx) {
    const t = ctx.tester;
    // P = 8000 ms (G = 2000 ms): one answer held 1500 ms stays within the grace window
    const params = t.params({ w: 16, L: minHintLength(16) + 2, period: 8000 });
    const { tx, licence } = t.tx(ctx.data);
    const s = await t.offer(params, tx, licence, { waitReady: false, timeRespDelay: (n) => (n === 0 ? 1500 : 0) });
    if ('refused' in s) throw new Error(`device refused a valid offer: ${s.refused.code} ${s.refused.detail}`);
    const [c] = s.plan(ctx.data);
    if (!c) throw new Error('the job has no chunk');
    await s.sendFrame(c, 0);
    await s.wait(() => s.firstTimeRespAt !== undefined, 5000, 'a TIME_REQ to answer');
    const early = s.acks.findIndex((a, i) => (a.cum > 0 || a.sack.length > 0) && (s.ackTimes[i] ?? 0) < (s.firstTimeRespAt ?? 0));
    check(ctx, R.LM_TIME_1, early < 0, 'the device reported a HINTS frame received before its time sync had an answer');
    await deliverExact(ctx, s, [R.LM_TIME_1]);
  },
};

export const endDigestMismatch: Scenario = {
  id: 'device/end-digest-mismatch', title: 'an END whose digest is not the job\'s fails the stream with ERROR digest and no receipt', covers: ['LM-DLV-6'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const wrong = digest(ctx.data);
    wrong[0] = (wrong[0] as number) ^ 0xff;
    await s.deliver(ctx.data, { endDigest: wrong, timeout: 10_000 }).catch(() => undefined);
    check(ctx, R.LM_DLV_6, s.receipt === undefined, 'the device signed a receipt for a stream whose END digest is not the job\'s');
    check(ctx, R.LM_DLV_6, s.errors.some((e) => e.code === Reason.digest), `no ERROR digest (66) (errors ${JSON.stringify(s.errors.map((e) => e.code))})`);
  },
};
