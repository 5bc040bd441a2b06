/**
 * @module session
 * One session on the device, composed of its phases (phases.ts): it checks every frame's MAC
 * ([LM-FRAME-2], [LM-FRAME-5]), hands each to its phase, and owns the session's end: the signed
 * receipt ([LM-DLV-7]), alarms ([LM-ALARM-3], [LM-ALARM-5]), abort ([LM-DLV-9]) and the erasure
 * of everything it held ([LM-KEY-5]).
 */
import {
  clipUtf8,
  type AnyFrame, ControlOp, FRAME_TYPE_NAMES, FrameType, type FrameTypeId, type IdentityKey, LmError, Ratchet, Reason, type ReasonCode,
  ContentKeys, type SessionParams, type SignedTx, encodeFrame, frameSigner, reasonName, toHex, toLmError, verifyFrame, wipe, type Bodies,
} from '@livematrix/spec';
import type { Kernel, MatrixEngine } from '@livematrix/spec/engine';
import type { AckPhase, DeliveryPhase, LivenessPhase, PhaseFactories, TelemetryPhase, TimeSyncPhase } from './phases.js';
import type { Clock, Timers } from './clock.js';
import { type RateAlarm, type RateExcess, protectedContentLayer } from './delivery.js';
import { NoSessionError } from './errors.js';
import { Control, type ControlOpId, type HintsFrame, type KeyFrame } from './frames.js';
import type { RunningSession, SessionInit, SessionLicence } from './offer.js';
import { RevisionPipeline } from './pipeline.js';
import type { ReceivePhase } from './receive.js';
import type { RevisionPolicy } from './revisions.js';
import { IncomingStream, type StreamSession } from './stream.js';

const TAMPER_LIMIT = 3; // [LM-ALARM-3]
const TAMPER_WINDOW_MS = 60_000;

/** What a session needs of its device. */
export interface SessionDeps {
  readonly engine: MatrixEngine;
  readonly kernel: Kernel;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly phases: PhaseFactories;
  readonly deviceId: string;
  readonly identity: IdentityKey;
  /** receive buffer in plaintext bytes ([LM-DLV-5]) */
  readonly window: number;
  /** ms of gateway silence that end the session ([LM-DLV-13]) */
  readonly gatewayTimeout: number;
  readonly onFrameResolved?: ((seq: number) => void) | undefined;
  /** publishes on the device's out topic */
  send(frame: Uint8Array, type: FrameTypeId): Promise<void>;
  closed(s: DeviceSession): void;
}

interface Phases {
  readonly sync: TimeSyncPhase;
  readonly liveness: LivenessPhase;
  readonly receive: ReceivePhase;
  readonly delivery: DeliveryPhase;
  readonly pace: RateAlarm;
  readonly acks: AckPhase;
  readonly telemetry: TelemetryPhase;
}

/** One session on the device. @internal */
export class DeviceSession implements StreamSession, RunningSession {
  readonly stream: IncomingStream;
  readonly sid: Uint8Array;
  readonly tx: SignedTx;
  readonly txh: string;
  readonly params: SessionParams;
  readonly from: number;
  readonly resumed: boolean;
  /** frame keys of both directions */
  private readonly fk: { g2d: Uint8Array; d2g: Uint8Array };
  private readonly pipeline: RevisionPipeline;
  private readonly p: Phases;
  /** times of authentication failures within the tamper window ([LM-ALARM-3]) */
  private tamper: number[] = [];
  private closed = false;
  private readonly licence: SessionLicence;
  /** a protected job's content chain wrap keys ([LM-PROT-2]) */
  private readonly contentKeys: ContentKeys | undefined;
  /** the counting point was passed ([LM-LIC-1]) */
  private started = false;

  constructor(private readonly deps: SessionDeps, init: SessionInit) {
    const { keys, params } = init;
    this.licence = init.licence;
    this.contentKeys = init.content ? new ContentKeys(init.content, params.r0) : undefined;
    this.sid = init.sid;
    this.tx = init.tx;
    this.txh = toHex(init.tx.hash);
    this.params = params;
    this.from = init.from;
    this.resumed = init.resumed;
    this.fk = { g2d: keys.fkG2d, d2g: keys.fkD2g };
    const g2d = new Ratchet(keys.ckG2d, params.r0);
    const d2g = new Ratchet(keys.ckD2g, params.r0);
    wipe(keys.ckG2d, keys.ckD2g);
    const revisions = deps.phases.revisions();
    this.pipeline = new RevisionPipeline({
      engine: deps.engine, suite: params.suite, w: params.w, L: params.L, epoch: params.epoch, period: params.period, r0: params.r0,
      keysFor: (r) => g2d.keysFor(r), now: deps.clock, timers: deps.timers, keep: revisions.keep,
    });
    this.pipeline.on('error', (e) => this.fail(new LmError(Reason.internal, `revision pipeline: ${e.message}`)));
    this.stream = new IncomingStream(this);
    this.p = this.compose(init, revisions, d2g);
  }

