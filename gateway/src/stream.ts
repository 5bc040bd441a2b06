/**
 * @module stream
 * One stream from the gateway to one device: its sessions (a new one for a device that
 * restarted, [LM-DLV-10]), the device's frames dispatched to the phase they belong to, CONTROL
 * ([LM-DLV-9]), alarms ([LM-ALARM-1]), the receipt ([LM-DLV-7]) and the report.
 */
import { EventEmitter } from 'node:events';
import PQueue from 'p-queue';
import {
  clipUtf8,
  type AnyFrame, FRAME_TYPE_NAMES, FrameType, type Frame, type FrameTypeId, type HelloBody, type IdentityKeyPair, LmError, Reason, type ReasonCode,
  type SessionParams, type SignedTx, decodeFrame, encodeFrame, equalBytes, isReasonCode, reasonName, toHex, toLmError, topics, verifyFrame,
} from '@livematrix/spec';
import { Kernel, type MatrixEngine } from '@livematrix/spec/engine';
import type { Clock } from './clock.js';
import type { StreamLicence } from './licence.js';
import type { KeyRelease } from './protected.js';
import type { Delivery } from './delivery.js';
import { GatewayStoppedError, StreamAbortedError } from './errors.js';
import { Stats, buildReport, receiptMismatch } from './report.js';
import { Session, type SessionHost } from './session.js';
import type { JobSource } from './source.js';
import { Control, type ControlOpId, type GatewayStreamEvents, type StreamOptions, type StreamReport } from './types.js';

export type ReceiptFrame = Frame<typeof FrameType.RECEIPT>;

/** Authentication failures on a session's frames within the window that raise ALARM tamper ([LM-ALARM-3]). */
const TAMPER_LIMIT = 3;
const TAMPER_WINDOW_MS = 60_000;

/** What a stream needs from its gateway. */
export interface GatewayContext {
  readonly clock: Clock;
  readonly engine: MatrixEngine;
  readonly fleet: string;
  readonly identity: IdentityKeyPair;
  /** publishes a frame on a topic at the QoS of its type */
  send(topic: string, frame: Uint8Array, type: FrameTypeId, opts?: { expirySeconds?: number }): Promise<void>;
  log(line: string): void;
  reject(code: number, detail: string): void;
  /** the stream ended: the gateway forgets it */
  ended(s: GatewayStream): void;
  /** the keys service of protected jobs ([LM-PROT-2]) */
  readonly keyRelease?: KeyRelease | undefined;
}

/** One stream from this gateway to one device. */
export class GatewayStream extends EventEmitter<GatewayStreamEvents> {
  readonly done: Promise<StreamReport>;
  private readonly settle: { resolve(r: StreamReport): void; reject(e: LmError): void };
  private readonly stats = new Stats();
  private readonly kernel = new Kernel();
  private readonly queue: PQueue;
  private readonly host: SessionHost;
  private session: Session;
  private ended = false;
  private receiving = false;
  private alarmed = false;
  private pump = false;
  /** when the first OFFER went out */
  private t0: number | undefined;

  /** @internal Streams start with `Gateway.stream()`. */
  constructor(
    private readonly ctx: GatewayContext,
    readonly device: string,
    private readonly source: JobSource,
    readonly tx: SignedTx,
    private readonly licence: Uint8Array | undefined,
    private readonly opts: StreamOptions,
    /** the stream's print count and ledger bookkeeping ([LM-LIC-1], [LM-LEDGER-1]) */
    private readonly record: StreamLicence,
    /** offer only the resume of a cut-off print ([LM-LIC-4]) */
    resume = false,
  ) {
    super();
    this.queue = new PQueue({ concurrency: opts.concurrency ?? 64 });
    const settled = deferred<StreamReport>();
    this.done = settled.promise;
    this.settle = settled;
    this.done.catch(() => undefined);
    this.host = this.sessionHost();
    this.session = new Session(this.host, resume);
    source.onReadable(() => {
      if (source.failure) return this.fail(source.failure);
      this.kick();
      this.session.delivery?.maybeEnd();
    });
  }

  /** The id of the current session (of its latest OFFER while it is offered). */
  get sid(): Uint8Array {
    return this.session.sid;
  }

  /** The parameters of the current session ([LM-CAP-2]). */
  get params(): SessionParams {
    return this.session.params;
  }

