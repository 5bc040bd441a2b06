/**
 * @module gateway-profile/session
 * One session of a suite device with the gateway under test, from its ACCEPT on: the key
 * schedule ([LM-KEY-2]), time sync ([LM-TIME-4]), hints resolved in their revision's table
 * (shifted ones too, [LM-DLV-11]), ACKs, chunk keys, the consumer, END and the RECEIPT. Every
 * frame the gateway sends is checked as it arrives against the gateway's rules (revision stamps
 * [LM-REV-1], credit [LM-DLV-16], key release [LM-AEAD-3], re-sends [LM-DLV-3], [LM-DLV-15], END [LM-DLV-6]);
 * once a chunk decrypts, every hint sent for it is checked against its true symbols
 * ([LM-HINT-1], [LM-DLV-11]). Behaviour hooks let a test make the device misbehave.
 *
 * This file holds the session's state, what it sends and the dispatch of what comes; one module
 * per phase does the rest: session-time (time sync, revision stamps), session-ack (ACKs),
 * session-hints (HINTS and re-sends), session-chunks (KEY, chunks, consumer, END, RECEIPT).
 */
import {
  type AckBody, type AlarmBody, type Bodies, type CborValue, type ControlBody, type EndBody, type ErrorBody, FrameType, type FrameTypeId, type HintsBody, type IdentityKeyPair, type KeyBody,
  MAC_LENGTH, Ratchet, type RevisionKeys, type SessionKeys, type SessionParams, type SignedTx, type TimeSample, decodeFrame, deriveSessionKeys, ecdh, encodeCbor, encodeFrame, frameMac,
  hintSymbols, minHintLength, pack, sealTelemetry, toHex, toLmError, transcriptHash,
} from '@livematrix/spec';
import type { MatrixEngine } from '@livematrix/spec/engine';
import type { Findings } from './findings.js';
import * as acks from './session-ack.js';
import * as chunks from './session-chunks.js';
import { onHints } from './session-hints.js';
import type { SessionState } from './session-state.js';
import * as time from './session-time.js';

/** How a suite device behaves in a session; the defaults are those of a conformant device. */
export interface Behaviour {
  /** send ACKs by itself (default true); false: only what the test sends with {@link DeviceSession.ack} */
  ack: boolean;
  /** the consumer takes each chunk as soon as it decrypts (default true) */
  consume: boolean;
  /** send the RECEIPT once the job is complete and END came (default true) */
  receipt: boolean;
  /** drop a HINTS frame as if it were lost: by seq and sending (0 for its first) */
  drop?: (seq: number, sending: number) => boolean;
  /**
   * NACK some symbols of a sending with a reason instead of resolving them (a device that lies):
   * asked for a frame's first sending (`sh` undefined; `idx` its symbols) and for each shifted
   * re-send (`sh` its shift; `idx` the positions of its list, [LM-DLV-11])
   */
  lie?: (seq: number, sending: number, n: number, sh?: number) => { reason: number; idx: number[] } | undefined;
}

/** What the session needs from its device. */
export interface SessionDevice {
  readonly id: string;
  readonly identity: IdentityKeyPair;
  readonly engine: MatrixEngine;
  readonly findings: Findings;
  /** chunk keys seen in this run, hex → where ([LM-AEAD-5]) */
  readonly keySeen: Map<string, string>;
  /** publishes a frame on the device's outbound topic */
  publish(frame: Uint8Array, type: FrameTypeId): Promise<void>;
}

export interface SessionInit {
  offerRaw: Uint8Array;
  params: SessionParams;
  sid: Uint8Array;
  gatewayEpk: Uint8Array;
  ephemeralSecret: Uint8Array;
  acceptRaw: Uint8Array;
  tx: SignedTx;
  licence: Uint8Array;
  /** the job's plaintext (the suite made it) */
  data: Uint8Array;
  window: number;
  from: number;
  behaviour: Behaviour;
  /** the X25519 output to key the session with, in place of the device's own (what a gateway that skipped [LM-KEY-1] would use) */
  z?: Uint8Array | undefined;
}

/** A HINTS frame as it arrived. */
export interface HintsIn {
  at: number;
  body: HintsBody;
  /** how many times this seq arrived before */
  sending: number;
  /** the revision of the device's (offset-corrected) clock at arrival */
  deviceRev: number;
}

