/**
 * @module gateway-profile/tests/delivery
 * Deliveries: a paced one checked frame by frame, negotiation with devices of other
 * capabilities, a resume point in a fresh ACCEPT, and a transaction's print count.
 */
import { type Caps, Reason, identityKeyPair } from '@livematrix/spec';
import type { RequirementId } from '../../generated/requirements.js';
import { until } from '../../wait.js';
import { type GatewayTest, describeExit, tail } from '../context.js';
import { checkOffer, delivered, refused, startStream } from './common.js';

/** The chunk size the reference gateway picks for w = 16 (one HINTS frame per chunk). */
const C16 = 8176;

export const deliver: GatewayTest = {
  id: 'gateway/deliver',
  title: 'a delivery paced by its transaction: negotiation, every frame\'s encoding and authentication, revision stamps, time sync, hints, key release, END, the receipt',
  covers: [
    'LM-CAP-2', 'LM-CAP-3', 'LM-PARAM-2', 'LM-PARAM-3', 'LM-PARAM-4', 'LM-PARAM-5', 'LM-PARAM-6', 'LM-PARAM-7', 'LM-REV-6', 'LM-CBOR-1', 'LM-FRAME-1', 'LM-FRAME-2', 'LM-FRAME-21', 'LM-MQTT-1',
    'LM-TIME-4', 'LM-REV-1', 'LM-HINT-1', 'LM-PACK-1', 'LM-PACK-2', 'LM-KEY-2', 'LM-KEY-3', 'LM-AEAD-1', 'LM-AEAD-2', 'LM-AEAD-3', 'LM-AEAD-5', 'LM-DLV-16', 'LM-DLV-6', 'LM-DLV-7',
  ],
  async run(ctx) {
    // 6 chunks at 16 KB/s after a burst of 2: the keys of the last chunks wait about 2 s
    const s = await startStream(ctx, { bytes: 6 * C16 - 200, tx: { rate: 16_384, burst: 16_384 }, accept: { behaviour: { receipt: false } } });
    const { session, run } = s;
    await until(() => (session.complete() && session.ends.length > 0) || session.ended || run.exited, 30_000, 'every chunk and END');
    ctx.flush();
    ctx.check('LM-DLV-6', session.ends.length > 0, `no END came (${describeExit(run.exited)}): ${tail(run.output())}`);
    ctx.check('LM-AEAD-3', session.keysIn.length > 0 && (session.keysIn[session.keysIn.length - 1]?.at ?? 0) - (session.firstHintsAt ?? 0) >= 1000,
      'the gateway released every chunk key within a second of its first HINTS, faster than the transaction\'s rate allows');
    // a RECEIPT not signed by the device's key must not count ([LM-DLV-7])
    await session.sendReceipt({ signer: identityKeyPair().secretKey });
    const answered = await session.roundTrip(5000).then(() => true, () => false);
    ctx.check('LM-DLV-7', answered && run.exited?.code !== 0, `the gateway took a RECEIPT signed by another key (${answered ? describeExit(run.exited) : 'it stopped answering the session'})`);
    await session.sendReceipt();
    const exit = await Promise.race([run.exit, new Promise<undefined>((r) => setTimeout(r, 15_000, undefined))]);
    ctx.check('LM-DLV-7', exit?.code === 0, `the gateway did not report the stream delivered after the device's signed RECEIPT (${describeExit(exit)}): ${tail(run.output())}`);
    session.reported = true;
    ctx.check('LM-TIME-4', session.samples.length > 0 && session.unansweredTime() === 0, `${session.unansweredTime()} TIME_REQ of the session left unanswered`);
  },
};

/** Devices whose capabilities leave the gateway one right answer each ([LM-CAP-2], [LM-CAP-3]). */
const NEGOTIATION: { name: string; caps: Caps }[] = [
  // keccak-256 only, tables up to w = 12 by wmax
  { name: 'keccak-256 only, wmax 12', caps: { suites: [[1, 2 ** 28]], mem: 5 * 2 ** 24, wmax: 12, workers: 1 } },
  // sha3-256 is preferred to keccak-256 though slower; its rate bounds w at the offered period
  { name: 'sha3-256 and keccak-256, rate-bound', caps: { suites: [[1, 2 ** 28], [2, 2 ** 20]], mem: 5 * 2 ** 24, wmax: 24, workers: 1 } },
];

export const negotiation: GatewayTest = {
  id: 'gateway/negotiation',
  title: 'parameters chosen from the device\'s capabilities (suite, width by rate, memory and wmax, smallest L), and no OFFER when nothing fits',
  covers: ['LM-CAP-2', 'LM-CAP-3', 'LM-CAP-5', 'LM-PARAM-4', 'LM-PARAM-7', 'LM-HINT-1', 'LM-DLV-7'],
  async run(ctx) {
    for (const n of NEGOTIATION) {
      ctx.log(n.name);
      const s = await startStream(ctx, { bytes: 2000, caps: n.caps });
      await delivered(ctx, s);
    }
    // no w ≥ 8 fits 1279 bytes of table memory: the gateway must not offer ([LM-CAP-5])
    const dev = await ctx.device({ caps: { suites: [[3, 2 ** 30]], mem: 5 * 2 ** 8 - 1, wmax: 24, workers: 1 } });
    const job = ctx.job(2000);
    await refused(ctx, dev, ctx.stream(job, ctx.tx(dev, job)), 'LM-CAP-5', 'to a device whose memory fits no table of w ≥ 8');
  },
};

