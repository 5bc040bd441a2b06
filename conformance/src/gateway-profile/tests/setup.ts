/**
 * @module gateway-profile/tests/setup
 * Session set-up: HELLOs the gateway must not act on and a device that restarts ([LM-MQTT-6],
 * [LM-DLV-10], [LM-LIC-4]), forged ACCEPTs ([LM-FRAME-7], [LM-KEY-1]), transactions and jobs the
 * gateway must refuse ([LM-TX-2]..[LM-TX-6]), offers made again ([LM-FRAME-25]).
 */
import { writeFileSync } from 'node:fs';
import { type Caps, FrameType, type IdentityKeyPair, Reason, equalBytes, identityKeyPair, randomBytes, signTicket } from '@livematrix/spec';
import type { RequirementId } from '../../generated/requirements.js';
import { happens, until } from '../../wait.js';
import { type GatewayTest, type GwCtx, describeExit, tail } from '../context.js';
import type { OfferIn, SuiteDevice } from '../device.js';
import type { StreamRun } from '../launcher.js';
import { checkOffer, delivered } from './common.js';

const C16 = 8176;

export const helloRestart: GatewayTest = {
  id: 'gateway/hello-restart',
  title: 'HELLOs forged, of another key, stale or replayed change nothing; a device that restarts mid-stream is offered the same transaction again, resumed with its ticket from where its consumer stood',
  covers: ['LM-MQTT-6', 'LM-FRAME-20', 'LM-DLV-10', 'LM-LIC-4', 'LM-AEAD-5', 'LM-DLV-7'],
  async run(ctx) {
    const dev = await ctx.device({ hello: false });
    const job = ctx.job(6 * C16 - 200);
    const t = ctx.tx(dev, job, { rate: 16_384, burst: 16_384 });
    // capabilities no OFFER to the genuine device would fit (keccak-256, w ≤ 10): an OFFER that fits them answered a forgery
    const forgedCaps: Caps = { suites: [[1, 2 ** 28]], mem: 5 * 2 ** 10, wmax: 10, workers: 1 };
    const other = identityKeyPair();
    await dev.hello({ signer: other.secretKey, caps: forgedCaps }); // the device's key, not signed by it
    const since = Date.now();
    const run = ctx.stream(job, t);
    const half = Math.min(2500, ctx.quietWindow / 2);
    const early1 = await happens(() => dev.offers.length, half);
    await dev.hello({ signer: other.secretKey, idpk: other.publicKey, caps: forgedCaps }); // well signed, by a key the transaction does not name
    const early2 = early1 || (await happens(() => dev.offers.length, half));
    ctx.check('LM-MQTT-6', !early1, 'the gateway offered to a device whose HELLO does not verify under the transaction\'s device key');
    ctx.check('LM-FRAME-20', !early2, 'the gateway offered to a device whose HELLO carries and is signed by a key other than the transaction\'s device key');
    const genuineAt = Date.now();
    await dev.hello();
    const offer = await ctx.firstOffer(dev, since, run);
    ctx.check('LM-MQTT-6', offer.at >= genuineAt && offer.body.params.suite !== 1, 'the gateway\'s OFFER answers a forged HELLO');
    checkOffer(ctx, dev.caps, offer, t);
    const session = await dev.accept(offer, { data: job.data, tx: t.tx, licence: t.licence });
    // past the counting point: a KEY went and the consumer took its chunk ([LM-LIC-1])
    await until(() => session.consumed > 0 || session.ended, 15_000, 'the first chunk consumed');
    const offers = dev.offers.length;
    const stale: { what: string; h: Parameters<SuiteDevice['hello']>[0] }[] = [
      { what: 'a HELLO of a new boot not signed by the device', h: { signer: other.secretKey, boot: randomBytes(8) } },
      { what: 'a HELLO of a new boot with a time 11 minutes old', h: { boot: randomBytes(8), time: Date.now() - 11 * 60_000 } },
      { what: 'the HELLO of the running boot with an earlier time (a replay)', h: { time: Date.now() - 60_000 } },
    ];
    for (const s of stale) {
      await dev.hello(s.h);
      const answered = await session.roundTrip().then(() => true, () => false);
      const reoffered = answered ? await happens(() => dev.offers.length > offers, 300) : true;
      ctx.check('LM-MQTT-6', answered && !reoffered, `after ${s.what} the gateway ${answered ? 'offered again' : 'stopped answering the running session'}`);
    }
    // the device's process restarts: its session is gone, its consumer took `cut` bytes ([LM-DLV-10])
    session.stop();
    const cut = session.consumed;
    dev.boot = randomBytes(8);
    await dev.hello();
    const again = await until(() => dev.offers[offers] ?? (run.exited ? 'ended' : undefined), 10_000, 'an OFFER after the device restarted').catch(() => undefined);
    ctx.check('LM-DLV-10', again !== undefined && again !== 'ended', `no new OFFER after the device announced a new boot mid-stream (${describeExit(run.exited)})`);
    if (again === undefined || again === 'ended') return;
    ctx.check('LM-DLV-10', equalBytes(again.body.tx, t.tx.bytes) && again.body.resume === true && !equalBytes(again.body.sid, session.sid),
      `the OFFER after the restart (resume ${String(again.body.resume)}) is not a new session resuming the same transaction, though the print passed its counting point`);
    // the device holds a ticket of the cut-off print: an OFFER without it is refused with it ([LM-LIC-4])
    let resume = again;
    if (!again.body.tk) {
      const ticket = signTicket({ v: 1, id: randomBytes(16), txh: t.tx.hash, sid: session.sid, off: cut, exp: t.tx.body.naf, device: dev.id }, dev.identity.secretKey);
      await dev.refuse(again, Reason.txResume, { tk: ticket.bytes, detail: 'the device holds a resume ticket of this transaction' });
      const withTicket = await until(() => dev.offers[offers + 1], 5000, 'an OFFER carrying the device\'s ticket').catch(() => undefined);
      ctx.check('LM-LIC-4', withTicket?.body.tk !== undefined && equalBytes(withTicket.body.tk, ticket.bytes) && withTicket.body.resume === true,
        'the gateway did not offer again, at once, with the ticket the device handed over in its refusal');
      if (!withTicket) return;
      resume = withTicket;
    }
    const C = resume.body.params.chunk;
    const from = Math.floor(cut / C) * C;
    const s2 = await dev.accept(resume, { data: job.data, tx: t.tx, licence: t.licence, from });
    await delivered(ctx, { dev, job, t, run, offer: resume, session: s2 });
    const below = s2.hintsIn.filter((h) => h.body.chunk * C < from);
    ctx.check('LM-DLV-10', below.length === 0, `the resumed session sent HINTS of chunk ${below[0]?.body.chunk}, below the resume point ${from}`);
  },
};

