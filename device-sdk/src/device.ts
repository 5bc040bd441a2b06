/**
 * @module device
 * The machine side of a Live Matrix stream: identity and capabilities on the broker, offer and
 * transaction checks, session keys, time sync, the revision pipeline, hints back to ciphertext,
 * chunk decryption, in-order delivery to a consumer with back-pressure, receipts, telemetry.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import {
  type AckBody, type AnyFrame, type Caps, ControlOp, type Frame, FrameType, type FrameTypeId, Kernel, LmError, MatrixEngine, Ratchet,
  Reason, type ReasonCode, type RevisionKeys, RevisionPipeline, type SessionKeys, type SessionParams, type SignedTx, type Signer, type SuiteId,
  type TimeSample, bestSample, checkRevision, checkSkew, decodeFrame, deriveSessionKeys, digest, ecdh, encodeCbor, encodeFrame, equalBytes,
  minHintLength, openChunk, openLicence, pack, randomBytes, reasonName, sealTelemetry, senderRevision, splitShifted, symbolCount, topics, transcriptHash,
  type CborValue, FRAME_TYPE_NAMES, decodeTx, toLmError, toHex, unpack, unwrapChunkKey, validateParams, verifyFrame, verifyTx, wipe, x25519KeyPair, type IdentityKeyPair,
} from '@livematrix/spec';
import { type BrokerAuth, FrameLink, authOptions } from '@livematrix/spec/transport';

export const SOFTWARE = 'livematrix-device/0.1';

export interface DeviceOptions {
  /** broker URL, e.g. mqtt://127.0.0.1:1883 */
  url: string;
  fleet: string;
  id: string;
  identity: IdentityKeyPair;
  /** operator keys whose transactions this device accepts ([LM-TX-3]) */
  trustedOperators: readonly Uint8Array[];
  /** hashing workers; default one per core */
  workers?: number;
  /** bytes for revision tables; default 512 MiB */
  memory?: number;
  /** largest w; default 24 */
  wmax?: number;
  /** receive buffer in plaintext bytes ([LM-DLV-5]); default 4 MiB */
  window?: number;
  /** the device's clock in Unix ms; default Date.now (tests shift it to test skew) */
  clock?: () => number;
  /** MQTT protocol version; default 4 (3.1.1) */
  protocolVersion?: 4 | 5;
  /** capabilities to report instead of measuring them (tests) */
  caps?: Caps;
  /** number of streams already started per transaction hash (hex), for print counts ([LM-TX-7]) */
  printCounts?: Map<string, number>;
  /** how to authenticate to the broker: 'token' for a broker with the Live Matrix plugin, or a user name and password */
  brokerAuth?: BrokerAuth;
  /** brokers to fail over to, in turn, when the connection drops (a cluster of instances) */
  servers?: { host: string; port: number }[];
  /**
   * ms without an authenticated frame from the gateway after which a session ends as
   * interrupted ([LM-DLV-13]); the next OFFER of its transaction resumes it. Default 10000.
   */
  gatewayTimeout?: number;
  /** refused OFFERs answered per second at most, so the device cannot be made a flood amplifier ([LM-FRAME-9]); default 20 */
  refusalsPerSecond?: number;
  /** metrics hook: a HINTS frame is fully resolved (benchmarks measure hint latency with it) */
  onFrameResolved?: (seq: number) => void;
  /**
   * Where the consumer stands in a job, so that a restarted device resumes it ([LM-DLV-10]):
   * the bytes it took of the transaction (by its hash, hex) and a way to read them again (the
   * end digest covers the whole job).
   */
  resume?: (txh: string) => Promise<ResumePoint | undefined> | ResumePoint | undefined;
  /**
   * Deliberately broken behaviours, so that a conformance suite can prove it catches them.
   * Never set in production.
   */
  faults?: DeviceFaults;
}

