/**
 * The OFFER rules of SPEC.md §11.4 that need no broker, through the OFFER desk and a host of its
 * own (the OfferHost interface of offer.ts, here backed by a real Licences store): a fresh OFFER
 * of a transaction whose print was cut off is refused with the ticket ([LM-LIC-4]), also when it
 * takes over a session whose gateway fell silent ([LM-DLV-13]); a ticket resumes once and counts
 * nothing ([LM-LIC-1], [LM-LIC-4]); a resume without a ticket is refused; a replayed session id is
 * refused after a reload of the store, and so is a stale OFFER time ([LM-LIC-5]).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Caps, type ErrorBody, FrameType, type FrameTypeId, type IdentityKeyPair, type OfferBody, type SessionParams, type SignedTx, Reason, Revocations,
  createTx, decodeFrame, digest, encodeFrame, equalBytes, identityKeyPair, randomBytes, toHex, verifyFrame, verifyTicket, x25519KeyPair,
} from '@livematrix/spec';
import { Licences, type LicenceStore, fileLicenceStore, memoryLicenceStore } from '../src/licences.js';
import { OfferDesk, type OfferHost, type RunningSession, type SessionInit, TAKEOVER_SILENCE_MS, offerChecks } from '../src/offer.js';
import type { OfferFrame } from '../src/frames.js';
import type { RejectEvent } from '../src/stream.js';

const DEVICE = 'printer-1';
const caps: Caps = { suites: [[3, 40_000_000]], mem: 2 ** 30, wmax: 20, workers: 2 };
const params: SessionParams = { suite: 3, w: 16, L: 3, period: 1000, epoch: 0, grace: 250, r0: 0, chunk: 1024, symbolsPerFrame: 4096, wt: 16 };

/** A session the desk opened, as the host runs it. */
interface Opened {
  init: SessionInit;
  /** whether the host's session ended (the desk sees no running session then) */
  ended: boolean;
  /** ms of gateway silence the session reports ([LM-DLV-13]) */
  silent: number;
  interrupted?: string;
}

/** The device around an OFFER desk: its identity, its licence state, what it sends, refuses and opens. */
class Host implements OfferHost {
  now = 1_800_000_000_000;
  readonly clock = () => this.now;
  readonly deviceId = DEVICE;
  readonly window = 1 << 20;
  readonly revocations = new Revocations();
  readonly resume = undefined;
  readonly licences: Licences;
  readonly sent: { type: FrameTypeId; frame: Uint8Array }[] = [];
  readonly rejected: RejectEvent[] = [];
  readonly opened: Opened[] = [];

  constructor(readonly identity: IdentityKeyPair, readonly trustedOperators: readonly Uint8Array[], store: LicenceStore) {
    this.licences = new Licences(store, identity, DEVICE, this.clock);
  }

  caps(): Caps {
    return caps;
  }

  running(): RunningSession | undefined {
    const o = this.opened[this.opened.length - 1];
    if (!o || o.ended) return undefined;
    return {
      txh: toHex(o.init.tx.hash),
      silentFor: () => o.silent,
      // as the device's session does: a session cut off holds its ticket ([LM-LIC-3])
      interrupt: (detail) => {
        o.interrupted = detail;
        o.init.licence.hold(0);
        o.ended = true;
      },
    };
  }

  async send(frame: Uint8Array, type: FrameTypeId): Promise<void> {
    this.sent.push({ type, frame });
  }

  reject(ev: RejectEvent): void {
    this.rejected.push(ev);
  }

  async open(init: SessionInit): Promise<void> {
    this.opened.push({ init, ended: false, silent: 0 });
  }

  /** The device's signed refusals ([LM-FRAME-9]), checked against its identity key. */
  refusals(): ErrorBody[] {
    return this.sent.filter((s) => s.type === FrameType.ERROR).map((s) => {
      const f = decodeFrame(s.frame);
      if (f.type !== FrameType.ERROR) throw new Error('not an ERROR');
      expect(verifyFrame(f, { signer: this.identity.publicKey })).toBe(true);
      return f.body;
    });
  }
}

/** The operator, the gateway and the device of one test. */
class World {
  readonly operator = identityKeyPair();
  readonly gateway = identityKeyPair();
  readonly device = identityKeyPair();

  host(store: LicenceStore = memoryLicenceStore()): { host: Host; desk: OfferDesk } {
    const host = new Host(this.device, [this.operator.publicKey], store);
    return { host, desk: new OfferDesk(host, offerChecks(), 1000) };
  }

  tx(now: number, prints = 1): { tx: SignedTx; licence: Uint8Array } {
    const job = randomBytes(5000);
    return createTx({
      job: 'part', plaintext: { digest: digest(job), size: job.length }, device: DEVICE, devicePublic: this.device.publicKey,
      operatorSecret: this.operator.secretKey, operatorPublic: this.operator.publicKey, notBefore: now - 60_000, notAfter: now + 3600_000,
      rate: 1e6, burst: 1e6, prints, gatewayPublic: this.gateway.publicKey,
    });
  }