export class DeviceSession {
  readonly sid: Uint8Array;
  readonly sidHex: string;
  readonly params: SessionParams;
  readonly tx: SignedTx;
  readonly keys: SessionKeys;
  readonly from: number;
  readonly window: number;
  behaviour: Behaviour;
  private readonly g2d: Ratchet;
  private readonly d2g: Ratchet;
  private readonly g2dKeys = new Map<number, RevisionKeys>();
  private readonly d2gKeys = new Map<number, RevisionKeys>();
  // time sync ([LM-TIME-4])
  readonly samples: TimeSample[] = [];
  /** θ: the gateway's clock minus the device's, from the best of the latest samples */
  theta = 0;
  delta = 0;
  // what came
  readonly hintsIn: HintsIn[] = [];
  readonly keysIn: { at: number; body: KeyBody }[] = [];
  readonly ends: { at: number; body: EndBody }[] = [];
  readonly alarms: { at: number; body: AlarmBody; auth: string }[] = [];
  readonly errors: { at: number; body: ErrorBody; auth: string }[] = [];
  readonly controls: { at: number; body: ControlBody }[] = [];
  readonly acksSent: { at: number; body: AckBody }[] = [];
  readonly nacksSent: { at: number; seq: number; reason: number; idx: number[]; rev: number }[] = [];
  firstHintsAt: number | undefined;
  // delivery state (the rest is in `st`, shared with the phase modules)
  readonly received = new Set<number>();
  consumed: number;
  receiptAt: number | undefined;
  /** the RECEIPT frames the device sent, signed by its own key, as they went out ([LM-LEDGER-4]) */
  readonly receiptsSent: Uint8Array[] = [];
  /** the gateway under test reported the stream delivered (after the device's RECEIPT, [LM-DLV-7]) */
  reported = false;
  /** the session ended on the device's side (an ALARM, ERROR or abort of the gateway, or the test) */
  ended = false;
  private readonly st: SessionState;
  private chain: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private telemetrySeq = 0;

  constructor(dev: SessionDevice, init: SessionInit) {
    this.sid = init.sid;
    this.sidHex = toHex(init.sid);
    this.params = init.params;
    this.tx = init.tx;
    this.from = init.from;
    this.window = init.window;
    this.behaviour = init.behaviour;
    this.consumed = init.from;
    this.st = {
      session: this, dev, init, pendingTime: new Map(), frames: new Map(), chunks: new Map(), sendings: new Map(), pendingNacks: [],
      nextChunk: Math.floor(init.from / init.params.chunk), creditEdge: init.from + init.window, ackTimer: undefined,
    };
    const z = init.z ?? ecdh(init.ephemeralSecret, init.gatewayEpk);
    this.keys = deriveSessionKeys(z, init.licence, transcriptHash(init.offerRaw, init.acceptRaw)); // [LM-KEY-2]
    this.g2d = new Ratchet(this.keys.ckG2d, init.params.r0);
    this.d2g = new Ratchet(this.keys.ckD2g, init.params.r0);
  }

  private get F(): Findings {
    return this.st.dev.findings;
  }

  /** Starts time sync (a TIME_REQ now and every second, [LM-DLV-13]); the first answer brings the first ACK. */
  start(): void {
    void time.timeRequest(this.st);
    this.timers.push(setInterval(() => {
      if (this.ended) return;
      void time.timeRequest(this.st);
      if (this.behaviour.ack && this.samples.length) void this.ack();
    }, 1000));
  }

