/**
 * @module scenarios/flow
 * Flow scenarios: back-pressure and rate alarms, CONTROL (abort, pause, resume), ALARM,
 * telemetry, and clock skew.
 */
import { ControlOp, FrameType, Reason } from '@livematrix/spec';
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
  id: 'device/skew-in-grace', title: 'streams with a clock offset inside the grace window, keeping its own clock', covers: ['LM-TIME-2', 'LM-TIME-3', 'LM-TIME-5'],
  async run(ctx) {
    // P = 4000 ms, G = 1000 ms: an offset of 250 ms stays inside the grace window even when a
    // loaded host stretches the time-sync round trips
    const s = await open(ctx, 16, { timeShift: 250, period: 4000 });
    await deliverExact(ctx, s, [R.LM_TIME_2]);
    // the device kept its own clock: its t1 stamps did not move by the 250 ms the answers claimed ([LM-TIME-5])
    const d = s.timeSamples.map((x) => x.t1 - x.at);
    const spread = Math.max(...d) - Math.min(...d);
    check(ctx, R.LM_TIME_5, d.length >= 2 && spread < 150, `the device's TIME_REQ stamps moved by ${spread} ms against the suite's clock over ${d.length} exchanges: it adopted the gateway's time (answers 250 ms ahead)`);
    check(ctx, R.LM_TIME_3, s.timeRequests > 0, 'no time-sync exchange during the session');
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
    await ctx.checks.expect(R.LM_DLV_5, () => run, 'the delivery under back-pressure');
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
    check(ctx, R.LM_DLV_9, s.acks.length === acks, 'the device acknowledged a frame of an aborted session');
    check(ctx, R.LM_FRAME_8, s.receipt === undefined, 'the device sent a receipt for an aborted session');
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
