/**
 * @module offer
 * An OFFER from its arrival to the session it opens (SPEC §7.3 steps 2 and 3): the checks of the
 * gateway's signature, the transaction, the parameters and the licence; signed, rate-limited
 * refusals ([LM-FRAME-9]); the take-over of a session whose gateway fell silent ([LM-DLV-13]);
 * the resume point of a restarted device ([LM-DLV-10]), from a kept point of the job's digest
 * ([LM-DLV-20]); ACCEPT and the session keys ([LM-KEY-2]).
 */
import {
  clipUtf8,
  type Caps, FrameType, type FrameTypeId, type IdentityKey, LmError, type OfferBody, Reason, type Revocations, type SessionKeys, type SessionParams, type SignedTicket, type SignedTx, type TxContext,
  NO_LICENCE, contentChain, frameSigner, decodeTx, jobDigestKey, deriveSessionKeys, digest, ecdh, encodeFrame, openLicence, reasonName, ticketId, toHex, toLmError, transcriptHash, validateParams, verifyFrame, verifyTicket, verifyTx, wipe, x25519KeyPair,
} from '@livematrix/spec';
import type { Licences } from './licences.js';
import type { Clock } from './clock.js';
import type { OfferFrame } from './frames.js';
import type { RejectEvent } from './stream.js';
import { type DigestCheckpoints, type HashPoint, digestCheckpoints, pickPoint, pointKeys } from './resume.js';

/** a busy device takes a verified OFFER when its session's gateway was silent this long ([LM-DLV-13]) */
export const TAKEOVER_SILENCE_MS = 2500;
/** how far an OFFER's time may be from the device's clock ([LM-FRAME-9]) */
export const OFFER_WINDOW_MS = 120_000;
/** OFFERs whose signatures a device checks per second at most: a flood cannot starve its sessions ([LM-FRAME-9]) */
export const OFFER_CHECKS_PER_SECOND = 50;

/** The checks an OFFER passes before a device accepts it. */
export interface OfferChecks {
  /** [LM-FRAME-6]: the OFFER is signed by the gateway key it carries; throws LmError */
  signature(f: OfferFrame): void;
  /** the transaction, verified for this device ([LM-TX-2]..[LM-TX-7], [LM-FRAME-6]); throws LmError */
  transaction(bytes: Uint8Array, ctx: TxContext): SignedTx;
  /** parameters in the spec's ranges ([LM-PARAM-1]) and within the device's capabilities ([LM-CAP-2]) */
  params(p: SessionParams, caps: Caps): void;
  /** the sealed licence, opened with the device's identity key ([LM-TX-1]) */
  licence(tx: SignedTx, identity: IdentityKey): Uint8Array;
}

/** The spec's checks. */
export function offerChecks(): OfferChecks {
  return {
    signature: (f) => void verifyFrame(f, { signer: f.body.gwpk }), // [LM-FRAME-6]
    transaction: (bytes, ctx) => verifyTx(bytes, ctx),
    params(p, caps) {
      validateParams(p); // [LM-PARAM-1]
      if (p.w > caps.wmax || !caps.suites.some(([s]) => s === p.suite)) throw new LmError(Reason.params, `w=${p.w} suite ${p.suite} not supported by this device ([LM-CAP-2])`);
    },
    licence: (tx, id) => openLicence(tx.body.lic, id, id.publicKey, tx.body.jd), // [LM-TX-1]: the key store's X25519
  };
}

/** At most `perSecond` events in a calendar second of the device's clock: refusals answered, OFFER signatures checked ([LM-FRAME-9]). */
export class PerSecondLimit {
  private second = 0;
  private count = 0;
  constructor(private readonly clock: Clock, private readonly perSecond: number) {}
  allow(): boolean {
    const second = Math.floor(this.clock() / 1000);
    if (this.second !== second) {
      this.second = second;
      this.count = 0;
    }
    return ++this.count <= this.perSecond;
  }
}

/**
 * A consumer's progress in a job ([LM-DLV-10]): how many bytes of it the machine took. That is
 * all a resume needs: the device kept points of the job's digest ([LM-DLV-20]) and starts the new
 * stream at the newest one at or below `bytes` (its `offset`); the consumer skips the
 * `bytes - offset` bytes it already has.
 */
