/**
 * @module gateway-profile/session
 * One session of a suite device with the gateway under test, from its ACCEPT on: the key
 * schedule ([LM-KEY-2]), time sync ([LM-TIME-4]), hints resolved in their revision's table
 * (shifted ones too, [LM-DLV-11]), ACKs, chunk keys, the consumer, END and the RECEIPT. Every
 * frame the gateway sends is checked as it arrives against the gateway's rules (revision stamps
 * [LM-REV-1], credit [LM-DLV-16], key release [LM-AEAD-3], re-sends [LM-DLV-3], [LM-DLV-15], END [LM-DLV-6]);
 * once a chunk decrypts, every hint sent for it is checked against its true symbols
 * ([LM-HINT-1], [LM-DLV-11]). Behaviour hooks let a test make the device misbehave.
 */
import {
  type AckBody, type AlarmBody, type Bodies, type CborValue, type ControlBody, type EndBody, type ErrorBody, FrameType, type FrameTypeId, type HintsBody, type IdentityKeyPair, type KeyBody,
  MAC_LENGTH, Ratchet, Reason, type RevisionKeys, type SessionKeys, type SessionParams, type SignedTx, type TimeSample, decodeFrame, deriveSessionKeys, digest, ecdh, encodeCbor, encodeFrame, equalBytes, frameMac,
  hintSymbols, minHintLength, openChunk, pack, sealTelemetry, shiftedSymbol, splitShifted, symbolCount, syncResult, toHex, toLmError, transcriptHash, unpack, unwrapChunkKey,
} from '@livematrix/spec';
import { ABSENT, AMBIGUOUS, type MatrixEngine } from '@livematrix/spec/engine';
import type { Findings } from './findings.js';

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

interface FrameState {
  seq: number;
  chunk: number;
  off: number;
  n: number;
  ctlen: number;
  known: Uint32Array;
  vals: Uint32Array;
  left: number;
  /** symbols NACKed as ambiguous or unknown, with the revision they failed in */
  failedIn: Map<number, number>;
  /** symbols whose latest failure was in a shifted re-send, with its revision ([LM-DLV-18]) */
  shiftFailed: Map<number, number>;
  /** the shifts that carried each symbol, by `${rev}:${symbol}` ([LM-DLV-18]) */
  shiftsUsed: Map<string, Set<number>>;
}

interface ChunkState {
  j: number;
  ctlen: number;
  m: number;
  symbols: Uint32Array;
  have: Uint8Array;
  missing: number;
  frames: Set<number>;
  /** when an ACK first reported every frame of the chunk received */
  reportedAt?: number;
  key?: Uint8Array;
  keyAt?: number;
  opened: boolean;
  log: HintsIn[];
}