/** A consumer's progress in a job ([LM-DLV-10]). */
export interface ResumePoint {
  /** plaintext bytes the consumer took */
  bytes: number;
  /** the first n of those bytes again, in order */
  read(n: number): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/** Deliberate protocol violations for testing the conformance suite itself. */
export interface DeviceFaults {
  /** resolve HINTS of revisions older than c - 1 (and keep their tables) */
  acceptExpiredRevision?: boolean;
  /** accept transactions whose operator signature does not verify */
  skipTxSignature?: boolean;
  /** report bytes as consumed as soon as they are decrypted, before the consumer takes them */
  ackBeforeConsume?: boolean;
  /** keep the keys of expired revisions and accept KEY frames stamped with them */
  keepExpiredKeys?: boolean;
  /** report 1 MiB more consumed than the consumer took (a device lying about its pace) */
  overstateConsumption?: boolean;
  /** do not check the zero padding of a chunk's last symbol */
  ignorePadding?: boolean;
  /** resolve an ambiguous hint to one of its candidates instead of NACKing it */
  noAmbiguityNack?: boolean;
  /** take the bits of shifted hints with the shift mirrored (w - sh for sh): an off-by-shift bug */
  misreadShifted?: boolean;
  /** never check the consumer's pace against the transaction ([LM-ALARM-2]) */
  skipRateCheck?: boolean;
}

export interface ProgressEvent {
  bytes: number;
  total: number;
  revision: number;
}
export interface RejectEvent {
  code: ReasonCode;
  reason: string;
  type: FrameTypeId;
  detail: string;
}
export interface StreamEvents {
  progress: [ProgressEvent];
  alarm: [{ code: number; detail: string }];
  error: [LmError];
  reject: [RejectEvent];
  end: [{ bytes: number; digest: Uint8Array }];
}

/** A stream the device accepted: read it with `lines()` or `bytes()`. */
export class IncomingStream extends EventEmitter<StreamEvents> {
  readonly job: string;
  readonly size: number;
  /** where this stream starts in the job: 0, or the resume point of a restarted device ([LM-DLV-10]) */
  readonly offset: number;
  /** hash of the transaction, the key a consumer keeps its progress under */
  readonly txh: string;
  private readonly queue: Uint8Array[] = [];
  private waiter: (() => void) | undefined;
  private failure: LmError | undefined;
  private finished = false;
  private reading = false;
  /** @internal */
  constructor(private readonly s: DeviceSession) {
    super();
    this.job = s.tx.body.job;
    this.size = s.tx.body.size;
    this.offset = s.from;
    this.txh = Buffer.from(s.tx.hash).toString('hex');
  }
  get params(): SessionParams {
    return this.s.params;
  }
  get sid(): Uint8Array {
    return this.s.sid;
  }
  /** @internal */
  push(b: Uint8Array): void {
    this.queue.push(b);
    this.wake();
  }
  /** @internal */
  fail(e: LmError): void {
    if (this.finished || this.failure) return;
    this.failure = e;
    if (this.listenerCount('error') > 0) this.emit('error', e); // the reader gets it from bytes() too
    this.wake();
  }
  /** @internal */
  finish(): void {
    this.finished = true;
    this.wake();
  }
  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
  /**
   * The plaintext in order, piece by piece. A piece counts as consumed (and is acknowledged,
   * [LM-DLV-4]) when the loop asks for the next one, and is then overwritten with zeros (the SDK
   * keeps no plaintext): copy what must outlive the iteration, for example a piece handed to a
   * write stream. Throws LmError if the stream fails; ends only after the end digest verified
   * ([LM-DLV-6]).
   */
  async *bytes(): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.reading) throw new LmError(Reason.internal, 'a stream can be read once');
    this.reading = true;
    for (;;) {
      if (this.failure) throw this.failure;
      const b = this.queue.shift();
      if (b) {
        yield b;
        this.s.consumed(b);
        continue;
      }
      if (this.finished) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
  /** The plaintext as lines (without their '\n'), in order, with the same guarantees. */
  async *lines(): AsyncGenerator<string, void, undefined> {
    const td = new TextDecoder();
    let rest = '';
    for await (const b of this.bytes()) {
      const text = rest + td.decode(b, { stream: true });
      const parts = text.split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) yield p;
    }
    rest += td.decode();
    if (rest) yield rest;
  }
  /** Asks the gateway to stop sending until resume() ([LM-DLV-9]). */
  pause(): Promise<void> {
    return this.s.control(ControlOp.pause);
  }
  resume(): Promise<void> {
    return this.s.control(ControlOp.resume);
  }
  /** Ends the session on both sides and erases its keys. */
  abort(): Promise<void> {
    return this.s.control(ControlOp.abort);
  }
}

interface ChunkState {
  ctlen: number;
  m: number;
  symbols: Uint32Array;
  have: Uint8Array;
  missing: number;
  key?: Uint8Array;
}

interface FrameState {
  chunk: number;
  off: number;
  n: number;
  /** 1 for each symbol still missing */
  missing: Uint8Array;
  left: number;
  /** bits of missing symbols known from shifted hints ([LM-DLV-11]): rel -> value and mask */
  partial?: Map<number, { v: number; m: number }>;
}

/** Symbol `rel` of a frame is known: `g` ([LM-DLV-1]). */
function resolveSymbol(fs: FrameState, ch: ChunkState, rel: number, g: number): void {
  const at = fs.off + rel;
  ch.symbols[at] = g;
  if (!ch.have[at]) {
    ch.have[at] = 1;
    ch.missing--;
  }
  fs.missing[rel] = 0;
  fs.left--;
}

const TAMPER_LIMIT = 3; // [LM-ALARM-3]
/** rounds of 4 time-sync samples (about 0.3 s each) before a device refuses for skew ([LM-TIME-2]) */
const SYNC_ROUNDS = 5;
const TAMPER_WINDOW_MS = 60_000;
/** a TIME_REQ at least this often during a session: the gateway's answer proves it alive ([LM-DLV-13]) */
const HEARTBEAT_MS = 1000;
/** a busy device takes a verified OFFER when its session's gateway was silent this long ([LM-DLV-13]) */
const TAKEOVER_SILENCE_MS = 2500;