  /** Builds the session's phases from the device's factories; each gets only what it needs. */
  private compose(init: SessionInit, revisions: RevisionPolicy, d2g: Ratchet): Phases {
    const { phases: ph, clock, timers } = this.deps;
    const { sid, params, tx } = this;
    const sync = ph.timeSync({
      clock, timers, grace: params.grace,
      request: (t1) => void this.send(FrameType.TIME_REQ, { sid, t1 }),
      agreed: () => this.onAgreed(),
      refused: (e) => this.refuseSkew(e),
    });
    const liveness = ph.liveness({
      clock, timers, timeout: this.deps.gatewayTimeout,
      beat: () => void (sync.synced && this.send(FrameType.TIME_REQ, { sid, t1: clock() })),
      gone: (silent) => this.interrupt(`the gateway is gone: no authenticated frame from it for ${(silent / 1000).toFixed(1)} s ([LM-DLV-13]); the job resumes when a gateway offers it again`),
    });
    const acks = ph.acks({ sid, timers, credit: this.deps.window, progress: () => delivery.progress(), send: (body) => void this.send(FrameType.ACK, body) });
    const receive = ph.receive({
      params, clock, revisions, tables: this.pipeline, acks, nextChunk: () => delivery.nextChunk,
      reject: (f, code, detail) => this.reject(f, code, detail), resolved: this.deps.onFrameResolved,
    });
    const ck = this.contentKeys;
    const delivery = ph.delivery({
      sid, params, tx, from: init.from, prefix: init.prefix, checkpoints: init.checkpoints, clock, revisions, chunks: receive, digestKey: init.digestKey,
      // a protected job's chunk keys are wrapped under the content chain, its chunks are the owner's ([LM-PROT-2])
      content: tx.body.jid ? protectedContentLayer(tx.body.jid) : ph.content(),
      keys: ck ? (r) => ck.keysFor(r) : (r) => this.pipeline.keys(r),
      push: (pt) => {
        this.startPrint(); // [LM-LIC-1]: counted before the first byte reaches the consumer
        this.stream.push(pt);
      },
    });
    const pace = ph.pace({ rate: tx.body.rate, burst: tx.body.burst, grace: params.grace });
    const telemetry = ph.telemetry({ sid, params, chain: d2g, kernel: this.deps.kernel, clock });
    return { sync, liveness, receive, delivery, pace, acks, telemetry };
  }

  /** Time sync first ([LM-TIME-1]); the pipeline starts once the clocks agree. */
  begin(): void {
    this.p.sync.start();
    this.p.liveness.start(); // [LM-DLV-13]: a heartbeat the gateway answers, and the end of a session whose gateway is gone
  }

  /** The clocks agree ([LM-TIME-1]): the pipeline starts. */
  private onAgreed(): void {
    // first ACK once the current revision's table is ready: the gateway may start sending
    this.pipeline.start().then(() => this.p.acks.soon(0), (e: unknown) => this.fail(toLmError(e)));
  }