  /** The HELLO this session's OFFER answered. @internal */
  get offeredHello(): HelloBody | undefined {
    return this.session.hello;
  }

  /** Offer, then stream. @internal */
  begin(hello: HelloBody): Promise<void> {
    return this.session.offer(hello);
  }

  /**
   * The device's process restarted ([LM-DLV-10]): its session keys are gone. Ends this session
   * and offers the job again with `resume` in a new one; the device answers where its consumer
   * stands.
   * @internal
   */
  async restart(hello: HelloBody): Promise<void> {
    if (this.ended) return;
    this.ctx.log(`${this.device} restarted mid-stream: resuming the job in a new session`);
    this.session.close();
    this.queue.clear();
    this.record.ended('interrupted');
    // a session past the counting point is resumed with the device's ticket ([LM-LIC-4]); one
    // before it starts over as a fresh OFFER (which a device holding a ticket answers with it)
    this.session = new Session(this.host, this.record.started);
    await this.session.offer(hello);
  }

  /** The device's Last Will arrived: it has `offlineGrace` to be heard again or restart ([LM-DLV-13]). @internal */
  deviceOffline(): void {
    if (this.ended || !this.session.liveness.offline()) return;
    this.ctx.log(`${this.device} went offline (its Last Will); waiting ${(this.opts.offlineGrace ?? 10_000) / 1000} s for it to come back`);
  }

  /** A frame of the device for this stream's session id (or without one). @internal */
  async onFrame(f: AnyFrame, raw: Uint8Array): Promise<void> {
    if (this.ended) {
      if (f.type === FrameType.ACK || f.type === FrameType.ACCEPT) this.ctx.reject(Reason.replay, `${f.type} for an ended session`); // [LM-ALARM-4]
      return;
    }
    const s = this.session;
    if (f.type === FrameType.ACCEPT) return s.accept(f, raw);
    const d = s.delivery;
    if (!d) return s.offering.beforeAccept(f);
    if (f.type === FrameType.RECEIPT) return this.onReceipt(f, d, raw);
    if (f.authKind !== 'mac') {
      // [LM-FRAME-5]: an unauthenticated ERROR, ALARM or BYE is advisory: logged, never acted on
      this.ctx.reject(Reason.auth, `${this.device}: unauthenticated ${FRAME_TYPE_NAMES[f.type]} ignored ([LM-FRAME-5])`);
      return;
    }
    try {
      d.verify(f);
    } catch (e) {
      const err = toLmError(e);
      this.ctx.reject(err.code, err.message);
      return this.authFailed();
    }
    s.heard(); // [LM-DLV-13]
    return this.onAuthenticated(f, s, d);
  }

  /** A frame whose MAC verified under the session's d2g frame key. */
  private async onAuthenticated(f: AnyFrame, s: Session, d: Delivery): Promise<void> {
    switch (f.type) {
      case FrameType.TIME_REQ: {
        const t2 = this.ctx.clock.now();
        return d.send(FrameType.TIME_RESP, { sid: s.sid, t1: f.body.t1, t2, t3: this.ctx.clock.now() }); // [LM-TIME-4]
      }
      case FrameType.ACK:
        return d.onAck(f.body);
      case FrameType.TELEMETRY:
        return d.onTelemetry(f.body);
      case FrameType.CONTROL:
        if (f.body.op === Control.pause) s.pause(true);
        else if (f.body.op === Control.resume) s.pause(false);
        else if (f.body.op === Control.abort) this.fail(new StreamAbortedError('the device aborted the stream'), false);
        return;
      case FrameType.ERROR:
        return this.fail(new LmError(reasonOr(f.body.code, Reason.internal), `device error: ${f.body.detail}`), false);
      case FrameType.ALARM:
        this.emit('alarm', { code: f.body.code, detail: f.body.detail });
        return this.fail(new LmError(f.body.code === Reason.rate ? Reason.rate : Reason.tamper, `device alarm: ${f.body.detail}`), false);
      default:
        return;
    }
  }

