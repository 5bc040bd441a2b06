/**
 * @module scenarios/revisions
 * Revision scenarios: HINTS and KEYs stamped with an expired or a future revision.
 */
import { Reason } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { type Chunk } from '../session.js';
import { type Scenario, age, background, check, nackOf, open, sleep } from './common.js';

export const expiredRevision: Scenario = {
  id: 'device/expired-revision', title: 'refuses HINTS of an expired revision', covers: ['LM-REV-2', 'LM-ALARM-4'],
  async run(ctx) {
    const s = await open(ctx, 16, { period: 400, r0Back: 6 });
    const c = await age(s, 3);
    const [ch] = s.plan(ctx.data) as [Chunk];
    await s.sendFrame(ch, 0, { rev: c - 2 });
    const n = await s.wait(() => nackOf(s, ch.frames[0]!.seq, Reason.revExpired), 2000, 'a NACK').catch(() => undefined);
    check(ctx, R.LM_REV_2, !s.received.has(ch.frames[0]!.seq), `a frame of revision ${c - 2} (current ${c}) was accepted`);
    check(ctx, R.LM_ALARM_4, n && n[1] === Reason.revExpired, `expected a rev-expired NACK, got ${JSON.stringify(n)}`);
  },
};

export const futureRevision: Scenario = {
  id: 'device/future-revision', title: 'refuses HINTS of a future revision', covers: ['LM-REV-2'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const [ch] = s.plan(ctx.data) as [Chunk];
    await s.sendFrame(ch, 0, { rev: s.rev() + 3 });
    const n = await s.wait(() => nackOf(s, ch.frames[0]!.seq, Reason.revFuture), 2000, 'a NACK').catch(() => undefined);
    check(ctx, R.LM_REV_2, !s.received.has(ch.frames[0]!.seq), 'a frame of a future revision was accepted');
    check(ctx, R.LM_REV_2, n && n[1] === Reason.revFuture, `expected a rev-future NACK, got ${JSON.stringify(n)}`);
  },
};

export const expiredKey: Scenario = {
  id: 'device/expired-key', title: 'refuses a chunk key wrapped under an expired revision', covers: ['LM-REV-2'],
  async run(ctx) {
    const s = await open(ctx, 16, { period: 400, r0Back: 6 });
    const c0 = await age(s, 3);
    const chunks = s.plan(ctx.data);
    let stale = true;
    const run = background(s.deliver(ctx.data, { chunks, keyRev: () => (stale ? s.rev() - 2 : s.rev()), keyRetryMs: 3000 }));
    await sleep(1500);
    const consumed = s.acks.length ? s.acks[s.acks.length - 1]!.consumed : 0;
    stale = false;
    check(ctx, R.LM_REV_2, consumed === 0, `the device delivered ${consumed} bytes whose keys came under an expired revision (${c0 - 2})`);
    await ctx.checks.expect(R.LM_REV_2, () => run, 'the delivery once the keys came under the current revision');
  },
};
