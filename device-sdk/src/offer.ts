/**
 * @module offer
 * An OFFER from its arrival to the session it opens (SPEC §7.3 steps 2 and 3): the checks of the
 * gateway's signature, the transaction, the parameters and the licence; signed, rate-limited
 * refusals ([LM-FRAME-9]); the take-over of a session whose gateway fell silent ([LM-DLV-13]);
 * the resume point of a restarted device ([LM-DLV-10]); ACCEPT and the session keys ([LM-KEY-2]).
 */
import {
  type Caps, FrameType, type FrameTypeId, type IdentityKeyPair, LmError, type OfferBody, Reason, type SessionKeys, type SessionParams, type SignedTx, type TxContext,
  decodeTx, deriveSessionKeys, digest, ecdh, encodeFrame, openLicence, reasonName, toHex, toLmError, transcriptHash, validateParams, verifyFrame, verifyTx, wipe, x25519KeyPair,
} from '@livematrix/spec';
import type { Clock } from './clock.js';
import type { OfferFrame } from './frames.js';
import type { RejectEvent } from './stream.js';

/** a busy device takes a verified OFFER when its session's gateway was silent this long ([LM-DLV-13]) */
export const TAKEOVER_SILENCE_MS = 2500;
/** how far an OFFER's time may be from the device's clock ([LM-FRAME-9]) */
export const OFFER_WINDOW_MS = 120_000;
/** OFFERs whose signatures a device checks per second at most: a flood cannot starve its sessions ([LM-FRAME-9]) */
export const OFFER_CHECKS_PER_SECOND = 50;
/** session ids of checked OFFERs remembered, to refuse a replayed one ([LM-FRAME-9]) */
const SEEN_SIDS = 4096;
/** resumes of one transaction that count no print ([LM-DLV-10]); more count as prints */
export const MAX_FREE_RESUMES = 8;

/** The checks an OFFER passes before a device accepts it. */
export interface OfferChecks {
  /** [LM-FRAME-6]: the OFFER is signed by the gateway key it carries; throws LmError */
  signature(f: OfferFrame): void;
  /** the transaction, verified for this device ([LM-TX-2]..[LM-TX-7], [LM-FRAME-6]); throws LmError */
  transaction(bytes: Uint8Array, ctx: TxContext): SignedTx;
  /** parameters in the spec's ranges ([LM-PARAM-1]) and within the device's capabilities ([LM-CAP-2]) */
  params(p: SessionParams, caps: Caps): void;
  /** the sealed licence, opened with the device's identity key ([LM-TX-1]) */
  licence(tx: SignedTx, identity: IdentityKeyPair): Uint8Array;
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
    licence: (tx, id) => openLicence(tx.body.lic, id.secretKey, id.publicKey, tx.body.jd), // [LM-TX-1]
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

/** A consumer's progress in a job ([LM-DLV-10]). */
export interface ResumePoint {
  /** plaintext bytes the consumer took */
  bytes: number;
  /** the first n of those bytes again, in order */
  read(n: number): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/** Everything a session starts from. */
export interface SessionInit {
  sid: Uint8Array;
  tx: SignedTx;
  params: SessionParams;
  keys: SessionKeys;
  /** the resume point ([LM-DLV-10]), a multiple of the chunk size */
  from: number;
  /** the job's first `from` bytes, for the end digest */
  prefix: Uint8Array[] | undefined;
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
  readonly identity: IdentityKeyPair;
  readonly deviceId: string;
  readonly trustedOperators: readonly Uint8Array[];
  /** receive buffer announced in ACCEPT ([LM-DLV-5]) */
  readonly window: number;
  /** streams started per transaction (hash, hex) ([LM-TX-7]) */
  readonly prints: Map<string, number>;
  /** transactions (hash, hex) whose session was cut off: their next OFFER resumes ([LM-DLV-13]) */
  readonly interrupted: Set<string>;
  readonly resume: ((txh: string) => Promise<ResumePoint | undefined> | ResumePoint | undefined) | undefined;
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
  /** session ids (hex) of OFFERs whose signature verified, oldest first */
  private readonly seen = new Set<string>();
  /** resumes that counted no print, per transaction */
  private readonly freeResumes = new Map<string, number>();

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
    if (this.seen.has(toHex(b.sid))) return this.refuse(b, offerBytes, new LmError(Reason.replay, 'an OFFER of this session id came before (a replay) ([LM-FRAME-9])'));
    if (!this.checksBudget.allow()) {
      this.host.reject({ code: Reason.busy, reason: reasonName(Reason.busy), type: FrameType.OFFER, detail: `OFFER ${toHex(b.sid).slice(0, 8)} dropped unchecked: more than ${OFFER_CHECKS_PER_SECOND} OFFERs in a second ([LM-FRAME-9])` });
      return;
    }
    try {
      this.checks.signature(f); // [LM-FRAME-6]
    } catch (e) {
      return this.refuse(b, offerBytes, toLmError(e));
    }
    this.remember(toHex(b.sid));
    this.accepting = true;
    try {
      await this.take(b, offerBytes);
    } finally {
      this.accepting = false;
    }
  }

  private remember(sid: string): void {
    this.seen.add(sid);
    for (const old of this.seen) {
      if (this.seen.size <= SEEN_SIDS) break;
      this.seen.delete(old);
    }
  }