  /** Stops the session's timers (the gateway's later frames are still recorded). */
  stop(): void {
    this.ended = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.st.ackTimer) clearTimeout(this.st.ackTimer);
  }

  // ---- keys ([LM-KEY-3]) -------------------------------------------------------------------

  /** Keys of a g2d revision; the suite keeps every revision's, to check any frame after the fact. */
  keysG2d(rev: number): RevisionKeys {
    return keysOf(this.g2d, this.g2dKeys, rev);
  }

  keysD2g(rev: number): RevisionKeys {
    return keysOf(this.d2g, this.d2gKeys, rev);
  }

  /** The gateway's clock estimated at the suite's time `t`. */
  gatewayTime(t: number): number {
    return t + this.theta;
  }

  /** The revision the gateway would stamp at the suite's time `t` ([LM-REV-1]): rev(g − G). */
  revAt(t: number): number {
    return time.rev(this.params, this.gatewayTime(t) - this.params.grace);
  }

  // ---- sending -------------------------------------------------------------------------------

  /**
   * Sends a frame with the session's MAC; `auth` 'bad-mac' breaks it, 'none' sends it
   * unauthenticated; `version` other than 1 stamps that version on it, under a MAC of the bytes
   * as sent (what a device of that version would send, [LM-ROLE-2]).
   */
  async send<T extends FrameTypeId>(type: T, body: Bodies[T], auth: 'mac' | 'bad-mac' | 'none' = 'mac', version = 1): Promise<void> {
    const frame = encodeFrame(type, body, auth === 'none' ? { kind: 'none' } : { kind: 'mac', key: this.keys.fkD2g });
    if (version !== 1) {
      if (version < 2 || version > 23) throw new RangeError(`"version" expected 2..23 (one CBOR byte), got ${version}`);
      // enc([v, type, body, auth]) starts 0x84, then v in one byte; the tba holds the same bytes after its prefix and 0x83
      const tba = decodeFrame(frame).tba.slice();
      const authStart = frame.length - (auth === 'none' ? 1 : 1 + MAC_LENGTH);
      tba[tba.length - authStart + 1] = version;
      frame[1] = version;
      if (auth !== 'none') frame.set(frameMac(this.keys.fkD2g, tba), frame.length - MAC_LENGTH);
    }
    if (auth === 'bad-mac') frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 0x01;
    await this.st.dev.publish(frame, type);
  }

  /** A time sync round trip: resolves once the gateway answered it (a barrier: it processed what came before). */
  roundTrip(timeout = 5000): Promise<TimeSample> {
    return time.roundTrip(this.st, timeout);
  }

  /** TIME_REQs older than `ms` that the gateway never answered ([LM-TIME-4]). */
  unansweredTime(ms = 2000): number {
    return time.unansweredTime(this.st, ms);
  }

  /** The ACK the device would send now; `over` changes fields (a device that lies). */
  ackBody(over: Partial<AckBody> = {}): AckBody {
    return acks.ackBody(this.st, over);
  }

  /** Sends an ACK of the device's state now (`over` changes fields); records what it reported. */
  ack(over: Partial<AckBody> = {}, auth: 'mac' | 'bad-mac' | 'none' = 'mac'): Promise<AckBody> {
    return acks.ack(this.st, over, auth);
  }

  /** Sends the RECEIPT ([LM-DLV-7]), signed by the device's key or, to forge one, by `signer`. */
  sendReceipt(o: { signer?: Uint8Array; digest?: Uint8Array } = {}): Promise<void> {
    return chunks.sendReceipt(this.st, o);
  }

  /** Publishes the latest genuine RECEIPT again, byte for byte (a device that did not hear the gateway's answer). */
  repeatReceipt(): Promise<void> {
    return chunks.repeatReceipt(this.st);
  }

  /** Whether every chunk of the job from the resume point on was opened. */
  complete(): boolean {
    return chunks.complete(this.st);
  }

  /**
   * Sends TELEMETRY ([LM-TEL-1]) under the d2g chain of the current revision (or `rev`);
   * `corrupt` spoils it the way a broken device might ([LM-TEL-2]: the gateway drops it).
   */
  async telemetry(payload: ReadonlyMap<string, CborValue>, o: { rev?: number; corrupt?: 'hints' | 'padding' | 'aead'; unambiguous?: boolean } = {}): Promise<void> {
    const p = this.params;
    const rev = o.rev ?? this.revAt(Date.now());
    const k = this.keysD2g(rev);
    const seq = this.telemetrySeq++;
    let ct = sealTelemetry(k.wk, this.sid, seq, encodeCbor(payload));
    if (o.unambiguous) {
      // telemetry hints have the minimal length, so about one symbol in 256 is ambiguous in its
      // table and a gateway must drop that payload ([LM-TEL-2]): a payload the suite calls
      // well-formed is one all of whose symbols are unique, found by varying a field of its own
      const unique = this.uniqueHints(rev, k.hk);
      for (let n = 0; !pack(ct, p.wt).every((g) => unique(g)); n++) {
        if (n >= 256) throw new Error('no unambiguous telemetry payload in 256 tries');
        ct = sealTelemetry(k.wk, this.sid, seq, encodeCbor(new Map([...payload, ['conformance_try', n]])));
      }
    }
    if (o.corrupt === 'aead') ct = ct.map((b, i) => (i === 0 ? b ^ 1 : b));
    const syms = pack(ct, p.wt);
    if (o.corrupt === 'padding' && (8 * ct.length) % p.wt !== 0) syms[syms.length - 1] = (syms[syms.length - 1] as number) | 1;
    let hints = hintSymbols(p.suite, k.hk, p.wt, minHintLength(p.wt), syms);
    if (o.corrupt === 'hints') hints = hints.map((b) => b ^ 0x5a);
    await this.send(FrameType.TELEMETRY, { sid: this.sid, seq, rev, ctlen: ct.length, hints });
  }

  /** Whether a telemetry symbol's hint is unique in the d2g table of `rev` (cached per revision). */
  private uniqueHints(rev: number, hk: Uint8Array): (g: number) => boolean {
    let u = this.uniqueCache.get(rev);
    if (!u) {
      const p = this.params;
      const L = minHintLength(p.wt);
      const all = hintSymbols(p.suite, hk, p.wt, L, Uint32Array.from({ length: 2 ** p.wt }, (_, g) => g));
      const count = new Map<string, number>();
      const key = (g: number) => Buffer.from(all.subarray(g * L, g * L + L)).toString('hex');
      for (let g = 0; g < 2 ** p.wt; g++) count.set(key(g), (count.get(key(g)) ?? 0) + 1);
      u = new Uint8Array(2 ** p.wt);
      for (let g = 0; g < 2 ** p.wt; g++) u[g] = count.get(key(g)) === 1 ? 1 : 0;
      this.uniqueCache.set(rev, u);
    }
    const table = u;
    return (g) => table[g] === 1;
  }
  private readonly uniqueCache = new Map<number, Uint8Array>();

  // ---- receiving -----------------------------------------------------------------------------

  /** A MAC-verified (or NONE) frame of this session from the gateway. */
  onFrame(type: FrameTypeId, body: Bodies[FrameTypeId], auth: string, at: number): void {
    if (type === FrameType.TIME_RESP) return time.onTimeResp(this.st, body as Bodies[5], at);
    this.chain = this.chain.then(() => this.dispatch(type, body, auth, at)).catch((e: unknown) => {
      this.F.fail('LM-FRAME-1', `the suite device could not process a frame of type ${type}: ${toLmError(e).message}`);
    });
  }

  /** Resolves once every frame received so far was processed. */
  settled(): Promise<void> {
    return this.chain;
  }

  private async dispatch(type: FrameTypeId, body: Bodies[FrameTypeId], auth: string, at: number): Promise<void> {
    switch (type) {
      case FrameType.HINTS:
        return onHints(this.st, body as HintsBody, at);
      case FrameType.KEY:
        return chunks.onKey(this.st, body as KeyBody, at);
      case FrameType.END:
        return chunks.onEnd(this.st, body as EndBody, at);
      case FrameType.ALARM:
        this.alarms.push({ at, body: body as AlarmBody, auth });
        if (auth === 'mac') this.stop(); // [LM-ALARM-5]
        return;
      case FrameType.ERROR:
        this.errors.push({ at, body: body as ErrorBody, auth });
        if (auth === 'mac') this.stop();
        return;
      case FrameType.CONTROL:
        this.controls.push({ at, body: body as ControlBody });
        if ((body as ControlBody).op === 3) this.stop();
        return;
      default:
        return;
    }
  }
}

/** Keys of `rev` from a ratchet, keeping every revision's in `cache`. */
function keysOf(r: Ratchet, cache: Map<number, RevisionKeys>, rev: number): RevisionKeys {
  const known = cache.get(rev);
  if (known) return known;
  for (let x = r.position; x <= rev; x++) cache.set(x, r.keysFor(x));
  const k = cache.get(rev);
  if (!k) throw new Error(`revision ${rev} precedes the session's first revision ${r.r0}`);
  return k;
}