export interface ResumePoint {
  /** plaintext bytes the consumer took, counted from the job's start */
  bytes: number;
  /**
   * The first n of those bytes again, in order: the stream then starts at `bytes` rounded down to
   * a multiple of C, and the kept points are not used.
   * @deprecated a device keeps what a resume needs without the plaintext; give `bytes` alone
   */
  read?(n: number): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/** Everything a session starts from. */
export interface SessionInit {
  sid: Uint8Array;
  tx: SignedTx;
  params: SessionParams;
  keys: SessionKeys;
  /** the resume point ([LM-DLV-10]), a multiple of the chunk size */
  from: number;
  /** the job's first `from` bytes, for the end digest (a consumer that gave them back, deprecated) */
  prefix: Uint8Array[] | undefined;
  /** the end digest from `from` on, and the points it passes, kept for the next resume ([LM-DLV-20]) */
  checkpoints: DigestCheckpoints;
  /** the session's part in the licence ([LM-LIC-1], [LM-LIC-3]) */
  licence: SessionLicence;
  /** a protected job's content chain ([LM-PROT-2]); undefined for a job the gateway seals */
  content?: Uint8Array | undefined;
  /** the session resumes a cut-off print under a ticket ([LM-LIC-4]) */
  resumed: boolean;
  /** a protected job's digest key ([LM-PROT-4]) */
  digestKey?: Uint8Array | undefined;
}

/** What a session does with the licence: count at the counting point, hold or close its ticket. */
export interface SessionLicence {
  /** the counting point ([LM-LIC-1]): called before the first plaintext byte goes to the consumer; throws LmError `tx-count` */
  start(): void;
  /** the session was cut off after `off` bytes: its ticket resumes it ([LM-LIC-3]) */
  hold(off: number): void;
  /** the print completed (with the RECEIPT the device sends, kept for [LM-LIC-6]) or was abandoned ([LM-LIC-3]) */
  close(receipt?: Uint8Array): void;
}

/** The session a device runs, as an OFFER sees it. */
export interface RunningSession {
  readonly txh: string;
  /** ms since the gateway last sent an authenticated frame ([LM-DLV-13]) */
  silentFor(): number;
  /** ends it as interrupted ([LM-DLV-13]) */
  interrupt(detail: string): void;
}

export interface OfferHost {
  readonly clock: Clock;
  /** the identity key (a key pair, or a key store that signs by itself) */
  readonly identity: IdentityKey;
  readonly deviceId: string;
  readonly trustedOperators: readonly Uint8Array[];
  /** receive buffer announced in ACCEPT ([LM-DLV-5]) */
  readonly window: number;
  /** print counts, tickets and seen session ids, kept across restarts ([LM-LIC-1]..[LM-LIC-5]) */
  readonly licences: Licences;
  /** the newest revocation list verified ([LM-REVOKE-3]) */
  readonly revocations: Revocations;
  readonly resume: ((txh: string) => Promise<ResumePoint | undefined> | ResumePoint | undefined) | undefined;
  /** ms between two durable writes of a resume point ([LM-DLV-20]); undefined: POINT_SAVE_MS */
  readonly pointInterval?: number | undefined;
  caps(): Caps;
  running(): RunningSession | undefined;
  /** publishes on the device's out topic */
  send(frame: Uint8Array, type: FrameTypeId): Promise<void>;
  reject(ev: RejectEvent): void;
  /** starts the session, sends ACCEPT and hands the stream to the consumer */
  open(init: SessionInit, accept: Uint8Array): Promise<void>;
}

/** Takes OFFERs one at a time. */
export class OfferDesk {
  private readonly limiter: PerSecondLimit;
  /** signature checks of OFFERs in the current second */
  private readonly checksBudget: PerSecondLimit;
  /** an OFFER is between its checks and its ACCEPT */
  private accepting = false;

  constructor(private readonly host: OfferHost, private readonly checks: OfferChecks, refusalsPerSecond: number) {
    this.limiter = new PerSecondLimit(host.clock, refusalsPerSecond);
    this.checksBudget = new PerSecondLimit(host.clock, OFFER_CHECKS_PER_SECOND);
  }