/** Time the suite allows a frame between the gateway and a device on top of δ/2 (ms). */
const SLACK_MS = 250;

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
  private readonly pendingTime = new Map<number, number>();
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
  // delivery state
  private readonly frames = new Map<number, FrameState>();
  private readonly chunks = new Map<number, ChunkState>();
  private readonly sendings = new Map<number, number>();
  readonly received = new Set<number>();
  private pendingNacks: [number, number, number[]][] = [];
  consumed: number;
  private nextChunk: number;
  private creditEdge: number;
  receiptAt: number | undefined;
  /** the RECEIPT frames the device sent, signed by its own key, as they went out ([LM-LEDGER-4]) */
  readonly receiptsSent: Uint8Array[] = [];
  /** the gateway under test reported the stream delivered (after the device's RECEIPT, [LM-DLV-7]) */
  reported = false;
  /** the session ended on the device's side (an ALARM, ERROR or abort of the gateway, or the test) */
  ended = false;
  private chain: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private ackTimer: NodeJS.Timeout | undefined;
  private telemetrySeq = 0;

  constructor(private readonly dev: SessionDevice, private readonly init: SessionInit) {
    this.sid = init.sid;
    this.sidHex = toHex(init.sid);
    this.params = init.params;
    this.tx = init.tx;
    this.from = init.from;
    this.window = init.window;
    this.behaviour = init.behaviour;
    this.consumed = init.from;
    this.nextChunk = Math.floor(init.from / init.params.chunk);
    this.creditEdge = init.from + init.window;
    const z = init.z ?? ecdh(init.ephemeralSecret, init.gatewayEpk);
    this.keys = deriveSessionKeys(z, init.licence, transcriptHash(init.offerRaw, init.acceptRaw)); // [LM-KEY-2]
    this.g2d = new Ratchet(this.keys.ckG2d, init.params.r0);
    this.d2g = new Ratchet(this.keys.ckD2g, init.params.r0);
  }

  private get F(): Findings {
    return this.dev.findings;
  }

  /** Starts time sync (a TIME_REQ now and every second, [LM-DLV-13]); the first answer brings the first ACK. */
  start(): void {
    void this.timeRequest();
    this.timers.push(setInterval(() => {
      if (this.ended) return;
      void this.timeRequest();
      if (this.behaviour.ack && this.samples.length) void this.ack();
    }, 1000));
  }

  /** Stops the session's timers (the gateway's later frames are still recorded). */
  stop(): void {
    this.ended = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.ackTimer) clearTimeout(this.ackTimer);
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

  /** rev(t) of SPEC.md §3 on the gateway's clock; below the epoch it goes negative instead of failing. */
  private rev(gatewayTime: number): number {
    return Math.floor((gatewayTime - this.params.epoch) / this.params.period);
  }

  /** The revision the gateway would stamp at the suite's time `t` ([LM-REV-1]): rev(g − G). */
  revAt(t: number): number {
    return this.rev(this.gatewayTime(t) - this.params.grace);
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
    await this.dev.publish(frame, type);
  }

  private async timeRequest(): Promise<void> {
    const t1 = Date.now();
    this.pendingTime.set(t1, t1);
    await this.send(FrameType.TIME_REQ, { sid: this.sid, t1 }).catch(() => undefined);
  }

  /** A time sync round trip: resolves once the gateway answered it (a barrier: it processed what came before). */
  async roundTrip(timeout = 5000): Promise<TimeSample> {
    let t1 = Date.now();
    while (this.pendingTime.has(t1)) t1++;
    this.pendingTime.set(t1, Date.now());
    await this.send(FrameType.TIME_REQ, { sid: this.sid, t1 });
    const t0 = Date.now();
    for (;;) {
      const s = this.samples.find((x) => x.t1 === t1);
      if (s) return s;
      if (Date.now() - t0 > timeout) throw new Error(`the gateway did not answer a TIME_REQ within ${timeout} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The ACK the device would send now; `over` changes fields (a device that lies). */
  ackBody(over: Partial<AckBody> = {}): AckBody {
    let cum = 0;
    while (this.received.has(cum)) cum++;
    const above = [...this.received].filter((s) => s > cum).sort((a, b) => a - b);
    const sack: [number, number][] = [];
    for (const s of above) {
      const last = sack[sack.length - 1];
      if (last && last[1] === s - 1) last[1] = s;
      else if (sack.length < 64) sack.push([s, s]);
    }
    const nack = this.pendingNacks.splice(0, 64);
    return { sid: this.sid, cum, sack, nack, consumed: this.consumed, credit: this.window, ...over };
  }

  /** Sends an ACK of the device's state now (`over` changes fields); records what it reported. */
  async ack(over: Partial<AckBody> = {}, auth: 'mac' | 'bad-mac' | 'none' = 'mac'): Promise<AckBody> {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const body = this.ackBody(over);
    const at = Date.now();
    if (auth === 'mac') {
      this.acksSent.push({ at, body });
      this.creditEdge = Math.max(this.creditEdge, body.consumed + body.credit);
      const reported = (s: number) => s < body.cum || body.sack.some(([lo, hi]) => s >= lo && s <= hi);
      for (const ch of this.chunks.values()) {
        if (ch.reportedAt === undefined && ch.missing === 0 && [...ch.frames].every(reported)) ch.reportedAt = at;
      }
      for (const [seq, reason, idx] of body.nack) {
        const fr = this.frames.get(seq);
        this.nacksSent.push({ at, seq, reason, idx, rev: fr ? Math.max(...[...fr.failedIn.values(), -1]) : -1 });
      }
    }
    await this.send(FrameType.ACK, body, auth);
    return body;
  }

  private scheduleAck(now: boolean): void {
    if (!this.behaviour.ack || this.ended || !this.samples.length) return;
    if (now) return void this.ack().catch(() => undefined);
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined;
      void this.ack().catch(() => undefined);
    }, 5);
  }

  /** Sends the RECEIPT ([LM-DLV-7]), signed by the device's key or, to forge one, by `signer`. */
  async sendReceipt(o: { signer?: Uint8Array; digest?: Uint8Array } = {}): Promise<void> {
    const body = { sid: this.sid, jd: this.tx.body.jd, bytes: this.tx.body.size, digest: o.digest ?? digest(this.init.data), time: Date.now(), device: this.dev.id, txh: this.tx.hash };
    const frame = encodeFrame(FrameType.RECEIPT, body, { kind: 'sig', secretKey: o.signer ?? this.dev.identity.secretKey });
    if (!o.signer && !o.digest) {
      this.receiptAt = Date.now();
      this.receiptsSent.push(frame);
    }
    await this.dev.publish(frame, FrameType.RECEIPT);
  }

  /** Publishes the latest genuine RECEIPT again, byte for byte (a device that did not hear the gateway's answer). */
  async repeatReceipt(): Promise<void> {
    const last = this.receiptsSent[this.receiptsSent.length - 1];
    if (!last) throw new Error('no RECEIPT was sent yet to repeat');
    await this.dev.publish(last, FrameType.RECEIPT);
  }

  /**
   * Sends TELEMETRY ([LM-TEL-1]) under the d2g chain of the current revision (or `rev`);
   * `corrupt` spoils it the way a broken device might ([LM-TEL-2]: the gateway drops it).
   */
  async telemetry(payload: ReadonlyMap<string, CborValue>, o: { rev?: number; corrupt?: 'hints' | 'padding' | 'aead' } = {}): Promise<void> {
    const p = this.params;
    const rev = o.rev ?? this.revAt(Date.now());
    const k = this.keysD2g(rev);
    const seq = this.telemetrySeq++;
    let ct = sealTelemetry(k.wk, this.sid, seq, encodeCbor(payload));
    if (o.corrupt === 'aead') ct = ct.map((b, i) => (i === 0 ? b ^ 1 : b));
    const syms = pack(ct, p.wt);
    if (o.corrupt === 'padding' && (8 * ct.length) % p.wt !== 0) syms[syms.length - 1] = (syms[syms.length - 1] as number) | 1;
    let hints = hintSymbols(p.suite, k.hk, p.wt, minHintLength(p.wt), syms);
    if (o.corrupt === 'hints') hints = hints.map((b) => b ^ 0x5a);
    await this.send(FrameType.TELEMETRY, { sid: this.sid, seq, rev, ctlen: ct.length, hints });
  }

  // ---- receiving -----------------------------------------------------------------------------

  /** A MAC-verified (or NONE) frame of this session from the gateway. */
  onFrame(type: FrameTypeId, body: Bodies[FrameTypeId], auth: string, at: number): void {
    if (type === FrameType.TIME_RESP) return this.onTimeResp(body as Bodies[5], at);
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
        return this.onHints(body as HintsBody, at);
      case FrameType.KEY:
        return this.onKey(body as KeyBody, at);
      case FrameType.END:
        return this.onEnd(body as EndBody, at);
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

  /** [LM-TIME-4]: answered at once, t1 echoed, t2 ≤ t3 from one clock. */
  private onTimeResp(b: Bodies[5], at: number): void {
    const sentAt = this.pendingTime.get(b.t1);
    if (!this.F.ok('LM-TIME-4', sentAt !== undefined, `TIME_RESP carries t1 ${b.t1}, which no TIME_REQ of the session sent`)) return;
    this.pendingTime.delete(b.t1);
    this.F.ok('LM-TIME-4', b.t2 <= b.t3 && b.t3 - b.t2 <= 100, `TIME_RESP t2 ${b.t2}, t3 ${b.t3}: t3 must follow t2 at once`);
    this.F.ok('LM-TIME-4', at - (sentAt ?? at) <= 1000, `TIME_REQ answered after ${at - (sentAt ?? at)} ms, not at once`);
    this.samples.push({ t1: b.t1, t2: b.t2, t3: b.t3, t4: at });
    const best = this.samples.slice(-4).map(syncResult).reduce((a, x) => (x.delay < a.delay ? x : a));
    this.theta = best.offset;
    this.delta = Math.max(0, best.delay);
    // the first ACK goes at once, as a fast device's does: the gateway must be able to stamp r0 from the OFFER on ([LM-REV-6])
    if (this.samples.length === 1 && this.behaviour.ack) void this.ack().catch(() => undefined);
  }

  /** TIME_REQs older than `ms` that the gateway never answered ([LM-TIME-4]). */
  unansweredTime(ms = 2000): number {
    const now = Date.now();
    return [...this.pendingTime.values()].filter((t) => now - t > ms).length;
  }

  /** [LM-REV-1]: the revision stamped on a frame is rev(g − G) of the gateway's time g when it went out. */
  private checkStamp(what: string, rev: number, at: number): void {
    const slack = this.delta / 2 + 5;
    const hi = this.revAt(at + slack);
    const lo = this.revAt(at - slack - SLACK_MS) - 1;
    this.F.ok('LM-REV-1', rev <= hi && rev >= lo, `${what} stamped revision ${rev}; at its arrival the gateway's clock (offset ${this.theta.toFixed(1)} ms) gives rev(g − G) = ${this.revAt(at)}`);
  }

  private frameState(b: HintsBody): FrameState {
    const p = this.params;
    const known = this.frames.get(b.seq);
    if (known) {
      // [LM-DLV-3]: a re-send keeps the frame's seq, chunk, off and ctlen
      this.F.ok('LM-DLV-3', known.chunk === b.chunk && known.off === b.off && known.ctlen === b.ctlen, `HINTS seq ${b.seq} re-sent with chunk/off/ctlen ${b.chunk}/${b.off}/${b.ctlen}, first sent as ${known.chunk}/${known.off}/${known.ctlen}`);
      return known;
    }
    const m = symbolCount(b.ctlen, p.w);
    const n = b.idx ? Math.min(p.symbolsPerFrame, m - b.off) : b.hints.length / p.L;
    const fs: FrameState = { seq: b.seq, chunk: b.chunk, off: b.off, n, ctlen: b.ctlen, known: new Uint32Array(n), vals: new Uint32Array(n), left: n, failedIn: new Map(), shiftFailed: new Map(), shiftsUsed: new Map() };
    this.frames.set(b.seq, fs);
    let ch = this.chunks.get(b.chunk);
    if (!ch) {
      ch = { j: b.chunk, ctlen: b.ctlen, m, symbols: new Uint32Array(m), have: new Uint8Array(m), missing: m, frames: new Set(), opened: false, log: [] };
      this.chunks.set(b.chunk, ch);
    }
    ch.frames.add(b.seq);
    return fs;
  }

  private async onHints(b: HintsBody, at: number): Promise<void> {
    const p = this.params;
    this.firstHintsAt ??= at;
    this.checkStamp(`HINTS seq ${b.seq}`, b.rev, at);
    const start = b.chunk * p.chunk;
    // [LM-DLV-16]: no HINTS for a chunk at or beyond consumed + credit of the latest ACK
    this.F.ok('LM-DLV-16', start < this.creditEdge, `HINTS of chunk ${b.chunk} (first byte ${start}) sent while the device's consumed + credit was ${this.creditEdge}`);
    const sending = this.sendings.get(b.seq) ?? 0;
    this.sendings.set(b.seq, sending + 1);
    const entry: HintsIn = { at, body: b, sending, deviceRev: this.rev(this.gatewayTime(at)) };
    this.hintsIn.push(entry);
    if (this.behaviour.drop?.(b.seq, sending)) return;
    const fs = this.frameState(b);
    const ch = this.chunks.get(b.chunk);
    if (!ch) return;
    ch.log.push(entry);
    if (this.ended || this.received.has(b.seq)) return;
    this.checkResend(fs, b);
    // [LM-REV-2] as a device applies it, on the gateway's clock (the suite adopts the offset); none before r0 ([LM-KEY-3])
    const c = entry.deviceRev;
    const refusal = b.rev < c - 1 || b.rev < p.r0 ? Reason.revExpired : b.rev > c ? Reason.revFuture : null;
    if (refusal !== null) {
      this.pendingNacks.push([b.seq, refusal, b.idx ?? []]);
      return this.scheduleAck(true);
    }
    const res = await this.dev.engine.scan(p.suite, p.w, p.L, this.keysG2d(b.rev).hk, b.hints);
    const positions = b.idx ?? Array.from({ length: fs.n }, (_, i) => i);
    const lie = (sending === 0 && !b.idx) || b.sh !== undefined ? this.behaviour.lie?.(b.seq, sending, fs.n, b.sh) : undefined;
    if (lie) {
      const lied = new Set(lie.idx);
      positions.forEach((i, x) => {
        if (lied.has(i)) res[x] = lie.reason === Reason.ambiguous ? AMBIGUOUS : ABSENT;
      });
    }
    const amb: number[] = [];
    const unk: number[] = [];
    const full = 2 ** p.w - 1;
    const learn = (i: number, v: number, mask: number) => {
      if (i < 0 || i >= fs.n || fs.known[i] === full) return;
      fs.known[i] = (fs.known[i] as number) | mask;
      fs.vals[i] = (fs.vals[i] as number) | (v & mask);
      if (fs.known[i] !== full) return;
      fs.left--;
      fs.failedIn.delete(i);
      fs.shiftFailed.delete(i);
      const k = fs.off + i;
      if (!ch.have[k]) {
        ch.have[k] = 1;
        ch.symbols[k] = fs.vals[i] as number;
        ch.missing--;
      }
    };
    const sh = b.sh;
    for (let x = 0; x < positions.length; x++) {
      const i = positions[x] as number;
      const r = res[x] as number;
      if (sh !== undefined) {
        if (r >= 0) {
          const { prevLow, curHigh } = splitShifted(r, p.w, sh);
          learn(i - 1, prevLow, 2 ** sh - 1);
          learn(i, curHigh, full - (2 ** sh - 1));
        } else {
          for (const t of [i - 1, i]) if (t >= 0 && t < fs.n && fs.known[t] !== full) (r === AMBIGUOUS ? amb : unk).push(t);
        }
      } else if (r >= 0) {
        learn(i, r, full);
      } else if (i < fs.n) {
        (r === AMBIGUOUS ? amb : unk).push(i);
      }
    }
    for (const i of [...amb, ...unk]) {
      fs.failedIn.set(i, b.rev);
      if (sh !== undefined) fs.shiftFailed.set(i, b.rev);
      else fs.shiftFailed.delete(i);
    }
    if (sh !== undefined) {
      for (const i of positions) {
        for (const t of [i - 1, i]) {
          const k = `${b.rev}:${t}`;
          fs.shiftsUsed.set(k, (fs.shiftsUsed.get(k) ?? new Set()).add(sh));
        }
      }
    }
    if (amb.length) this.pendingNacks.push([b.seq, Reason.ambiguous, [...new Set(amb)].sort((x, y) => x - y)]);
    if (unk.length) this.pendingNacks.push([b.seq, Reason.unknown, [...new Set(unk)].sort((x, y) => x - y)]);
    if (fs.left === 0) this.received.add(b.seq);
    this.openChunk(ch);
    this.scheduleAck(amb.length + unk.length > 0);
  }

  /**
   * [LM-DLV-15]: a symbol NACKed as ambiguous or unknown goes again only in a later revision,
   * except as shifted symbols ([LM-DLV-11]), which need 1 ≤ sh < w.
   */
  private checkResend(fs: FrameState, b: HintsBody): void {
    const sh = b.sh;
    const positions = b.idx ?? Array.from({ length: fs.n }, (_, i) => i);
    // [LM-DLV-18]: a symbol NACKed again after a shifted re-send goes shifted again in that revision with a shift not yet used for it there, or in a later revision
    const after = new Set((sh !== undefined ? positions.flatMap((i) => [i - 1, i]) : positions).filter((t) => fs.shiftFailed.has(t)));
    for (const t of after) {
      const r = fs.shiftFailed.get(t) as number;
      const used = fs.shiftsUsed.get(`${r}:${t}`) ?? new Set<number>();
      const ok = b.rev > r || (b.rev === r && sh !== undefined && !used.has(sh));
      this.F.ok('LM-DLV-18', ok, `symbol ${t} of HINTS seq ${b.seq}, NACKed again after a shifted re-send (shift ${[...used].join(', ')}) in revision ${r}, went again ${sh !== undefined ? `shifted by ${sh}` : 'unshifted'} in revision ${b.rev}: ${b.rev < r ? 'in an earlier revision' : sh === undefined ? 'unshifted, it must wait for a later revision' : 'with a shift it already had in that revision, which fails again'}`);
    }
    if (sh !== undefined) {
      this.F.ok('LM-DLV-11', sh >= 1 && sh < this.params.w && b.idx !== undefined, `HINTS seq ${b.seq} with shift ${sh} outside 1..${this.params.w - 1}`);
      return;
    }
    const again = positions.filter((i) => fs.failedIn.has(i));
    if (!again.length) return;
    const early = again.filter((i) => (fs.failedIn.get(i) as number) >= b.rev);
    this.F.ok('LM-DLV-15', early.length === 0, `HINTS seq ${b.seq} re-sent symbols ${early.slice(0, 4).join(', ')} NACKed as ambiguous or unknown in revision ${fs.failedIn.get(early[0] as number)} again in revision ${b.rev} (under the same key they fail again)`);
  }

  private async onKey(b: KeyBody, at: number): Promise<void> {
    const p = this.params;
    this.keysIn.push({ at, body: b });
    this.checkStamp(`KEY of chunk ${b.chunk}`, b.rev, at);
    // [LM-AEAD-6]: no KEY after an alarm of the session. Only a failure is recorded here: a KEY
    // with no alarm before it says nothing of the rule (gateway/rate-alarm and gateway/tamper raise one)
    const alarmed = this.alarms.find((a) => a.auth === 'mac' && a.at <= at);
    if (alarmed) this.F.fail('LM-AEAD-6', `KEY of chunk ${b.chunk} sent after the gateway's ALARM ${alarmed.body.code}`);
    const ch = this.chunks.get(b.chunk);
    const first = !ch || ch.keyAt === undefined;
    if (first) {
      // [LM-AEAD-3]: only after every HINTS frame of the chunk was reported received ...
      this.F.ok('LM-AEAD-3', ch?.reportedAt !== undefined && ch.reportedAt <= at, `KEY of chunk ${b.chunk} arrived before the device had reported every HINTS frame of it received`);
      // ... and once the transaction's allowance covers the chunk's last byte
      const end = Math.min(this.tx.body.size, (b.chunk + 1) * p.chunk);
      const since = at - (this.firstHintsAt ?? at) + SLACK_MS + this.delta;
      const allowed = this.from + (this.tx.body.rate * since) / 1000 + this.tx.body.burst;
      this.F.ok('LM-AEAD-3', end <= allowed, `KEY of chunk ${b.chunk} (last byte ${end}) arrived ${((at - (this.firstHintsAt ?? at)) / 1000).toFixed(2)} s after the first HINTS; the transaction allows ${Math.floor(allowed)} bytes by then (rate ${this.tx.body.rate}, burst ${this.tx.body.burst})`);
    }
    let key: Uint8Array;
    try {
      key = unwrapChunkKey(this.keysG2d(b.rev).wk, this.sid, b.chunk, b.wrapped); // [LM-AEAD-2]
      this.F.pass('LM-AEAD-2');
    } catch (e) {
      this.F.fail('LM-AEAD-2', `KEY of chunk ${b.chunk} does not unwrap under WK_g2d of revision ${b.rev}: ${toLmError(e).message}`);
      return;
    }
    if (!ch) {
      this.F.fail('LM-AEAD-3', `KEY of chunk ${b.chunk}, of which no HINTS came`);
      return;
    }
    if (ch.key && !equalBytes(ch.key, key)) this.F.fail('LM-AEAD-2', `KEY of chunk ${b.chunk} sent again with another chunk key`);
    if (first) {
      // [LM-AEAD-5]: a fresh key for every chunk of every session
      const hex = toHex(key);
      const where = `session ${this.sidHex.slice(0, 8)} chunk ${b.chunk}`;
      const before = this.dev.keySeen.get(hex);
      this.F.ok('LM-AEAD-5', before === undefined, `chunk key of ${where} was already used for ${before}`);
      this.dev.keySeen.set(hex, where);
      ch.keyAt = at;
    }
    ch.key = key;
    this.openChunk(ch);
  }

  /** Opens a chunk once all its symbols and its key are in; hands chunks to the consumer in order. */
  private openChunk(ch: ChunkState): void {
    if (ch.opened || ch.missing > 0 || !ch.key) return;
    const p = this.params;
    const start = ch.j * p.chunk;
    const expected = this.init.data.subarray(start, Math.min(this.init.data.length, start + p.chunk));
    let ct: Uint8Array;
    try {
      ct = unpack(ch.symbols, p.w, ch.ctlen); // [LM-PACK-2]: zero padding bits
      this.F.pass('LM-PACK-2');
    } catch (e) {
      this.F.fail('LM-PACK-2', `chunk ${ch.j}: the hinted symbols do not unpack to ${ch.ctlen} bytes: ${toLmError(e).message}`);
      return;
    }
    try {
      const pt = openChunk(ch.key, this.sid, ch.j, ct); // [LM-AEAD-1]
      this.F.ok('LM-AEAD-1', equalBytes(pt, expected) && ch.ctlen === expected.length + 16, `chunk ${ch.j} decrypts to ${pt.length} bytes that are not the job's bytes ${start}..${start + expected.length}`);
    } catch (e) {
      this.F.fail('LM-AEAD-1', `chunk ${ch.j} does not open under its key with aad "lm1 chunk" ‖ sid ‖ u64be(${ch.j}): ${toLmError(e).message}`);
      return;
    }
    ch.opened = true;
    this.F.pass('LM-PACK-1');
    this.F.pass('LM-KEY-2');
    this.F.pass('LM-KEY-3');
    this.verifyHints(ch, ct);
    this.consume();
  }

  /** [LM-HINT-1], [LM-DLV-11]: every hint sent for a chunk is the hint of its true (or shifted) symbol under the stamped revision's key. */
  private verifyHints(ch: ChunkState, ct: Uint8Array): void {
    const p = this.params;
    const all = pack(ct, p.w); // [LM-PACK-1]
    for (const e of ch.log) {
      const b = e.body;
      const fs = this.frames.get(b.seq);
      if (!fs) continue;
      const own = all.subarray(fs.off, fs.off + fs.n);
      const sh = b.sh;
      const syms = b.idx ? b.idx.map((i) => (sh !== undefined ? shiftedSymbol(own, p.w, sh, i) : (own[i] ?? 0))) : Array.from(own);
      const want = hintSymbols(p.suite, this.keysG2d(b.rev).hk, p.w, p.L, syms);
      const id = sh !== undefined ? 'LM-DLV-11' : 'LM-HINT-1';
      this.F.ok(id, equalBytes(want, b.hints), `HINTS seq ${b.seq} (revision ${b.rev}${b.idx ? `, ${b.idx.length} listed symbols` : ''}${sh !== undefined ? `, shift ${sh}` : ''}) carries hints that are not those of its ${sh !== undefined ? 'shifted ' : ''}symbols under HK_g2d of revision ${b.rev}`);
    }
  }

  private consume(): void {
    if (!this.behaviour.consume) return;
    const p = this.params;
    let moved = false;
    for (;;) {
      const ch = this.chunks.get(this.nextChunk);
      if (!ch?.opened) break;
      this.consumed = Math.min(this.tx.body.size, (this.nextChunk + 1) * p.chunk);
      this.nextChunk++;
      moved = true;
    }
    if (moved) {
      this.scheduleAck(false);
      this.maybeReceipt();
    }
  }

  /** Whether every chunk of the job from the resume point on was opened. */
  complete(): boolean {
    const p = this.params;
    const last = Math.ceil(this.tx.body.size / p.chunk);
    for (let j = Math.floor(this.from / p.chunk); j < last; j++) if (!this.chunks.get(j)?.opened) return false;
    return true;
  }

  private onEnd(b: EndBody, at: number): void {
    const p = this.params;
    this.ends.push({ at, body: b });
    if (this.ends.length > 1) return this.maybeReceipt();
    const total = Math.ceil(this.tx.body.size / p.chunk);
    const missing: number[] = [];
    for (let j = Math.floor(this.from / p.chunk); j < total; j++) {
      const k = this.chunks.get(j)?.keyAt;
      if (k === undefined || k > at) missing.push(j);
    }
    // [LM-DLV-6]: END once every chunk's KEY was sent, with the job's totals and digest
    this.F.ok('LM-DLV-6', missing.length === 0, `END arrived before the KEY of chunk(s) ${missing.slice(0, 5).join(', ')}`);
    const frames = this.sendings.size;
    this.F.ok('LM-DLV-6', b.bytes === this.tx.body.size && b.chunks === total && b.frames === frames && equalBytes(b.digest, this.tx.body.jd),
      `END says ${b.bytes} bytes, ${b.chunks} chunks, ${b.frames} frames, digest ${toHex(b.digest).slice(0, 16)}; the job has ${this.tx.body.size} bytes, ${total} chunks, the session ${frames} frames, jd ${toHex(this.tx.body.jd).slice(0, 16)}`);
    this.maybeReceipt();
  }

  private maybeReceipt(): void {
    if (!this.behaviour.receipt || this.ended || !this.ends.length || this.receiptAt !== undefined) return;
    if (this.consumed < this.tx.body.size || !this.complete()) return;
    void this.sendReceipt().catch(() => undefined);
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