export const resumePoint: GatewayTest = {
  id: 'gateway/resume-point',
  title: 'a resume point in an ACCEPT is served from its chunk on; one off a chunk boundary, or a window below a chunk, is refused with schema and ends the session',
  covers: ['LM-DLV-10', 'LM-FRAME-18', 'LM-FRAME-19', 'LM-DLV-6', 'LM-DLV-7'],
  async run(ctx) {
    // a device that kept two chunks of the job answers with from = 2·C; any ACCEPT's from is served ([LM-DLV-10])
    const dev = await ctx.device();
    const job = ctx.job(5 * C16 - 100);
    const t = ctx.tx(dev, job);
    const since = Date.now();
    const run = ctx.stream(job, t);
    const offer = await ctx.firstOffer(dev, since, run);
    const C = offer.body.params.chunk;
    const session = await dev.accept(offer, { data: job.data, tx: t.tx, licence: t.licence, from: 2 * C });
    const s = { dev, job, t, run, offer, session };
    await delivered(ctx, s);
    const below = session.hintsIn.filter((h) => h.body.chunk < 2);
    ctx.check('LM-DLV-10', below.length === 0, `the gateway sent HINTS of chunk ${below[0]?.body.chunk} to a device that answered from = ${2 * C}`);
    // a resume point off a chunk boundary, or a window below one chunk: refused with `schema`, the session ended ([LM-FRAME-18], [LM-FRAME-19])
    const bad: { id: RequirementId; what: string; accept: (C: number) => { from?: number; window?: number } }[] = [
      { id: 'LM-FRAME-18', what: 'from one byte past a chunk boundary', accept: (c) => ({ from: c + 1 }) },
      { id: 'LM-FRAME-19', what: 'a window one byte short of a chunk', accept: (c) => ({ window: c - 1 }) },
    ];
    await Promise.all(bad.map(async (b) => {
      const d = await ctx.device();
      const tb = ctx.tx(d, job);
      const rb = ctx.stream(job, tb);
      const ob = await ctx.firstOffer(d, Date.now(), rb);
      const sb = await d.accept(ob, { data: job.data, tx: tb.tx, licence: tb.licence, ...b.accept(ob.body.params.chunk) });
      const err = await until(() => sb.errors[0] ?? (rb.exited ? 'exited' : undefined), 10_000, 'an ERROR').catch(() => undefined);
      await Promise.race([rb.exit, new Promise((r) => setTimeout(r, 5000))]);
      ctx.check(b.id, typeof err === 'object' && err.body.code === Reason.schema, `after an ACCEPT with ${b.what} the gateway sent ${typeof err === 'object' ? `ERROR ${err.body.code} (${err.body.detail})` : 'no ERROR'}; it must refuse it with schema (8)`);
      ctx.check(b.id, sb.keysIn.length === 0 && rb.exited !== undefined && rb.exited.code !== 0, `after an ACCEPT with ${b.what} the gateway went on (${sb.keysIn.length} KEY, ${describeExit(rb.exited)})`);
    }));
  },
};

export const prints: GatewayTest = {
  id: 'gateway/prints',
  title: 'a transaction of 2 prints streams twice, with fresh chunk keys each time, and not a third time',
  covers: ['LM-TX-7', 'LM-AEAD-5', 'LM-LIC-4', 'LM-DLV-7'],
  async run(ctx) {
    const dev = await ctx.device();
    const job = ctx.job(2 * C16 - 100);
    const t = ctx.tx(dev, job, { prints: 2 });
    for (let i = 1; i <= 2; i++) {
      const since = Date.now();
      const run = ctx.stream(job, t);
      const offer = await until(() => dev.offers.find((o) => o.at >= since) ?? (run.exited ? 'ended' : undefined), 20_000, `OFFER of print ${i}`);
      if (offer === 'ended') throw new Error(`print ${i}: the stream command ended without an OFFER (${describeExit(run.exited)}): ${tail(run.output())}`);
      ctx.shared.startup = Math.max(ctx.shared.startup, offer.at - since);
      checkOffer(ctx, dev.caps, offer, t);
      const session = await dev.accept(offer, { data: job.data, tx: t.tx, licence: t.licence });
      await delivered(ctx, { dev, job, t, run, offer, session });
    }
    // both prints used and completed: no OFFER, not even a resume ([LM-TX-7], [LM-LIC-4])
    const before = dev.offers.length;
    const run = ctx.stream(job, t);
    await Promise.race([run.exit, new Promise((r) => setTimeout(r, ctx.quietWindow))]);
    ctx.check('LM-TX-7', dev.offers.length === before, 'the gateway offered a third print of a transaction of 2 prints');
    ctx.check('LM-LIC-4', dev.offers.length === before, 'the gateway offered a print whose count is used up (only the resume of a cut-off print may be offered)');
    ctx.check('LM-TX-7', run.exited?.code !== 0, 'the stream command reported a third print delivered');
  },
};