/** One session on the device. @internal */
class DeviceSession {
  readonly stream: IncomingStream;
  private readonly fk: SessionKeys;
  private readonly d2g: Ratchet;
  private d2gKeys: RevisionKeys | undefined;
  readonly pipeline: RevisionPipeline;
  private readonly chunks = new Map<number, ChunkState>();
  private readonly frames = new Map<number, FrameState>();
  private readonly done = new Set<number>();
  private cum = 0;
  private nacks: [number, number, number[]][] = [];
  private nextChunk = 0;
  private deliveredBytes = 0;
  private earlyAcked = 0;
  private consumedBytes = 0;
  private readonly hash = createHash('sha256');
  private end: { bytes: number; digest: Uint8Array } | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private samples: TimeSample[] = [];
  private syncRounds = 0;
  private synced = false;
  private closed = false;
  private telemetrySeq = 0;
  private firstHints = 0;
  private tamper: number[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  /** when the last authenticated frame of the gateway arrived (device clock, ms) */
  private lastHeard: number;

  constructor(
    private readonly dev: Device,
    readonly sid: Uint8Array,
    readonly tx: SignedTx,
    readonly params: SessionParams,
    keys: SessionKeys,
    readonly from = 0,
    prefix?: Uint8Array[],
  ) {
    this.fk = keys;
    // a resumed job ([LM-DLV-10]): chunks, counters and the digest continue from `from`
    this.nextChunk = from / params.chunk;
    this.deliveredBytes = from;
    this.consumedBytes = from;
    for (const p of prefix ?? []) this.hash.update(p);
    const g2d = new Ratchet(keys.ckG2d, params.r0);
    this.d2g = new Ratchet(keys.ckD2g, params.r0);
    wipe(keys.ckG2d, keys.ckD2g);
    this.pipeline = new RevisionPipeline({
      engine: dev.engine, suite: params.suite, w: params.w, L: params.L, epoch: params.epoch, period: params.period, r0: params.r0,
      keysFor: (r) => g2d.keysFor(r), now: dev.clock,
      ...(dev.o.faults?.acceptExpiredRevision || dev.o.faults?.keepExpiredKeys ? { keep: 3 } : {}),
    });
    this.pipeline.on('error', (e) => this.fail(new LmError(Reason.internal, `revision pipeline: ${e.message}`)));
    this.stream = new IncomingStream(this);
    this.lastHeard = dev.clock();
  }

  /** ms since the gateway last sent an authenticated frame ([LM-DLV-13]) */
  silentFor(): number {
    return this.dev.clock() - this.lastHeard;
  }

  private get outTopic(): string {
    return topics.deviceOut(this.dev.o.fleet, this.dev.o.id);
  }
  private mac(): Signer {
    return { kind: 'mac', key: this.fk.fkD2g };
  }

  /** Time sync first ([LM-TIME-1]); the pipeline starts once the clocks agree. */
  begin(): void {
    this.startSync();
    // [LM-DLV-13]: a heartbeat the gateway answers, and the end of a session whose gateway is gone
    this.heartbeat = setInterval(() => {
      if (this.closed) return;
      const silent = this.silentFor();
      if (silent > this.dev.gatewayTimeout) {
        this.fail(new LmError(Reason.timeout, `the gateway is gone: no authenticated frame from it for ${(silent / 1000).toFixed(1)} s ([LM-DLV-13]); the job resumes when a gateway offers it again`), false);
        return;
      }
      if (this.synced) void this.send(FrameType.TIME_REQ, { sid: this.sid, t1: this.dev.clock() });
    }, HEARTBEAT_MS);
  }

  // ---- time sync ([LM-TIME-1]..[LM-TIME-3]) ----
  private startSync(fresh = true): void {
    if (fresh) {
      this.samples = [];
      this.syncRounds = 0;
    }
    this.syncRounds++;
    let sent = 0;
    const send = () => {
      if (this.closed) return;
      if (sent < 4) {
        sent++;
        void this.send(FrameType.TIME_REQ, { sid: this.sid, t1: this.dev.clock() });
        this.syncTimer = setTimeout(send, 40);
      } else {
        this.syncTimer = setTimeout(() => this.judgeSync(), 200);
      }
    };
    send();
  }

  private judgeSync(): void {
    if (this.closed) return;
    try {
      checkSkew(bestSample(this.samples), this.params.grace);
    } catch (e) {
      // A slow round trip widens the bound (|offset| + delay / 2) and a busy gateway may not
      // have answered yet: another round of samples (the best of all counts) before refusing.
      if (this.syncRounds < SYNC_ROUNDS) return this.startSync(false);
      const err = toLmError(e);
      void this.send(FrameType.ERROR, { sid: this.sid, code: err.code, detail: err.message.slice(0, 256) });
      this.fail(err);
      return;
    }
    const first = !this.synced;
    this.synced = true;
    this.syncTimer = setTimeout(() => this.startSync(), 30_000); // [LM-TIME-3]
    if (first) {
      // first ACK once the current revision's table is ready: the gateway may start sending
      this.pipeline.start().then(() => this.ackSoon(0), (e: unknown) => this.fail(e instanceof LmError ? e : new LmError(Reason.internal, String(e))));
    }
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
      verifyFrame(f, { mac: this.fk.fkG2d });
    } catch (e) {
      this.onTamper(f, toLmError(e));
      return;
    }
    this.lastHeard = this.dev.clock(); // [LM-DLV-13]
    switch (f.type) {
      case FrameType.TIME_RESP: {
        const b = f.body;
        this.samples.push({ t1: b.t1, t2: b.t2, t3: b.t3, t4: this.dev.clock() });
        return;
      }
      case FrameType.HINTS:
        return this.onHints(f);
      case FrameType.KEY:
        return this.onKey(f);
      case FrameType.END:
        this.end = { bytes: f.body.bytes, digest: f.body.digest };
        this.maybeFinish();
        return;
      case FrameType.CONTROL:
        if (f.body.op === ControlOp.abort) this.fail(new LmError(Reason.aborted, 'the gateway aborted the stream'), false);
        return;
      case FrameType.ALARM:
        // [LM-ALARM-5]: an authenticated alarm ends the session and erases its keys
        this.stream.emit('alarm', { code: f.body.code, detail: f.body.detail });
        this.fail(new LmError(f.body.code === Reason.rate ? Reason.rate : Reason.tamper, `alarm from the gateway: ${f.body.detail}`), false);
        return;
      case FrameType.ERROR:
        this.fail(new LmError(Reason.internal, `error from the gateway: ${reasonName(f.body.code as ReasonCode) ?? f.body.code}: ${f.body.detail}`), false);
        return;
      default:
        return;
    }
  }

  private reject(f: AnyFrame, code: ReasonCode, detail: string): void {
    this.stream.emit('reject', { code, reason: reasonName(code), type: f.type, detail });
  }

  private onTamper(f: AnyFrame, e: LmError): void {
    this.reject(f, e.code, e.message);
    const now = Date.now();
    this.tamper = this.tamper.filter((t) => now - t < TAMPER_WINDOW_MS);
    this.tamper.push(now);
    if (this.tamper.length >= TAMPER_LIMIT) {
      // [LM-ALARM-3]
      void this.send(FrameType.ALARM, { sid: this.sid, code: Reason.tamper, detail: `${this.tamper.length} authentication failures within 60 s`, time: Date.now() });
      this.fail(new LmError(Reason.tamper, `${this.tamper.length} frames failed authentication within 60 s; session ended`));
    }
  }

