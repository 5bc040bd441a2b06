/**
 * @module scenarios/refusals
 * Refusal scenarios: OFFERs the device must refuse (transactions, licences, parameters), with
 * the signed ERROR it refuses them with.
 */
import { type CborValue, FrameType, Reason, type SessionParams, decodeCbor, digest, encodeFrame, equalBytes, errorMessage, minHintLength, encodeCbor, identityKeyPair, randomBytes } from '@livematrix/spec';
import { until } from '../wait.js';
import { R, type RequirementId } from '../generated/requirements.js';
import { type Scenario, check, deliverExact, open, refusedWith } from './common.js';

/**
 * Forged OFFERs device/refusal-signed sends: fewer than a device checks in a second (the
 * reference device: 50, [LM-FRAME-9]), so that the valid OFFER after them is checked at once.
 */
const FORGED = 40;

export const txUnsigned: Scenario = {
  id: 'device/tx-unsigned', title: 'refuses an offer whose transaction\'s signature is empty as tx-schema (checked before the signature)', covers: ['LM-TX-9'],
  run: (ctx) => refusedWith(ctx, R.LM_TX_9, Reason.txSchema, (t) => {
    const m = t.tx(ctx.data);
    const [body] = decodeCbor(m.tx.bytes) as CborValue[];
    return { tx: { ...m.tx, bytes: encodeCbor([body as CborValue, new Uint8Array(0)]) }, licence: m.licence }; // a 0-byte signature
  }),
};

export const txBadSignature: Scenario = {
  id: 'device/tx-bad-signature', title: 'refuses a transaction whose signature does not verify', covers: ['LM-TX-2'],
  run: (ctx) => refusedWith(ctx, R.LM_TX_2, Reason.txSignature, (t) => t.tx(ctx.data, { badSignature: true })),
};

export const txExpired: Scenario = {
  id: 'device/tx-expired', title: 'refuses an expired transaction', covers: ['LM-TX-4'],
  run: (ctx) => refusedWith(ctx, R.LM_TX_4, Reason.txExpired, (t) => t.tx(ctx.data, { notBefore: Date.now() - 7200_000, notAfter: Date.now() - 3600_000 })),
};

export const txOtherDevice: Scenario = {
  id: 'device/tx-other-device', title: 'refuses a transaction for another device', covers: ['LM-TX-5'],
  run: (ctx) => refusedWith(ctx, R.LM_TX_5, Reason.txDevice, (t) => t.tx(ctx.data, { device: 'someone-else' })),
};

export const txUntrustedOperator: Scenario = {
  id: 'device/tx-untrusted-operator', title: 'refuses a transaction signed by an operator it does not trust', covers: ['LM-TX-3'],
  run: (ctx) => refusedWith(ctx, R.LM_TX_3, Reason.txOperator, (t) => {
    const other = identityKeyPair();
    return t.tx(ctx.data, { operatorSecret: other.secretKey, operatorPublic: other.publicKey });
  }),
};

export const refusalSigned: Scenario = {
  id: 'device/refusal-signed', title: 'answers refused OFFERs with ERROR signed by its identity key and keeps serving through forged ones', covers: ['LM-FRAME-9', 'LM-TX-4', 'LM-MQTT-4'],
  async run(ctx) {
    const t = ctx.tester;
    const m = t.tx(ctx.data, { notBefore: Date.now() - 7200_000, notAfter: Date.now() - 3600_000 });
    const r = await t.offer(t.params({ w: 16 }), m.tx, m.licence, { waitReady: false }).catch((e: unknown) => {
      throw new Error(`no answer to an OFFER of an expired transaction: ${errorMessage(e)}`);
    });
    check(ctx, R.LM_FRAME_9, 'refused' in r, 'device accepted an expired transaction');
    check(ctx, R.LM_TX_4, r.refused.code === Reason.txExpired, `refused with ${r.refused.code}; expected ${Reason.txExpired}`);
    const session = [...t.sessionsRefused()].pop();
    check(ctx, R.LM_FRAME_9, session?.refusalSigned, 'the refusal is not an ERROR signed with the device\'s identity key naming the refused OFFER (oh) ([LM-FRAME-9])');
    // forged OFFERs: a genuine one with bytes flipped, truncated or extended
    const genuine = t.rawOffer(t.params({ w: 16 }), t.tx(ctx.data));
    let seed = 0x9e3779b9;
    const rnd = (n: number) => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) % n);
    for (let i = 0; i < FORGED; i++) {
      const b = genuine.slice(0, i % 7 === 0 ? rnd(genuine.length) : genuine.length);
      // every mutation changes its byte: an unchanged copy of the genuine OFFER would start a session
      for (let k = 0; k < 1 + rnd(3) && b.length; k++) {
        const at = rnd(b.length);
        b[at] = (b[at] as number) ^ (1 + rnd(255));
      }
      await t.sendRaw(i % 11 === 0 ? new Uint8Array([...b, ...randomBytes(1 + rnd(8))]) : b);
    }
    // forged OFFERs cost the device nothing it needs to serve: the valid one is taken and streams ([LM-FRAME-9], [LM-MQTT-4])
    const s = await ctx.checks.expect(R.LM_MQTT_4, () => open(ctx, 16), `after ${FORGED} forged OFFERs the device does not take a valid one`);
    await deliverExact(ctx, s, [R.LM_FRAME_9]);
  },
};