export const acceptForged: GatewayTest = {
  id: 'gateway/accept-forged',
  title: 'an ACCEPT signed by another key, one that answers another OFFER, or one whose ephemeral key makes X25519 all zero ends the session',
  covers: ['LM-FRAME-7', 'LM-KEY-1'],
  async run(ctx) {
    const cases: { id: RequirementId; what: string; o: () => { signer?: Uint8Array; oh?: Uint8Array; epk?: Uint8Array; z?: Uint8Array } }[] = [
      { id: 'LM-FRAME-7', what: 'an ACCEPT signed by another key', o: () => ({ signer: identityKeyPair().secretKey }) },
      { id: 'LM-FRAME-7', what: 'an ACCEPT whose oh is not SHA-256 of the OFFER', o: () => ({ oh: randomBytes(32) }) },
      // the identity point: X25519 gives 32 zero bytes; the device then keys with them, as a gateway that went on would
      { id: 'LM-KEY-1', what: 'an ACCEPT whose ephemeral key makes X25519 all zero', o: () => ({ epk: new Uint8Array(32), z: new Uint8Array(32) }) },
    ];
    for (const c of cases) {
      const dev = await ctx.device();
      const job = ctx.job(3000);
      const t = ctx.tx(dev, job);
      const since = Date.now();
      const run = ctx.stream(job, t);
      const offer = await ctx.firstOffer(dev, since, run);
      const acceptAt = Date.now();
      const session = await dev.accept(offer, { data: job.data, tx: t.tx, licence: t.licence, ...c.o() });
      // the device speaks with the keys it would have: TIME_REQ now and every second, then ACKs
      const wentOn = await happens(() => session.samples.length || session.hintsIn.length || session.keysIn.length || run.exited, 2500);
      ctx.check(c.id, session.samples.length === 0 && session.hintsIn.length === 0 && session.keysIn.length === 0,
        `after ${c.what} the gateway went on with the session (${session.samples.length} TIME_RESP, ${session.hintsIn.length} HINTS, ${session.keysIn.length} KEY)`);
      ctx.check(c.id, !wentOn || run.exited?.code !== 0, `after ${c.what} the stream command reported the stream delivered`);
      // the session is aborted with reason auth (9): seen when the gateway tells the device (it holds no key the device shares, so an ERROR may come unauthenticated)
      const told = dev.framesOf(FrameType.ERROR).filter((e) => e.at >= acceptAt);
      if (told.length) ctx.check(c.id, told.every((e) => e.frame.body.code === Reason.auth), `after ${c.what} the gateway sent ERROR ${told.map((e) => `${e.frame.body.code} (${e.frame.body.detail})`).join(', ')}; the session is aborted with reason auth (9)`);
      else ctx.log(`after ${c.what} the gateway sent no ERROR: the reason it aborted with is not seen`);
      await run.stop();
    }
  },
};