  private async onHints(f: Frame<6>): Promise<void> {
    const b = f.body;
    const p = this.params;
    if (!this.synced) return; // [LM-TIME-1]: no hints before time sync
    if (!this.firstHints) this.firstHints = this.dev.clock(); // t_start of [LM-ALARM-2]
    let rc = checkRevision(b.rev, this.dev.clock(), p); // [LM-REV-2]
    if (rc === Reason.revExpired && this.dev.o.faults?.acceptExpiredRevision) rc = null;
    if (rc !== null) {
      this.reject(f, rc, `HINTS seq ${b.seq} of revision ${b.rev}`);
      this.nack(b.seq, rc, b.idx ?? []);
      return;
    }
    if (b.hints.length % p.L !== 0) return this.reject(f, Reason.schema, `hints of ${b.hints.length} bytes are not a multiple of L=${p.L}`);
    const n = b.hints.length / p.L;
    if (n > p.symbolsPerFrame + (b.sh ? 1 : 0) || (b.idx && b.idx.length !== n)) return this.reject(f, Reason.schema, 'symbol count');
    if (b.sh !== undefined && b.sh >= p.w) return this.reject(f, Reason.schema, `shift ${b.sh} is not below w=${p.w} ([LM-DLV-11])`);
    if (b.chunk < this.nextChunk) {
      this.markDone(b.seq);
      return this.ackSoon();
    }
    let ch = this.chunks.get(b.chunk);
    const m = symbolCount(b.ctlen, p.w);
    if (!ch) {
      if (b.ctlen < 16 || b.ctlen > p.chunk + 16) return this.reject(f, Reason.schema, `ctlen ${b.ctlen}`);
      ch = { ctlen: b.ctlen, m, symbols: new Uint32Array(m), have: new Uint8Array(m), missing: m };
      this.chunks.set(b.chunk, ch);
    } else if (ch.ctlen !== b.ctlen) return this.reject(f, Reason.schema, `ctlen ${b.ctlen} differs from ${ch.ctlen}`);
    let fs = this.frames.get(b.seq);
    if (!fs) {
      if (b.idx) return this.nack(b.seq, Reason.unknown, []); // a partial re-send of a frame we never saw: ask for all
      if (b.off + n > m) return this.reject(f, Reason.schema, 'symbols beyond the chunk');
      fs = { chunk: b.chunk, off: b.off, n, missing: new Uint8Array(n).fill(1), left: n };
      this.frames.set(b.seq, fs);
    }
    if (this.done.has(b.seq) || b.seq < this.cum) return this.ackSoon();
    const table = this.pipeline.table(b.rev) ?? (await this.pipeline.ready(b.rev));
    if (!table) {
      this.nack(b.seq, Reason.busy, b.idx ?? []);
      return;
    }
    const res = table.lookupMany(b.hints, new Int32Array(n));
    const amb: number[] = [];
    const unk: number[] = [];
    if (b.sh !== undefined && b.idx) {
      this.onShifted(fs, ch, b.idx, b.sh, res, amb, unk);
    } else for (let i = 0; i < n; i++) {
      const rel = b.idx ? (b.idx[i] as number) : i;
      if (rel >= fs.n || !fs.missing[rel]) continue;
      const r = res[i] as number;
      if (r >= 0) resolveSymbol(fs, ch, rel, r);
      else if (r === -2 && this.dev.o.faults?.noAmbiguityNack) {
        resolveSymbol(fs, ch, rel, ch.symbols[fs.off + rel] as number); // broken on purpose: takes a guess instead of a NACK
      } else if (r === -2) amb.push(rel); // [LM-HINT-3]
      else unk.push(rel); // [LM-HINT-4]
    }
    res.fill(0);
    if (amb.length) this.nack(b.seq, Reason.ambiguous, amb);
    if (unk.length) this.nack(b.seq, Reason.unknown, unk);
    if (fs.left === 0) {
      this.dev.o.onFrameResolved?.(b.seq);
      this.markDone(b.seq);
      this.frames.delete(b.seq);
    }
    this.ackSoon();
    this.deliver();
  }

  /**
   * A shifted re-send ([LM-DLV-11]): each resolved hint gives the low `sh` bits of the symbol
   * before its position and the high `w - sh` bits of the symbol at it; a symbol is resolved
   * once all its bits are known. Failed hints NACK the frame's symbols they would have completed.
   */
  private onShifted(fs: FrameState, ch: ChunkState, idx: number[], sh: number, res: Int32Array, amb: number[], unk: number[]): void {
    const w = this.params.w;
    const full = 2 ** w - 1;
    const lowMask = 2 ** sh - 1;
    const highMask = full - lowMask;
    const partial = (fs.partial ??= new Map());
    const learn = (rel: number, v: number, mask: number) => {
      if (rel < 0 || rel >= fs.n || !fs.missing[rel]) return; // bits of other symbols are ignored
      const cur = partial.get(rel) ?? { v: 0, m: 0 };
      cur.v = (cur.v | v) >>> 0;
      cur.m = (cur.m | mask) >>> 0;
      if (cur.m !== full) {
        partial.set(rel, cur);
        return;
      }
      partial.delete(rel);
      resolveSymbol(fs, ch, rel, cur.v);
    };
    const failed = new Set<number>();
    for (let i = 0; i < idx.length; i++) {
      const j = idx[i] as number;
      if (j > fs.n) continue;
      const r = res[i] as number;
      if (r >= 0) {
        const { prevLow, curHigh } = splitShifted(r, w, this.dev.o.faults?.misreadShifted && 2 * sh !== w ? w - sh : sh); // the fault: broken on purpose
        learn(j - 1, prevLow, lowMask);
        learn(j, curHigh, highMask);
      } else {
        for (const rel of [j - 1, j]) {
          if (rel < 0 || rel >= fs.n || !fs.missing[rel] || failed.has(rel)) continue;
          failed.add(rel);
          (r === -2 ? amb : unk).push(rel);
        }
      }
    }
    // a symbol listed as failed may have been completed by another shifted hint of the frame
    const still = (xs: number[]) => xs.filter((rel) => fs.missing[rel]).sort((x, y) => x - y);
    amb.splice(0, amb.length, ...still(amb));
    unk.splice(0, unk.length, ...still(unk));
  }

