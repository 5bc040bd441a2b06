/**
 * The offer phase without a broker ([LM-FRAME-7], [LM-FRAME-9], [LM-FRAME-5]): a signed OFFER,
 * the offer timeout, re-offers to a busy device, refusals that count and those that do not,
 * and an ACCEPT that answers the OFFER with the same session keys on both sides.
 */
import { describe, expect, it } from 'vitest';
import {
  type AnyFrame, type Caps, FrameType, type LmError, Reason, createTx, decodeFrame, deriveSessionKeys, digest, ecdh, encodeFrame, identityKeyPair, randomBytes, transcriptHash,
  verifyFrame, x25519KeyPair,
} from '@livematrix/spec';
import { OfferRefusedError, OfferTimeoutError } from '../src/errors.js';
import { type AcceptFrame, type OfferHost, Offering } from '../src/offer.js';
import { ManualClock } from '@livematrix/testkit';

const CAPS: Caps = { suites: [[3, 40_000_000]], mem: 2 ** 30, wmax: 24, workers: 2 };
const operator = identityKeyPair();
const device = identityKeyPair();
const gateway = identityKeyPair();

function rig() {
  const clock = new ManualClock(Date.now());
  const { tx, licence } = createTx({
    job: 'j', plaintext: { digest: digest(new Uint8Array(10)), size: 10 }, device: 'p1', devicePublic: device.publicKey, operatorSecret: operator.secretKey,
    operatorPublic: operator.publicKey, notBefore: clock.t - 60_000, notAfter: clock.t + 3_600_000, rate: 1e6, burst: 1e6, gatewayPublic: gateway.publicKey,
  });
  const offers: { raw: Uint8Array; f: AnyFrame }[] = [];
  const failures: { e: LmError; tell: boolean | undefined }[] = [];
  const rejects: string[] = [];
  const logs: string[] = [];
  const host: OfferHost = {
    clock, identity: gateway, device: 'p1', tx, licence, opts: { offerTimeout: 10_000, busyWait: 15_000 },
    publishOffer: async (raw) => void offers.push({ raw, f: decodeFrame(raw) }),
    log: (l) => void logs.push(l), reject: (_c, d) => void rejects.push(d), fail: (e, tell) => void failures.push({ e, tell }), ended: () => failures.length > 0,
    recovered: (_rc, e) => void failures.push({ e, tell: false }),
  };
  const hello = { device: 'p1', idpk: device.publicKey, caps: CAPS, time: clock.t, software: 't', online: true };
  return { clock, tx, licence, host, hello, offers, failures, rejects, logs };
}

/** A refusal of `sid` as the device sends it, signed by `signer`, or unauthenticated. */
function refusal(sid: Uint8Array, code: number, signer?: Uint8Array, offer?: Uint8Array): AnyFrame {
  return decodeFrame(encodeFrame(FrameType.ERROR, { sid, code, detail: 'no', ...(offer ? { oh: digest(offer) } : {}) }, signer ? { kind: 'sig', secretKey: signer } : { kind: 'none' }));
}

/** The OFFER the gateway sent last. */
const lastOffer = (r: { offers: { raw: Uint8Array }[] }) => r.offers[r.offers.length - 1]!.raw;

const tick = () => new Promise((r) => setImmediate(r));