  private async take(b: OfferBody, offerBytes: Uint8Array): Promise<void> {
    const txh = toHex(digest(b.tx));
    // [LM-DLV-13]: a gateway that restarted offers again while this device still holds the
    // session it lost; once the OFFER checks out, a session whose gateway is silent ends as interrupted
    const running = this.host.running();
    // [LM-DLV-10], [LM-DLV-13]: an OFFER that resumes, or the next OFFER of a transaction whose session was cut off
    const cutOff = this.host.interrupted.has(txh) || running?.txh === txh;
    const resume = b.resume === true || cutOff;
    // a resume counts no print only when this device knows the job is unfinished: its own session
    // of it was cut off, or its consumer kept part of it; any other OFFER is a print ([LM-DLV-10])
    const point = resume ? await this.host.resume?.(txh) : undefined;
    let tx: SignedTx;
    let licence: Uint8Array;
    let free: boolean;
    try {
      const size = decodeTx(b.tx).body.size;
      free = (this.freeResumes.get(txh) ?? 0) < MAX_FREE_RESUMES && (cutOff || (point !== undefined && point.bytes > 0 && point.bytes < size));
      ({ tx, licence } = this.verify(b, txh, free));
    } catch (e) {
      return this.refuse(b, offerBytes, toLmError(e));
    }
    if (running) {
      const silent = running.silentFor();
      if (silent <= TAKEOVER_SILENCE_MS) {
        wipe(licence);
        return this.refuse(b, offerBytes, new LmError(Reason.busy, 'a session is already running'));
      }
      running.interrupt(`the gateway is gone: silent for ${(silent / 1000).toFixed(1)} s when a new OFFER came ([LM-DLV-13])`);
    }
    if (free) this.freeResumes.set(txh, (this.freeResumes.get(txh) ?? 0) + 1); // a resumed job is the same print ([LM-DLV-10])
    else this.host.prints.set(txh, (this.host.prints.get(txh) ?? 0) + 1);
    this.host.interrupted.delete(txh); // cut off again, it is marked again
    const { from, prefix } = resume ? await this.resumePoint(point, tx.body.size, b.params.chunk) : { from: 0, prefix: undefined };
    const { accept, keys } = sessionKeys(b, offerBytes, this.host.identity, this.host.window, resume ? from : undefined, licence);
    await this.host.open({ sid: b.sid, tx, params: b.params, keys, from, prefix }, accept);
  }

  private verify(b: OfferBody, txh: string, resume: boolean): { tx: SignedTx; licence: Uint8Array } {
    const h = this.host;
    const used = h.prints.get(txh) ?? 0;
    const tx = this.checks.transaction(b.tx, {
      now: h.clock(), trustedOperators: h.trustedOperators, device: { id: h.deviceId, publicKey: h.identity.publicKey },
      gatewayPublic: b.gwpk, printsUsed: resume ? Math.max(0, used - 1) : used,
    });
    this.checks.params(b.params, h.caps());
    return { tx, licence: this.checks.licence(tx, h.identity) };
  }

  /** [LM-DLV-10]: a resumed job starts at the consumer's progress, rounded down to a chunk. */
  private async resumePoint(point: ResumePoint | undefined, size: number, chunk: number): Promise<{ from: number; prefix: Uint8Array[] | undefined }> {
    if (!point) return { from: 0, prefix: undefined };
    const from = Math.floor(Math.min(point.bytes, size) / chunk) * chunk;
    const prefix: Uint8Array[] = [];
    let got = 0;
    for await (const piece of point.read(from)) {
      prefix.push(piece.subarray(0, Math.max(0, from - got)));
      got += piece.length;
      if (got >= from) break;
    }
    return got < from ? { from: 0, prefix: undefined } : { from, prefix };
  }

  /**
   * Answers a refused OFFER with ERROR signed by the device's identity key, so that the gateway
   * can tell a real refusal from a forged one ([LM-FRAME-9]), at most `refusalsPerSecond`
   * answers per second; every refusal is reported as a 'reject' event.
   */
  private async refuse(b: OfferBody, offerBytes: Uint8Array, e: LmError): Promise<void> {
    this.host.reject({ code: e.code, reason: reasonName(e.code), type: FrameType.OFFER, detail: `OFFER ${toHex(b.sid).slice(0, 8)} refused: ${e.message}` });
    if (!this.limiter.allow()) return;
    // `oh` names the refused OFFER: a refusal of another OFFER under the same sid refuses nothing of the gateway's
    const err = encodeFrame(FrameType.ERROR, { sid: b.sid, code: e.code, detail: e.message.slice(0, 256), oh: digest(offerBytes) }, { kind: 'sig', secretKey: this.host.identity.secretKey });
    await this.host.send(err, FrameType.ERROR).catch(() => undefined);
  }
}

/** ACCEPT of an OFFER and the session keys it settles ([LM-KEY-2]); erases the licence and the ephemeral secret ([LM-KEY-4]). */
export function sessionKeys(b: OfferBody, offerBytes: Uint8Array, identity: IdentityKeyPair, window: number, from: number | undefined, licence: Uint8Array): { accept: Uint8Array; keys: SessionKeys } {
  const eph = x25519KeyPair();
  const accept = encodeFrame(FrameType.ACCEPT, { sid: b.sid, epk: eph.publicKey, oh: digest(offerBytes), window, ...(from !== undefined ? { from } : {}) }, { kind: 'sig', secretKey: identity.secretKey });
  const z = ecdh(eph.secretKey, b.epk);
  const keys = deriveSessionKeys(z, licence, transcriptHash(offerBytes, accept)); // [LM-KEY-2]
  wipe(z, licence, eph.secretKey); // [LM-KEY-4]
  return { accept, keys };
}