/** A stream that must be refused, started. */
interface Refusal {
  id: RequirementId;
  why: string;
  devs: SuiteDevice[];
  run: StreamRun;
}

export const refusals: GatewayTest = {
  id: 'gateway/refusals',
  title: 'no stream under a transaction badly signed, of an untrusted operator, expired or not yet valid, or for another device; a job whose digest or size differs never gets END',
  covers: ['LM-TX-2', 'LM-TX-3', 'LM-TX-4', 'LM-TX-5', 'LM-TX-6', 'LM-TX-10'],
  async run(ctx) {
    const now = Date.now();
    const simple = async (id: RequirementId, why: string, over: Parameters<GwCtx['tx']>[2]): Promise<Refusal> => {
      const dev = await ctx.device();
      const job = ctx.job(3000);
      return { id, why, devs: [dev], run: ctx.stream(job, ctx.tx(dev, job, over)) };
    };
    const untrusted: IdentityKeyPair = identityKeyPair();
    const started: Refusal[] = await Promise.all([
      simple('LM-TX-2', 'under a transaction whose signature does not verify', { corrupt: true }),
      simple('LM-TX-3', 'under a transaction of an operator key it does not trust', { operator: untrusted }),
      simple('LM-TX-4', 'under a transaction that expired an hour ago', { notBefore: now - 7_200_000, notAfter: now - 3_600_000 }),
      simple('LM-TX-4', 'under a transaction valid only from an hour on', { notBefore: now + 3_600_000, notAfter: now + 7_200_000 }),
      (async (): Promise<Refusal> => {
        const [named, asked] = [await ctx.device(), await ctx.device()];
        const job = ctx.job(3000);
        return { id: 'LM-TX-5', why: `to device ${asked.id} under a transaction for ${named.id}`, devs: [named, asked], run: ctx.stream(job, ctx.tx(named, job), asked.id) };
      })(),
    ]);
    await Promise.all(started.map((r) => Promise.race([r.run.exit, new Promise((res) => setTimeout(res, Math.max(ctx.quietWindow, 8000)))])));
    for (const r of started) {
      const offered = r.devs.filter((d) => d.offers.length > 0).map((d) => d.id);
      ctx.check(r.id, offered.length === 0, `the gateway offered ${r.why} (to ${offered.join(', ')})`);
      ctx.check(r.id, r.run.exited?.code !== 0, `the stream command reported a stream ${r.why} delivered`);
    }
    // [LM-TX-6]: the job differs from the transaction's digest (one byte) or size (longer): refused, or streamed without END and ended with ERROR digest
    const variants: { why: string; change: (b: Uint8Array) => Uint8Array }[] = [
      { why: 'a job with one byte changed', change: (b) => b.map((x, i) => (i === 5000 ? x ^ 0x20 : x)) },
      { why: 'a job 100 bytes longer', change: (b) => new Uint8Array([...b, ...new Uint8Array(100).fill(0x0a)]) },
    ];
    await Promise.all(variants.map(async (v, k) => {
      const dev = await ctx.device();
      const job = ctx.job(3 * C16 - 100);
      const t = ctx.tx(dev, job);
      const sent = { data: v.change(job.data), file: job.file.replace(/\.gcode$/, `-changed-${k}.gcode`) };
      writeFileSync(sent.file, sent.data);
      const run = ctx.stream(sent, t);
      const offer = await until(() => dev.offers[0] ?? (run.exited ? 'ended' : undefined), 20_000, 'an OFFER or the end of the stream').catch(() => 'ended' as const);
      const session = offer !== 'ended' ? await dev.accept(offer, { data: sent.data, tx: t.tx, licence: t.licence }) : undefined;
      await Promise.race([run.exit, new Promise((res) => setTimeout(res, 20_000))]);
      // an ERROR the gateway published just before it exited may still be on its way through the broker
      const digestError = () => dev.framesOf(14).some((e) => e.frame.authKind === 'mac' && e.frame.body.code === Reason.digest);
      if (session?.hintsIn.length) await happens(digestError, 2000);
      const ends = dev.framesOf(11);
      ctx.check('LM-TX-10', ends.length === 0, `the gateway sent END for ${v.why} than the transaction names`);
      ctx.check('LM-TX-6', run.exited !== undefined && run.exited.code !== 0, `the stream of ${v.why} did not end as failed (${describeExit(run.exited)}): ${tail(run.output())}`);
      // a gateway that streamed some of it tells the device why the session ends
      if (session?.hintsIn.length) ctx.check('LM-TX-6', digestError(), `the gateway streamed ${v.why} and did not end the session with ERROR digest (66) (${describeExit(run.exited)}: ${tail(run.output())})`);
    }));
  },
};