export const txPrintCount: Scenario = {
  id: 'device/tx-print-count', title: 'refuses a transaction whose print count is used up, handing back the last RECEIPT', covers: ['LM-TX-7', 'LM-LIC-6'],
  async run(ctx) {
    const t = ctx.tester;
    const m = t.tx(ctx.data, { prints: 1 });
    const first = await t.offer(t.params({ w: 16, L: minHintLength(16) + 2 }), m.tx, m.licence);
    if ('refused' in first) throw new Error(`first use refused: ${first.refused.detail}`);
    await deliverExact(ctx, first);
    const second = await t.offer(t.params({ w: 16 }), m.tx, m.licence, { waitReady: false });
    check(ctx, R.LM_TX_7, 'refused' in second, 'device accepted a transaction beyond its print count');
    check(ctx, R.LM_TX_7, second.refused.code === Reason.txCount, `refused with ${second.refused.code}; expected ${Reason.txCount}`);
    // [LM-LIC-6]: the refusal carries the RECEIPT of the transaction's last completed session, so a
    // gateway that lost it on its way can still put it in its ledger
    const rc = second.refused.rc;
    check(ctx, R.LM_LIC_6, rc !== undefined, 'the tx-count refusal carries no RECEIPT (ERROR key 6 rc) of the completed print');
    check(ctx, R.LM_LIC_6, first.receiptBytes !== undefined && equalBytes(rc, first.receiptBytes), 'the RECEIPT in the refusal is not the one the device signed for the completed session');
  },
};

export const txOtherGateway: Scenario = {
  id: 'device/tx-other-gateway', title: 'refuses an offer from a gateway the transaction does not name', covers: ['LM-FRAME-6'],
  run: (ctx) => refusedWith(ctx, R.LM_FRAME_6, Reason.txGateway, (t) => t.tx(ctx.data, { gatewayPublic: identityKeyPair().publicKey })),
};

export const licenceSealedElsewhere: Scenario = {
  id: 'device/licence-sealed-elsewhere', title: 'refuses a licence sealed to another key', covers: ['LM-TX-1'],
  run: (ctx) => refusedWith(ctx, R.LM_TX_1, Reason.txSchema, (t) => {
    const other = t.tx(ctx.data, { devicePublic: identityKeyPair().publicKey });
    return t.tx(ctx.data, { bodyPatch: (b) => void (b.lic = other.tx.body.lic) });
  }),
};

export const paramsOutOfRange: Scenario = {
  id: 'device/params-out-of-range', title: 'refuses each parameter outside the spec\'s ranges as params: w, L, the grace window, N·L',
  covers: ['LM-PARAM-1', 'LM-PARAM-2', 'LM-PARAM-3', 'LM-PARAM-5', 'LM-PARAM-6'],
  async run(ctx) {
    const t = ctx.tester;
    const base = t.params({ w: 16 });
    const cases: [RequirementId, string, SessionParams][] = [
      [R.LM_PARAM_2, 'w = 25', { ...base, w: 25, L: 5 }],
      [R.LM_PARAM_3, `L = ${minHintLength(16) - 1} at w = 16 (8·L < w + 8)`, { ...base, L: minHintLength(16) - 1 }],
      [R.LM_PARAM_5, `G = P / 2 (${base.period / 2} ms)`, { ...base, grace: base.period / 2 }],
      [R.LM_PARAM_6, 'N = 2048 hints of L = 32 (N·L = 65536 > 49152)', { ...base, L: 32, symbolsPerFrame: 2048 }],
    ];
    for (const [id, what, params] of cases) {
      const m = t.tx(ctx.data);
      const r = await t.offer(params, m.tx, m.licence, { waitReady: false });
      for (const x of [id, R.LM_PARAM_1]) check(ctx, x, 'refused' in r && r.refused.code === Reason.params, `an OFFER with ${what}: ${'refused' in r ? `refused with ${r.refused.code} (${r.refused.detail})` : 'accepted'}; expected params (49)`);
    }
  },
};

