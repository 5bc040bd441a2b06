/**
 * @module gateway
 * The sender side of Live Matrix: signed jobs to devices as hints, paced by the device's
 * acknowledgements in a window, re-sent on NACK and timeout in a current revision, chunk keys
 * just in time, alarms, telemetry in, a report per stream.
 */
import { EventEmitter } from 'node:events';
import PQueue from 'p-queue';
import {
  type AnyFrame, ControlOp, type Frame, FrameType, type FrameTypeId, Kernel, LmError, MatrixEngine, type NegotiationPolicy, Ratchet, Reason,
  type ReasonCode, type RevisionKeys, type SessionKeys, type SessionParams, type SignedTx, type CborValue, checkRevision, decodeCbor, decodeFrame,
  deriveSessionKeys, digest, ecdh, encodeFrame, equalBytes, minHintLength, negotiate, openTelemetry, pack, RANGES, randomBytes, reasonName, sealChunk,
  senderRevision, shiftedSymbol, topics, transcriptHash, unpack, verifyFrame, verifyTx, wipe, wrapChunkKey, x25519KeyPair, type IdentityKeyPair, type HelloBody,
  FRAME_TYPE_NAMES, toHex, toLmError,
} from '@livematrix/spec';
import { type BrokerAuth, FrameLink, authOptions } from '@livematrix/spec/transport';
import { BytesSource, type JobSource, type JobStream, StreamSource } from './source.js';

export interface GatewayOptions {
  url: string;
  fleet: string;
  id: string;
  identity: IdentityKeyPair;
  /** operator keys whose transactions this gateway honours ([LM-TX-3]) */
  trustedOperators: readonly Uint8Array[];
  /** hashing workers for telemetry; default one per core */
  workers?: number;
  protocolVersion?: 4 | 5;
  clock?: () => number;
  /** how to authenticate to the broker: 'token' for a broker with the Live Matrix plugin, or a user name and password */
  brokerAuth?: BrokerAuth;
  /**
   * registered identity keys of devices, by id ([LM-MQTT-6]): a HELLO signed by another key is
   * ignored. Without it, a HELLO counts only when its key is the transaction's device key.
   */
  deviceKeys?: ReadonlyMap<string, Uint8Array>;
}

export interface StreamOptions {
  /** negotiation policy ([LM-CAP-2]); `w` forces a width */
  policy?: NegotiationPolicy;
  /** ms to wait for the device's HELLO; default 10000 */
  helloTimeout?: number;
  /** frames in flight at once on the MQTT client; default 64 */
  concurrency?: number;
  /** bytes a stream job is read ahead of the device's window; default 8 MiB */
  readAhead?: number;
  /** metrics hook: a HINTS frame went out (benchmarks measure hint latency with it) */
  onFrameSent?: (seq: number, resend: boolean) => void;
  /** ms to wait for ACCEPT after an OFFER; default 10000 ([LM-FRAME-9]) */
  offerTimeout?: number;
  /** ms to keep offering to a device that refuses as `busy` (its previous session may be ending); default 15000 */
  busyWait?: number;
  /** ms without an authenticated frame from the device before the stream fails ([LM-DLV-13]); default 20000 */
  deviceTimeout?: number;
  /** ms after the device's Last Will before the stream fails unless the device is heard again or restarts ([LM-DLV-13]); default 10000 */
  offlineGrace?: number;
}

export interface StreamReport {
  device: string;
  job: string;
  bytes: number;
  frames: number;
  framesSent: number;
  resends: number;
  /** re-sends as shifted symbols within the revision ([LM-DLV-11]) */
  shiftedResends: number;
  /** re-sends of frames not acknowledged within 2 P */
  timeoutResends: number;
  symbolsResent: number;
  wireBytes: number;
  revisions: number;
  seconds: number;
  params: SessionParams;
  alarms: number;
  receipt: { digest: string; bytes: number };
}

export interface GatewayStreamEvents {
  progress: [{ consumed: number; total: number; sent: number; revision: number }];
  telemetry: [Record<string, unknown>];
  alarm: [{ code: number; detail: string; observed?: number; limit?: number }];
  error: [LmError];
  done: [StreamReport];
}

interface OutFrame {
  seq: number;
  chunk: number;
  off: number;
  symbols: Uint32Array;
  ctlen: number;
  sentAt: number;
  received: boolean;
  /** revision of the latest sending */
  rev: number;
  /** revision of the latest shifted re-send ([LM-DLV-11]); -1 if none */
  shiftedRev: number;
  /** shifted re-sends of this frame in that revision (each with another shift) */
  shifts: number;
}

interface OutChunk {
  key: Uint8Array;
  /** KEY re-sends so far: each waits twice as long as the one before */
  keyTries: number;
  first: number;
  last: number;
  pending: number;
  keySent: boolean;
  /** when the KEY last went out (ms) */
  keyAt: number;
  start: number;
  end: number;
}

/** Shifts of successive shifted re-sends of a frame in one revision, as fractions of w ([LM-DLV-11]). */
const SHIFTS = [1 / 2, 1 / 4, 3 / 4] as const;
const INITIAL_CWND = 4;
const MIN_CWND = 2;
const MAX_CWND = 4096;

