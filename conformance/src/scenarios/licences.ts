/**
 * @module scenarios/licences
 * Licence scenarios (SPEC.md §11.4, §11.5): replayed and stale OFFERs ([LM-LIC-5]), the counting
 * point ([LM-LIC-1]), resume tickets that resume a print once ([LM-LIC-3], [LM-LIC-4]) and
 * transactions an operator revoked ([LM-REVOKE-3]).
 */
import { ControlOp, type ErrorBody, FrameType, Reason, type SessionParams, encodeFrame, errorMessage, equalBytes, identityKeyPair, minHintLength, randomBytes, signRevocation, signTicket, toHex, topics, verifyTicket, x25519KeyPair } from '@livematrix/spec';
import type { Session } from '../session.js';
import { Checks } from '../checks.js';
import type { Tester } from '../tester.js';
import { until } from '../wait.js';
import { R, type RequirementId } from '../generated/requirements.js';
import { type Ctx, type Scenario, check, deliverExact, failUnless, open, sleep } from './common.js';

/** Times the accepted OFFER of device/offer-replay is sent again. */
const REPLAYS = 20;
/**
 * Least ms between two replays: 10 a second, half the reference device's bound on the refusals
 * it answers ([LM-FRAME-9]), so that every replay is answered.
 */
const REPLAY_SPACING_MS = 100;
/** The gateway's silence before device/ticket-resumes-once offers again: beyond the reference device's 2.5 s take-over ([LM-DLV-13]). */
const SILENCE_MS = 3000;
/** How long device/revoked-tx waits for the device to act on a published revocation list. */
const REVOCATION_TIMEOUT_MS = 10_000;
const YEAR_MS = 365 * 24 * 3600_000;

/** Session parameters with hints two bytes above the minimum, as `open` uses. */
export const params = (t: Tester): SessionParams => t.params({ w: 16, L: minHintLength(16) + 2 });

/** A session of transaction `m` under `params`, or an Error when the device refuses the valid OFFER. */
export async function accepted(t: Tester, m: { tx: Parameters<Tester['offer']>[1]; licence: Uint8Array }, o: Parameters<Tester['offer']>[3] = {}): Promise<Session> {
  const s = await t.offer(params(t), m.tx, m.licence, o);
  if ('refused' in s) throw new Error(`device refused a valid offer: ${s.refused.code} ${s.refused.detail}`);
  return s;
}

/** The refusal of an OFFER (`what` it is), or an Error saying that the device accepted it (the session is aborted). */
export async function refusal(ctx: Ctx, id: RequirementId, what: string, tx: Parameters<Tester['offer']>[1], licence: Uint8Array, o: Parameters<Tester['offer']>[3] = {}): Promise<{ refused: ErrorBody; session: Session }> {
  const t = ctx.tester;
  const r = await t.offer(params(t), tx, licence, { ...o, waitReady: false });
  if (!('refused' in r)) {
    await r.send(FrameType.CONTROL, { sid: r.sid, op: ControlOp.abort, reason: Reason.aborted }).catch(() => undefined);
    r.end();
  }
  check(ctx, id, 'refused' in r, `${what}: the device accepted it; expected a refusal`);
  const session = t.sessionsRefused().pop();
  if (!session) throw new Error('no refused session');
  return { refused: r.refused, session };
}

export const expectCode = (ctx: Ctx, id: RequirementId, got: ErrorBody, want: number, what: string): void =>
  check(ctx, id, got.code === want, `${what}: device refused with ${got.code} (${got.detail}); expected ${want}`);

/**
 * Sends an OFFER's exact bytes and waits for the device's signed refusal of them, a new one
 * beside those that came before ([LM-FRAME-9]); a `busy` answer (the device still ending a
 * session) sends them again, for up to 5 s.
 */
async function refusalOfRaw(t: Tester, raw: Uint8Array, what: string): Promise<ErrorBody> {
  const t0 = Date.now();
  let seen = t.refusalsOf(raw).length;
  for (;;) {
    await t.sendRaw(raw);
    const all = await until(() => (t.refusalsOf(raw).length > seen ? t.refusalsOf(raw) : undefined), 3000, `a signed refusal naming ${what} (ERROR with its oh, [LM-FRAME-9])`);
    const got = all[all.length - 1]!;
    seen = all.length;
    if (got.code !== Reason.busy || Date.now() - t0 > 5000) return got;
  }
}

/**
 * Delivers the job's first chunk only, and waits until the device's consumer took some of it: the
 * print passed the counting point ([LM-LIC-1]). Frames the device did not report received go
 * again every 2 P, and so does the KEY while the consumer took nothing.
 */