  /** A signed OFFER as a gateway sends it: the frame the desk takes and its bytes. */
  offer(tx: SignedTx, now: number, o: Partial<Pick<OfferBody, 'resume' | 'tk' | 'time' | 'sid'>> = {}): { f: OfferFrame; bytes: Uint8Array } {
    const body: OfferBody = { sid: o.sid ?? randomBytes(16), tx: tx.bytes, epk: x25519KeyPair().publicKey, params, gwpk: this.gateway.publicKey, time: o.time ?? now, ...(o.resume !== undefined ? { resume: o.resume } : {}), ...(o.tk ? { tk: o.tk } : {}) };
    const bytes = encodeFrame(FrameType.OFFER, body, { kind: 'sig', secretKey: this.gateway.secretKey });
    const f = decodeFrame(bytes);
    if (f.type !== FrameType.OFFER) throw new Error('not an OFFER');
    return { f, bytes };
  }
}

/** Offers a fresh OFFER, opens its session and passes the counting point, then cuts it off: the desk holds its ticket. */
async function cutOffPrint(w: World, host: Host, desk: OfferDesk, tx: SignedTx, consumed: number): Promise<Opened> {
  const o = w.offer(tx, host.now);
  await desk.onOffer(o.f, o.bytes);
  const s = host.opened[host.opened.length - 1];
  expect(s && equalBytes(s.init.sid, o.f.body.sid), `the OFFER was not accepted: ${JSON.stringify(host.rejected)}`).toBe(true);
  s!.init.licence.start(); // the first plaintext byte goes to the consumer ([LM-LIC-1])
  s!.init.licence.hold(consumed); // the gateway is gone ([LM-DLV-13])
  s!.ended = true;
  return s!;
}

describe('OFFERs of a transaction whose print was cut off [LM-LIC-4]', () => {
  it('refuses a fresh OFFER with tx-resume carrying the held ticket, and counts no second print', async () => {
    const w = new World();
    const { host, desk } = w.host();
    const { tx } = w.tx(host.now);
    const first = await cutOffPrint(w, host, desk, tx, 2048);
    const again = w.offer(tx, host.now);
    await desk.onOffer(again.f, again.bytes);
    expect(host.opened).toHaveLength(1);
    const [r] = host.refusals();
    expect(r?.code).toBe(Reason.txResume);
    expect(r?.oh && equalBytes(r.oh, digest(again.bytes))).toBe(true);
    const t = verifyTicket(r!.tk!, { device: DEVICE, devicePublic: w.device.publicKey, txh: tx.hash, now: host.now });
    expect(equalBytes(t.body.sid, first.init.sid)).toBe(true);
    expect(t.body.off).toBe(2048);
    expect(host.licences.used(toHex(tx.hash))).toBe(1);
  });

  it('takes over a session whose gateway is silent beyond 2.5 s and answers with the ticket it now holds [LM-DLV-13]', async () => {
    const w = new World();
    const { host, desk } = w.host();
    const { tx } = w.tx(host.now);
    const o = w.offer(tx, host.now);
    await desk.onOffer(o.f, o.bytes);
    const s = host.opened[0]!;
    s.init.licence.start();
    // the gateway still heard from: busy
    s.silent = TAKEOVER_SILENCE_MS;
    const early = w.offer(tx, host.now);
    await desk.onOffer(early.f, early.bytes);
    expect(host.refusals().map((r) => r.code)).toEqual([Reason.busy]);
    // silent beyond the take-over time: the session ends as interrupted, and the OFFER gets its ticket
    s.silent = TAKEOVER_SILENCE_MS + 1;
    const late = w.offer(tx, host.now);
    await desk.onOffer(late.f, late.bytes);
    expect(s.interrupted).toMatch(/silent/);
    const r = host.refusals()[1];
    expect(r?.code).toBe(Reason.txResume);
    expect(verifyTicket(r!.tk!, { device: DEVICE, devicePublic: w.device.publicKey, txh: tx.hash, now: host.now }).body.sid).toEqual(s.init.sid);
    expect(host.opened).toHaveLength(1);
  });
});