/** One stream from this gateway to one device. */
export class GatewayStream extends EventEmitter<GatewayStreamEvents> {
  sid = randomBytes(16);
  params!: SessionParams;
  private keys: SessionKeys | undefined;
  private g2d!: Ratchet;
  private d2g!: Ratchet;
  private sendKeys: RevisionKeys | undefined;
  private readonly telemetryKeys = new Map<number, RevisionKeys>();
  private frames: OutFrame[] = [];
  /** by chunk index (sparse after a resume) */
  private chunks: OutChunk[] = [];
  private nextChunk = 0;
  private consumed = 0;
  private credit = 0;
  private started = 0;
  /** plaintext offset where this session started (the resume point, [LM-DLV-10]) */
  private base = 0;
  private firstAck = false;
  private paused = false;
  private alarmed = false;
  private ended = false;
  private endSent = false;
  private resends = 0;
  private shiftedResends = 0;
  private timeoutResends = 0;
  private symbolsResent = 0;
  private framesSent = 0;
  private wireBytes = 0;
  private readonly revisionsUsed = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly queue: PQueue;
  private resolveDone!: (r: StreamReport) => void;
  private rejectDone!: (e: LmError) => void;
  readonly done: Promise<StreamReport>;
  private offerBytes!: Uint8Array;
  private ephemeral = x25519KeyPair();
  private t0 = 0;
  private pump = false;
  private readonly kernel = new Kernel();
  /** the HELLO the current OFFER answers (a restart needs a later one, [LM-MQTT-6]) */
  private hello: HelloBody | undefined;
  private offerTimer: NodeJS.Timeout | undefined;
  /** when offering began, for `busyWait` */
  private offeringSince = 0;
  /** an unauthenticated refusal: advisory only ([LM-FRAME-5]), reported if no ACCEPT comes */
  private advisory: string | undefined;
  /** when the last authenticated frame of the device arrived ([LM-DLV-13]) */
  private lastHeard = 0;
  /** when the device's Last Will arrived, 0 if it is online ([LM-DLV-13]) */
  private offlineSince = 0;