export async function passCountingPoint(ctx: Ctx, s: Session): Promise<void> {
  const [c] = s.plan(ctx.data);
  if (!c) throw new Error('the job has no chunk');
  const t0 = Date.now();
  const consumed = () => s.acks.some((a) => a.consumed > 0);
  const allReceived = () => c.frames.every((f) => s.received.has(f.seq));
  while (!consumed()) {
    if (s.errors.length) throw new Error(`device error ${s.errors[0]!.code} before its consumer took a byte: ${s.errors[0]!.detail}`);
    failUnless(ctx, R.LM_LIC_1, Date.now() - t0 < 15_000, `the device's consumer took nothing of the first chunk in 15 s (${s.received.size} of ${c.frames.length} frames received)`);
    const missing = c.frames.flatMap((f, fi) => (s.received.has(f.seq) ? [] : [fi]));
    for (const fi of missing) await s.sendFrame(c, fi);
    if (!missing.length) await s.sendKey(c);
    await until(() => consumed() || (missing.length > 0 && allReceived()) || s.errors.length > 0, 2 * s.params.period, 'progress').catch(() => undefined);
  }
}

export const offerReplay: Scenario = {
  id: 'device/offer-replay', title: 'refuses a replayed OFFER and one of a stale time as replay, and keeps serving', covers: ['LM-LIC-5', 'LM-FRAME-9'],
  async run(ctx) {
    const t = ctx.tester;
    const m = t.tx(ctx.data, { prints: 1 });
    const s = await accepted(t, m);
    await deliverExact(ctx, s);
    // the accepted OFFER's exact bytes again: the sid was seen, so each is a replay, not a second print
    const raw = s.offerRaw;
    let last = 0;
    for (let i = 0; i < REPLAYS; i++) {
      const wait = last + REPLAY_SPACING_MS - Date.now();
      if (wait > 0) await sleep(wait); // pacing, not synchronisation: stay under the device's bound on refusals
      last = Date.now();
      const got = await refusalOfRaw(t, raw, `replay ${i + 1} of an accepted OFFER`);
      expectCode(ctx, R.LM_LIC_5, got, Reason.replay, `replay ${i + 1} of an accepted OFFER`);
    }
    // a genuinely signed OFFER of a fresh transaction and sid whose time is 5 minutes off ([LM-LIC-5]: within 120 s)
    for (const off of [-300_000, 300_000]) {
      const fresh = t.tx(ctx.data, { prints: 1 });
      const stale = encodeFrame(FrameType.OFFER, { sid: randomBytes(16), tx: fresh.tx.bytes, epk: x25519KeyPair().publicKey, params: params(t), gwpk: t.gateway.identity.publicKey, time: Date.now() + off }, { kind: 'sig', secretKey: t.gateway.identity.secretKey });
      expectCode(ctx, R.LM_LIC_5, await refusalOfRaw(t, stale, `an OFFER whose time is ${off / 1000} s from now`), Reason.replay, `an OFFER whose time is ${off / 1000} s from now`);
    }
    // the device kept serving
    const next = t.tx(ctx.data, { prints: 1 });
    const s2 = await ctx.checks.expect(R.LM_FRAME_9, () => t.offer(params(t), next.tx, next.licence), `after ${REPLAYS} replays the device does not take a fresh OFFER`);
    check(ctx, R.LM_FRAME_9, !('refused' in s2), `after ${REPLAYS} replays the device refused a fresh OFFER: ${'refused' in s2 ? `${s2.refused.code} ${s2.refused.detail}` : ''}`);
    await deliverExact(ctx, s2, [R.LM_FRAME_9]);
  },
};

export const resumeNeedsTicket: Scenario = {
  id: 'device/resume-needs-ticket', title: 'refuses a resume without a ticket, or with one it did not issue, as tx-resume', covers: ['LM-LIC-4'],
  async run(ctx) {
    const t = ctx.tester;
    const m = t.tx(ctx.data);
    const noTicket = 'an OFFER with resume true and no ticket';
    const bare = await refusal(ctx, R.LM_LIC_4, noTicket, m.tx, m.licence, { resume: true });
    expectCode(ctx, R.LM_LIC_4, bare.refused, Reason.txResume, noTicket);
    check(ctx, R.LM_FRAME_9, bare.session.refusalSigned, 'the refusal is not an ERROR signed with the device\'s identity key naming the OFFER ([LM-FRAME-9])');
    // a ticket in the right form for this transaction, signed by a key that is not the device's
    const forged = signTicket({ v: 1, id: randomBytes(16), txh: m.tx.hash, sid: randomBytes(16), off: 0, exp: m.tx.body.naf, device: t.o.deviceId }, identityKeyPair().secretKey);
    const notIssued = 'an OFFER with a ticket the device did not issue';
    const other = await refusal(ctx, R.LM_LIC_4, notIssued, m.tx, m.licence, { resume: true, tk: forged.bytes });
    expectCode(ctx, R.LM_LIC_4, other.refused, Reason.txResume, notIssued);
  },
};

