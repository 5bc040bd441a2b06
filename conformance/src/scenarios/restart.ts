/**
 * @module scenarios/restart
 * Scenarios that restart the device under test (--restart-cmd): its licence state survives the
 * restart ([LM-LIC-2]) and a print cut off by it resumes in a new session from the consumer's
 * progress ([LM-DLV-10]); and one that needs no restart: frames authenticated with NONE inside a
 * session are advisory ([LM-FRAME-5]).
 */
import { FrameType, Reason, encodeFrame, errorMessage, topics, verifyTicket } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { type Scenario, check, deliverExact, open, sleep } from './common.js';
import { accepted, expectCode, params, passCountingPoint, refusal } from './licences.js';

export const restartKeepsLicence: Scenario = {
  id: 'device/restart-keeps-licence',
  title: 'a restarted device keeps its print counts and tickets, and resumes a print it was cut off from at its consumer\'s progress',
  covers: ['LM-LIC-2', 'LM-DLV-10', 'LM-MQTT-2'],
  needs: 'restart',
  async run(ctx) {
    const t = ctx.tester;
    const restart = ctx.restart;
    if (!restart) throw new Error('no --restart-cmd');
    // a print of one, completed: its count must survive the restart
    const done = t.tx(ctx.data, { prints: 1 });
    const first = await accepted(t, done);
    await deliverExact(ctx, first);
    // another print of one, cut off by the restart after its counting point
    const cut = t.tx(ctx.data, { prints: 1 });
    const s = await accepted(t, cut);
    await passCountingPoint(ctx, s);
    const consumedBefore = Math.max(0, ...s.acks.map((a) => a.consumed));
    const seen = t.hellos;
    const boot = t.hello?.boot;
    s.mute = true;
    const restartedAt = Date.now();
    await restart();
    s.end();
    await t.waitNextHello(seen, boot);
    // the connection the restart cut ended with the device's Last Will: a BYE on its state topic ([LM-MQTT-2])
    const will = t.inbound.find((x) => x.at >= restartedAt && x.f.type === FrameType.BYE && x.topic === topics.deviceState(t.o.fleet, t.o.deviceId));
    check(ctx, R.LM_MQTT_2, will, 'no BYE (the Last Will) on the state topic after the device was restarted');
    const bye = will.f.body as { who: string; reason: number };
    check(ctx, R.LM_MQTT_2, will.f.authKind === 'none' && bye.who === t.o.deviceId && bye.reason === Reason.offline, `the BYE after the restart has authentication ${will.f.authKind}, who ${JSON.stringify(bye.who)}, reason ${bye.reason}; a Last Will is NONE, the device's id and offline (81)`);
    check(ctx, R.LM_MQTT_2, will.qos === 1, `the Last Will arrived at QoS ${will.qos}; it is QoS 1`);
    // the completed print is still counted ([LM-LIC-2])
    const again = await refusal(ctx, R.LM_LIC_2, 'an OFFER of a transaction of one print, printed before the restart', done.tx, done.licence);
    expectCode(ctx, R.LM_LIC_2, again.refused, Reason.txCount, 'an OFFER of a transaction of one print, printed before the restart');
    // the cut-off print holds its ticket: a fresh OFFER is answered with it ([LM-LIC-2], [LM-LIC-4])
    const fresh = await refusal(ctx, R.LM_LIC_2, 'a fresh OFFER of the print the restart cut off', cut.tx, cut.licence);
    expectCode(ctx, R.LM_LIC_2, fresh.refused, Reason.txResume, 'a fresh OFFER of the print the restart cut off');
    const tk = fresh.refused.tk;
    check(ctx, R.LM_LIC_2, tk, 'the tx-resume refusal after the restart carries no ticket: the device lost it');
    let why = '';
    try {
      verifyTicket(tk, { device: t.o.deviceId, devicePublic: t.o.devicePublic, txh: cut.tx.hash, now: Date.now() });
    } catch (e) {
      why = errorMessage(e);
    }
    check(ctx, R.LM_LIC_2, why === '', `the ticket after the restart does not verify: ${why}`);
    // the resume: from the consumer's progress, a multiple of C, never beyond what it took ([LM-DLV-10])
    const resumed = await t.offer(params(t), cut.tx, cut.licence, { resume: true, tk });
    check(ctx, R.LM_DLV_10, !('refused' in resumed), `device refused the resume with its own ticket after the restart: ${'refused' in resumed ? `${resumed.refused.code} ${resumed.refused.detail}` : ''}`);
    check(ctx, R.LM_DLV_10, resumed.from % resumed.params.chunk === 0, `ACCEPT from ${resumed.from} is not a multiple of C = ${resumed.params.chunk}`);
    check(ctx, R.LM_DLV_10, resumed.from <= ctx.data.length, `ACCEPT from ${resumed.from} is beyond the job's ${ctx.data.length} bytes`);
    ctx.log(`device/restart-keeps-licence: consumed ${consumedBefore} bytes before the restart, resumed from ${resumed.from}`);
    // the end digest covers the whole job ([LM-DLV-10], [LM-DLV-6])
    await deliverExact(ctx, resumed, [R.LM_DLV_10]);
  },
};

export const unauthenticatedAdvisory: Scenario = {
  id: 'device/unauthenticated-advisory',
  title: 'an ERROR or ALARM without authentication inside a session changes nothing: the stream completes',
  covers: ['LM-FRAME-5'],
  async run(ctx) {
    const t = ctx.tester;
    const s = await open(ctx, 16);
    const inTopic = topics.deviceIn(t.o.fleet, t.o.deviceId);
    // NONE is allowed for ERROR and ALARM, and advisory: anyone on the broker could send them
    await t.link.send(inTopic, encodeFrame(FrameType.ERROR, { sid: s.sid, code: Reason.aborted, detail: 'conformance: unauthenticated error' }, { kind: 'none' }), FrameType.ERROR);
    await t.link.send(inTopic, encodeFrame(FrameType.ALARM, { sid: s.sid, code: Reason.rate, detail: 'conformance: unauthenticated alarm', time: Date.now() }, { kind: 'none' }), FrameType.ALARM);
    await sleep(300); // give a wrong device the time to act on them before the stream starts
    const acks = s.acks.length;
    await deliverExact(ctx, s, [R.LM_FRAME_5]);
    check(ctx, R.LM_FRAME_5, s.acks.length > acks, 'no acknowledgement after the unauthenticated frames');
  },
};