  /**
   * [LM-ALARM-3]: 3 authentication failures on the session's frames within 60 s raise ALARM
   * `tamper` and end the session (cut off, not abandoned: its print resumes, [LM-LIC-3]).
   */
  private authFailed(): void {
    const now = this.ctx.clock.now();
    this.authFailures = [...this.authFailures.filter((t) => now - t <= TAMPER_WINDOW_MS), now];
    if (this.authFailures.length >= TAMPER_LIMIT) this.alarm(Reason.tamper, `${this.authFailures.length} frames of the session failed authentication within ${TAMPER_WINDOW_MS / 1000} s ([LM-ALARM-3])`);
  }
  /** when frames of the session failed authentication, within the tamper window */
  private authFailures: number[] = [];

  private onReceipt(f: ReceiptFrame, d: Delivery, raw: Uint8Array): void {
    try {
      verifyFrame(f, { signer: this.tx.body.dpk }); // [LM-DLV-7]
    } catch (e) {
      const err = toLmError(e);
      this.ctx.reject(err.code, err.message);
      return;
    }
    const mismatch = receiptMismatch(f.body, { sid: this.sid, jd: this.tx.body.jd, size: this.source.size });
    if (mismatch) return this.fail(mismatch);
    if (this.receiving) return; // a RECEIPT sent again while the first is being recorded
    this.receiving = true;
    const now = this.ctx.clock.now();
    const report = buildReport({
      device: this.device, job: this.tx.body.job, bytes: this.source.size, frames: d.sender.frames.length, stats: this.stats,
      seconds: (now - (this.t0 ?? now)) / 1000, params: this.params, receipt: f.body,
    });
    // [LM-LEDGER-1]: the stream is delivered once its receipt is in the ledger
    this.record.receipt(raw).then((rec) => this.delivered(report, rec), (e: unknown) => this.fail(toLmError(e, 'receipt ledger'), false));
  }

  /** The receipt is in the ledger: the stream is delivered ([LM-LEDGER-1]). */
  private delivered(report: StreamReport, rec: { seq: number; hash: Uint8Array }): void {
    if (this.ended) return;
    report.ledger = { seq: rec.seq, hash: toHex(rec.hash) };
    this.finish();
    this.emit('done', report);
    this.settle.resolve(report);
  }

  /**
   * [LM-LIC-6]: the device refused to print again and handed back the RECEIPT of a session of this
   * transaction that reached no ledger (its gateway stopped first). Verified as any receipt
   * ([LM-DLV-7]) and appended for that session if this database holds it unfinished: the stream
   * is delivered. Anything else: the refusal stands.
   */
  private recover(raw: Uint8Array, refusal: LmError): void {
    let body: ReceiptFrame['body'];
    try {
      const f = decodeFrame(raw);
      if (f.type !== FrameType.RECEIPT) throw new LmError(Reason.schema, 'not a RECEIPT');
      verifyFrame(f, { signer: this.tx.body.dpk });
      if (!equalBytes(f.body.txh, this.tx.hash)) throw new LmError(Reason.digest, 'a receipt of another transaction');
      const mismatch = receiptMismatch(f.body, { sid: f.body.sid, jd: this.tx.body.jd, size: this.source.size });
      if (mismatch) throw mismatch;
      body = f.body;
    } catch (e) {
      this.ctx.reject(Reason.auth, `${this.device}: the receipt in its refusal does not check out: ${toLmError(e).message} ([LM-LIC-6])`);
      return this.fail(refusal, false);
    }
    this.record.recovered(toHex(body.sid), raw).then((rec) => {
      if (this.ended) return;
      if (!rec) return this.fail(refusal, false);
      this.ctx.log(`${this.device} handed back the receipt of session ${toHex(body.sid).slice(0, 8)}, which reached no ledger: recorded as #${rec.seq} ([LM-LIC-6])`);
      this.delivered(buildReport({ device: this.device, job: this.tx.body.job, bytes: this.source.size, frames: 0, stats: this.stats, seconds: 0, params: this.params, receipt: body }), rec);
    }, (e: unknown) => this.fail(toLmError(e, 'receipt ledger'), false));
  }

  /** Resolves once every licence write of the stream is in the database. @internal */
  settled(): Promise<void> {
    return this.record.settled();
  }

  /** Pauses, resumes or aborts from the gateway side ([LM-DLV-9]). */
  async control(op: ControlOpId): Promise<void> {
    if (op === Control.pause) this.session.pause(true);
    if (op === Control.resume) this.session.pause(false);
    await this.session.delivery?.send(FrameType.CONTROL, { sid: this.sid, op, reason: op === Control.abort ? Reason.aborted : 0 });
    if (op === Control.abort) this.fail(new StreamAbortedError('aborted by the gateway'), false);
  }