export const resumeWithoutInterruption: Scenario = {
  id: 'device/resume-without-interruption', title: 'after a print that completed, a resume is refused as tx-resume and a fresh OFFER starts the next print: a completed print leaves no ticket', covers: ['LM-LIC-4'],
  async run(ctx) {
    const t = ctx.tester;
    const m = t.tx(ctx.data, { prints: 2 });
    const first = await accepted(t, m);
    await deliverExact(ctx, first);
    // nothing was interrupted: a resume has nothing to resume
    const what = 'an OFFER with resume true after the print completed';
    const r = await refusal(ctx, R.LM_LIC_4, what, m.tx, m.licence, { resume: true });
    expectCode(ctx, R.LM_LIC_4, r.refused, Reason.txResume, what);
    // and no ticket is owed: a fresh OFFER is the second print, not a refusal carrying a ticket
    const second = await t.offer(params(t), m.tx, m.licence);
    check(ctx, R.LM_LIC_4, !('refused' in second), `a fresh OFFER after a completed print was refused with ${'refused' in second ? `${second.refused.code} (${second.refused.detail})${second.refused.tk ? ' carrying a ticket: the completed print left one' : ''}` : ''}`);
    await deliverExact(ctx, second, [R.LM_LIC_4]);
  },
};

export const setupCountsNothing: Scenario = {
  id: 'device/setup-counts-nothing', title: 'a session that fails in time sync counts no print', covers: ['LM-LIC-1'],
  async run(ctx) {
    const t = ctx.tester;
    const m = t.tx(ctx.data, { prints: 1 });
    // a clock offset far beyond the grace window: the device refuses in time sync, before any byte
    const s = await t.offer(t.params({ w: 16 }), m.tx, m.licence, { timeShift: 2000, waitReady: false });
    if ('refused' in s) throw new Error(`offer refused before time sync: ${s.refused.code} ${s.refused.detail}`);
    await s.wait(() => s.errors.find((e) => e.code === Reason.skew), 5000, 'ERROR skew');
    s.end();
    // the only print of the transaction is still there, and no resume is owed
    const again = await t.offer(params(t), m.tx, m.licence);
    check(ctx, R.LM_LIC_1, !('refused' in again), `a session that failed in time sync counted a print: the next OFFER was refused with ${'refused' in again ? `${again.refused.code} (${again.refused.detail})` : ''}`);
    await deliverExact(ctx, again, [R.LM_LIC_1]);
  },
};

