/**
 * @module delivery
 * One accepted session's delivery (SPEC.md §9), composed of the phases: chunks sealed and cut
 * into HINTS while the device's credit and the congestion window allow ([LM-DLV-5],
 * [LM-DLV-12]), ACKs applied ({@link applyAck}), re-sends on NACK and timeout ([LM-DLV-3]),
 * chunk keys released at the transaction's pace ([LM-AEAD-3]), telemetry in ([LM-TEL-2]) and
 * END ([LM-DLV-6]). Built fresh for every session.
 */
import type PQueue from 'p-queue';
import {
  type AckBody, type AnyFrame, type Bodies, FrameType, type FrameTypeId, LmError, RANGES, Reason, type ReasonCode, type SessionParams,
  type SignedTx, type TelemetryBody, encodeFrame, randomBytes, sealChunk, senderRevision, toLmError, verifyFrame, wipe, wrapChunkKey,
} from '@livematrix/spec';
import type { Kernel, MatrixEngine } from '@livematrix/spec/engine';
import { type AckTarget, applyAck } from './acks.js';
import type { Clock } from './clock.js';
import { Allowance, ChunkKeys, type OutChunk } from './keys.js';
import type { Accepted } from './offer.js';
import { EndSender, type Stats } from './report.js';
import { CongestionWindow, RetryMap, latencyTarget, overdue } from './retransmit.js';
import { Sender } from './sender.js';
import type { KeyRelease } from './protected.js';
import type { JobSource } from './source.js';
import { TelemetryIn } from './telemetry.js';
import type { StreamOptions, StreamProgress } from './types.js';

/** What a delivery needs from its stream. */
export interface DeliveryHost {
  readonly clock: Clock;
  readonly engine: MatrixEngine;
  readonly queue: PQueue;
  readonly kernel: Kernel;
  readonly stats: Stats;
  readonly source: JobSource;
  readonly tx: SignedTx;
  readonly opts: StreamOptions;
  /** publishes a frame on the device's inbound topic */
  publish(frame: Uint8Array, type: FrameTypeId, opts?: { expirySeconds?: number }): Promise<void>;
  /** true once the stream has an alarm or ended */
  halted(): boolean;
  alarm(code: ReasonCode, detail: string, observed?: number, limit?: number): void;
  progress(p: StreamProgress): void;
  telemetry(t: Record<string, unknown>): void;
  /** fills the window soon (once per turn of the event loop) */
  kick(): void;
  /** the keys service, for a protected job's chunk keys ([LM-PROT-2]) */
  readonly keyRelease?: KeyRelease | undefined;
  /** resolves true once the session's print is counted and committed ([LM-LIC-1]); false: no key may go */
  keyGate(): Promise<boolean>;
}

/** A keys service that fails a release for a reason other than pacing or an alarm is asked again this often, this many times (30 s). */
const WRAP_RETRY_MS = 500;
const WRAP_TRIES = 60;

/** The key of a protected job's chunk, which the gateway never has ([LM-PROT-2]). */
const NO_KEY = new Uint8Array(0);

/** HINTS tasks queued at most before the sender waits for the link */
const MAX_QUEUED = 256;

/**
 * Whether a session can serve the resume point `from` the device asks for ([LM-DLV-10]): a
 * chunk boundary within the job that the source can serve (it seeks there).
 */
export function resumeFailure(from: number, chunk: number, source: JobSource): LmError | undefined {
  if (from % chunk !== 0 || from > source.size) return new LmError(Reason.schema, `resume point ${from} is not a chunk boundary of the job`);
  try {
    source.seek(from); // [LM-DLV-10]: any resume point, 0 included, is served or refused clearly
  } catch (e) {
    return toLmError(e);
  }
  return undefined;
}