  private markDone(seq: number): void {
    if (seq < this.cum) return;
    this.done.add(seq);
    while (this.done.has(this.cum)) this.done.delete(this.cum++);
  }

  private nack(seq: number, reason: number, idx: number[]): void {
    // Long lists mean "the whole frame" (an empty list) so that an ACK stays small.
    if (this.nacks.length < 4096) this.nacks.push([seq, reason, idx.length > 256 ? [] : idx]);
    this.ackSoon(0);
  }

  private onKey(f: Frame<7>): void {
    const b = f.body;
    let rc = checkRevision(b.rev, this.dev.clock(), this.params);
    if (rc === Reason.revExpired && this.dev.o.faults?.keepExpiredKeys) rc = null;
    if (rc !== null) return this.reject(f, rc, `KEY of chunk ${b.chunk}, revision ${b.rev}`);
    const keys = this.pipeline.keys(b.rev);
    if (!keys) return this.reject(f, Reason.busy, `no keys for revision ${b.rev}`);
    if (b.chunk < this.nextChunk) return;
    let k: Uint8Array;
    try {
      k = unwrapChunkKey(keys.wk, this.sid, b.chunk, b.wrapped);
    } catch (e) {
      return this.onTamper(f, toLmError(e));
    }
    const ch = this.chunks.get(b.chunk);
    if (!ch) {
      wipe(k);
      return;
    }
    ch.key = k;
    this.deliver();
  }

  /** Decrypts and hands over complete chunks, in order ([LM-DLV-6]). */
  private deliver(): void {
    for (;;) {
      const ch = this.chunks.get(this.nextChunk);
      if (!ch || ch.missing > 0 || !ch.key) break;
      let pt: Uint8Array;
      try {
        if (this.dev.o.faults?.ignorePadding) {
          const pad = ch.m * this.params.w - 8 * ch.ctlen;
          if (pad > 0) ch.symbols[ch.m - 1] = ((ch.symbols[ch.m - 1] as number) >>> pad) << pad; // broken on purpose
        }
        const ct = unpack(ch.symbols, this.params.w, ch.ctlen); // [LM-PACK-3]
        pt = openChunk(ch.key, this.sid, this.nextChunk, ct); // [LM-AEAD-4]
        wipe(ct);
      } catch (e) {
        this.fail(toLmError(e));
        return;
      }
      wipe(ch.key);
      ch.symbols.fill(0);
      this.chunks.delete(this.nextChunk);
      this.nextChunk++;
      this.deliveredBytes += pt.length;
      if (this.dev.o.faults?.ackBeforeConsume) this.earlyAcked += pt.length;
      this.stream.push(pt);
    }
    this.maybeFinish();
  }

  /** Called when the consumer took a piece ([LM-DLV-4]). */
  consumed(b: Uint8Array): void {
    if (this.closed) return;
    this.consumedBytes += b.length;
    this.hash.update(b);
    b.fill(0); // consumed plaintext is not retained by the SDK
    // [LM-ALARM-2]: the gateway paces keys by the transaction's rate ([LM-AEAD-3]), so a consumer
    // faster than that means keys came early; the device stops on its own (G of slack for the
    // latency between the two sides' clocks of the session start)
    const tx = this.tx.body;
    const now = this.dev.clock();
    const allowed = this.firstHints && !this.dev.o.faults?.skipRateCheck ? (tx.rate * (now - this.firstHints + this.params.grace)) / 1000 + tx.burst : Infinity;
    const taken = this.consumedBytes - this.from;
    if (taken > allowed) {
      const detail = `the consumer took ${taken} bytes in ${((now - this.firstHints) / 1000).toFixed(1)} s; the transaction allows ${tx.rate} bytes/s plus a burst of ${tx.burst}`;
      void this.send(FrameType.ALARM, { sid: this.sid, code: Reason.rate, detail, time: Date.now(), observed: taken, limit: Math.floor(allowed) });
      this.stream.emit('alarm', { code: Reason.rate, detail });
      this.fail(new LmError(Reason.rate, `rate alarm: ${detail} ([LM-ALARM-2])`), false);
      return;
    }
    this.stream.emit('progress', { bytes: this.consumedBytes, total: this.tx.body.size, revision: this.pipeline.current() });
    this.ackSoon();
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (!this.end || this.closed || this.consumedBytes < this.end.bytes || this.consumedBytes !== this.deliveredBytes) return;
    const d = new Uint8Array(this.hash.digest());
    // [LM-DLV-6]: digest of what the consumer took equals END's and the transaction's
    if (this.consumedBytes !== this.end.bytes || !equalBytes(d, this.end.digest) || !equalBytes(d, this.tx.body.jd)) {
      void this.send(FrameType.ERROR, { sid: this.sid, code: Reason.digest, detail: 'end digest mismatch' });
      this.fail(new LmError(Reason.digest, `end digest mismatch after ${this.consumedBytes} bytes: the stream is not complete ([LM-DLV-6])`));
      return;
    }
    this.flushAck();
    // [LM-DLV-7]: signed receipt
    const receipt = encodeFrame(FrameType.RECEIPT, {
      sid: this.sid, jd: this.tx.body.jd, bytes: this.consumedBytes, digest: d, time: Date.now(), device: this.dev.o.id, txh: this.tx.hash,
    }, { kind: 'sig', secretKey: this.dev.o.identity.secretKey });
    void this.dev.link.send(this.outTopic, receipt, FrameType.RECEIPT);
    this.dev.interrupted.delete(this.stream.txh);
    this.stream.emit('end', { bytes: this.consumedBytes, digest: d });
    this.stream.finish();
    this.close();
  }

