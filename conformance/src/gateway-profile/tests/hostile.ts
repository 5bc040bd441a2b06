/**
 * @module gateway-profile/tests/hostile
 * Frames the gateway must drop or take as advisory: broken MACs ([LM-FRAME-2], three of which
 * raise ALARM tamper, [LM-ALARM-3]), frames of another version ([LM-ROLE-2]), unauthenticated
 * ERROR and ALARM ([LM-FRAME-5]), the Last Will of a device still heard ([LM-DLV-13]), frames of
 * unknown sessions ([LM-FRAME-8]) and telemetry that fails to decode, beside telemetry that must
 * decode ([LM-TEL-2]).
 */
import { type ControlOpId, FrameType, Reason, encodeCbor, encodeFrame, randomBytes } from '@livematrix/spec';
import { happens, until } from '../../wait.js';
import { type GatewayTest, describeExit } from '../context.js';
import { delivered, startStream } from './common.js';

const C16 = 8176;

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

/** A number that marks one telemetry payload in the gateway's output: 9 digits, drawn per payload. */
function mark(): number {
  return 100_000_000 + Math.floor(Math.random() * 900_000_000);
}

/** Whether `n` shows in `text` as a number of its own (not inside a longer run of digits). */
function shows(text: string, n: number): boolean {
  return new RegExp(`(?<![0-9])${n}(?![0-9])`).test(text);
}

export const advisory: GatewayTest = {
  id: 'gateway/advisory',
  title: 'frames of another protocol version, unauthenticated ERROR and ALARM, the Last Will of a device still heard, frames of an unknown session and telemetry that fails to decode change nothing: the delivery completes; good telemetry is decoded (when the stream command shows it)',
  covers: ['LM-ROLE-2', 'LM-FRAME-5', 'LM-FRAME-8', 'LM-DLV-13', 'LM-TEL-2', 'LM-DLV-7'],
  async run(ctx) {
    const s = await startStream(ctx, { bytes: 6 * C16 - 200, tx: { rate: 16_384, burst: 16_384 } });
    const { session, dev, job, run } = s;
    await until(() => session.consumed > 0 || session.ended, 15_000, 'the first chunk consumed');
    // [LM-ROLE-2]: frames of version 2, under a good MAC of the bytes as sent, that a gateway taking
    // them would act on: an ACK that claims the whole job consumed (beyond the transaction's allowance
    // while the burst lasts: ALARM rate, as gateway/rate-alarm shows) and a CONTROL abort
    const elapsed = (Date.now() - (session.firstHintsAt ?? Date.now())) / 1000;
    const probeAt = Date.now();
    await session.send(FrameType.ACK, { ...session.ackBody(), consumed: job.data.length, credit: job.data.length }, 'mac', 2);
    await session.send(FrameType.CONTROL, { sid: session.sid, op: 3 as ControlOpId, reason: Reason.aborted }, 'mac', 2);
    const answered = await session.roundTrip().then(() => true, () => false);
    const acted = () => session.alarms.some((a) => a.auth === 'mac') || session.errors.some((e) => e.auth === 'mac') || run.exited !== undefined;
    await happens(acted, 500);
    const said = (xs: { body: { code: number; detail: string }; auth: string }[]) => xs.map((x) => `${x.auth} ${x.body.code} (${x.body.detail})`).join(', ');
    ctx.check('LM-ROLE-2', answered && !acted(),
      `the gateway acted on frames of version 2 (an ACK claiming ${job.data.length} bytes consumed ${elapsed.toFixed(1)} s into the stream, a CONTROL abort): ${answered ? `${said([...session.alarms, ...session.errors]) || 'no ALARM or ERROR'}, stream ${describeExit(run.exited)}` : 'it stopped answering the session'}`);
    // a gateway that answers them refuses them as `version` (6)
    const answers = session.errors.filter((e) => e.at >= probeAt);
    if (answers.length) ctx.check('LM-ROLE-2', answers.every((e) => e.body.code === Reason.version), `the gateway answered frames of version 2 with ERROR ${said(answers)}; a refusal gives reason version (6)`);
    // telemetry: one good, then broken ones, each dropped without ending the session ([LM-TEL-2]);
    // each payload carries a number of its own, to find it in the stream command's output
    const payload = (m: number, extra: [string, number][] = []) => new Map<string, number>([['nozzle_mC', 215_000], ['bed_mC', 60_000], ['conformance_mark', m], ...extra]);
    const good = [mark()];
    const bad: { what: string; m: number }[] = [];
    const rev = session.revAt(Date.now());
    await session.telemetry(payload(good[0] as number), { unambiguous: true });
    const broken = async (what: string, extra: [string, number][], o: Parameters<typeof session.telemetry>[1]) => {
      const m = mark();
      bad.push({ what, m });
      await session.telemetry(payload(m, extra), o);
    };
    await broken('hints that resolve to no symbols', [], { corrupt: 'hints' });
    // padding bits set: a payload sized so that its last symbol has some (none has at wt = 8)
    const wt = session.params.wt;
    const padded = Array.from({ length: wt }, (_, n): [string, number][] => [['x'.repeat(n + 1), 1]]).find((extra) => (8 * (encodeCbor(payload(100_000_000, extra)).length + 16)) % wt !== 0);
    if (padded) await broken('padding bits set in its last symbol', padded, { corrupt: 'padding' });
    await broken('a ciphertext that fails its AEAD tag', [], { corrupt: 'aead' });
    if (rev - 3 >= session.params.r0) await broken(`revision ${rev - 3}, three behind`, [], { rev: rev - 3 });
    await broken(`revision ${rev + 3}, three ahead`, [], { rev: rev + 3 });
    good.push(mark());
    await session.telemetry(payload(good[1] as number), { unambiguous: true });
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
    ctx.check('LM-FRAME-5', gw.length === 0, `the gateway answered advisory frames with ${said(gw)}`);
    ctx.check('LM-FRAME-8', !session.alarms.some((a) => a.body.code === Reason.rate), 'the gateway acted on an ACK of a session it does not hold');
    ctx.check('LM-DLV-13', gw.length === 0, `the device's Last Will, while it was still heard, ended the session: ${said(gw)}`);
    // [LM-TEL-2]: only the stream command's output shows which telemetry the gateway took
    const out = run.transcript?.();
    if (!ctx.target.telemetryInOutput || out === undefined) {
      ctx.log(`[LM-TEL-2] not checked: ${ctx.target.telemetryInOutput ? 'this launcher keeps no output' : 'the stream command is not known to show the telemetry it accepts (--telemetry-in-output)'}`);
      return;
    }
    ctx.check('LM-TEL-2', gw.length === 0, `telemetry that failed to decode ended the session: ${said(gw)}`);
    const lost = good.filter((m) => !shows(out, m));
    ctx.check('LM-TEL-2', lost.length === 0, `the stream command's output does not show ${lost.length} of the ${good.length} well-formed TELEMETRY payloads of the current revision (conformance_mark ${lost.join(', ')}): the gateway did not decode them`);
    const taken = bad.filter((b) => shows(out, b.m));
    ctx.check('LM-TEL-2', taken.length === 0, `the gateway took telemetry it must drop: ${taken.map((b) => `${b.what} (conformance_mark ${b.m})`).join('; ')}`);
  },
};