  /** Never throws for what the OFFER holds: whatever goes wrong is a refusal ([LM-FRAME-9]). */
  async onOffer(f: OfferFrame, offerBytes: Uint8Array): Promise<void> {
    const b = f.body;
    // cheap refusals first, so that a flood of OFFERs costs no signature checks ([LM-FRAME-9])
    const running = this.host.running();
    if (running && running.silentFor() <= TAKEOVER_SILENCE_MS) return this.refuse(b, offerBytes, new LmError(Reason.busy, 'a session is already running'));
    if (this.accepting) return this.refuse(b, offerBytes, new LmError(Reason.busy, 'another OFFER is being accepted'));
    const skew = b.time - this.host.clock();
    if (Math.abs(skew) > OFFER_WINDOW_MS) return this.refuse(b, offerBytes, new LmError(Reason.replay, `OFFER time is ${Math.round(skew / 1000)} s from this device's clock (a replay, or a clock far off) ([LM-FRAME-9])`));
    if (this.host.licences.seen(toHex(b.sid))) return this.refuse(b, offerBytes, new LmError(Reason.replay, 'an OFFER of this session id came before (a replay) ([LM-FRAME-9], [LM-LIC-5])'));
    if (!this.checksBudget.allow()) {
      this.host.reject({ code: Reason.busy, reason: reasonName(Reason.busy), type: FrameType.OFFER, detail: `OFFER ${toHex(b.sid).slice(0, 8)} dropped unchecked: more than ${OFFER_CHECKS_PER_SECOND} OFFERs in a second ([LM-FRAME-9])` });
      return;
    }
    try {
      this.checks.signature(f); // [LM-FRAME-6]
    } catch (e) {
      return this.refuse(b, offerBytes, toLmError(e));
    }
    this.accepting = true;
    try {
      await this.take(b, offerBytes);
    } finally {
      this.accepting = false;
    }
  }

  private async take(b: OfferBody, offerBytes: Uint8Array): Promise<void> {
    const h = this.host;
    const txh = toHex(digest(b.tx));
    let tx: SignedTx;
    let licence: Uint8Array;
    try {
      ({ tx, licence } = this.verify(b, txh));
    } catch (e) {
      return this.refuse(b, offerBytes, toLmError(e));
    }
    // [LM-LIC-5]: remembered across restarts, once the OFFER checked out (a flood of self-signed
    // OFFERs with bad transactions costs no durable write)
    try {
      h.licences.remember(toHex(b.sid), b.time);
    } catch (e) {
      wipe(licence);
      return this.refuse(b, offerBytes, new LmError(Reason.internal, `licence state not written: ${toLmError(e).message}`));
    }
    // [LM-DLV-13]: a gateway that restarted offers again while this device still holds the
    // session it lost; once the OFFER checks out, a session whose gateway is silent ends as
    // interrupted, and holds its ticket ([LM-LIC-3])
    const running = h.running();
    if (running) {
      const silent = running.silentFor();
      if (silent <= TAKEOVER_SILENCE_MS) {
        wipe(licence);
        return this.refuse(b, offerBytes, new LmError(Reason.busy, 'a session is already running'));
      }
      running.interrupt(`the gateway is gone: silent for ${(silent / 1000).toFixed(1)} s when a new OFFER came ([LM-DLV-13])`);
    }
    let ticket: SignedTicket | undefined;
    try {
      ticket = this.ticket(b, txh, tx);
    } catch (e) {
      wipe(licence);
      return this.refuse(b, offerBytes, toLmError(e));
    }
    const sid = toHex(b.sid);
    const resume = ticket !== undefined;
    let from = 0;
    let prefix: Uint8Array[] | undefined;
    let start: HashPoint | undefined;
    try {
      const point = resume ? await h.resume?.(txh) : undefined;
      if (resume) ({ from, prefix, start } = await this.resumePoint(point, txh, tx.body.size, b.params.chunk, licence));
    } catch (e) {
      wipe(licence);
      return this.refuse(b, offerBytes, new LmError(Reason.internal, `the consumer's resume point could not be read: ${toLmError(e).message}`));
    }
    const revoked = h.revocations.refusal(tx.body, tx.hash, h.clock()); // a list that came during the awaits ([LM-REVOKE-3])
    if (revoked) {
      wipe(licence);
      return this.refuse(b, offerBytes, revoked);
    }
    const session = { sid, off: from, exp: tx.body.naf };
    const digestKey = tx.body.jid ? jobDigestKey(licence) : undefined; // [LM-PROT-4], before the licence is erased
    const mask = pointKeys(licence); // [LM-DLV-22], before the licence is erased
    let made: ReturnType<typeof sessionKeys>;
    try {
      // [LM-KEY-1]: an ephemeral key that gives an all-zero shared secret is refused as auth, before any ticket is spent
      made = sessionKeys(b, offerBytes, h.identity, h.window, resume ? from : undefined, licence, tx.body.jid !== undefined);
    } catch (e) {
      wipe(licence, mask);
      return this.refuse(b, offerBytes, toLmError(e));
    }
    const { accept, keys, content } = made;
    try {
      // [LM-LIC-4]: the ticket is spent, and the new session's issued, before ACCEPT goes out
      if (ticket) h.licences.resume(ticketId(ticket), txh, session);
    } catch (e) {
      wipe(licence, mask);
      return this.refuse(b, offerBytes, toLmError(e));
    }
    // [LM-DLV-20]: the digest goes on from the kept point, and keeps points for the next resume
    const checkpoints = digestCheckpoints({ txh, chunk: b.params.chunk, start, keys: mask, clock: h.clock, store: h.licences, interval: h.pointInterval });
    const limit = tx.body.prints;
    const lic: SessionLicence = {
      start: () => (resume ? undefined : h.licences.count(txh, limit, session)), // [LM-LIC-1]
      hold: (off) => {
        checkpoints.flush(); // the newest point, so that the resume loses nothing a cut-off session passed
        h.licences.hold(sid, off);
      },
      close: (receipt) => h.licences.close(sid, receipt), // and the transaction's points with the ticket ([LM-DLV-21])
    };
    await h.open({ sid: b.sid, tx, params: b.params, keys, content, from, prefix, checkpoints, licence: lic, resumed: resume, digestKey }, accept);
  }