describe('offer [LM-FRAME-9]', () => {
  it('sends an OFFER signed by the gateway, with the negotiated parameters and resume flag', async () => {
    const r = rig();
    const o = new Offering(r.host, true);
    await o.send(r.hello);
    const { f } = r.offers[0]!;
    expect(f.type).toBe(FrameType.OFFER);
    if (f.type !== FrameType.OFFER) return;
    expect(verifyFrame(f, { signer: gateway.publicKey })).toBe(true);
    expect(f.body.sid).toEqual(o.sid);
    expect(f.body.resume).toBe(true);
    expect(f.body.params).toEqual(o.params);
    expect(f.body.tx).toEqual(r.tx.bytes);
  });

  it('fails after the offer timeout, naming what an unauthenticated refusal said', async () => {
    const r = rig();
    const o = new Offering(r.host, false);
    await o.send(r.hello);
    o.beforeAccept(refusal(o.sid, Reason.txCount));
    expect(r.rejects).toEqual([`p1: unauthenticated refusal ignored (tx-count: no) ([LM-FRAME-5])`]);
    r.clock.advance(9_999);
    expect(r.failures).toEqual([]);
    r.clock.advance(1);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]!.e).toBeInstanceOf(OfferTimeoutError);
    expect(r.failures[0]!.e.message).toContain('did not accept the OFFER within 10 s; an unauthenticated message said: tx-count: no');
  });

  it('an OFFER without any answer goes again under a new sid every 3 s (a device under a flood drops OFFERs unchecked), within one offer timeout', async () => {
    const r = rig();
    const o = new Offering(r.host, false);
    await o.send(r.hello);
    const first = o.sid;
    r.clock.advance(2_999);
    expect(r.offers).toHaveLength(1);
    r.clock.advance(1);
    await tick();
    expect(r.offers).toHaveLength(2);
    expect(o.sid).not.toEqual(first);
    r.clock.advance(7_000); // 10 s after the first OFFER: the timeout runs from it
    await tick();
    expect(r.offers).toHaveLength(4);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]!.e).toBeInstanceOf(OfferTimeoutError);
  });

  it('a refusal signed by another key is ignored; one signed by the device ends the offer without telling it', async () => {
    const r = rig();
    const o = new Offering(r.host, false);
    await o.send(r.hello);
    o.beforeAccept(refusal(o.sid, Reason.txCount, identityKeyPair().secretKey, lastOffer(r)));
    expect(r.failures).toEqual([]);
    expect(r.rejects[0]).toMatch(/^p1: refusal not signed by the device/);
    o.beforeAccept(refusal(o.sid, Reason.txCount, device.secretKey, new Uint8Array(10))); // [LM-FRAME-9]: a refusal of another OFFER under our sid
    expect(r.failures).toEqual([]);
    expect(r.rejects.at(-1)).toMatch(/a signed refusal of another OFFER under our session id ignored/);
    o.beforeAccept(refusal(o.sid, Reason.txCount, device.secretKey, lastOffer(r)));
    expect(r.failures[0]!.e).toBeInstanceOf(OfferRefusedError);
    expect(r.failures[0]!.e.code).toBe(Reason.txCount);
    expect(r.failures[0]!.tell).toBe(false);
  });

  it('offers a busy device again every second under a new session id, until the busy wait is over', async () => {
    const r = rig();
    const o = new Offering(r.host, false);
    await o.send(r.hello);
    const sids = [o.sid];
    for (let i = 0; i < 15; i++) {
      o.beforeAccept(refusal(o.sid, Reason.busy, device.secretKey, lastOffer(r)));
      r.clock.advance(1000);
      await tick();
      sids.push(o.sid);
    }
    expect(r.offers).toHaveLength(16);
    expect(new Set(sids.map((s) => Buffer.from(s).toString('hex'))).size).toBe(16);
    expect(r.failures).toEqual([]);
    o.beforeAccept(refusal(o.sid, Reason.busy, device.secretKey, lastOffer(r))); // 15 s after the first OFFER
    expect(r.failures[0]!.e.code).toBe(Reason.busy);
  });
});

describe('accept [LM-FRAME-7]', () => {
  function accept(sid: Uint8Array, offerRaw: Uint8Array, signer = device, from?: number) {
    const eph = x25519KeyPair();
    const raw = encodeFrame(FrameType.ACCEPT, { sid, epk: eph.publicKey, oh: digest(offerRaw), window: 65_536, ...(from !== undefined ? { from } : {}) }, { kind: 'sig', secretKey: signer.secretKey });
    return { raw, f: decodeFrame(raw) as AcceptFrame, eph };
  }

  it('derives the keys the device derives and stops the offer timeout', async () => {
    const r = rig();
    const o = new Offering(r.host, false);
    await o.send(r.hello);
    const offer = r.offers[0]!;
    const a = accept(o.sid, offer.raw, device, 8192);
    const got = o.accept(a.f, a.raw);
    if (offer.f.type !== FrameType.OFFER) throw new Error('not an OFFER');
    const theirs = deriveSessionKeys(ecdh(a.eph.secretKey, offer.f.body.epk), r.licence, transcriptHash(offer.raw, a.raw));
    expect(got.keys.fkG2d).toEqual(theirs.fkG2d);
    expect(got.keys.fkD2g).toEqual(theirs.fkD2g);
    expect(got.g2d.keysFor(o.params.r0).hk.length).toBe(32);
    expect(got.window).toBe(65_536);
    expect(got.from).toBe(8192);
    r.clock.advance(60_000);
    expect(r.failures).toEqual([]);
  });

  it('refuses an ACCEPT of another OFFER or signed by another key, with auth', async () => {
    const r = rig();
    const o = new Offering(r.host, false);
    await o.send(r.hello);
    const stale = accept(o.sid, randomBytes(100));
    expect(() => o.accept(stale.f, stale.raw)).toThrow(/ACCEPT does not answer our OFFER/);
    const forged = accept(o.sid, r.offers[0]!.raw, identityKeyPair());
    expect(() => o.accept(forged.f, forged.raw)).toThrow(expect.objectContaining({ code: Reason.auth }));
  });
});