/**
 * [LM-FRAME-25], a MAY: a gateway that offers again, to a device that did not answer or that
 * refused as `busy`, does so under a new sid with the same transaction, and the new OFFER is one
 * the device can take. A gateway that does not offer again passes (its stream may then fail).
 */
export const reoffer: GatewayTest = {
  id: 'gateway/reoffer',
  title: 'an OFFER made again, after no answer or a refusal as busy, goes under a new sid with the same transaction, and a device can accept it',
  covers: ['LM-FRAME-25', 'LM-DLV-7'],
  async run(ctx) {
    const cases: { what: string; answer: (dev: SuiteDevice, first: OfferIn) => Promise<void>; wait: number }[] = [
      // the reference gateway offers again after 3 s of silence, and 1 s after a refusal as busy
      { what: 'the device did not answer', answer: async () => undefined, wait: Math.max(6000, ctx.quietWindow) },
      { what: 'the device refused as busy', answer: (dev, first) => dev.refuse(first, Reason.busy, { detail: 'a session of the conformance suite is ending' }), wait: Math.max(4000, ctx.quietWindow) },
    ];
    const made = await Promise.all(cases.map(async (c) => {
      const dev = await ctx.device();
      const job = ctx.job(3000);
      const t = ctx.tx(dev, job);
      const since = Date.now();
      const run = ctx.stream(job, t);
      const first = await ctx.firstOffer(dev, since, run);
      await c.answer(dev, first);
      const again = await until(() => dev.offers[1] ?? (run.exited ? 'ended' : undefined), c.wait, `an OFFER made again after ${c.what}`).catch(() => undefined);
      if (again === undefined || again === 'ended') {
        ctx.log(`the gateway did not offer again after ${c.what} (${again === 'ended' ? describeExit(run.exited) : `within ${c.wait} ms`}): a MAY it does not use`);
        return false;
      }
      ctx.check('LM-FRAME-25', !equalBytes(again.body.sid, first.body.sid), `after ${c.what} the gateway offered again under the session id of its first OFFER`);
      ctx.check('LM-FRAME-25', equalBytes(again.body.tx, t.tx.bytes), `after ${c.what} the gateway offered again with another transaction`);
      checkOffer(ctx, dev.caps, again, t);
      const session = await dev.accept(again, { data: job.data, tx: t.tx, licence: t.licence });
      await delivered(ctx, { dev, job, t, run, offer: again, session });
      return true;
    }));
    if (!made.some((x) => x)) ctx.check('LM-FRAME-25', true, '');
  },
};