  constructor(
    private readonly gw: Gateway,
    readonly device: string,
    private readonly source: JobSource,
    readonly tx: SignedTx,
    private readonly licence: Uint8Array,
    private readonly opts: StreamOptions,
  ) {
    super();
    this.queue = new PQueue({ concurrency: opts.concurrency ?? 64 });
    this.done = new Promise<StreamReport>((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.done.catch(() => undefined);
    source.onReadable(() => {
      if (source.failure) return this.fail(source.failure);
      this.kick();
      this.maybeEnd();
    });
  }

  private get inTopic(): string {
    return topics.deviceIn(this.gw.o.fleet, this.device);
  }

  /** Offer, then stream. @internal */
  async begin(hello: HelloBody, resume = false): Promise<void> {
    const now = this.gw.clock();
    this.hello = hello;
    this.advisory = undefined;
    if (!this.offeringSince) this.offeringSince = now;
    if (this.offerTimer) clearTimeout(this.offerTimer);
    const offerTimeout = this.opts.offerTimeout ?? 10_000;
    this.offerTimer = setTimeout(() => {
      if (this.keys || this.ended) return;
      const why = this.advisory ? `; an unauthenticated message said: ${this.advisory}` : '';
      this.fail(new LmError(Reason.timeout, `device "${this.device}" did not accept the OFFER within ${offerTimeout / 1000} s${why}`));
    }, offerTimeout);
    const policy = this.opts.policy ?? {};
    const params = negotiate(hello.caps, now, policy);
    this.params = params;
    this.offerBytes = encodeFrame(FrameType.OFFER, {
      sid: this.sid, tx: this.tx.bytes, epk: this.ephemeral.publicKey, params, gwpk: this.gw.o.identity.publicKey, time: now, ...(resume ? { resume: true } : {}),
    }, { kind: 'sig', secretKey: this.gw.o.identity.secretKey });
    await this.gw.link.send(this.inTopic, this.offerBytes, FrameType.OFFER);
    if (!this.t0) this.t0 = Date.now();
  }

  /**
   * The device's process restarted ([LM-DLV-10]): its session keys are gone. Ends this session
   * and offers the job again with `resume`; the device answers where its consumer stands.
   * @internal
   */
  async restart(hello: HelloBody): Promise<void> {
    if (this.ended) return;
    this.gw.log(`${this.device} restarted mid-stream: resuming the job in a new session`);
    this.resumes++;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.queue.clear();
    for (const c of this.chunks) if (c) wipe(c.key);
    if (this.sendKeys) wipe(this.sendKeys.hk, this.sendKeys.wk);
    this.sendKeys = undefined;
    for (const k of this.telemetryKeys.values()) wipe(k.hk, k.wk);
    this.telemetryKeys.clear();
    this.g2d?.destroy();
    this.d2g?.destroy();
    if (this.keys) wipe(this.keys.fkG2d, this.keys.fkD2g);
    this.keys = undefined;
    this.frames = [];
    this.started = 0;
    this.framesReceived = 0;
    this.cwnd = INITIAL_CWND;
    this.ssthresh = Infinity;
    this.chunks = [];
    this.retry.clear();
    this.ackedUpTo = 0;
    this.firstAck = false;
    this.endSent = false;
    this.paused = false;
    this.offlineSince = 0;
    this.offeringSince = 0;
    this.sid = randomBytes(16);
    this.ephemeral = x25519KeyPair();
    await this.begin(hello, true);
  }

  /** The HELLO this session's OFFER answered. @internal */
  get offeredHello(): HelloBody | undefined {
    return this.hello;
  }

  /** The device's Last Will arrived: it has `offlineGrace` to be heard again or restart ([LM-DLV-13]). @internal */
  deviceOffline(): void {
    if (this.ended || this.offlineSince) return;
    this.offlineSince = this.gw.clock();
    this.gw.log(`${this.device} went offline (its Last Will); waiting ${(this.opts.offlineGrace ?? 10_000) / 1000} s for it to come back`);
  }

  /** Offers again under a new session id, after a refusal as `busy`. */
  private reoffer(): void {
    if (this.ended || this.keys || !this.hello) return;
    this.sid = randomBytes(16);
    wipe(this.ephemeral.secretKey);
    this.ephemeral = x25519KeyPair();
    void this.begin(this.hello, this.resumes > 0).catch((e: unknown) => this.fail(toLmError(e)));
  }

  /**
   * A frame before ACCEPT: only an ERROR signed by the transaction's device key ends the offer
   * ([LM-FRAME-9]); an unsigned one is advisory ([LM-FRAME-5]) and kept for the timeout's message.
   */
  private beforeAccept(f: AnyFrame): void {
    if (f.type !== FrameType.ERROR) return;
    const detail = `${reasonName(f.body.code as ReasonCode) ?? f.body.code}: ${f.body.detail}`;
    if (f.authKind !== 'sig') {
      this.advisory = detail;
      this.gw.emit('reject', { code: Reason.auth, detail: `${this.device}: unauthenticated refusal ignored (${detail}) ([LM-FRAME-5])` });
      return;
    }
    try {
      verifyFrame(f, { signer: this.tx.body.dpk });
    } catch (e) {
      this.gw.emit('reject', { code: Reason.auth, detail: `${this.device}: refusal not signed by the device: ${toLmError(e).message}` });
      return;
    }
    const busyWait = this.opts.busyWait ?? 15_000;
    if (f.body.code === Reason.busy && this.gw.clock() - this.offeringSince < busyWait) {
      // its previous session may be ending ([LM-DLV-13]): offer again shortly
      this.gw.log(`${this.device} is busy; offering again for up to ${busyWait / 1000} s`);
      if (this.offerTimer) clearTimeout(this.offerTimer);
      this.offerTimer = setTimeout(() => this.reoffer(), 1000);
      return;
    }
    const code = (reasonName(f.body.code as ReasonCode) ? f.body.code : Reason.internal) as ReasonCode;
    this.fail(new LmError(code, `device refused the offer: ${f.body.detail}`), false);
  }
  private resumes = 0;

  /** @internal */
  async onFrame(f: AnyFrame, raw: Uint8Array): Promise<void> {
    if (this.ended) {
      if (f.type === FrameType.ACK || f.type === FrameType.ACCEPT) this.gw.emit('reject', { code: Reason.replay, detail: `${f.type} for an ended session` }); // [LM-ALARM-4]
      return;
    }
    if (f.type === FrameType.ACCEPT) return this.onAccept(f, raw);
    if (!this.keys) return this.beforeAccept(f);
    if (f.type === FrameType.RECEIPT) return this.onReceipt(f);
    if (f.authKind !== 'mac') {
      // [LM-FRAME-5]: an unauthenticated ERROR, ALARM or BYE is advisory: logged, never acted on
      this.gw.emit('reject', { code: Reason.auth, detail: `${this.device}: unauthenticated ${FRAME_TYPE_NAMES[f.type]} ignored ([LM-FRAME-5])` });
      return;
    }
    try {
      verifyFrame(f, { mac: this.keys.fkD2g });
    } catch (e) {
      const err = toLmError(e);
      this.gw.emit('reject', { code: err.code, detail: err.message });
      return;
    }
    this.lastHeard = this.gw.clock(); // [LM-DLV-13]
    this.offlineSince = 0;
    switch (f.type) {
      case FrameType.TIME_REQ: {
        const t2 = this.gw.clock();
        await this.send(FrameType.TIME_RESP, { sid: this.sid, t1: f.body.t1, t2, t3: this.gw.clock() }); // [LM-TIME-4]
        return;
      }
      case FrameType.ACK:
        return this.onAck(f);
      case FrameType.TELEMETRY:
        return this.onTelemetry(f);
      case FrameType.CONTROL:
        if (f.body.op === ControlOp.pause) this.paused = true;
        else if (f.body.op === ControlOp.resume) {
          this.paused = false;
          this.kick();
        } else if (f.body.op === ControlOp.abort) this.fail(new LmError(Reason.aborted, 'the device aborted the stream'), false);
        return;
      case FrameType.ERROR:
        return this.fail(new LmError((reasonName(f.body.code as ReasonCode) ? f.body.code : Reason.internal) as ReasonCode, `device error: ${f.body.detail}`), false);
      case FrameType.ALARM:
        this.emit('alarm', { code: f.body.code, detail: f.body.detail });
        return this.fail(new LmError(f.body.code === Reason.rate ? Reason.rate : Reason.tamper, `device alarm: ${f.body.detail}`), false);
      default:
        return;
    }
  }

  private onAccept(f: Frame<3>, raw: Uint8Array): void {
    if (this.keys) return;
    try {
      verifyFrame(f, { signer: this.tx.body.dpk }); // [LM-FRAME-7]
      if (!equalBytes(f.body.oh, digest(this.offerBytes))) throw new LmError(Reason.auth, 'ACCEPT does not answer our OFFER ([LM-FRAME-7])');
    } catch (e) {
      return this.fail(toLmError(e));
    }
    if (this.offerTimer) clearTimeout(this.offerTimer);
    this.offerTimer = undefined;
    this.lastHeard = this.gw.clock();
    const z = ecdh(this.ephemeral.secretKey, f.body.epk);
    this.keys = deriveSessionKeys(z, this.licence, transcriptHash(this.offerBytes, raw));
    wipe(z, this.ephemeral.secretKey); // [LM-KEY-4]
    this.g2d = new Ratchet(this.keys.ckG2d, this.params.r0);
    this.d2g = new Ratchet(this.keys.ckD2g, this.params.r0);
    wipe(this.keys.ckG2d, this.keys.ckD2g);
    this.credit = f.body.window;
    // [LM-DLV-10]: a resumed job continues at the device's resume point
    const from = f.body.from ?? 0;
    if (from % this.params.chunk !== 0 || from > this.source.size) return this.fail(new LmError(Reason.schema, `resume point ${from} is not a chunk boundary of the job`));
    try {
      this.source.seek(from); // [LM-DLV-10]: any resume point, 0 included, is served or refused clearly
    } catch (e) {
      return this.fail(toLmError(e));
    }
    this.nextChunk = from / this.params.chunk;
    this.wiped = this.nextChunk;
    this.consumed = Math.max(from, 0);
    this.base = this.consumed;
    this.timer = setInterval(() => this.onTimer(), Math.max(50, Math.floor(this.params.period / 4)));
  }

  private keysNow(): RevisionKeys {
    const rev = senderRevision(this.gw.clock(), this.params); // [LM-REV-1]
    if (this.sendKeys?.revision === rev) return this.sendKeys;
    if (this.sendKeys) wipe(this.sendKeys.hk, this.sendKeys.wk);
    this.sendKeys = this.g2d.keysFor(Math.max(rev, this.g2d.position));
    this.revisionsUsed.add(this.sendKeys.revision);
    return this.sendKeys;
  }

  /** Cuts chunks into frames while the window allows ([LM-DLV-5]) and sends them. */
  private kick(): void {
    if (this.pump) return;
    this.pump = true;
    queueMicrotask(() => {
      this.pump = false;
      try {
        this.fill();
      } catch (e) {
        this.fail(toLmError(e, 'sending the job'));
      }
    });
  }

  private fill(): void {
    if (!this.firstAck || this.paused || this.alarmed || this.ended) return;
    const p = this.params;
    const size = this.source.size;
    while (this.nextChunk * p.chunk < size && this.nextChunk * p.chunk < this.consumed + this.credit && this.queue.size < 256 && this.frames.length - this.framesReceived < this.cwnd) {
      const start = this.nextChunk * p.chunk;
      const pt = this.source.take(start, start + p.chunk);
      if (!pt) return; // a stream source is still reading: it calls back
      const j = this.nextChunk++;
      const key = randomBytes(32); // [LM-AEAD-5]
      const ct = sealChunk(key, this.sid, j, pt); // [LM-AEAD-1]
      const syms = pack(ct, p.w);
      const first = this.frames.length;
      for (let off = 0; off < syms.length; off += p.symbolsPerFrame) {
        const fr: OutFrame = { seq: this.frames.length, chunk: j, off, symbols: syms.subarray(off, Math.min(syms.length, off + p.symbolsPerFrame)), ctlen: ct.length, sentAt: 0, received: false, rev: -1, shiftedRev: -1, shifts: 0 };
        this.frames.push(fr);
        this.sendHints(fr);
      }
      this.chunks[j] = { key, keyTries: 0, first, last: this.frames.length - 1, pending: this.frames.length - first, keySent: false, keyAt: 0, start, end: start + pt.length };
    }
    if (!this.started) this.started = this.gw.clock();
  }

  /** Sends a frame's hints: all, those listed in `idx`, or shifted ones ([LM-DLV-11]). */
  private sendHints(fr: OutFrame, idx?: number[], shifted?: { sh: number; pos: number[] }): void {
    void this.queue.add(async () => {
      if (this.ended || this.alarmed || fr.received) return;
      const k = this.keysNow();
      const p = this.params;
      // the revision turned while this waited: a plain re-send under the new key does
      if (shifted && k.revision !== fr.shiftedRev) return this.sendHints(fr, idx);
      const sh = shifted?.sh;
      if (shifted) idx = shifted.pos;
      const syms = idx ? idx.map((i) => (sh !== undefined ? shiftedSymbol(fr.symbols, p.w, sh, i) : (fr.symbols[i] as number))) : fr.symbols;
      this.kernel.setKey(k.hk);
      const hints = this.kernel.hintList(p.suite, p.w, p.L, syms); // [LM-HINT-1]
      this.kernel.wipe();
      this.opts.onFrameSent?.(fr.seq, fr.sentAt > 0);
      fr.sentAt = Date.now();
      fr.rev = k.revision;
      await this.send(FrameType.HINTS, { sid: this.sid, seq: fr.seq, rev: k.revision, chunk: fr.chunk, off: fr.off, ctlen: fr.ctlen, hints, ...(idx ? { idx } : {}), ...(sh !== undefined ? { sh } : {}) }, { expirySeconds: Math.ceil((2 * p.period) / 1000) });
      this.framesSent++;
    });
  }

  private onAck(f: Frame<8>): void {
    const b = f.body;
    this.firstAck = true;
    const now = Date.now();
    let newly = 0;
    let maxLat = 0;
    const mark = (seq: number) => {
      const fr = this.frames[seq];
      if (!fr || fr.received) return;
      fr.received = true;
      this.framesReceived++;
      newly++;
      maxLat = Math.max(maxLat, now - fr.sentAt);
      fr.symbols = new Uint32Array(0);
      const ch = this.chunks[fr.chunk];
      if (ch && --ch.pending === 0) this.sendKey(fr.chunk);
    };
    for (let s = this.ackedUpTo; s < Math.min(b.cum, this.frames.length); s++) mark(s);
    this.ackedUpTo = Math.max(this.ackedUpTo, Math.min(b.cum, this.frames.length));
    for (const [lo, hi] of b.sack) for (let s = lo; s <= hi && s < this.frames.length; s++) mark(s);
    // [LM-DLV-12]: hints in flight follow what the device resolves within the latency budget
    // delay-based: grow fast while frames come back well within the target, slowly near it,
    // halve beyond it (and on stale or busy NACKs and timeouts)
    const target = this.latencyTarget();
    if (maxLat > target) this.congested();
    else if (newly) this.cwnd = Math.min(MAX_CWND, this.cwnd < this.ssthresh || maxLat < target / 2 ? this.cwnd + newly : this.cwnd + newly / this.cwnd);
    const revNow = senderRevision(this.gw.clock(), this.params);
    for (const [seq, reason, idx] of b.nack) {
      const fr = this.frames[seq];
      if (!fr || fr.received) continue;
      // [LM-DLV-11]: an ambiguous symbol NACKed in the revision it failed in goes again at once
      // as the two shifted symbols that straddle it (up to SHIFTS.length shifts per frame and revision)
      const n = fr.symbols.length;
      if (fr.shiftedRev !== revNow) fr.shifts = 0;
      const w = this.params.w;
      if (reason === Reason.ambiguous && idx.length > 0 && idx.length <= 512 && fr.rev === revNow && fr.shifts < SHIFTS.length && idx.every((j) => j < n)) {
        // a shift not tried in this revision: the same one would fail again
        const sh = Math.max(1, Math.min(w - 1, Math.floor(w * (SHIFTS[fr.shifts] as number))));
        fr.shiftedRev = revNow;
        fr.shifts++;
        this.shiftedResends++;
        const pos = [...new Set(idx.flatMap((j) => [j, j + 1]))].sort((x, y) => x - y);
        this.resends++;
        this.symbolsResent += idx.length;
        this.sendHints(fr, idx, { sh, pos });
        continue;
      }
      // [LM-DLV-3]: re-send the NACKed symbols (or the whole frame) in a revision later than
      // the one they failed in: the same key would give the same ambiguous hints again.
      const sub = idx.length && idx.length < fr.symbols.length && reason !== Reason.revExpired && reason !== Reason.revFuture && reason !== Reason.busy ? idx.filter((i) => i < fr.symbols.length) : undefined;
      if (reason === Reason.revExpired || reason === Reason.busy) this.congested();
      const prev = this.retry.get(seq);
      const merged = prev === undefined || sub === undefined || prev.idx === undefined ? (prev === undefined ? sub : undefined) : [...new Set([...prev.idx, ...sub])].sort((x, y) => x - y);
      this.retry.set(seq, { idx: merged, after: fr.rev });
    }
    this.flushRetries();
    // [LM-ALARM-1]: consumption against the transaction's rate
    if (b.consumed > this.consumed) {
      this.consumed = b.consumed;
      const t = this.gw.clock();
      const allowed = this.allowance(t);
      if (this.consumed > allowed) {
        this.alarm(Reason.rate, `device consumed ${this.consumed - this.base} bytes in ${((t - this.started) / 1000).toFixed(1)} s; the transaction allows ${this.tx.body.rate} bytes/s plus a burst of ${this.tx.body.burst}`, this.consumed, Math.floor(allowed));
        return;
      }
    }
    this.credit = b.credit;
    // chunk keys are erased once the consumer is past their chunk
    while (this.wiped < this.chunks.length && this.chunks[this.wiped]!.end <= this.consumed) wipe(this.chunks[this.wiped++]!.key);
    this.releaseKeys();
    // a stream source keeps what a resumed session may still ask for ([LM-DLV-10]): its resume
    // point is a multiple of its own chunk size (which may differ if the restarted device
    // negotiates another w) at or below what the consumer took, so at most one chunk back
    this.source.release(Math.max(0, this.consumed - RANGES.chunk[1]));
    this.emit('progress', { consumed: this.consumed, total: this.source.size, sent: this.framesSent, revision: this.sendKeys?.revision ?? 0 });
    this.kick();
    this.maybeEnd();
  }
  private ackedUpTo = 0;
  private wiped = 0;
  private framesReceived = 0;
  /** congestion window in frames ([LM-DLV-12]) */
  private cwnd = INITIAL_CWND;
  private ssthresh = Infinity;
  private lastCut = 0;

  /** How late a frame may be resolved before the gateway sends less: a quarter of P - 2G. */
  private latencyTarget(): number {
    return Math.max(20, (this.params.period - 2 * this.params.grace) / 4);
  }

  /** Halves the congestion window, at most once per two latency targets ([LM-DLV-12]). */
  private congested(): void {
    const now = Date.now();
    if (now - this.lastCut < 2 * this.latencyTarget()) return;
    this.lastCut = now;
    this.ssthresh = Math.max(MIN_CWND, this.cwnd / 2);
    this.cwnd = this.ssthresh;
  }
  /** NACKed frames waiting for a later revision: seq -> symbols (all when undefined) */
  private readonly retry = new Map<number, { idx: number[] | undefined; after: number }>();

  private flushRetries(): void {
    if (!this.retry.size || this.alarmed || this.paused) return;
    const rev = senderRevision(this.gw.clock(), this.params);
    for (const [seq, r] of this.retry) {
      if (rev <= r.after) continue;
      this.retry.delete(seq);
      const fr = this.frames[seq];
      if (!fr || fr.received) continue;
      this.resends++;
      this.symbolsResent += r.idx ? r.idx.length : fr.symbols.length;
      this.sendHints(fr, r.idx);
    }
  }

  /** Plaintext bytes the transaction allows the device to have taken by now ([LM-ALARM-1]). */
  private allowance(now = this.gw.clock()): number {
    // per session: a resumed job counts from its resume point and its own start, so a device
    // cannot bank allowance while it is down and spend it in a burst afterwards
    return this.base + (this.tx.body.rate * (now - (this.started || now))) / 1000 + this.tx.body.burst;
  }

  private sendKey(j: number, again = false): void {
    const ch = this.chunks[j];
    if (!ch || (ch.keySent && !again) || this.alarmed) return; // [LM-AEAD-3]: withheld on alarm
    if (!ch.keySent && ch.end > this.allowance()) return; // [LM-AEAD-3]: paced by the transaction; the timer releases it
    if (again) ch.keyTries++;
    ch.keySent = true;
    ch.keyAt = Date.now();
    void this.queue.add(async () => {
      if (this.alarmed || this.ended || ch.end <= this.consumed) return;
      const k = this.keysNow();
      const wrapped = wrapChunkKey(k.wk, this.sid, j, ch.key); // [LM-AEAD-2]
      await this.send(FrameType.KEY, { sid: this.sid, chunk: j, rev: k.revision, wrapped });
      this.maybeEnd();
    });
  }

  /** KEYs of received chunks that the transaction's allowance now covers. */
  private releaseKeys(): void {
    for (let j = this.wiped; j < this.chunks.length; j++) {
      const ch = this.chunks[j];
      if (ch && ch.pending === 0 && !ch.keySent) this.sendKey(j);
    }
  }

  private maybeEnd(): void {
    if (this.endSent || this.ended || this.alarmed) return;
    const size = this.source.size;
    if (this.nextChunk * this.params.chunk < size) return;
    if (!this.chunks.every((c) => c.keySent)) return;
    if (!this.source.verified) return; // [LM-TX-6]: a stream source's digest is known at its end
    this.endSent = true; // [LM-DLV-6]
    this.lastEnd = Date.now();
    void this.queue.add(() => this.send(FrameType.END, { sid: this.sid, bytes: size, chunks: this.chunks.length, frames: this.frames.length, digest: this.tx.body.jd }));
  }

  private onTimer(): void {
    if (this.ended) return;
    // [LM-DLV-13]: a device that went offline and stayed away, or fell silent, ends the stream
    const t = this.gw.clock();
    const grace = this.opts.offlineGrace ?? 10_000;
    if (this.offlineSince && t - this.offlineSince > grace) {
      return this.fail(new LmError(Reason.offline, `device "${this.device}" went offline (its Last Will) ${((t - this.offlineSince) / 1000).toFixed(1)} s ago and did not come back ([LM-DLV-13])`), false);
    }
    const silence = this.opts.deviceTimeout ?? 20_000;
    if (this.lastHeard && t - this.lastHeard > silence) {
      return this.fail(new LmError(Reason.timeout, `no authenticated frame from device "${this.device}" for ${((t - this.lastHeard) / 1000).toFixed(1)} s: it is gone or cut off ([LM-DLV-13])`));
    }
    if (this.alarmed || this.paused || !this.firstAck) return;
    this.flushRetries();
    const now = Date.now();
    const timeout = 2 * this.params.period; // [LM-DLV-3]
    for (let s = this.ackedUpTo; s < this.frames.length; s++) {
      const fr = this.frames[s]!;
      if (!fr.received && fr.sentAt > 0 && now - fr.sentAt > timeout && !this.retry.has(s)) {
        fr.sentAt = now;
        this.resends++;
        this.timeoutResends++;
        this.congested();
        this.symbolsResent += fr.symbols.length;
        this.sendHints(fr);
      }
    }
    this.releaseKeys();
    // a KEY or END lost on the way (QoS 1 does not survive a broker restart) goes again
    for (let j = this.wiped; j < this.chunks.length; j++) {
      const ch = this.chunks[j]!;
      if (ch.keySent && ch.end > this.consumed && now - ch.keyAt > timeout * 2 ** Math.min(ch.keyTries, 5)) this.sendKey(j, true);
    }
    if (this.endSent && now - this.lastEnd > timeout) {
      this.lastEnd = now;
      if (this.lastEnd > 0) void this.queue.add(() => this.send(FrameType.END, { sid: this.sid, bytes: this.source.size, chunks: this.chunks.length, frames: this.frames.length, digest: this.tx.body.jd }));
    }
  }
  private lastEnd = 0;

  private async onTelemetry(f: Frame<10>): Promise<void> {
    const p = this.params;
    const b = f.body;
    if (checkRevision(b.rev, this.gw.clock(), p) !== null) return; // [LM-TEL-2]
    let k = this.telemetryKeys.get(b.rev);
    if (!k) {
      if (b.rev < this.d2g.position) return;
      k = this.d2g.keysFor(b.rev);
      this.telemetryKeys.set(b.rev, k);
      for (const [r, old] of this.telemetryKeys) if (r < b.rev - 1) {
        wipe(old.hk, old.wk);
        this.telemetryKeys.delete(r);
      }
    }
    const Lt = minHintLength(p.wt);
    try {
      const syms = await this.gw.engine.scan(p.suite, p.wt, Lt, k.hk, b.hints); // the gateway inverts the d2g hints
      if (syms.some((s) => s < 0)) return;
      const ct = unpack(syms, p.wt, b.ctlen);
      const payload = decodeCbor(openTelemetry(k.wk, this.sid, b.seq, ct));
      if (!(payload instanceof Map)) return;
      this.emit('telemetry', Object.fromEntries([...payload.entries()].map(([key, v]) => [String(key), plain(v)])));
    } catch {
      // [LM-TEL-2]: telemetry that fails is dropped without ending the session
    }
  }

  private onReceipt(f: Frame<12>): void {
    try {
      verifyFrame(f, { signer: this.tx.body.dpk }); // [LM-DLV-7]
    } catch (e) {
      const err = toLmError(e);
      this.gw.emit('reject', { code: err.code, detail: err.message });
      return;
    }
    const b = f.body;
    if (!equalBytes(b.sid, this.sid) || !equalBytes(b.digest, this.tx.body.jd) || b.bytes !== this.source.size) {
      return this.fail(new LmError(Reason.digest, 'receipt digest or length does not match the job'));
    }
    const report: StreamReport = {
      device: this.device, job: this.tx.body.job, bytes: this.source.size, frames: this.frames.length, framesSent: this.framesSent, resends: this.resends, shiftedResends: this.shiftedResends, timeoutResends: this.timeoutResends,
      symbolsResent: this.symbolsResent, wireBytes: this.wireBytes, revisions: this.revisionsUsed.size, seconds: (Date.now() - this.t0) / 1000,
      params: this.params, alarms: 0, receipt: { digest: Buffer.from(b.digest).toString('hex'), bytes: b.bytes },
    };
    this.finish();
    this.emit('done', report);
    this.resolveDone(report);
  }

  private alarm(code: ReasonCode, detail: string, observed?: number, limit?: number): void {
    if (this.alarmed) return;
    this.alarmed = true; // stops HINTS and withholds every further KEY ([LM-ALARM-1])
    const body = { sid: this.sid, code, detail: detail.slice(0, 256), time: Date.now(), ...(observed !== undefined ? { observed } : {}), ...(limit !== undefined ? { limit } : {}) };
    void this.send(FrameType.ALARM, body);
    const fleetAlarm = encodeFrame(FrameType.ALARM, body, { kind: 'none' });
    void this.gw.link.send(topics.alarm(this.gw.o.fleet), fleetAlarm, FrameType.ALARM).catch(() => undefined);
    this.gw.log(`ALARM ${reasonName(code)} on ${this.device}: ${detail}`);
    this.emit('alarm', { code, detail, ...(observed !== undefined ? { observed } : {}), ...(limit !== undefined ? { limit } : {}) });
    this.fail(new LmError(code, detail), false);
  }

  /** Pauses, resumes or aborts from the gateway side ([LM-DLV-9]). */
  async control(op: number): Promise<void> {
    if (op === ControlOp.pause) this.paused = true;
    if (op === ControlOp.resume) {
      this.paused = false;
      this.kick();
    }
    await this.send(FrameType.CONTROL, { sid: this.sid, op, reason: op === ControlOp.abort ? Reason.aborted : 0 });
    if (op === ControlOp.abort) this.fail(new LmError(Reason.aborted, 'aborted by the gateway'), false);
  }

  private async send<T extends FrameTypeId>(type: T, body: Parameters<typeof encodeFrame<T>>[1], opts: { expirySeconds?: number } = {}): Promise<void> {
    if (!this.keys) return; // between sessions of a resumed job: the new session re-sends
    const frame = encodeFrame(type, body, { kind: 'mac', key: this.keys.fkG2d });
    this.wireBytes += frame.length;
    try {
      await this.gw.link.send(this.inTopic, frame, type, opts);
    } catch {
      // reconnecting: re-sends recover
    }
  }

  fail(e: LmError, tell = true): void {
    if (this.ended) return;
    if (tell && this.keys) void this.send(FrameType.ERROR, { sid: this.sid, code: e.code, detail: e.message.slice(0, 256) });
    this.finish();
    this.rejectDone(e);
    if (this.listenerCount('error') > 0) this.emit('error', e); // callers also get it from `done`
  }

  private finish(): void {
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    if (this.offerTimer) clearTimeout(this.offerTimer);
    this.queue.clear();
    for (const c of this.chunks) if (c) wipe(c.key); // sparse after a resume
    if (this.sendKeys) wipe(this.sendKeys.hk, this.sendKeys.wk);
    for (const k of this.telemetryKeys.values()) wipe(k.hk, k.wk);
    this.g2d?.destroy();
    this.d2g?.destroy();
    if (this.keys) wipe(this.keys.fkG2d, this.keys.fkD2g); // [LM-KEY-5]
    this.kernel.wipe();
    this.source.close();
    this.gw.streamEnded(this);
  }
}

function plain(v: CborValue): unknown {
  if (v instanceof Map) return Object.fromEntries([...v.entries()].map(([k, x]) => [String(k), plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

export interface GatewayEvents {
  reject: [{ code: number; detail: string }];
  log: [string];
}

/**
 * A gateway: verifies transactions, negotiates with devices and streams jobs to them.
 *
 * @example
 * const gw = await Gateway.start({ url, fleet: 'f1', id: 'gw-1', identity, trustedOperators: [opk] });
 * const s = await gw.stream('printer-1', gcode, tx, licence); const report = await s.done;
 */
export class Gateway extends EventEmitter<GatewayEvents> {
  link!: FrameLink;
  readonly engine: MatrixEngine;
  readonly clock: () => number;
  /** the latest accepted HELLO of each device and identity key (hex), while it is online ([LM-MQTT-6]) */
  private readonly hellos = new Map<string, Map<string, HelloBody>>();
  /** the latest accepted HELLO of each device and key, kept across its BYE (to see restarts and replays) */
  private readonly lastHello = new Map<string, Map<string, HelloBody>>();
  private readonly helloWaiters = new Map<string, { key: string | undefined; done: (h: HelloBody) => void }[]>();
  private readonly streams = new Map<string, GatewayStream>();
  private readonly prints = new Map<string, number>();

  private constructor(readonly o: GatewayOptions) {
    super();
    this.engine = new MatrixEngine(o.workers !== undefined ? { workers: o.workers } : {});
    this.clock = o.clock ?? Date.now;
  }

  static async start(o: GatewayOptions): Promise<Gateway> {
    const g = new Gateway(o);
    await g.engine.start();
    const bye = encodeFrame(FrameType.BYE, { who: o.id, reason: Reason.offline }, { kind: 'none' });
    g.link = await FrameLink.connect({
      url: o.url, clientId: `lm-gw-${o.id}-${Math.random().toString(16).slice(2, 8)}`, ...(o.protocolVersion ? { protocolVersion: o.protocolVersion } : {}),
      will: { topic: topics.gatewayState(o.fleet, o.id), payload: bye, retain: true }, ...authOptions(o.brokerAuth, o.id, 2, o.identity.secretKey),
    });
    g.link.onPayload((t, p) => g.onPayload(t, p));
    await g.link.subscribe(`lm/1/${o.fleet}/d/+/state`);
    await g.link.subscribe(`lm/1/${o.fleet}/d/+/out`);
    return g;
  }

  log(line: string): void {
    this.emit('log', line);
  }

  private onPayload(topic: string, payload: Uint8Array): void {
    const parts = topic.split('/');
    const device = parts[4];
    if (!device) return;
    let f: AnyFrame;
    try {
      f = decodeFrame(payload);
    } catch (e) {
      const err = toLmError(e);
      this.emit('reject', { code: err.code, detail: `${topic}: ${err.message}` });
      return;
    }
    if (parts[5] === 'state') {
      if (f.type === FrameType.HELLO) this.onHello(device, f);
      else if (f.type === FrameType.BYE) {
        this.hellos.delete(device);
        this.streams.get(device)?.deviceOffline(); // advisory: [LM-FRAME-5], [LM-DLV-13]
      }
      return;
    }
    const s = this.streams.get(device);
    if (!s) return;
    const sid = (f.body as { sid?: Uint8Array }).sid;
    if (sid && !equalBytes(sid, s.sid)) return; // [LM-FRAME-8]
    void s.onFrame(f, payload).catch((e: unknown) => s.fail(toLmError(e)));
  }

  /**
   * A HELLO counts only when it verifies under the device's registered key (or, without a
   * registry, under the key it carries, then matched against the transaction's in `stream()`),
   * and is later than the last one accepted for that device and key: a replayed HELLO changes
   * nothing ([LM-MQTT-6]).
   */
  private onHello(device: string, f: Frame<1>): void {
    const h = f.body;
    const refuse = (why: string): void => void this.emit('reject', { code: Reason.auth, detail: `HELLO of "${device}" ignored: ${why} ([LM-MQTT-6])` });
    if (h.device !== device) return refuse(`it names "${h.device}"`);
    const registered = this.o.deviceKeys?.get(device);
    if (this.o.deviceKeys && !registered) return refuse('the device is not registered');
    if (registered && !equalBytes(registered, h.idpk)) return refuse('its key is not the registered one');
    try {
      verifyFrame(f, { signer: h.idpk });
    } catch (e) {
      return refuse(toLmError(e).message);
    }
    const key = toHex(h.idpk);
    const last = this.lastHello.get(device)?.get(key);
    if (last && h.time <= last.time && !(last.boot && h.boot && equalBytes(last.boot, h.boot) && h.time === last.time)) return refuse(`its time ${h.time} is not after the last accepted HELLO's ${last.time} (a replay)`);
    const put = (m: Map<string, Map<string, HelloBody>>) => {
      const byKey = m.get(device) ?? new Map<string, HelloBody>();
      byKey.delete(key);
      byKey.set(key, h);
      while (byKey.size > 4) byKey.delete(byKey.keys().next().value as string); // bounded: keys an attacker signs with
      m.set(device, byKey);
    };
    put(this.hellos);
    put(this.lastHello);
    // [LM-DLV-10]: a new boot value while streaming means the device's process restarted; only a
    // HELLO of the transaction's device key, later than the one the session answered, says so
    const running = this.streams.get(device);
    const before = running?.offeredHello;
    if (running && equalBytes(h.idpk, running.tx.body.dpk) && before?.boot && h.boot && !equalBytes(before.boot, h.boot) && h.time > before.time) {
      void running.restart(h).catch((e: unknown) => running.fail(toLmError(e)));
    }
    const waiters = this.helloWaiters.get(device) ?? [];
    const still = waiters.filter((w) => {
      if (w.key !== undefined && w.key !== key) return true;
      w.done(h);
      return false;
    });
    if (still.length) this.helloWaiters.set(device, still);
    else this.helloWaiters.delete(device);
  }

  /** The device's latest HELLO, of the given identity key if one is named (waits for it up to timeout ms). */
  hello(device: string, timeout = 10_000, publicKey?: Uint8Array): Promise<HelloBody> {
    const key = publicKey ? toHex(publicKey) : undefined;
    const known = this.hellos.get(device);
    const h = key ? known?.get(key) : [...(known?.values() ?? [])].pop();
    if (h) return Promise.resolve(h);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new LmError(Reason.timeout, `device "${device}" has not announced itself${key ? ` with key ${key.slice(0, 16)}...` : ''} on ${topics.deviceState(this.o.fleet, device)} within ${timeout} ms`)), timeout);
      const list = this.helloWaiters.get(device) ?? [];
      list.push({
        key, done: (x) => {
          clearTimeout(t);
          resolve(x);
        },
      });
      this.helloWaiters.set(device, list);
    });
  }

  /**
   * Streams a job to a device under a signed transaction ([LM-TX-2]..[LM-TX-7]). Resolves with
   * the running stream; its `done` resolves with the report after the device's signed receipt.
   * A job is bytes, a stream, or a function that opens it from its start (then a device that
   * restarts and resumes below what the stream has passed is served by reading it again).
   */
  async stream(device: string, job: Uint8Array | JobStream, txBytes: Uint8Array, licence: Uint8Array, opts: StreamOptions = {}): Promise<GatewayStream> {
    const txh = Buffer.from(digest(txBytes)).toString('hex');
    const tx = verifyTx(txBytes, { now: this.clock(), trustedOperators: this.o.trustedOperators, gatewayPublic: this.o.identity.publicKey, printsUsed: this.prints.get(txh) ?? 0 });
    if (tx.body.device !== device) throw new LmError(Reason.txDevice, `transaction is for "${tx.body.device}", not "${device}" ([LM-TX-5])`);
    let source: JobSource;
    if (job instanceof Uint8Array) {
      if (tx.body.size !== job.length || !equalBytes(digest(job), tx.body.jd)) throw new LmError(Reason.digest, 'the job does not match the transaction\'s digest or size ([LM-TX-6])');
      source = new BytesSource(job);
    } else {
      // checked as it is read; END waits for the check, a mismatch fails the stream
      source = new StreamSource(job, tx.body.size, tx.body.jd, opts.readAhead !== undefined ? { readAhead: opts.readAhead } : {});
    }
    if (this.streams.has(device)) throw new LmError(Reason.busy, `a stream to "${device}" is already running`);
    const registered = this.o.deviceKeys?.get(device);
    if (registered && !equalBytes(registered, tx.body.dpk)) throw new LmError(Reason.txDevice, `the transaction names a key for "${device}" that differs from its registered key ([LM-TX-5])`);
    // [LM-MQTT-6]: only a HELLO of the transaction's device key counts
    const hello = await this.hello(device, opts.helloTimeout, tx.body.dpk);
    this.prints.set(txh, (this.prints.get(txh) ?? 0) + 1); // [LM-TX-7]
    const s = new GatewayStream(this, device, source, tx, licence, opts);
    this.streams.set(device, s);
    try {
      await s.begin(hello);
    } catch (e) {
      this.streams.delete(device);
      source.close();
      throw e;
    }
    return s;
  }

  /** @internal */
  streamEnded(s: GatewayStream): void {
    if (this.streams.get(s.device) === s) this.streams.delete(s.device);
  }

  async stop(): Promise<void> {
    for (const s of this.streams.values()) s.fail(new LmError(Reason.aborted, 'gateway stopped'));
    await this.link.close(true).catch(() => undefined);
    await this.engine.stop();
  }
}

