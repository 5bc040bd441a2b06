/**
 * @module gateway-profile/tests/common
 * Steps the gateway tests share: an OFFER checked against the device's capabilities
 * ([LM-CAP-2], [LM-CAP-3], [LM-PARAM-2]..[LM-PARAM-7]), a stream started and accepted, a
 * delivery waited for to its end ([LM-DLV-7]), and a stream that must not start.
 */
import { type Caps, RANGES, SUITE_PREFERENCE, equalBytes, largestWidth, minHintLength, revisionAt, validateParams, toLmError } from '@livematrix/spec';
import type { RequirementId } from '../../generated/requirements.js';
import { until } from '../../wait.js';
import { type GwCtx, type Job, type TxMade, describeExit, tail } from '../context.js';
import type { OfferIn, SuiteDevice, AcceptOptions } from '../device.js';
import type { StreamRun } from '../launcher.js';
import type { DeviceSession } from '../session.js';

/** The CPU share [LM-CAP-2] assumes unless the operator sets another; the gateway under test runs with its default. */
const DEFAULT_SHARE = 0.25;

/**
 * Checks an OFFER's parameters against the capabilities the device announced: in range
 * ([LM-PARAM-7]: [LM-PARAM-2], [LM-PARAM-3], [LM-PARAM-5], [LM-PARAM-6]), the smallest L ([LM-PARAM-4]), a suite
 * the device reports, preferring blake3, then sha3-256, then keccak-256 ([LM-CAP-3]), and the
 * largest w the device's rate, memory and wmax allow at the offered period ([LM-CAP-2]); and that
 * it carries the transaction the suite asked the gateway to stream (a plain failure, no verdict).
 */
export function checkOffer(ctx: GwCtx, caps: Caps, offer: OfferIn, t: TxMade): void {
  const p = offer.body.params;
  try {
    validateParams(p);
    ctx.check('LM-PARAM-7', true, '');
  } catch (e) {
    const m = toLmError(e).message;
    const id = /LM-PARAM-2/.test(m) ? 'LM-PARAM-2' : /LM-PARAM-3/.test(m) ? 'LM-PARAM-3' : /LM-PARAM-5/.test(m) ? 'LM-PARAM-5' : /LM-PARAM-6/.test(m) ? 'LM-PARAM-6' : 'LM-PARAM-7';
    ctx.check(id, false, `OFFER parameters out of range: ${m}`);
  }
  ctx.check('LM-PARAM-2', p.w >= RANGES.w[0] && p.w <= RANGES.w[1], `OFFER w = ${p.w}`);
  ctx.check('LM-PARAM-3', 8 * p.L >= p.w + 8 && p.L <= 32, `OFFER L = ${p.L} for w = ${p.w}`);
  ctx.check('LM-PARAM-5', 2 * p.grace < p.period, `OFFER G = ${p.grace}, P = ${p.period}: 2·G must be below P`);
  ctx.check('LM-PARAM-6', p.symbolsPerFrame * p.L <= 49_152, `OFFER N·L = ${p.symbolsPerFrame * p.L} exceeds 49152`);
  ctx.check('LM-PARAM-4', p.L === minHintLength(p.w), `OFFER L = ${p.L} for w = ${p.w}; the smallest L is ${minHintLength(p.w)}`);
  ctx.check('LM-PARAM-7', p.epoch <= offer.body.time && p.r0 <= revisionAt(offer.body.time, p.epoch, p.period) && p.r0 >= revisionAt(offer.body.time, p.epoch, p.period) - 1,
    `OFFER epoch ${p.epoch} and r0 ${p.r0} do not fit its time ${offer.body.time} (E at most now, r0 = rev(now))`);
  // the first revision it stamps, rev(time − G), already has keys ([LM-REV-6], [LM-KEY-3])
  ctx.check('LM-REV-6', p.epoch + p.r0 * p.period + p.grace <= offer.body.time, `OFFER epoch ${p.epoch}, r0 ${p.r0}, P ${p.period}, G ${p.grace} at time ${offer.body.time}: revision r0 starts being stamped only at ${p.epoch + p.r0 * p.period + p.grace}, so what the gateway stamps until then is below r0 (no keys) or before the epoch`);
  const rates = new Map(caps.suites);
  ctx.check('LM-CAP-2', rates.has(p.suite), `OFFER suite ${p.suite}; the device reports suites ${caps.suites.map(([s]) => s).join(', ')}`);
  const preferred = SUITE_PREFERENCE.find((s) => (rates.get(s) ?? 0) > 0 && largestWidth(rates.get(s) as number, caps.mem, caps.wmax, p.period, DEFAULT_SHARE) !== null);
  ctx.check('LM-CAP-3', p.suite === preferred, `OFFER suite ${p.suite}; of the suites the device reports the gateway should prefer ${preferred} (blake3, then sha3-256, then keccak-256)`);
  const w = largestWidth(rates.get(p.suite) ?? 1, caps.mem, caps.wmax, p.period, DEFAULT_SHARE);
  ctx.check('LM-CAP-2', p.w === w, `OFFER w = ${p.w} at P = ${p.period} ms; the device's rate ${rates.get(p.suite)}/s, memory ${caps.mem} bytes and wmax ${caps.wmax} give w = ${w} (CPU share ${DEFAULT_SHARE})`);
  // not a verdict: [LM-TX-5] is what gateway/refusals checks (a stream to a device the transaction does not name)
  if (!equalBytes(offer.body.tx, t.tx.bytes)) throw new Error('the OFFER carries a transaction other than the one the suite asked the gateway to stream');
}