  private alarm(code: ReasonCode, detail: string, observed?: number, limit?: number): void {
    if (this.alarmed) return;
    this.alarmed = true; // stops HINTS and withholds every further KEY ([LM-ALARM-1])
    const numbers = { ...(observed !== undefined ? { observed } : {}), ...(limit !== undefined ? { limit } : {}) };
    const body = { sid: this.sid, code, detail: clipUtf8(detail, 256), time: this.ctx.clock.now(), ...numbers };
    void this.session.delivery?.send(FrameType.ALARM, body);
    const fleetAlarm = encodeFrame(FrameType.ALARM, { ...body, device: this.device }, { kind: 'none' }); // [LM-ALARM-6]
    void this.ctx.send(topics.alarm(this.ctx.fleet), fleetAlarm, FrameType.ALARM).catch(() => undefined);
    this.ctx.log(`ALARM ${reasonName(code)} on ${this.device}: ${detail}`);
    this.emit('alarm', { code, detail, ...numbers });
    this.fail(new LmError(code, detail), false);
  }

  /** Ends the stream with `e`; `tell` sends the device an ERROR first. @internal */
  fail(e: LmError, tell = true): void {
    if (this.ended) return;
    if (tell) void this.session.delivery?.send(FrameType.ERROR, { sid: this.sid, code: e.code, detail: clipUtf8(e.message, 256) });
    // a device gone, or this gateway stopping, leaves the print to resume ([LM-LIC-4]); anything else ends it
    // a device gone or silent, forged frames, or this gateway stopping cut the print off: it resumes
    this.record.ended(e.code === Reason.offline || e.code === Reason.timeout || e.code === Reason.tamper || e instanceof GatewayStoppedError ? 'interrupted' : 'failed');
    this.finish();
    this.settle.reject(e);
    if (this.listenerCount('error') > 0) this.emit('error', e); // callers also get it from `done`
  }

  private finish(): void {
    this.ended = true;
    this.session.close(); // [LM-KEY-5]
    this.queue.clear();
    this.kernel.wipe();
    this.source.close();
    this.ctx.ended(this);
  }

  /** Fills the window once per turn of the event loop. */
  private kick(): void {
    if (this.pump) return;
    this.pump = true;
    queueMicrotask(() => {
      this.pump = false;
      try {
        this.session.delivery?.fill();
      } catch (e) {
        this.fail(toLmError(e, 'sending the job'));
      }
    });
  }

  /** The stream as its sessions see it. */
  private sessionHost(): SessionHost {
    const { ctx, opts, source, tx } = this;
    const inTopic = topics.deviceIn(ctx.fleet, this.device);
    return {
      clock: ctx.clock, engine: ctx.engine, identity: ctx.identity, device: this.device, tx, licence: this.licence, opts, source,
      queue: this.queue, kernel: this.kernel, stats: this.stats, keyRelease: ctx.keyRelease,
      publishOffer: async (frame) => {
        await ctx.send(inTopic, frame, FrameType.OFFER);
        this.t0 ??= ctx.clock.now();
      },
      publish: (frame, type, o) => ctx.send(inTopic, frame, type, o),
      log: (line) => ctx.log(line),
      reject: (code, detail) => ctx.reject(code, detail),
      fail: (e, tell) => this.fail(e, tell),
      ended: () => this.ended,
      recovered: (rc, refusal) => this.recover(rc, refusal),
      halted: () => this.ended || this.alarmed,
      alarm: (code, detail, observed, limit) => this.alarm(code, detail, observed, limit),
      progress: (p) => this.emit('progress', p),
      accepted: (sid, ticket) => this.record.accepted(sid, ticket),
      keyGate: () => this.record.beforeKeys(), // [LM-LIC-1]: no chunk key before the print is counted
      telemetry: (t) => this.emit('telemetry', t),
      kick: () => this.kick(),
    };
  }
}

/** `code` when it is a reason code of SPEC.md §7.6, `otherwise` when it is not. */
function reasonOr(code: number, otherwise: ReasonCode): ReasonCode {
  return isReasonCode(code) ? code : otherwise;
}

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve: (v: T) => void = () => undefined;
  let reject: (e: unknown) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