  private verify(b: OfferBody, txh: string): { tx: SignedTx; licence: Uint8Array } {
    const h = this.host;
    // a resume is not a new print: its count is checked at the ticket, not here ([LM-LIC-4]); nor
    // is an OFFER that asks to resume, or of a transaction this device holds a ticket of or runs
    // (answered with the ticket, or refused as a resume without one)
    const tx = this.checks.transaction(b.tx, {
      now: h.clock(), trustedOperators: h.trustedOperators, device: { id: h.deviceId, publicKey: h.identity.publicKey },
      gatewayPublic: b.gwpk, ...(b.tk || b.resume === true || h.licences.held(txh) || h.running()?.txh === txh ? {} : { printsUsed: h.licences.used(txh) }),
    });
    const revoked = h.revocations.refusal(tx.body, tx.hash, h.clock()); // [LM-REVOKE-3]
    if (revoked) throw revoked;
    this.checks.params(b.params, h.caps());
    return { tx, licence: this.checks.licence(tx, h.identity) };
  }

  /**
   * The resume ticket an OFFER carries, checked ([LM-LIC-4]); undefined for a fresh OFFER. A fresh
   * OFFER of a transaction whose cut-off session this device holds a ticket of is refused with
   * that ticket, so that the gateway resumes instead of counting a second print; an OFFER that
   * asks to resume without a ticket is refused.
   */
  private ticket(b: OfferBody, txh: string, tx: SignedTx): SignedTicket | undefined {
    const h = this.host;
    if (b.tk) {
      const t = verifyTicket(b.tk, { device: h.deviceId, devicePublic: h.identity.publicKey, txh: tx.hash, now: h.clock() });
      if (!h.licences.unspent(ticketId(t))) {
        // a spent ticket, but the print went on and was cut off again: the gateway gets the one that resumes it now
        const newer = h.licences.held(txh);
        if (newer) throw new TicketRefusal(newer.bytes);
        throw new LmError(Reason.txResume, 'the resume ticket is spent or unknown: a print resumes once ([LM-LIC-4])');
      }
      return t;
    }
    const held = h.licences.held(txh);
    if (held) throw new TicketRefusal(held.bytes);
    if (b.resume === true) throw new LmError(Reason.txResume, 'no session of this transaction was cut off here: nothing to resume ([LM-LIC-4])');
    return undefined;
  }