/** The delivery of one accepted session. */
export class Delivery implements AckTarget {
  readonly sender: Sender;
  readonly keys: ChunkKeys;
  readonly window: CongestionWindow;
  readonly retry = new RetryMap();
  readonly allowance: Allowance;
  readonly limits: { readonly rate: number; readonly burst: number };
  readonly stats: Stats;
  consumed: number;
  credit: number;
  firstAck = false;
  private readonly telemetry: TelemetryIn;
  private readonly end: EndSender;
  /** the next chunk to cut */
  private nextChunk: number;
  private readonly fk: { g2d: Uint8Array; d2g: Uint8Array };
  private closed = false;
  /** SHA-256 of OFFER ‖ ACCEPT, for the keys service's wraps ([LM-PROT-2]) */
  private readonly th: Uint8Array;
  /** failed releases per chunk, while the keys service is unavailable */
  private readonly wrapTries = new Map<number, number>();

  constructor(
    private readonly host: DeliveryHost,
    readonly sid: Uint8Array,
    readonly params: SessionParams,
    accepted: Accepted,
    private readonly paused: () => boolean,
  ) {
    const { clock, tx } = host;
    const now = (): number => clock.now();
    this.stats = host.stats;
    this.fk = { g2d: accepted.keys.fkG2d, d2g: accepted.keys.fkD2g };
    this.th = accepted.th;
    this.credit = accepted.window;
    // [LM-DLV-10]: a resumed job continues at the device's resume point
    this.nextChunk = accepted.from / params.chunk;
    this.consumed = Math.max(accepted.from, 0);
    this.limits = { rate: tx.body.rate, burst: tx.body.burst };
    this.allowance = new Allowance(this.consumed, tx.body.rate, tx.body.burst);
    this.window = new CongestionWindow(now, latencyTarget(params));
    this.sender = new Sender({
      sid, params, g2d: accepted.g2d, kernel: host.kernel, queue: host.queue, now, halted: () => this.halted(), send: (type, body, o) => this.send(type, body, o),
      onRevision: (r) => this.stats.revisions.add(r), onSent: (seq, resend) => host.opts.onFrameSent?.(seq, resend), afterSent: () => this.stats.framesSent++,
    });
    this.keys = new ChunkKeys({ now, allowance: this.allowance, withheld: () => this.halted(), transmit: (j, ch) => this.transmitKey(j, ch) }, this.nextChunk);
    this.telemetry = new TelemetryIn({ sid, params, d2g: accepted.d2g, engine: host.engine, now });
    this.end = new EndSender(now, () => this.transmitEnd());
  }

  now(): number {
    return this.host.clock.now();
  }

  /** Whether this session sends nothing more: closed, or the stream has an alarm or ended. */
  private halted(): boolean {
    return this.closed || this.host.halted();
  }

  /** Sends a frame authenticated with the g2d frame key; a failed publish is recovered by re-sends. */
  async send<T extends FrameTypeId>(type: T, body: Bodies[T], opts: { expirySeconds?: number } = {}): Promise<void> {
    if (this.closed) return; // a newer session re-sends
    const frame = encodeFrame(type, body, { kind: 'mac', key: this.fk.g2d });
    this.stats.wireBytes += frame.length;
    try {
      await this.host.publish(frame, type, opts);
    } catch {
      // reconnecting: re-sends recover
    }
  }

  /** Verifies a frame of the device with the d2g frame key ([LM-FRAME-2]); throws LmError `auth`. */
  verify(f: AnyFrame): void {
    verifyFrame(f, { mac: this.fk.d2g });
  }

  onAck(b: AckBody): void {
    applyAck(this, b);
  }

  onTelemetry(b: TelemetryBody): Promise<void> {
    return this.telemetry.receive(b, (t) => this.host.telemetry(t));
  }