export const ticketResumesOnce: Scenario = {
  id: 'device/ticket-resumes-once', title: 'a print cut off after the counting point resumes once, with the device\'s ticket, and counts once',
  covers: ['LM-LIC-1', 'LM-LIC-3', 'LM-LIC-4'],
  async run(ctx) {
    const t = ctx.tester;
    // two prints: a device that counted the resume, or let a fresh OFFER start a second print
    // instead of answering with its ticket, shows it in the second print
    const m = t.tx(ctx.data, { prints: 2 });
    const s = await accepted(t, m);
    await passCountingPoint(ctx, s);
    // the gateway is gone: nothing more for this session, not even answers to its TIME_REQ
    s.mute = true;
    s.end();
    await sleep(SILENCE_MS); // the silence under test ([LM-DLV-13]), not a wait for an event
    // a fresh OFFER of the same transaction: the device must not count a second print but answer with its ticket
    const cutOff = 'a fresh OFFER of a transaction whose print was cut off after the counting point';
    const cut = await refusal(ctx, R.LM_LIC_4, cutOff, m.tx, m.licence);
    expectCode(ctx, R.LM_LIC_4, cut.refused, Reason.txResume, cutOff);
    check(ctx, R.LM_FRAME_9, cut.session.refusalSigned, 'the tx-resume refusal is not an ERROR signed with the device\'s identity key naming the OFFER ([LM-FRAME-9])');
    const tk = cut.refused.tk;
    check(ctx, R.LM_LIC_4, tk, 'the tx-resume refusal carries no ticket (ERROR key 5 tk, [LM-LIC-4])');
    let ticket: ReturnType<typeof verifyTicket> | undefined;
    let why = '';
    try {
      ticket = verifyTicket(tk, { device: t.o.deviceId, devicePublic: t.o.devicePublic, txh: m.tx.hash, now: Date.now() });
    } catch (e) {
      why = errorMessage(e);
    }
    check(ctx, R.LM_LIC_3, ticket, `the ticket does not verify: ${why}`);
    check(ctx, R.LM_LIC_3, equalBytes(ticket.body.sid, s.sid), `the ticket names session ${toHex(ticket.body.sid).slice(0, 8)}, not the one cut off (${toHex(s.sid).slice(0, 8)}) ([LM-LIC-3])`);
    check(ctx, R.LM_LIC_3, ticket.body.off <= ctx.data.length, `the ticket's offset ${ticket.body.off} is beyond the job's ${ctx.data.length} bytes`);
    // the resume with it: accepted, and the job arrives whole (from the device's resume point)
    const resumed = await t.offer(params(t), m.tx, m.licence, { resume: true, tk });
    check(ctx, R.LM_LIC_4, !('refused' in resumed), `device refused the resume with its own ticket: ${'refused' in resumed ? `${resumed.refused.code} ${resumed.refused.detail}` : ''}`);
    check(ctx, R.LM_LIC_4, resumed.from % resumed.params.chunk === 0 && resumed.from <= ctx.data.length, `ACCEPT from ${resumed.from} is not a multiple of C within the job ([LM-DLV-10])`);
    await deliverExact(ctx, resumed, [R.LM_LIC_4]);
    // the ticket is spent: a second resume with it is refused
    const again = 'a second resume with the same ticket';
    const twice = await refusal(ctx, R.LM_LIC_4, again, m.tx, m.licence, { resume: true, tk });
    expectCode(ctx, R.LM_LIC_4, twice.refused, Reason.txResume, again);
    // the resume counted nothing: the second print is still there, and then none
    const second = await t.offer(params(t), m.tx, m.licence);
    check(ctx, R.LM_LIC_1, !('refused' in second), `the second print of a transaction of two, after one print and its resume, was refused: ${'refused' in second ? `${second.refused.code} (${second.refused.detail})` : ''}; the resume counted a print`);
    await deliverExact(ctx, second, [R.LM_LIC_1]);
    const third = 'a fresh OFFER after both prints';
    const more = await refusal(ctx, R.LM_LIC_1, third, m.tx, m.licence);
    expectCode(ctx, R.LM_LIC_1, more.refused, Reason.txCount, third);
  },
};

export const revokedTx: Scenario = {
  id: 'device/revoked-tx', title: 'refuses an OFFER of a transaction its operator revoked, and streams others', covers: ['LM-REVOKE-3'],
  async run(ctx) {
    const t = ctx.tester;
    const m = t.tx(ctx.data);
    const now = Date.now();
    // seq is the Unix time in seconds, as the reference `livematrix revoke` gives it: a device that
    // kept an earlier run's list takes this one, and an operator's next list replaces it ([LM-REVOKE-2])
    const list = signRevocation({ seq: Math.floor(now / 1000), time: now, next: now + YEAR_MS, txs: [m.tx.hash], operatorSecret: t.o.operator.secretKey, operatorPublic: t.o.operator.publicKey });
    await t.publishRevocation(list);
    try {
      // the list may take a moment to reach the device: offer under new sids until it is refused
      const t0 = Date.now();
      let got: Awaited<ReturnType<typeof refusal>> | undefined;
      while (!got) {
        failUnless(ctx, R.LM_REVOKE_3, Date.now() - t0 < REVOCATION_TIMEOUT_MS, `the device still accepts the transaction ${REVOCATION_TIMEOUT_MS / 1000} s after its revocation was published retained on ${topics.revocation(t.o.fleet)}`);
        got = await refusal({ ...ctx, checks: new Checks() }, R.LM_REVOKE_3, 'an OFFER of a revoked transaction', m.tx, m.licence).catch(() => undefined);
      }
      expectCode(ctx, R.LM_REVOKE_3, got.refused, Reason.txRevoked, 'an OFFER of a revoked transaction');
      check(ctx, R.LM_FRAME_9, got.session.refusalSigned, 'the tx-revoked refusal is not an ERROR signed with the device\'s identity key naming the OFFER ([LM-FRAME-9])');
      // a transaction the list does not name still streams
      await deliverExact(ctx, await open(ctx, 16), [R.LM_REVOKE_3]);
    } finally {
      await t.publishRevocation(new Uint8Array(0)); // clears the retained list; the device keeps the one it took
    }
  },
};
