/**
 * @module gateway-profile/tests/state
 * Device state outside sessions on the gateway's side (SPEC.md §10.2): the late Last Will of an
 * earlier connection, a BYE whose boot sequence is not that of the HELLO the gateway answered, ends
 * nothing ([LM-STATE-5]); the Will of the current connection still does ([LM-DLV-13]). Seen through
 * a device that falls silent after the BYE: a gateway that took the late Will for the device's ends
 * the session within its grace after a Will (the reference: 10 s); one that ignored it only on the
 * device's silence (20 s), which gateway/liveness checks.
 */
import { FrameType, Reason, encodeFrame } from '@livematrix/spec';
import { until } from '../../wait.js';
import { type GatewayTest, REFERENCE_LIVENESS, describeExit } from '../context.js';
import { checkOffer } from './common.js';

const C16 = 8176;

export const lateWill: GatewayTest = {
  id: 'gateway/late-will',
  title: 'a BYE of another boot sequence than the HELLO the gateway answered (the late Will of an earlier connection) ends nothing: the silent device\'s session outlasts the grace a gateway gives after a Will; the Will of the current connection ends it within that grace',
  covers: ['LM-STATE-5', 'LM-DLV-13'],
  async run(ctx) {
    const bound = ctx.target.liveness ?? REFERENCE_LIVENESS;
    const cases = [
      { what: 'the late Will of an earlier connection (bd 1)', bd: 1, late: true },
      { what: 'the Will of its current connection (bd 2)', bd: 2, late: false },
    ];
    await Promise.all(cases.map(async (c) => {
      const dev = await ctx.device({ hello: false });
      dev.bd = 2; // the connection it announces ([LM-STATE-3])
      await dev.hello();
      const job = ctx.job(6 * C16 - 200);
      const t = ctx.tx(dev, job, { rate: 4096, burst: 16_384 });
      const started = Date.now();
      const run = ctx.stream(job, t);
      const offer = await ctx.firstOffer(dev, started, run);
      checkOffer(ctx, dev.caps, offer, t);
      const session = await dev.accept(offer, { data: job.data, tx: t.tx, licence: t.licence });
      await until(() => session.consumed > 0 || session.ended, 15_000, 'the first chunk consumed');
      // the device falls silent; the BYE comes as the broker would publish a Will
      session.stop();
      const since = Date.now();
      await dev.publishState(encodeFrame(FrameType.BYE, { who: dev.id, reason: Reason.offline, bd: c.bd }, { kind: 'none' }), FrameType.BYE);
      const slack = 2 * session.params.period + 3000;
      if (c.late) {
        // through the grace a gateway gives a device after its Will, and then some: still running
        // ([LM-STATE-5]); what ends it later is the silence bound, [LM-DLV-13]'s, checked by gateway/liveness
        const watched = bound.grace + slack;
        if (bound.silence <= watched) throw new Error(`the gateway's silence bound (${bound.silence} ms) is within its grace after a Will plus ${slack} ms: a late Will and silence cannot be told apart`);
        await Promise.race([run.exit, new Promise((r) => setTimeout(r, watched))]);
        const told = session.errors.filter((e) => e.at >= since).map((e) => `${e.body.code} (${e.body.detail})`);
        ctx.check('LM-STATE-5', run.exited === undefined, `the session of a device whose late Will (bd 1; its HELLO bd 2) came ended within ${(watched / 1000).toFixed(1)} s, before its silence bound of ${bound.silence / 1000} s (${describeExit(run.exited)}${told.length ? `; ERROR ${told.join(', ')}` : ''}): the gateway took the late Will for the device's`);
        return;
      }
      await Promise.race([run.exit, new Promise((r) => setTimeout(r, bound.grace + slack))]);
      ctx.check('LM-DLV-13', run.exited !== undefined && run.exited.code !== 0, `the session of a silent device after ${c.what} did not end within ${((bound.grace + slack) / 1000).toFixed(1)} s (the gateway's grace after a Will ${bound.grace / 1000} s): ${describeExit(run.exited)}`);
      const told = session.errors.filter((e) => e.at >= since);
      if (told.length) ctx.check('LM-DLV-13', told.every((e) => e.body.code === Reason.offline), `after ${c.what} the gateway ended the silent device's session with ERROR ${told.map((e) => `${e.body.code} (${e.body.detail})`).join(', ')}; the reason is offline (81)`);
    }));
  },
};