/** A stream started and accepted by a fresh device. */
export interface Started {
  dev: SuiteDevice;
  job: Job;
  t: TxMade;
  run: StreamRun;
  offer: OfferIn;
  session: DeviceSession;
}

/**
 * Makes a device (announced with `caps`), a job of `bytes` and a transaction (`tx` changes its
 * fields), starts the gateway's stream, checks the OFFER and accepts it with `accept`.
 */
export async function startStream(ctx: GwCtx, o: { bytes: number; caps?: Caps; tx?: Parameters<GwCtx['tx']>[2]; accept?: Partial<AcceptOptions> } = { bytes: 16_000 }): Promise<Started> {
  const dev = await ctx.device(o.caps ? { caps: o.caps } : {});
  const job = ctx.job(o.bytes);
  const t = ctx.tx(dev, job, o.tx);
  const since = Date.now();
  const run = ctx.stream(job, t);
  const offer = await ctx.firstOffer(dev, since, run);
  checkOffer(ctx, dev.caps, offer, t);
  const session = await dev.accept(offer, { data: job.data, tx: t.tx, licence: t.licence, ...o.accept });
  return { dev, job, t, run, offer, session };
}

/**
 * Waits until the device sent its RECEIPT and the stream command ended; the gateway reports the
 * stream delivered (exit code 0) only once it verified the receipt ([LM-DLV-7]).
 */
export async function delivered(ctx: GwCtx, s: Started, timeout = 30_000): Promise<void> {
  const { session, run } = s;
  await until(() => session.receiptAt ?? (session.ended || run.exited ? 'stopped' : undefined), timeout, `the delivery to ${s.dev.id} to complete (${session.consumed} of ${s.job.data.length} bytes consumed)`).then((r) => {
    if (r === 'stopped') {
      const why = session.errors[0] ?? session.alarms[0];
      throw new Error(`the stream ended before the job was delivered: ${why ? `the gateway sent ${why.auth} ${session.errors[0] ? 'ERROR' : 'ALARM'} ${why.body.code} (${why.body.detail})` : describeExit(run.exited)}; ${tail(run.output())}`);
    }
  });
  const exit = await Promise.race([run.exit, new Promise<undefined>((r) => setTimeout(r, 15_000, undefined))]);
  ctx.check('LM-DLV-7', exit?.code === 0, `the gateway did not report the stream delivered after the device's signed RECEIPT (${describeExit(exit)}): ${tail(run.output())}`);
  session.reported = true;
}

/**
 * A stream the gateway must refuse: it must send the device no OFFER, and the stream command
 * must not report it delivered. Waits until the command ended, or for the quiet window.
 */
export async function refused(ctx: GwCtx, dev: SuiteDevice, run: StreamRun, id: RequirementId, why: string): Promise<void> {
  await Promise.race([run.exit, new Promise((r) => setTimeout(r, ctx.quietWindow))]);
  ctx.check(id, dev.offers.length === 0, `the gateway offered a stream ${why}`);
  ctx.check(id, run.exited?.code !== 0, `the stream command reported a stream ${why} delivered`);
}