  /** Cuts chunks into frames while the window allows ([LM-DLV-5]) and sends them. */
  fill(): void {
    if (!this.firstAck || this.paused() || this.halted()) return;
    const p = this.params;
    const { source } = this.host;
    while (this.mayCut()) {
      const start = this.nextChunk * p.chunk;
      if (source.cipher) {
        // a protected job: the owner's ciphertext as it is; its key comes from the keys service ([LM-PROT-2])
        const ct = source.cipher(this.nextChunk);
        if (!ct) return; // still being fetched from the store: it calls back
        const j = this.nextChunk++;
        const frames = this.sender.cut(j, ct);
        this.keys.add(j, { key: NO_KEY, pending: frames, start, end: Math.min(source.size, start + p.chunk) });
        continue;
      }
      const pt = source.take(start, start + p.chunk);
      if (!pt) return; // a stream source is still reading: it calls back
      const j = this.nextChunk++;
      const key = randomBytes(32); // [LM-AEAD-5]
      const ct = sealChunk(key, this.sid, j, pt); // [LM-AEAD-1]
      const frames = this.sender.cut(j, ct);
      this.keys.add(j, { key, pending: frames, start, end: start + pt.length });
    }
    this.allowance.start(this.now()); // t_start of [LM-ALARM-1]
  }

  /** Whether the next chunk may be cut: it is in the job, within the device's credit ([LM-DLV-5]) and the congestion window ([LM-DLV-12]). */
  private mayCut(): boolean {
    const start = this.nextChunk * this.params.chunk;
    return start < this.host.source.size && start < this.consumed + this.credit && this.host.queue.size < MAX_QUEUED && this.window.allows(this.sender.inFlight);
  }

  /** Re-sends the NACKed frames whose wait for a later revision is over ([LM-DLV-3]). */
  flushRetries(): void {
    if (!this.retry.size || this.halted() || this.paused()) return;
    const rev = senderRevision(this.now(), this.params);
    for (const { seq, idx } of this.retry.due(rev)) {
      const fr = this.sender.frames[seq];
      if (!fr || fr.received) continue;
      this.stats.resends++;
      this.stats.symbolsResent += idx ? idx.length : fr.symbols.length;
      this.sender.hints(fr, idx);
    }
  }

  /** An ACK was applied: erases the keys the consumer is past, releases keys, reports progress, sends more. */
  acknowledged(): void {
    // chunk keys are erased once the consumer is past their chunk
    this.keys.wipeConsumed(this.consumed);
    this.keys.release();
    // a stream source keeps what a resumed session may still ask for ([LM-DLV-10]): its resume
    // point is a multiple of its own chunk size (which may differ if the restarted device
    // negotiates another w) at or below what the consumer took, so at most one chunk back
    const { source } = this.host;
    source.release(Math.max(0, this.consumed - RANGES.chunk[1]));
    this.host.progress({ consumed: this.consumed, total: source.size, sent: this.stats.framesSent, revision: this.sender.revision });
    this.host.kick();
    this.maybeEnd();
  }

  alarm(code: ReasonCode, detail: string, observed?: number, limit?: number): void {
    this.host.alarm(code, detail, observed, limit);
  }

  private transmitKey(j: number, ch: OutChunk): void {
    // END waits until every KEY queued has gone out ([LM-DLV-6]): the first one waits for the count ([LM-LIC-1])
    this.keysQueued++;
    void this.host.queue.add(async () => {
      try {
        if (this.halted() || ch.end <= this.consumed) return;
        if (!(await this.host.keyGate())) return; // [LM-LIC-1]: counted before the first key goes out
        if (this.halted()) return;
        const k = this.sender.revisionKeys();
        let wrapped: Uint8Array;
        if (ch.key === NO_KEY) {
          const wrap = await this.relayedWrap(j, k.revision, ch);
          if (!wrap) return;
          wrapped = wrap;
        } else {
          wrapped = wrapChunkKey(k.wk, this.sid, j, ch.key); // [LM-AEAD-2]
        }
        await this.send(FrameType.KEY, { sid: this.sid, chunk: j, rev: k.revision, wrapped });
      } finally {
        this.keysQueued--;
        this.maybeEnd();
      }
    });
  }
  /** KEY frames queued and not yet sent (END waits for them, [LM-DLV-6]) */
  private keysQueued = 0;