  private ackSoon(delay = 5): void {
    if (this.closed) return;
    if (this.ackTimer) {
      if (delay > 0) return;
      clearTimeout(this.ackTimer);
    }
    this.ackTimer = setTimeout(() => this.flushAck(), delay);
  }

  private flushAck(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.closed) return;
    const sack: [number, number][] = [];
    const above = [...this.done].sort((a, b) => a - b);
    for (const s of above) {
      const last = sack[sack.length - 1];
      if (last && last[1] === s - 1) last[1] = s;
      else sack.push([s, s]);
    }
    let consumed = this.dev.o.faults?.ackBeforeConsume ? Math.max(this.consumedBytes, this.earlyAcked) : this.consumedBytes;
    if (this.dev.o.faults?.overstateConsumption && consumed > this.from) consumed += 1 << 20;
    // [LM-DLV-2]: an ACK holds at most 64 ranges and 64 NACKs; more go in further ACKs at once,
    // so that nothing received or failed waits for the gateway's 2 P timeout
    const nacks = this.nacks;
    this.nacks = [];
    let i = 0;
    let j = 0;
    do {
      const body: AckBody = { sid: this.sid, cum: this.cum, sack: sack.slice(i, i + 64), nack: nacks.slice(j, j + 64), consumed, credit: this.dev.window };
      i += 64;
      j += 64;
      void this.send(FrameType.ACK, body);
    } while (i < sack.length || j < nacks.length);
  }

  async control(op: number): Promise<void> {
    await this.send(FrameType.CONTROL, { sid: this.sid, op, reason: op === ControlOp.abort ? Reason.aborted : 0 });
    if (op === ControlOp.abort) this.fail(new LmError(Reason.aborted, 'aborted by the consumer'), false);
  }

  /** Telemetry under the d2g chain ([LM-TEL-1]). */
  async telemetry(payload: Uint8Array): Promise<void> {
    if (this.closed) throw new LmError(Reason.unknownSession, 'no session');
    const p = this.params;
    const rev = senderRevision(this.dev.clock(), p);
    if (!this.d2gKeys || rev > this.d2gKeys.revision) {
      // the chain only moves forward: a clock that reads an earlier revision keeps the current keys
      if (this.d2gKeys) wipe(this.d2gKeys.hk, this.d2gKeys.wk);
      this.d2gKeys = this.d2g.keysFor(Math.max(rev, this.d2g.position));
    }
    const k = this.d2gKeys;
    const seq = this.telemetrySeq++;
    const ct = sealTelemetry(k.wk, this.sid, seq, payload);
    const kernel = this.dev.kernel;
    kernel.setKey(k.hk);
    const hints = kernel.hintList(p.suite, p.wt, minHintLength(p.wt), pack(ct, p.wt));
    kernel.wipe();
    await this.send(FrameType.TELEMETRY, { sid: this.sid, seq, rev: k.revision, ctlen: ct.length, hints });
  }

  private async send<T extends FrameTypeId>(type: T, body: Parameters<typeof encodeFrame<T>>[1]): Promise<void> {
    if (this.closed && type !== FrameType.ERROR && type !== FrameType.CONTROL) return;
    const frame = encodeFrame(type, body, this.mac());
    try {
      await this.dev.link.send(this.outTopic, frame, type);
    } catch {
      // the link reconnects by itself; ACKs and re-sends recover ([LM-DLV-8])
    }
  }

  fail(e: LmError, tellGateway = true): void {
    if (this.closed) return;
    // a session cut off (its gateway gone) leaves the job to resume ([LM-DLV-13], [LM-DLV-10])
    if (e.code === Reason.timeout || e.code === Reason.offline) this.dev.interrupted.add(this.stream.txh);
    if (tellGateway && e.code !== Reason.skew && e.code !== Reason.digest) {
      void this.send(FrameType.ERROR, { sid: this.sid, code: e.code, detail: e.message.slice(0, 256) });
    }
    this.stream.fail(e);
    this.close();
  }

  /** Erases everything of the session ([LM-KEY-5], [LM-DLV-9]). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    void this.pipeline.stop();
    this.d2g.destroy();
    if (this.d2gKeys) wipe(this.d2gKeys.hk, this.d2gKeys.wk);
    for (const ch of this.chunks.values()) {
      ch.symbols.fill(0);
      if (ch.key) wipe(ch.key);
    }
    this.chunks.clear();
    this.frames.clear();
    wipe(this.fk.fkG2d, this.fk.fkD2g);
    this.dev.sessionClosed(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

export interface DeviceEvents {
  stream: [IncomingStream];
  error: [LmError];
  reject: [RejectEvent];
}

/**
 * A device: connects, announces itself, accepts offers, produces streams.
 *
 * @example
 * const dev = await Device.start({ url, fleet: 'f1', id: 'printer-1', identity, trustedOperators: [opk] });
 * const s = await dev.nextStream();
 * for await (const line of s.lines()) printer.send(line);
 */
export class Device extends EventEmitter<DeviceEvents> {
  readonly engine: MatrixEngine;
  readonly kernel: Kernel;
  link!: FrameLink;
  caps!: Caps;
  readonly window: number;
  readonly clock: () => number;
  private session: DeviceSession | undefined;
  private readonly waiting: ((s: IncomingStream) => void)[] = [];
  private readonly prints: Map<string, number>;
  /** transactions (hash, hex) whose session was cut off: their next OFFER resumes ([LM-DLV-13]) */
  readonly interrupted = new Set<string>();
  readonly gatewayTimeout: number;
  /** refusals answered in the current second ([LM-FRAME-9]) */
  private refusals = { second: 0, count: 0 };
  /** an OFFER is between its checks and its ACCEPT */
  private accepting = false;
  private ownEngine: boolean;
  /** random per start of this process: a gateway sees a restart by a new value ([LM-DLV-10]) */
  readonly boot = randomBytes(8);