export const zeroEphemeral: Scenario = {
  id: 'device/zero-ephemeral', title: 'refuses an OFFER whose ephemeral key gives an all-zero X25519 secret as auth', covers: ['LM-KEY-1'],
  async run(ctx) {
    const t = ctx.tester;
    const m = t.tx(ctx.data);
    // the all-zero u-coordinate is of small order: X25519 with any secret gives 32 zero bytes
    const raw = encodeFrame(FrameType.OFFER, { sid: randomBytes(16), tx: m.tx.bytes, epk: new Uint8Array(32), params: t.params({ w: 16, L: minHintLength(16) + 2 }), gwpk: t.gateway.identity.publicKey, time: Date.now() }, { kind: 'sig', secretKey: t.gateway.identity.secretKey });
    await t.sendRaw(raw);
    const got = await until(() => t.refusalsOf(raw)[0], 5000, 'a signed refusal of the OFFER').catch(() => undefined);
    const accepted = t.inbound.some((x) => x.f.type === FrameType.ACCEPT && equalBytes((x.f.body as { oh?: Uint8Array }).oh ?? new Uint8Array(0), digest(raw)));
    check(ctx, R.LM_KEY_1, !accepted, 'the device accepted an OFFER whose ephemeral key gives an all-zero shared secret');
    check(ctx, R.LM_KEY_1, got?.code === Reason.auth, `expected a refusal with auth (9); got ${got ? `${got.code} (${got.detail})` : 'none in 5 s'}`);
  },
};

export const servesAfterRefusal: Scenario = {
  id: 'device/serves-after-refusal', title: 'after refusing an OFFER it serves the next valid one: a refusal leaves no state behind', covers: ['LM-FRAME-9', 'LM-TX-3'],
  async run(ctx) {
    const t = ctx.tester;
    const other = identityKeyPair();
    const bad = t.tx(ctx.data, { operatorSecret: other.secretKey, operatorPublic: other.publicKey });
    const r = await t.offer(t.params({ w: 16 }), bad.tx, bad.licence, { waitReady: false });
    check(ctx, R.LM_TX_3, 'refused' in r && r.refused.code === Reason.txOperator, `an OFFER signed under an untrusted operator was not refused with tx-operator (${'refused' in r ? r.refused.code : 'accepted'})`);
    const s = await ctx.checks.expect(R.LM_FRAME_9, () => open(ctx, 16), 'the valid OFFER right after a refused one');
    await deliverExact(ctx, s, [R.LM_FRAME_9]);
  },
};

/** Validly signed OFFERs the flood sends within a second, each refused (expired transaction). */
const FLOOD = 100;

export const offerFlood: Scenario = {
  id: 'device/offer-flood', title: 'a flood of refused OFFERs during a session gets a bounded number of answers and does not starve the session', covers: ['LM-FRAME-24'],
  async run(ctx) {
    const t = ctx.tester;
    const s = await open(ctx, 16);
    // signed OFFERs of an expired transaction: each needs two signature checks to refuse
    const raws = Array.from({ length: FLOOD }, () => t.rawOffer(t.params({ w: 16 }), t.tx(ctx.data, { notBefore: Date.now() - 7200_000, notAfter: Date.now() - 3600_000 })));
    const delivery = deliverExact(ctx, s, [R.LM_FRAME_24]);
    delivery.catch(() => undefined);
    const from = Date.now();
    for (const raw of raws) await t.sendRaw(raw);
    const sentIn = Date.now() - from;
    await delivery;
    const answered = raws.filter((raw) => t.refusalsOf(raw).length > 0).length;
    ctx.log(`device/offer-flood: ${answered} of ${FLOOD} OFFERs sent in ${sentIn} ms answered`);
    check(ctx, R.LM_FRAME_24, answered < FLOOD, `the device answered all ${FLOOD} OFFERs of a flood sent in ${sentIn} ms: its refusals are not bounded`);
  },
};