  /**
   * A protected job's chunk key, wrapped by the keys service for this session and revision
   * ([LM-PROT-2]); the gateway relays it and cannot open it. While the service's pacing holds
   * it back, the KEY goes again when the service says; an alarm there ends the stream.
   */
  private async relayedWrap(j: number, r: number, ch: OutChunk): Promise<Uint8Array | undefined> {
    const ks = this.host.keyRelease;
    if (!ks) {
      this.host.alarm(Reason.internal, 'a protected job without a keys service');
      return undefined;
    }
    try {
      return await ks.release({ txh: this.host.tx.hash, sid: this.sid, th: this.th, r0: this.params.r0, j, r, now: this.now() });
    } catch (e) {
      const err = toLmError(e, 'keys service');
      const retryAt = (e as { retryAt?: unknown }).retryAt;
      if (err.code === Reason.busy && typeof retryAt === 'number') {
        this.host.clock.after(Math.max(20, retryAt - this.now()), () => this.transmitKey(j, ch));
        return undefined;
      }
      // withheld after an alarm, or the job is gone: the stream ends
      if (err.code === Reason.rate || err.code === Reason.tamper || err.code === Reason.unknown) {
        this.host.alarm(err.code, `keys service: ${err.message}`);
        return undefined;
      }
      // anything else (the service restarting, unreachable for a while) is tried again, for a while
      const tries = (this.wrapTries.get(j) ?? 0) + 1;
      this.wrapTries.set(j, tries);
      if (tries > WRAP_TRIES) {
        this.host.alarm(err.code, `keys service: no key for chunk ${j} after ${WRAP_TRIES} tries: ${err.message}`);
        return undefined;
      }
      this.host.clock.after(WRAP_RETRY_MS, () => this.transmitKey(j, ch));
      return undefined;
    }
  }

  /** Sends END once every chunk was cut, its KEY sent, and the job read and matched. */
  maybeEnd(): void {
    if (this.end.sent || this.halted()) return;
    const { source } = this.host;
    if (this.nextChunk * this.params.chunk < source.size) return;
    if (!this.keys.allSent() || this.keysQueued > 0) return;
    if (!source.verified) return; // [LM-TX-6]: a stream source's digest is known at its end
    this.end.send(); // [LM-DLV-6]
  }

  private transmitEnd(): void {
    const body = { sid: this.sid, bytes: this.host.source.size, chunks: this.keys.count, frames: this.sender.frames.length, digest: this.host.tx.body.jd };
    void this.host.queue.add(() => this.send(FrameType.END, body));
  }

  /** The session's timer: re-sends, key release and back-off, END again. */
  tick(): void {
    if (this.halted() || this.paused() || !this.firstAck) return;
    this.flushRetries();
    const now = this.now();
    const timeout = 2 * this.params.period; // [LM-DLV-3]
    for (const fr of overdue(this.sender.frames, this.sender.ackedUpTo, now, timeout, this.retry)) {
      fr.sentAt = now;
      this.stats.resends++;
      this.stats.timeoutResends++;
      this.window.congested(); // [LM-DLV-12]
      this.stats.symbolsResent += fr.symbols.length;
      this.sender.hints(fr);
    }
    this.keys.release();
    // a KEY or END lost on the way (QoS 1 does not survive a broker restart) goes again
    this.keys.resend(this.consumed, timeout);
    this.end.again(timeout);
  }

  /** Sends nothing more and erases every key of the session ([LM-KEY-5]). */
  close(): void {
    this.closed = true;
    if (this.host.source.cipher) void Promise.resolve(this.host.keyRelease?.endSession?.(this.sid)).catch(() => undefined);
    this.keys.wipeAll();
    this.sender.wipe();
    this.telemetry.wipe();
    wipe(this.fk.g2d, this.fk.d2g); // [LM-KEY-5]
  }
}

