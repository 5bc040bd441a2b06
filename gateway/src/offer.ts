/**
 * @module offer
 * From OFFER to ACCEPT (SPEC.md §7.3 steps 2 and 3): the OFFER signed with the gateway's key,
 * the device's refusals ([LM-FRAME-9]: only a refusal signed by the transaction's device key
 * ends the offer, an unsigned one is advisory, [LM-FRAME-5]), re-offers to a device that is
 * busy, the offer timeout, and the ACCEPT that answers the OFFER with the session keys
 * ([LM-FRAME-7], [LM-KEY-2], [LM-KEY-4]).
 */
import {
  type AnyFrame, FrameType, type Frame, NO_LICENCE, type HelloBody, type IdentityKeyPair, LmError, Ratchet, Reason, type SessionKeys, type SessionParams, type SignedTicket, type SignedTx,
  deriveSessionKeys, digest, ecdh, encodeFrame, equalBytes, isReasonCode, negotiate, randomBytes, reasonName, toLmError, transcriptHash, verifyFrame, verifyTicket, wipe, x25519KeyPair,
} from '@livematrix/spec';
import { type Cancel, type Clock, noTimer } from './clock.js';
import { OfferRefusedError, OfferTimeoutError } from './errors.js';
import type { StreamOptions } from './types.js';

export type AcceptFrame = Frame<typeof FrameType.ACCEPT>;

/** What an offer needs from its stream. */
export interface OfferHost {
  readonly clock: Clock;
  readonly identity: IdentityKeyPair;
  readonly device: string;
  readonly tx: SignedTx;
  /** the licence secret; undefined for a protected job, whose keys service holds it ([LM-PROT-2]) */
  readonly licence: Uint8Array | undefined;
  readonly opts: StreamOptions;
  /** publishes the signed OFFER on the device's inbound topic */
  publishOffer(frame: Uint8Array): Promise<void>;
  log(line: string): void;
  reject(code: number, detail: string): void;
  fail(e: LmError, tell?: boolean): void;
  ended(): boolean;
  /**
   * The device refused with the RECEIPT of a session of this transaction that reached no ledger
   * ([LM-LIC-6]): append it and end delivered, or fail with `refusal` when it does not check out.
   */
  recovered(rc: Uint8Array, refusal: LmError): void;
}

/** What an ACCEPT gives the session. */
export interface Accepted {
  keys: SessionKeys;
  g2d: Ratchet;
  d2g: Ratchet;
  /** the device's receive window in plaintext bytes ([LM-DLV-5]) */
  window: number;
  /** the resume point the device asks for, 0 for a fresh start ([LM-DLV-10]) */
  from: number;
  /** the device's ticket the accepted OFFER carried: a resume that counts no print ([LM-LIC-4]) */
  ticket: SignedTicket | undefined;
  /** SHA-256 of OFFER ‖ ACCEPT: what the keys service wraps a protected job's keys for ([LM-PROT-2]) */
  th: Uint8Array;
}

/** ms between re-offers to a busy device */
const REOFFER_AFTER = 1000;
/**
 * ms without any answer after which an OFFER goes again under a new sid: a device under a flood
 * of OFFERs checks a bounded number per second and drops the rest unanswered ([LM-FRAME-9])
 */
const REOFFER_SILENT = 3000;
/** OFFERs with a ticket the device handed over, at most, before the offer fails ([LM-LIC-4]) */
const TICKET_OFFERS = 3;

/** The offer phase of one session: its OFFERs until one is accepted, refused, or times out. */
export class Offering {
  /** the session id of the latest OFFER (a re-offer draws a new one) */
  sid = randomBytes(16);
  private ephemeral = x25519KeyPair();
  private offer: { params: SessionParams; bytes: Uint8Array } | undefined;
  /** the HELLO the current OFFER answers (a restart needs a later one, [LM-MQTT-6]) */
  private helloBody: HelloBody | undefined;
  /** when offering began, for `busyWait` */
  private since: number | undefined;
  /** an unauthenticated refusal: advisory only ([LM-FRAME-5]), reported if no ACCEPT comes */
  private advisory: string | undefined;
  private cancelTimer: Cancel = noTimer;
  private cancelRetry: Cancel = noTimer;
  private accepted = false;
  /** the device's resume ticket, once it handed one over in a refusal ([LM-LIC-4]) */
  private ticket: SignedTicket | undefined;
  private ticketOffers = 0;