  /** ms since the gateway last sent an authenticated frame ([LM-DLV-13]) */
  silentFor(): number {
    return this.p.liveness.silentFor();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- frames in ----
  async onFrame(f: AnyFrame): Promise<void> {
    if (this.closed) return;
    if (f.authKind !== 'mac') {
      // [LM-FRAME-5]: an unauthenticated ERROR, ALARM or BYE is advisory: logged, never acted on
      this.reject(f, Reason.auth, `unauthenticated ${FRAME_TYPE_NAMES[f.type]} ignored${'detail' in f.body ? `: ${String(f.body.detail)}` : ''} ([LM-FRAME-5])`);
      return;
    }
    try {
      verifyFrame(f, { mac: this.fk.g2d }); // [LM-FRAME-2]
    } catch (e) {
      this.onTamper(f, toLmError(e));
      return;
    }
    this.p.liveness.heard(); // [LM-DLV-13]
    switch (f.type) {
      case FrameType.TIME_RESP:
        return this.p.sync.onResponse(f.body);
      case FrameType.HINTS:
        return this.onHints(f);
      case FrameType.KEY:
        return this.onKey(f);
      case FrameType.END:
        this.p.delivery.onEnd(f.body);
        return this.maybeFinish();
      case FrameType.CONTROL:
        if (f.body.op === ControlOp.abort) this.fail(new LmError(Reason.aborted, 'the gateway aborted the stream'), false);
        return;
      case FrameType.ALARM:
        // [LM-ALARM-5]: an authenticated alarm ends the session and erases its keys
        this.stream.emit('alarm', { code: f.body.code, detail: f.body.detail });
        this.fail(new LmError(f.body.code === Reason.rate ? Reason.rate : Reason.tamper, `alarm from the gateway: ${f.body.detail}`), false);
        return;
      case FrameType.ERROR: {
        // the gateway gone (`offline`: it stopped) or timed out keeps the print resumable ([LM-LIC-3])
        const code = f.body.code === Reason.offline || f.body.code === Reason.timeout ? f.body.code : Reason.internal;
        this.fail(new LmError(code, `error from the gateway: ${reasonName(f.body.code as ReasonCode) ?? f.body.code}: ${f.body.detail}`), false);
        return;
      }
      default:
        return;
    }
  }

  private async onHints(f: HintsFrame): Promise<void> {
    if (!this.p.sync.synced) return; // [LM-TIME-1]: no hints before time sync
    this.p.pace.start(this.deps.clock()); // t_start of [LM-ALARM-2]: the first HINTS frame
    if ((await this.p.receive.onHints(f)) && !this.closed) this.deliver();
  }

  private onKey(f: KeyFrame): void {
    const r = this.p.delivery.onKey(f.body);
    if (r.kind === 'refused') this.reject(f, r.code, r.detail);
    else if (r.kind === 'tampered') this.onTamper(f, r.error);
    else if (r.kind === 'taken') this.deliver();
  }

  private deliver(): void {
    try {
      this.p.delivery.deliver();
    } catch (e) {
      this.fail(toLmError(e)); // [LM-AEAD-4]: nothing of a chunk that fails
      return;
    }
    this.maybeFinish();
  }

  private reject(f: AnyFrame, code: ReasonCode, detail: string): void {
    this.stream.emit('reject', { code, reason: reasonName(code), type: f.type, detail });
  }

  private onTamper(f: AnyFrame, e: LmError): void {
    this.reject(f, e.code, e.message);
    const now = this.deps.clock();
    this.tamper = this.tamper.filter((t) => now - t < TAMPER_WINDOW_MS);
    this.tamper.push(now);
    if (this.tamper.length >= TAMPER_LIMIT) {
      // [LM-ALARM-3]
      void this.send(FrameType.ALARM, { sid: this.sid, code: Reason.tamper, detail: `${this.tamper.length} authentication failures within 60 s`, time: now });
      this.fail(new LmError(Reason.tamper, `${this.tamper.length} frames failed authentication within 60 s; session ended`));
    }
  }

  // ---- the consumer ----
  /** Called when the consumer took a piece ([LM-DLV-4]). */
  consumed(b: Uint8Array): void {
    if (this.closed) return;
    const taken = this.p.delivery.consume(b);
    const excess = this.p.pace.check(taken, this.deps.clock()); // [LM-ALARM-2]
    if (excess) return this.rateAlarm(excess);
    this.stream.emit('progress', { bytes: this.p.delivery.consumedBytes, total: this.tx.body.size, revision: this.pipeline.current() });
    this.p.acks.soon();
    this.maybeFinish();
  }

  private rateAlarm(x: RateExcess): void {
    void this.send(FrameType.ALARM, { sid: this.sid, code: Reason.rate, detail: x.detail, time: this.deps.clock(), observed: x.taken, limit: Math.floor(x.allowed) });
    this.stream.emit('alarm', { code: Reason.rate, detail: x.detail });
    this.fail(new LmError(Reason.rate, `rate alarm: ${x.detail} ([LM-ALARM-2])`), false);
  }

  async control(op: ControlOpId): Promise<void> {
    await this.send(FrameType.CONTROL, { sid: this.sid, op, reason: op === Control.abort ? Reason.aborted : 0 });
    if (op === Control.abort) this.fail(new LmError(Reason.aborted, 'aborted by the consumer'), false); // [LM-DLV-9]
  }

  /** Telemetry under the d2g chain ([LM-TEL-1]). */
  async telemetry(payload: Uint8Array): Promise<void> {
    if (this.closed) throw new NoSessionError('telemetry needs an active session');
    await this.send(FrameType.TELEMETRY, this.p.telemetry.seal(payload));
  }

  /** The counting point ([LM-LIC-1]): once, before the first plaintext byte goes to the consumer; throws `tx-count`. */
  private startPrint(): void {
    if (this.started) return;
    this.licence.start();
    this.started = true;
  }

  // ---- the end ----
  private maybeFinish(): void {
    if (this.closed) return;
    let d: Uint8Array | undefined;
    try {
      d = this.p.delivery.finish(); // [LM-DLV-6]
    } catch (e) {
      void this.send(FrameType.ERROR, { sid: this.sid, code: Reason.digest, detail: 'end digest mismatch' });
      this.fail(toLmError(e));
      return;
    }
    if (d) this.complete(d);
  }

  /** [LM-DLV-7]: the signed receipt, once the consumer took every byte and the digest checks. */
  private complete(d: Uint8Array): void {
    try {
      this.startPrint(); // an empty job is counted here ([LM-LIC-1])
    } catch (e) {
      this.fail(toLmError(e));
      return;
    }
    this.p.acks.flush();
    const bytes = this.p.delivery.consumedBytes;
    const receipt = encodeFrame(FrameType.RECEIPT, {
      sid: this.sid, jd: this.tx.body.jd, bytes, digest: d, time: this.deps.clock(), device: this.deps.deviceId, txh: this.tx.hash,
    }, frameSigner(this.deps.identity));
    try {
      this.licence.close(receipt); // [LM-LIC-3]: a completed print resumes nothing; [LM-LIC-6]: its receipt is kept
    } catch (e) {
      // the ticket stays as it was (a resume of a completed print would count nothing and deliver
      // the end again); the device goes on, and says so
      this.stream.emit('reject', { code: Reason.internal, reason: reasonName(Reason.internal), type: FrameType.RECEIPT, detail: `licence state not written: ${toLmError(e).message}` });
    }
    this.deps.send(receipt, FrameType.RECEIPT).catch(() => undefined); // the link reconnects; the gateway asks again ([LM-DLV-8])
    this.stream.emit('end', { bytes, digest: d });
    this.stream.finish();
    this.close();
  }

  private refuseSkew(e: LmError): void {
    void this.send(FrameType.ERROR, { sid: this.sid, code: e.code, detail: clipUtf8(e.message, 256) });
    this.fail(e);
  }

  /** Ends the session as interrupted ([LM-DLV-13]): its transaction's next OFFER resumes it. */
  interrupt(detail: string): void {
    this.fail(new LmError(Reason.timeout, detail), false);
  }

  fail(e: LmError, tellGateway = true): void {
    if (this.closed) return;
    // a session cut off (its gateway gone, the device stopping) leaves the job to resume with its
    // ticket ([LM-DLV-13], [LM-LIC-3]), and so does a set-up that failed before the counting point;
    // a print abandoned after it is over ([LM-LIC-1])
    try {
      // forged frames ([LM-ALARM-3]) must not burn a licence either: whoever can publish them could
      if (e.code === Reason.timeout || e.code === Reason.offline || e.code === Reason.tamper || !this.started) this.licence.hold(this.p.delivery.consumedBytes);
      else this.licence.close();
    } catch (w) {
      this.stream.emit('reject', { code: Reason.internal, reason: reasonName(Reason.internal), type: FrameType.ERROR, detail: `licence state not written: ${toLmError(w).message}` });
    }
    if (tellGateway && e.code !== Reason.skew && e.code !== Reason.digest) {
      void this.send(FrameType.ERROR, { sid: this.sid, code: e.code, detail: clipUtf8(e.message, 256) });
    }
    this.stream.fail(e);
    this.close();
  }

  /** Erases everything of the session ([LM-KEY-5], [LM-DLV-9]). */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.p.acks.stop();
    this.p.sync.stop();
    this.p.liveness.stop();
    void this.pipeline.stop();
    this.p.telemetry.destroy();
    this.p.receive.wipe();
    this.p.delivery.wipe();
    this.contentKeys?.destroy();
    wipe(this.fk.g2d, this.fk.d2g);
    this.deps.closed(this);
  }

  private async send<T extends FrameTypeId>(type: T, body: Bodies[T]): Promise<void> {
    if (this.closed && type !== FrameType.ERROR && type !== FrameType.CONTROL) return;
    const frame = encodeFrame(type, body, { kind: 'mac', key: this.fk.d2g });
    try {
      await this.deps.send(frame, type);
    } catch {
      // the link reconnects by itself; ACKs and re-sends recover ([LM-DLV-8])
    }
  }
}