  /**
   * [LM-DLV-10]: where a resumed job starts. From the newest point of the job's digest the device
   * kept at or below the consumer's progress and on a chunk ([LM-DLV-20]); or, for a consumer that
   * still reads its bytes back (deprecated), at its progress rounded down to a chunk; else at 0.
   */
  private async resumePoint(point: ResumePoint | undefined, txh: string, size: number, chunk: number, licence: Uint8Array): Promise<{ from: number; prefix: Uint8Array[] | undefined; start: HashPoint | undefined }> {
    const none = { from: 0, prefix: undefined, start: undefined };
    if (!point) return none;
    if (!Number.isSafeInteger(point.bytes) || point.bytes < 0) throw new LmError(Reason.internal, `the consumer reported ${point.bytes} bytes taken: not a count`);
    const took = Math.min(point.bytes, size);
    if (!point.read) {
      const keys = pointKeys(licence);
      // [LM-DLV-20]; [LM-DLV-22]: a point whose tag fails is skipped for an older one, and reported
      const kept = pickPoint(this.host.licences.points(txh), took, chunk, keys, (n) => this.host.reject({
        code: Reason.internal, reason: reasonName(Reason.internal), type: FrameType.OFFER,
        detail: `resume point at ${n} bytes of transaction ${txh.slice(0, 8)} failed its tag (storage altered it): skipped, the job resumes from an older point ([LM-DLV-22])`,
      }));
      wipe(keys);
      return kept ? { from: kept.n, prefix: undefined, start: kept } : none;
    }
    const from = Math.floor(took / chunk) * chunk;
    const prefix: Uint8Array[] = [];
    let got = 0;
    for await (const piece of point.read(from)) {
      prefix.push(piece.subarray(0, Math.max(0, from - got)));
      got += piece.length;
      if (got >= from) break;
    }
    return got < from ? none : { from, prefix, start: undefined };
  }

  /**
   * Answers a refused OFFER with ERROR signed by the device's identity key, so that the gateway
   * can tell a real refusal from a forged one ([LM-FRAME-9]), at most `refusalsPerSecond`
   * answers per second; every refusal is reported as a 'reject' event.
   */
  private async refuse(b: OfferBody, offerBytes: Uint8Array, e: LmError, tk?: Uint8Array): Promise<void> {
    if (e instanceof TicketRefusal) tk = e.ticket;
    // [LM-LIC-6]: no print to give and no ticket: the receipt of the last session, should it never have reached a ledger
    const rc = !tk && (e.code === Reason.txCount || e.code === Reason.txResume) ? this.host.licences.receipt(toHex(digest(b.tx))) : undefined;
    this.host.reject({ code: e.code, reason: reasonName(e.code), type: FrameType.OFFER, detail: `OFFER ${toHex(b.sid).slice(0, 8)} refused: ${e.message}` });
    if (!this.limiter.allow()) return;
    // `oh` names the refused OFFER: a refusal of another OFFER under the same sid refuses nothing of the gateway's
    const err = encodeFrame(FrameType.ERROR, { sid: b.sid, code: e.code, detail: clipUtf8(e.message, 256), oh: digest(offerBytes), ...(tk ? { tk } : {}), ...(rc ? { rc } : {}) }, frameSigner(this.host.identity));
    await this.host.send(err, FrameType.ERROR).catch(() => undefined);
  }
}

/** A refusal `tx-resume` that carries the device's ticket of the transaction ([LM-LIC-4]). */
class TicketRefusal extends LmError {
  constructor(readonly ticket: Uint8Array) {
    super(Reason.txResume, 'this device holds a resume ticket of the transaction: offer again with it ([LM-LIC-4])');
  }
}

/**
 * ACCEPT of an OFFER and the session keys it settles ([LM-KEY-2]); erases the licence and the
 * ephemeral secret ([LM-KEY-4]). For a protected job ([LM-PROT-2]) the hint layer's keys derive
 * from the ECDH alone and the licence feeds the content chain, which only the keys service
 * shares: the gateway, which never holds the licence, cannot unwrap a chunk key.
 */
export function sessionKeys(b: OfferBody, offerBytes: Uint8Array, identity: IdentityKey, window: number, from: number | undefined, licence: Uint8Array, protectedJob = false): { accept: Uint8Array; keys: SessionKeys; content: Uint8Array | undefined } {
  const eph = x25519KeyPair();
  const accept = encodeFrame(FrameType.ACCEPT, { sid: b.sid, epk: eph.publicKey, oh: digest(offerBytes), window, ...(from !== undefined ? { from } : {}) }, frameSigner(identity));
  let z: Uint8Array;
  try {
    z = ecdh(eph.secretKey, b.epk); // [LM-KEY-1]: an all-zero z throws auth
  } catch (e) {
    wipe(eph.secretKey);
    throw e;
  }
  const th = transcriptHash(offerBytes, accept);
  const keys = deriveSessionKeys(z, protectedJob ? NO_LICENCE : licence, th); // [LM-KEY-2], [LM-PROT-2]
  const content = protectedJob ? contentChain(licence, th) : undefined;
  wipe(z, licence, eph.secretKey); // [LM-KEY-4]
  return { accept, keys, content };
}