  constructor(
    private readonly host: OfferHost,
    /** offers only the resume of a cut-off print ([LM-DLV-10], [LM-LIC-4]) */
    private resume: boolean,
  ) {}

  /** The parameters of the latest OFFER. */
  get params(): SessionParams {
    if (!this.offer) throw new LmError(Reason.internal, 'no OFFER was made yet');
    return this.offer.params;
  }

  get hello(): HelloBody | undefined {
    return this.helloBody;
  }

  /** Negotiates ([LM-CAP-2]) with the device's HELLO and sends a signed OFFER; waits for ACCEPT up to the offer timeout. */
  async send(hello: HelloBody): Promise<void> {
    const now = this.host.clock.now();
    this.helloBody = hello;
    // the offer timeout runs from the first OFFER (a busy refusal, which shows the device is there, restarts it)
    if (this.since === undefined) this.armTimeout();
    this.since ??= now;
    const params = negotiate(hello.caps, now, this.host.opts.policy ?? {});
    const { identity, tx } = this.host;
    const bytes = encodeFrame(FrameType.OFFER, {
      sid: this.sid, tx: tx.bytes, epk: this.ephemeral.publicKey, params, gwpk: identity.publicKey, time: now,
      ...(this.resume || this.ticket ? { resume: true } : {}), ...(this.ticket ? { tk: this.ticket.bytes } : {}),
    }, { kind: 'sig', secretKey: identity.secretKey });
    this.offer = { params, bytes };
    this.cancelRetry();
    this.cancelRetry = this.host.clock.after(REOFFER_SILENT, () => this.reoffer());
    await this.host.publishOffer(bytes);
  }

  private armTimeout(): void {
    this.cancelTimer();
    const offerTimeout = this.host.opts.offerTimeout ?? 10_000;
    this.cancelTimer = this.host.clock.after(offerTimeout, () => this.timedOut(offerTimeout));
  }

  private timedOut(offerTimeout: number): void {
    if (this.accepted || this.host.ended()) return;
    const why = this.advisory ? `; an unauthenticated message said: ${this.advisory}` : '';
    this.host.fail(new OfferTimeoutError(`device "${this.host.device}" did not accept the OFFER within ${offerTimeout / 1000} s${why}`));
  }

  /** Offers again under a new session id, after a refusal as `busy`. */
  private reoffer(): void {
    if (this.host.ended() || this.accepted || !this.helloBody) return;
    this.sid = randomBytes(16);
    wipe(this.ephemeral.secretKey);
    this.ephemeral = x25519KeyPair();
    void this.send(this.helloBody).catch((e: unknown) => this.host.fail(toLmError(e)));
  }