  private constructor(readonly o: DeviceOptions, engine?: MatrixEngine) {
    super();
    this.ownEngine = !engine;
    this.engine = engine ?? new MatrixEngine(o.workers !== undefined ? { workers: o.workers } : {});
    this.kernel = new Kernel();
    this.window = o.window ?? 4 * 1024 * 1024;
    this.clock = o.clock ?? Date.now;
    this.prints = o.printCounts ?? new Map();
    this.gatewayTimeout = o.gatewayTimeout ?? 10_000;
  }

  /** Starts the engine, measures capabilities, connects and publishes HELLO ([LM-MQTT-2]). */
  static async start(o: DeviceOptions, engine?: MatrixEngine): Promise<Device> {
    const d = new Device(o, engine);
    await d.engine.start();
    d.caps = o.caps ?? (await d.measure());
    const bye = encodeFrame(FrameType.BYE, { who: o.id, reason: Reason.offline }, { kind: 'none' });
    d.link = await FrameLink.connect({
      url: o.url, clientId: `lm-dev-${o.id}-${Math.random().toString(16).slice(2, 8)}`, ...(o.protocolVersion ? { protocolVersion: o.protocolVersion } : {}),
      will: { topic: topics.deviceState(o.fleet, o.id), payload: bye, retain: true }, ...authOptions(o.brokerAuth, o.id, 1, o.identity.secretKey),
      ...(o.servers ? { servers: o.servers } : {}),
    });
    d.link.onPayload((topic, payload) => d.onPayload(topic, payload));
    await d.link.subscribe(topics.deviceIn(o.fleet, o.id));
    d.link.client.on('connect', () => void d.announce());
    await d.announce();
    return d;
  }

  private async measure(): Promise<Caps> {
    const rates = await this.engine.buildRate(undefined, Math.min(20, this.o.wmax ?? 24)); // [LM-CAP-1]
    return {
      suites: [...rates.entries()].map(([s, r]) => [s, r] as [SuiteId, number]),
      mem: this.o.memory ?? 512 * 2 ** 20,
      wmax: this.o.wmax ?? 24,
      workers: this.engine.workers,
    };
  }

  private async announce(): Promise<void> {
    const hello = encodeFrame(FrameType.HELLO, {
      device: this.o.id, idpk: this.o.identity.publicKey, caps: this.caps, time: this.clock(), software: SOFTWARE, online: true, boot: this.boot,
    }, { kind: 'sig', secretKey: this.o.identity.secretKey });
    await this.link.send(topics.deviceState(this.o.fleet, this.o.id), hello, FrameType.HELLO, { retain: true });
  }

  /** Resolves with the next accepted stream. */
  nextStream(): Promise<IncomingStream> {
    return new Promise((r) => this.waiting.push(r));
  }

  /** Sends machine status to the gateway of the current session as telemetry ([LM-TEL-1]). */
  async telemetry(status: Record<string, CborValue>): Promise<void> {
    if (!this.session || this.session.isClosed) throw new LmError(Reason.unknownSession, 'telemetry needs an active session');
    await this.session.telemetry(encodeCbor(new Map(Object.entries(status))));
  }

  private onPayload(topic: string, payload: Uint8Array): void {
    let f: AnyFrame;
    try {
      f = decodeFrame(payload);
    } catch (e) {
      const err = toLmError(e);
      this.emit('reject', { code: err.code, reason: reasonName(err.code), type: 0 as FrameTypeId, detail: `${topic}: ${err.message}` });
      return;
    }
    if (f.type === FrameType.OFFER) {
      // a device never dies of a frame: whatever goes wrong with an OFFER is a refusal ([LM-FRAME-9])
      void this.onOffer(f, payload).catch((e: unknown) => {
        const err = toLmError(e, 'OFFER');
        this.emit('reject', { code: err.code, reason: reasonName(err.code), type: FrameType.OFFER, detail: err.message });
      });
      return;
    }
    const sid = (f.body as { sid?: Uint8Array }).sid;
    const s = this.session;
    if (!s || !sid || !equalBytes(sid, s.sid)) {
      // [LM-FRAME-8]: frames of sessions we do not hold are ignored (replays of ended sessions land here)
      this.emit('reject', { code: Reason.unknownSession, reason: reasonName(Reason.unknownSession), type: f.type, detail: `${topic}: no such session` });
      return;
    }
    void s.onFrame(f).catch((e: unknown) => s.fail(toLmError(e)));
  }

  /**
   * Answers a refused OFFER with ERROR signed by the device's identity key, so that the gateway
   * can tell a real refusal from a forged one ([LM-FRAME-9]), at most `refusalsPerSecond`
   * answers per second; every refusal is reported as a 'reject' event.
   */
  private async refuseOffer(b: Frame<2>['body'], e: LmError): Promise<void> {
    this.emit('reject', { code: e.code, reason: reasonName(e.code), type: FrameType.OFFER, detail: `OFFER ${toHex(b.sid).slice(0, 8)} refused: ${e.message}` });
    const second = Math.floor(this.clock() / 1000);
    if (this.refusals.second !== second) this.refusals = { second, count: 0 };
    if (++this.refusals.count > (this.o.refusalsPerSecond ?? 20)) return;
    const err = encodeFrame(FrameType.ERROR, { sid: b.sid, code: e.code, detail: e.message.slice(0, 256) }, { kind: 'sig', secretKey: this.o.identity.secretKey });
    await this.link.send(topics.deviceOut(this.o.fleet, this.o.id), err, FrameType.ERROR).catch(() => undefined);
  }

