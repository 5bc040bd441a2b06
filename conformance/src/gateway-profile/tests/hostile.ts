/**
 * @module gateway-profile/tests/hostile
 * Frames the gateway must drop or take as advisory: broken MACs ([LM-FRAME-2], three of which
 * raise ALARM tamper, [LM-ALARM-3]), unauthenticated ERROR and ALARM ([LM-FRAME-5]), the Last
 * Will of a device still heard ([LM-DLV-13]), frames of unknown sessions ([LM-FRAME-8]) and
 * telemetry that fails to decode ([LM-TEL-2]).
 */
import { type ControlOpId, FrameType, Reason, encodeFrame, randomBytes } from '@livematrix/spec';
import { until } from '../../wait.js';
import { type GatewayTest, describeExit } from '../context.js';
import { delivered, startStream } from './common.js';

const C16 = 8176;

async function happens(pred: () => unknown, ms: number): Promise<boolean> {
  return until(() => pred() || undefined, ms, '').then(() => true, () => false);
}

export const tamper: GatewayTest = {
  id: 'gateway/tamper',
  title: 'a frame whose MAC fails is dropped, not acted on; the third within 60 s raises ALARM tamper and ends the session',
  covers: ['LM-FRAME-2', 'LM-ALARM-3', 'LM-AEAD-6'],
  async run(ctx) {
    const s = await startStream(ctx, { bytes: 6 * C16 - 200, tx: { rate: 8192, burst: 16_384 } });
    const { session, run } = s;
    await until(() => session.consumed > 0 || session.ended, 15_000, 'the first chunk consumed');
    // an ACK that would raise ALARM rate, if the gateway took it, with a broken MAC ([LM-FRAME-2])
    await session.ack({ consumed: s.job.data.length }, 'bad-mac');
    const answered = await session.roundTrip().then(() => true, () => false);
    ctx.check('LM-FRAME-2', answered && !session.alarms.some((a) => a.body.code === Reason.rate), 'the gateway acted on an ACK whose MAC does not verify');
    // two more frames of the session with broken MACs: three authentication failures within 60 s ([LM-ALARM-3])
    await session.send(FrameType.TIME_REQ, { sid: session.sid, t1: Date.now() }, 'bad-mac');
    await session.send(FrameType.CONTROL, { sid: session.sid, op: 3 as ControlOpId, reason: Reason.aborted }, 'bad-mac');
    const alarm = await until(() => session.alarms.find((a) => a.auth === 'mac' && a.body.code === Reason.tamper), 5000, 'ALARM tamper').catch(() => undefined);
    ctx.check('LM-ALARM-3', alarm !== undefined, `three frames of the session failed their MAC within a second and the gateway sent no ALARM tamper (65) on the session${session.alarms.length ? ` (it sent ALARM ${session.alarms[0]?.body.code})` : ''}`);
    const P = session.params.period;
    await happens(() => run.exited, P);
    const keys = session.keysIn.filter((k) => k.at > (alarm?.at ?? 0) + 50);
    ctx.check('LM-AEAD-6', keys.length === 0, `${keys.length} KEY after ALARM tamper`);
    await Promise.race([run.exit, new Promise((r) => setTimeout(r, 5000))]);
    ctx.check('LM-ALARM-3', run.exited !== undefined && run.exited.code !== 0, `the session with ALARM tamper did not end as failed (${describeExit(run.exited)})`);
  },
};

export const advisory: GatewayTest = {
  id: 'gateway/advisory',
  title: 'unauthenticated ERROR and ALARM, the Last Will of a device still heard, frames of an unknown session and telemetry that fails to decode change nothing: the delivery completes',
  covers: ['LM-FRAME-5', 'LM-FRAME-8', 'LM-DLV-13', 'LM-TEL-2', 'LM-DLV-7'],
  async run(ctx) {
    const s = await startStream(ctx, { bytes: 6 * C16 - 200, tx: { rate: 16_384, burst: 16_384 } });
    const { session, dev, job } = s;
    await until(() => session.consumed > 0 || session.ended, 15_000, 'the first chunk consumed');
    // telemetry: one good, then broken ones, each dropped without ending the session ([LM-TEL-2])
    const good = new Map<string, number>([['nozzle_mC', 215_000], ['bed_mC', 60_000]]);
    const odd = new Map<string, number>([['nozzle_mC', 215_000], ['bed_mC', 60_000], ['x', 1]]); // an odd length: its last symbol has padding bits
    const rev = session.revAt(Date.now());
    await session.telemetry(good);
    await session.telemetry(good, { corrupt: 'hints' });
    await session.telemetry(odd, { corrupt: 'padding' });
    await session.telemetry(good, { corrupt: 'aead' });
    if (rev - 3 >= session.params.r0) await session.telemetry(good, { rev: rev - 3 });
    await session.telemetry(good, { rev: rev + 3 });
    // unauthenticated ERROR and ALARM of the session: advisory ([LM-FRAME-5])
    await session.send(FrameType.ERROR, { sid: session.sid, code: Reason.aborted, detail: 'an unauthenticated ERROR' }, 'none');
    await session.send(FrameType.ALARM, { sid: session.sid, code: Reason.rate, detail: 'an unauthenticated ALARM', time: Date.now() }, 'none');
    // the device's Last Will while the device is still heard: ends nothing ([LM-DLV-13])
    await dev.publishState(encodeFrame(FrameType.BYE, { who: dev.id, reason: Reason.offline }, { kind: 'none' }), FrameType.BYE);
    // an ACK of another session id, well authenticated, that would raise ALARM rate if taken ([LM-FRAME-8])
    await session.send(FrameType.ACK, { sid: randomBytes(16), cum: 0, sack: [], nack: [], consumed: job.data.length, credit: 1 });
    await session.roundTrip();
    await delivered(ctx, s);
    const gw = [...session.alarms, ...session.errors].filter((x) => x.auth === 'mac');
    const said = gw.map((x) => `${x.body.code} (${x.body.detail})`).join(', ');
    ctx.check('LM-FRAME-5', gw.length === 0, `the gateway answered advisory frames with ${said}`);
    ctx.check('LM-FRAME-8', !session.alarms.some((a) => a.body.code === Reason.rate), 'the gateway acted on an ACK of a session it does not hold');
    ctx.check('LM-TEL-2', gw.length === 0, `telemetry that failed to decode ended the session: ${said}`);
    ctx.check('LM-DLV-13', gw.length === 0, `the device's Last Will, while it was still heard, ended the session: ${said}`);
  },
};