  /**
   * A frame before ACCEPT: only an ERROR signed by the transaction's device key ends the offer
   * ([LM-FRAME-9]); an unsigned one is advisory ([LM-FRAME-5]) and kept for the timeout's message.
   */
  beforeAccept(f: AnyFrame): void {
    if (f.type !== FrameType.ERROR) return;
    const { host } = this;
    const code = f.body.code;
    const detail = `${(isReasonCode(code) ? reasonName(code) : undefined) ?? code}: ${f.body.detail}`;
    if (f.authKind !== 'sig') {
      this.advisory = detail;
      host.reject(Reason.auth, `${host.device}: unauthenticated refusal ignored (${detail}) ([LM-FRAME-5])`);
      return;
    }
    try {
      verifyFrame(f, { signer: host.tx.body.dpk });
    } catch (e) {
      host.reject(Reason.auth, `${host.device}: refusal not signed by the device: ${toLmError(e).message}`);
      return;
    }
    // [LM-FRAME-9]: a refusal names the OFFER it refuses; one of another OFFER under our sid refuses nothing of ours
    if (!this.offer || !f.body.oh || !equalBytes(f.body.oh, digest(this.offer.bytes))) {
      host.reject(Reason.auth, `${host.device}: a signed refusal of another OFFER under our session id ignored ([LM-FRAME-9])`);
      return;
    }
    if (code === Reason.txResume && f.body.tk) return this.resumeWith(f.body.tk);
    if ((code === Reason.txResume || code === Reason.txCount) && f.body.rc) {
      return host.recovered(f.body.rc, new OfferRefusedError(code, `device refused the offer: ${f.body.detail}`)); // [LM-LIC-6]
    }
    const busyWait = host.opts.busyWait ?? 15_000;
    if (code === Reason.busy && host.clock.now() - (this.since ?? 0) < busyWait) {
      // its previous session may be ending ([LM-DLV-13]): offer again shortly
      host.log(`${host.device} is busy; offering again for up to ${busyWait / 1000} s`);
      this.armTimeout();
      this.cancelRetry();
      this.cancelRetry = host.clock.after(REOFFER_AFTER, () => this.reoffer());
      return;
    }
    host.fail(new OfferRefusedError(isReasonCode(code) ? code : Reason.internal, `device refused the offer: ${f.body.detail}`), false);
  }

  /**
   * The device holds a ticket of this transaction's cut-off print and handed it over in its
   * refusal ([LM-LIC-4]): offer again, at once, with it; the resume counts no print.
   */
  private resumeWith(tk: Uint8Array): void {
    const { host } = this;
    let t: SignedTicket;
    try {
      t = verifyTicket(tk, { device: host.tx.body.device, devicePublic: host.tx.body.dpk, txh: host.tx.hash, now: host.clock.now() });
    } catch (e) {
      return host.fail(toLmError(e), false);
    }
    if (++this.ticketOffers > TICKET_OFFERS) return host.fail(new OfferRefusedError(Reason.txResume, `device refused ${TICKET_OFFERS} OFFERs carrying its own ticket`), false);
    host.log(`${host.device} holds a resume ticket of this transaction (cut off at ${t.body.off} bytes); offering the resume`);
    this.ticket = t;
    this.resume = true;
    this.armTimeout();
    this.reoffer();
  }

  /**
   * Checks that an ACCEPT answers our OFFER, signed by the transaction's device key
   * ([LM-FRAME-7]), and derives the session keys from it ([LM-KEY-2]). Throws LmError `auth`
   * when it does not answer the OFFER.
   */
  accept(f: AcceptFrame, raw: Uint8Array): Accepted {
    verifyFrame(f, { signer: this.host.tx.body.dpk }); // [LM-FRAME-7]
    const offer = this.offer;
    if (!offer || !equalBytes(f.body.oh, digest(offer.bytes))) throw new LmError(Reason.auth, 'ACCEPT does not answer our OFFER ([LM-FRAME-7])');
    this.accepted = true;
    this.cancelTimer();
    this.cancelRetry();
    const z = ecdh(this.ephemeral.secretKey, f.body.epk);
    const th = transcriptHash(offer.bytes, raw);
    // a protected job's hint layer derives from the ECDH alone: the gateway holds no licence ([LM-PROT-2])
    const keys = deriveSessionKeys(z, this.host.licence ?? NO_LICENCE, th);
    wipe(z, this.ephemeral.secretKey); // [LM-KEY-4]
    const g2d = new Ratchet(keys.ckG2d, offer.params.r0);
    const d2g = new Ratchet(keys.ckD2g, offer.params.r0);
    wipe(keys.ckG2d, keys.ckD2g);
    return { keys, g2d, d2g, window: f.body.window, from: f.body.from ?? 0, ticket: this.ticket, th };
  }

  /** Stops the timers and erases the ephemeral secret. */
  close(): void {
    this.cancelTimer();
    this.cancelRetry();
    wipe(this.ephemeral.secretKey);
  }
}