describe('a ticket resumes once [LM-LIC-4] [LM-LIC-1]', () => {
  it('accepts a resume with the ticket without counting, then refuses the same ticket again and a fresh OFFER with tx-count', async () => {
    const w = new World();
    const { host, desk } = w.host();
    const { tx } = w.tx(host.now);
    const h = toHex(tx.hash);
    await cutOffPrint(w, host, desk, tx, 0);
    const ticket = host.licences.held(h)!;
    const resume = w.offer(tx, host.now, { resume: true, tk: ticket.bytes });
    await desk.onOffer(resume.f, resume.bytes);
    expect(host.opened).toHaveLength(2);
    const resumed = host.opened[1]!;
    expect(equalBytes(resumed.init.sid, resume.f.body.sid)).toBe(true);
    resumed.init.licence.start(); // a resume's counting point counts nothing
    expect(host.licences.used(h)).toBe(1);
    resumed.init.licence.close(); // it completes
    resumed.ended = true;
    // the same ticket again: spent
    const twice = w.offer(tx, host.now, { resume: true, tk: ticket.bytes });
    await desk.onOffer(twice.f, twice.bytes);
    // no ticket, no print left
    const fresh = w.offer(tx, host.now);
    await desk.onOffer(fresh.f, fresh.bytes);
    expect(host.refusals().map((r) => [r.code, r.tk === undefined])).toEqual([[Reason.txResume, true], [Reason.txCount, true]]);
    expect(host.opened).toHaveLength(2);
    expect(host.licences.used(h)).toBe(1);
  });

  it('a spent ticket stays spent after a reload of the store', async () => {
    const w = new World();
    const dir = mkdtempSync(join(tmpdir(), 'lm-offer-'));
    try {
      const a = w.host(fileLicenceStore(dir));
      const { tx } = w.tx(a.host.now);
      await cutOffPrint(w, a.host, a.desk, tx, 0);
      const ticket = a.host.licences.held(toHex(tx.hash))!;
      const resume = w.offer(tx, a.host.now, { resume: true, tk: ticket.bytes });
      await a.desk.onOffer(resume.f, resume.bytes);
      expect(a.host.opened).toHaveLength(2);
      // the device restarts: the resumed session's own ticket is held now, the one it spent is not
      const b = w.host(fileLicenceStore(dir));
      const twice = w.offer(tx, b.host.now, { resume: true, tk: ticket.bytes });
      await b.desk.onOffer(twice.f, twice.bytes);
      expect(b.host.refusals().map((r) => r.code)).toEqual([Reason.txResume]);
      expect(b.host.opened).toHaveLength(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses resume true without a ticket, and a ticket signed by another key, with tx-resume', async () => {
    const w = new World();
    const { host, desk } = w.host();
    const { tx } = w.tx(host.now);
    const bare = w.offer(tx, host.now, { resume: true });
    await desk.onOffer(bare.f, bare.bytes);
    const other = new World();
    const o = other.host();
    const { tx: otherTx } = other.tx(o.host.now);
    await cutOffPrint(other, o.host, o.desk, otherTx, 0);
    const foreign = o.host.licences.held(toHex(otherTx.hash))!;
    const wrong = w.offer(tx, host.now, { resume: true, tk: foreign.bytes });
    await desk.onOffer(wrong.f, wrong.bytes);
    expect(host.refusals().map((r) => r.code)).toEqual([Reason.txResume, Reason.txResume]);
    expect(host.opened).toHaveLength(0);
    expect(host.licences.used(toHex(tx.hash))).toBe(0);
  });
});

describe('fresh OFFERs [LM-LIC-5]', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('refuses a replayed session id as replay after a reload of the store, counting nothing', async () => {
    const w = new World();
    const dir = mkdtempSync(join(tmpdir(), 'lm-offer-'));
    dirs.push(dir);
    const a = w.host(fileLicenceStore(dir));
    const { tx } = w.tx(a.host.now, 5);
    const o = w.offer(tx, a.host.now);
    await a.desk.onOffer(o.f, o.bytes);
    expect(a.host.opened).toHaveLength(1);
    // the device restarts, and the same OFFER comes again within its time window
    const b = w.host(fileLicenceStore(dir));
    b.host.now = a.host.now + 60_000;
    await b.desk.onOffer(o.f, o.bytes);
    expect(b.host.refusals().map((r) => r.code)).toEqual([Reason.replay]);
    expect(b.host.opened).toHaveLength(0);
    expect(b.host.licences.used(toHex(tx.hash))).toBe(0);
    // a new sid of the same transaction is taken
    const fresh = w.offer(tx, b.host.now);
    await b.desk.onOffer(fresh.f, fresh.bytes);
    expect(b.host.opened).toHaveLength(1);
  });

  it('refuses an OFFER whose time is more than 120 s from the device clock as replay', async () => {
    const w = new World();
    const { host, desk } = w.host();
    const { tx } = w.tx(host.now, 5);
    for (const off of [-120_001, 120_001]) {
      const o = w.offer(tx, host.now, { time: host.now + off });
      await desk.onOffer(o.f, o.bytes);
    }
    const within = w.offer(tx, host.now, { time: host.now - 119_000 });
    await desk.onOffer(within.f, within.bytes);
    expect(host.refusals().map((r) => r.code)).toEqual([Reason.replay, Reason.replay]);
    expect(host.opened).toHaveLength(1);
  });
});