  private async onOffer(f: Frame<2>, offerBytes: Uint8Array): Promise<void> {
    const b = f.body;
    try {
      verifyFrame(f, { signer: b.gwpk }); // [LM-FRAME-6]
    } catch (e) {
      return this.refuseOffer(b, toLmError(e));
    }
    const running = this.session && !this.session.isClosed ? this.session : undefined;
    if (running && running.silentFor() <= TAKEOVER_SILENCE_MS) return this.refuseOffer(b, new LmError(Reason.busy, 'a session is already running'));
    if (this.accepting) return this.refuseOffer(b, new LmError(Reason.busy, 'another OFFER is being accepted'));
    this.accepting = true;
    try {
      await this.acceptOffer(f, offerBytes);
    } finally {
      this.accepting = false;
    }
  }

  private async acceptOffer(f: Frame<2>, offerBytes: Uint8Array): Promise<void> {
    const b = f.body;
    let tx: SignedTx;
    let licence: Uint8Array;
    const txh = Buffer.from(digest(b.tx)).toString('hex');
    // [LM-DLV-13]: a gateway that restarted offers again while this device still holds the
    // session it lost; once the OFFER checks out, a session whose gateway is silent ends as interrupted
    const running = this.session && !this.session.isClosed ? this.session : undefined;
    // [LM-DLV-10], [LM-DLV-13]: an OFFER that resumes, or the next OFFER of a transaction whose session was cut off
    const resume = b.resume === true || this.interrupted.has(txh) || running?.stream.txh === txh;
    try {
      const used = this.prints.get(txh) ?? 0;
      const ctx = {
        now: this.clock(), trustedOperators: this.o.trustedOperators, device: { id: this.o.id, publicKey: this.o.identity.publicKey },
        gatewayPublic: b.gwpk, printsUsed: resume ? Math.max(0, used - 1) : used,
      };
      try {
        tx = verifyTx(b.tx, ctx);
      } catch (e) {
        // broken on purpose: a bad signature is let through
        if (!(this.o.faults?.skipTxSignature && e instanceof LmError && e.code === Reason.txSignature)) throw e;
        tx = decodeTx(b.tx);
      }
      validateParams(b.params);
      if (b.params.w > this.caps.wmax || !this.caps.suites.some(([s]) => s === b.params.suite)) throw new LmError(Reason.params, `w=${b.params.w} suite ${b.params.suite} not supported by this device ([LM-CAP-2])`);
      licence = openLicence(tx.body.lic, this.o.identity.secretKey, this.o.identity.publicKey, tx.body.jd); // [LM-TX-1]
    } catch (e) {
      return this.refuseOffer(b, toLmError(e));
    }
    if (running) {
      const silent = running.silentFor();
      if (silent <= TAKEOVER_SILENCE_MS) {
        wipe(licence);
        return this.refuseOffer(b, new LmError(Reason.busy, 'a session is already running'));
      }
      running.fail(new LmError(Reason.timeout, `the gateway is gone: silent for ${(silent / 1000).toFixed(1)} s when a new OFFER came ([LM-DLV-13])`), false);
    }
    if (!resume) this.prints.set(txh, (this.prints.get(txh) ?? 0) + 1); // a resumed job is the same print ([LM-DLV-10])
    // [LM-DLV-10]: a resumed job starts at the consumer's progress, rounded down to a chunk
    let from = 0;
    let prefix: Uint8Array[] | undefined;
    if (resume && this.o.resume) {
      const point = await this.o.resume(txh);
      if (point) {
        from = Math.floor(Math.min(point.bytes, tx.body.size) / b.params.chunk) * b.params.chunk;
        prefix = [];
        let got = 0;
        for await (const piece of point.read(from)) {
          prefix.push(piece.subarray(0, Math.max(0, from - got)));
          got += piece.length;
          if (got >= from) break;
        }
        if (got < from) from = 0, prefix = undefined;
      }
    }
    const eph = x25519KeyPair();
    const accept = encodeFrame(FrameType.ACCEPT, { sid: b.sid, epk: eph.publicKey, oh: digest(offerBytes), window: this.window, ...(resume ? { from } : {}) }, { kind: 'sig', secretKey: this.o.identity.secretKey });
    const z = ecdh(eph.secretKey, b.epk);
    const keys = deriveSessionKeys(z, licence, transcriptHash(offerBytes, accept)); // [LM-KEY-2]
    wipe(z, licence, eph.secretKey); // [LM-KEY-4]
    const s = new DeviceSession(this, b.sid, tx, b.params, keys, from, prefix);
    this.session = s;
    s.stream.on('reject', (r) => this.emit('reject', r));
    await this.link.send(topics.deviceOut(this.o.fleet, this.o.id), accept, FrameType.ACCEPT);
    s.begin();
    const w = this.waiting.shift();
    if (w) w(s.stream);
    this.emit('stream', s.stream);
  }

  /** @internal */
  sessionClosed(s: DeviceSession): void {
    if (this.session === s) this.session = undefined;
  }

  /** The running session's stream, if any. */
  get current(): IncomingStream | undefined {
    return this.session?.stream;
  }

  /** Leaves: BYE, disconnect, stop the engine, erase session keys. */
  async stop(): Promise<void> {
    this.session?.fail(new LmError(Reason.aborted, 'device stopped'), false);
    try {
      const bye = encodeFrame(FrameType.BYE, { who: this.o.id, reason: Reason.offline }, { kind: 'none' });
      await this.link.send(topics.deviceState(this.o.fleet, this.o.id), bye, FrameType.BYE, { retain: true });
    } catch {
      // broker gone: the Last Will says the same
    }
    await this.link.close(true).catch(() => undefined);
    if (this.ownEngine) await this.engine.stop();
    this.kernel.wipe();
  }

  /** Simulates a crash: drops the connection without BYE (the broker publishes the Last Will). */
  async crash(): Promise<void> {
    this.session?.fail(new LmError(Reason.aborted, 'device crashed'), false);
    this.link.client.stream.destroy();
    await this.link.close(true).catch(() => undefined);
    if (this.ownEngine) await this.engine.stop();
  }
}

