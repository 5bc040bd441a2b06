/**
 * @module session
 * One session of the conformance tester with the device under test: the key schedule from the
 * device's ACCEPT, what the device sends in it (ACKs, errors, alarms, telemetry, the receipt), and
 * the gateway's side of a delivery, with hooks that let a scenario bend any step.
 */
import { type AckBody, type AnyFrame, type Bodies, ContentKeys, MAC_LENGTH, decodeFrame, frameMac, type ErrorBody, FrameType, type FrameTypeId, LmError, NO_LICENCE, Ratchet, Reason, type RevisionKeys, type SessionKeys, type SessionParams, type SignedTx, contentChain, decodeCbor, deriveSessionKeys, digest, ecdh, encodeFrame, equalBytes, minHintLength, openTelemetry, pack, randomBytes, sealChunk, senderRevision, shiftedSymbol, topics, transcriptHash, unpack, verifyFrame, wrapChunkKey, x25519KeyPair } from '@livematrix/spec';
import { Kernel } from '@livematrix/spec/engine';
import type { ProtectedJob } from './protected-job.js';
import type { Tester } from './tester.js';
import { sleep, until } from './wait.js';

export interface Chunk {
  j: number;
  start: number;
  plaintext: Uint8Array;
  key: Uint8Array;
  ct: Uint8Array;
  symbols: Uint32Array;
  frames: { seq: number; off: number; n: number }[];
}

/** What an OFFER says of a resume ([LM-DLV-10], [LM-LIC-4]): `resume` (key 6) and the device's ticket `tk` (key 7). */
export interface OfferResume {
  resume?: boolean;
  tk?: Uint8Array;
}

/** How a session is offered: a resume ([LM-LIC-4]), a protected job ([LM-PROT-2]). */
export interface SessionOptions extends OfferResume {
  /**
   * A protected job: its transaction names the upload; the hint layer is keyed without K_lic,
   * HINTS carry the owner's ciphertext and KEYs wrap its chunk keys under the content chain.
   */
  protected?: ProtectedJob;
  /** ms by which the suite delays its answer to the n-th TIME_REQ (0-based), as a slow network would: t2 = t3 = the time it answers */
  timeRespDelay?: (n: number) => number;
}

/** Hooks of {@link Session.deliver}: each lets a scenario bend one step of a delivery. */
export interface DeliverOptions {
  chunks?: Chunk[];
  order?: (frames: { c: Chunk; fi: number }[]) => { c: Chunk; fi: number }[];
  skipFirstSending?: (seq: number) => boolean;
  keyRev?: (c: Chunk) => number;
  timeout?: number;
  window?: number;
  /** ms before a KEY whose chunk the consumer has not passed goes again; default 2 P */
  keyRetryMs?: number;
  /** the digest END carries in place of the job's ([LM-DLV-6]: a device must refuse a mismatch) */
  endDigest?: Uint8Array;
}

/** What one delivery keeps from round to round. */
interface Delivery {
  readonly data: Uint8Array;
  readonly o: DeliverOptions;
  readonly chunks: Chunk[];
  /** every frame, in seq order */
  readonly all: { c: Chunk; fi: number }[];
  /** the frames in the order of their first sending */
  readonly order: { c: Chunk; fi: number }[];
  readonly window: number;
  readonly t0: number;
  /** index in `order` of the next frame to send */
  next: number;
  /** ACKs whose NACKs were read */
  nacksSeen: number;
  /** when each frame last went (ms), by seq */
  readonly sentAt: Map<number, number>;
  /** the revision each frame last went in, by seq */
  readonly sentRev: Map<number, number>;
  /** chunks whose KEY went */
  readonly keyed: Set<number>;
  /** when each chunk's KEY last went (ms) */
  readonly keyAt: Map<number, number>;
  /** NACKed frames to re-send once the revision is past `after` */
  readonly retry: Map<number, { idx?: number[]; after: number }>;
}

export class Session {
  readonly sid = randomBytes(16);
  keys: SessionKeys | undefined;
  refusal: ErrorBody | undefined;
  /** whether the refusal was signed by the device's identity key ([LM-FRAME-9]) */
  refusalSigned = false;
  /** when set, the tester answers nothing and sends nothing: a gateway gone silent ([LM-DLV-13]) */
  mute = false;
  /** when each TIME_REQ arrived (ms) */
  readonly timeRequestTimes: number[] = [];
  /** each TIME_REQ's t1 (the device's clock) and when it arrived here */
  readonly timeSamples: { t1: number; at: number }[] = [];
  readonly acks: AckBody[] = [];
  /** when the suite sent each HINTS frame (ms) */
  readonly frameSentTimes: number[] = [];
  /** when each ACK arrived (ms), in the order of `acks` */
  readonly ackTimes: number[] = [];
  /** when the suite sent its first TIME_RESP (ms) */
  firstTimeRespAt: number | undefined;
  readonly errors: ErrorBody[] = [];
  readonly alarms: Bodies[13][] = [];
  readonly telemetry: Record<string, unknown>[] = [];
  receipt: Bodies[12] | undefined;
  receiptRaw: AnyFrame | undefined;
  /** the RECEIPT frame's bytes as received */
  receiptBytes: Uint8Array | undefined;
  timeRequests = 0;
  /** frames complete at the device (from ACK cum and sack) */
  readonly received = new Set<number>();
  private g2d!: Ratchet;
  private d2g!: Ratchet;
  /** a protected job's content chain, as the keys service holds it ([LM-PROT-2]) */
  private content: ContentKeys | undefined;
  /** the next content chain revision not derived yet: the tester steps through every one, so it keeps them all */
  private contentNext = 0;
  /** a protected session's g2d chain as a v1 session of the same OFFER and ACCEPT would have it (K_lic in the hint layer) */
  private v1G2d: Ratchet | undefined;
  private readonly v1G2dKeys = new Map<number, RevisionKeys>();
  /** the tester keeps every revision's keys, so it can send under expired ones on purpose */
  private readonly g2dKeys = new Map<number, RevisionKeys>();
  private readonly d2gKeys = new Map<number, RevisionKeys>();
  private readonly eph = x25519KeyPair();
  private offerBytes!: Uint8Array;
  /** the resume point the device answered in ACCEPT ([LM-DLV-10]): deliveries start at its chunk */
  from = 0;
  /** the plaintext bytes the device's ACCEPT said it buffers (`window`) */
  acceptedWindow = 0;
  private readonly kernel = new Kernel();
  ended = false;

  constructor(private readonly t: Tester, readonly params: SessionParams, readonly tx: SignedTx, private readonly licence: Uint8Array, public timeShift: number, private readonly resume: SessionOptions = {}) {}

  /** The OFFER exactly as it went out, for scenarios that replay it ([LM-LIC-5]). */
  get offerRaw(): Uint8Array {
    return this.offerBytes;
  }

  /** when the OFFER went out (ms) */
  offeredAt = 0;

  async sendOffer(): Promise<void> {
    this.offeredAt = Date.now();
    const { resume, tk } = this.resume;
    this.offerBytes = encodeFrame(FrameType.OFFER, {
      sid: this.sid, tx: this.tx.bytes, epk: this.eph.publicKey, params: this.params, gwpk: this.t.gateway.identity.publicKey, time: Date.now(),
      ...(resume !== undefined ? { resume } : {}), ...(tk ? { tk } : {}),
    }, { kind: 'sig', secretKey: this.t.gateway.identity.secretKey });
    await this.t.link.send(topics.deviceIn(this.t.o.fleet, this.t.o.deviceId), this.offerBytes, FrameType.OFFER);
  }

  onFrame(f: AnyFrame, raw: Uint8Array): void {
    if (f.type === FrameType.ACCEPT) {
      verifyFrame(f, { signer: this.t.o.devicePublic });
      if (!equalBytes(f.body.oh, digest(this.offerBytes))) throw new LmError(Reason.auth, 'ACCEPT oh mismatch');
      this.from = f.body.from ?? 0;
      this.acceptedWindow = f.body.window;
      const z = ecdh(this.eph.secretKey, f.body.epk);
      const th = transcriptHash(this.offerBytes, raw);
      if (this.resume.protected) {
        // [LM-PROT-2]: the hint layer from the ECDH alone; the chunk keys' wrap keys from K_lic
        this.keys = deriveSessionKeys(z, NO_LICENCE, th);
        this.content = new ContentKeys(contentChain(this.licence, th), this.params.r0, Number.POSITIVE_INFINITY);
        this.contentNext = this.params.r0;
        this.v1G2d = new Ratchet(deriveSessionKeys(z, this.licence, th).ckG2d, this.params.r0);
      } else {
        this.keys = deriveSessionKeys(z, this.licence, th);
      }
      this.g2d = new Ratchet(this.keys.ckG2d, this.params.r0);
      this.d2g = new Ratchet(this.keys.ckD2g, this.params.r0);
      return;
    }
    if (f.type === FrameType.ERROR && !this.keys) {
      try {
        this.refusalSigned = f.authKind === 'sig' && verifyFrame(f, { signer: this.t.o.devicePublic }) && f.body.oh !== undefined && equalBytes(f.body.oh, digest(this.offerBytes));
      } catch {
        this.refusalSigned = false;
      }
      this.refusal = f.body;
      return;
    }
    if (f.type === FrameType.RECEIPT) {
      this.receiptRaw = f;
      this.receiptBytes = raw.slice();
      this.receipt = f.body;
      return;
    }
    if (!this.keys) return;
    try {
      verifyFrame(f, { mac: this.keys.fkD2g });
    } catch {
      return;
    }
    switch (f.type) {
      case FrameType.TIME_REQ: {
        const n = this.timeRequests++;
        this.timeRequestTimes.push(Date.now());
        this.timeSamples.push({ t1: f.body.t1, at: Date.now() });
        if (this.mute) return;
        const t1 = f.body.t1;
        const answer = () => {
          this.firstTimeRespAt ??= Date.now();
          const now = Date.now() + this.timeShift;
          void this.send(FrameType.TIME_RESP, { sid: this.sid, t1, t2: now, t3: now }).catch(() => undefined);
        };
        const delay = this.resume.timeRespDelay?.(n) ?? 0;
        if (delay > 0) setTimeout(answer, delay);
        else answer();
        return;
      }
      case FrameType.ACK:
        this.acks.push(f.body);
        this.ackTimes.push(Date.now());
        for (let s = 0; s < f.body.cum; s++) this.received.add(s);
        for (const [lo, hi] of f.body.sack) for (let s = lo; s <= hi; s++) this.received.add(s);
        return;
      case FrameType.ERROR:
        this.errors.push(f.body);
        return;
      case FrameType.ALARM:
        this.alarms.push(f.body);
        return;
      case FrameType.TELEMETRY:
        void this.onTelemetry(f.body);
        return;
      default:
        return;
    }
  }

  private async onTelemetry(b: Bodies[10]): Promise<void> {
    const p = this.params;
    try {
      const k = this.keysD2g(b.rev);
      const syms = await this.t.engine.scan(p.suite, p.wt, minHintLength(p.wt), k.hk, b.hints);
      if (syms.some((s) => s < 0)) return;
      const payload = decodeCbor(openTelemetry(k.wk, this.sid, b.seq, unpack(syms, p.wt, b.ctlen)));
      if (payload instanceof Map) this.telemetry.push(Object.fromEntries([...payload.entries()].map(([key, v]) => [String(key), v])));
    } catch {
      // not decodable (or the tester is closing): not counted
    }
  }

  private keysD2g(rev: number): RevisionKeys {
    for (let r = this.d2g.position; r <= rev; r++) this.d2gKeys.set(r, this.d2g.keysFor(r));
    const k = this.d2gKeys.get(rev);
    if (!k) throw new Error(`no d2g keys for revision ${rev}`);
    return k;
  }

  /** Keys of a g2d revision (the tester keeps old ones on purpose); in a protected session, the hint layer's. */
  keysFor(rev: number): RevisionKeys {
    for (let r = this.g2d.position; r <= rev; r++) this.g2dKeys.set(r, this.g2d.keysFor(r));
    const k = this.g2dKeys.get(rev);
    if (!k) throw new Error(`revision ${rev} precedes the session`);
    return k;
  }

  /**
   * The key a chunk key of revision `rev` is wrapped under: WK_g2d[rev] ([LM-AEAD-2]), or in a
   * protected session W_rev of the content chain, which only the keys service and the device
   * derive ([LM-PROT-2]).
   */
  wrapKey(rev: number): Uint8Array {
    const ck = this.content;
    if (!ck) return this.keysFor(rev).wk;
    for (; this.contentNext <= rev; this.contentNext++) ck.keysFor(this.contentNext); // each held: none is stepped over
    const k = ck.keysFor(rev);
    if (!k) throw new Error(`revision ${rev} precedes the session`);
    return k.wk;
  }

  /**
   * In a protected session, WK_g2d[rev] of the v1 key schedule with K_lic in the hint layer:
   * what a gateway holding the licence would wrap under. A device must not open it ([LM-PROT-2]).
   */
  v1WrapKey(rev: number): Uint8Array {
    if (!this.v1G2d) throw new Error('not a protected session');
    for (let r = this.v1G2d.position; r <= rev; r++) this.v1G2dKeys.set(r, this.v1G2d.keysFor(r));
    const k = this.v1G2dKeys.get(rev);
    if (!k) throw new Error(`revision ${rev} precedes the session`);
    return k.wk;
  }

  /** The revision a gateway stamps now ([LM-REV-1]). */
  rev(): number {
    return senderRevision(Date.now(), this.params);
  }

  async send<T extends FrameTypeId>(type: T, body: Bodies[T], o: { tamper?: boolean } = {}): Promise<void> {
    if (!this.keys) throw new Error('no session keys');
    const frame = encodeFrame(type, body, { kind: 'mac', key: this.keys.fkG2d });
    if (o.tamper) frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 0x01;
    await this.t.link.send(topics.deviceIn(this.t.o.fleet, this.t.o.deviceId), frame, type);
  }

  /**
   * Cuts a plaintext into chunks and frames (seq numbers in order), from the chunk of the
   * device's resume point on ([LM-DLV-10]: chunk indices continue, frames start at seq 0). A
   * protected job's chunks are the owner's ciphertext and keys, not sealed here ([LM-PROT-1]).
   */
  plan(data: Uint8Array): Chunk[] {
    const p = this.params;
    const job = this.resume.protected;
    if (job && job.upload.body.C !== p.chunk) throw new Error(`the session's chunk size ${p.chunk} is not the upload's ${job.upload.body.C}`);
    const out: Chunk[] = [];
    let seq = 0;
    for (let j = Math.floor(this.from / p.chunk); j * p.chunk < data.length; j++) {
      const start = j * p.chunk;
      const plaintext = data.subarray(start, Math.min(data.length, start + p.chunk));
      const owner = job ? { key: job.keys[j], ct: job.ciphertexts[j] } : undefined;
      if (owner && (!owner.key || owner.ct?.length !== plaintext.length + 16)) throw new Error(`the upload has no chunk ${j} of ${plaintext.length} bytes`);
      const key = owner?.key ?? randomBytes(32);
      const ct = owner?.ct ?? sealChunk(key, this.sid, j, plaintext);
      const symbols = pack(ct, p.w);
      const frames = [];
      for (let off = 0; off < symbols.length; off += p.symbolsPerFrame) frames.push({ seq: seq++, off, n: Math.min(p.symbolsPerFrame, symbols.length - off) });
      out.push({ j, start, plaintext, key, ct, symbols, frames });
    }
    return out;
  }

  /** Hints of symbols under a revision (the tester's own per-hash kernel). */
  hints(symbols: ArrayLike<number>, rev: number): Uint8Array {
    const k = this.keysFor(rev);
    this.kernel.setKey(k.hk);
    return this.kernel.hintList(this.params.suite, this.params.w, this.params.L, symbols);
  }

  /** Sends a frame's hints: all, those in `idx`, or with `sh` the shifted symbols at the `idx` positions ([LM-DLV-11]). */
  async sendFrame(c: Chunk, fi: number, o: { rev?: number; idx?: number[]; sh?: number; tamper?: boolean; symbols?: Uint32Array; hints?: Uint8Array } = {}): Promise<void> {
    const fr = c.frames[fi]!;
    const rev = o.rev ?? this.rev();
    const all = (o.symbols ?? c.symbols).subarray(fr.off, fr.off + fr.n);
    const sh = o.sh;
    const syms = o.idx ? o.idx.map((i) => (sh !== undefined ? shiftedSymbol(all, this.params.w, sh, i) : (all[i] as number))) : all;
    const hints = o.hints ?? this.hints(syms, rev);
    this.frameSentTimes.push(Date.now());
    await this.send(FrameType.HINTS, { sid: this.sid, seq: fr.seq, rev, chunk: c.j, off: fr.off, ctlen: c.ct.length, hints, ...(o.idx ? { idx: o.idx } : {}), ...(sh !== undefined ? { sh } : {}) }, { tamper: o.tamper ?? false });
  }

  /**
   * Sends frame `fi` of chunk `c` as version `version` ([LM-ROLE-2]): the frame of version 1 with
   * its version field replaced, and its MAC computed again over that, so that only the version is
   * wrong.
   */
  async sendFrameAsVersion(c: Chunk, fi: number, version: number): Promise<void> {
    if (!this.keys) throw new Error('no session keys');
    const fr = c.frames[fi]!;
    const rev = this.rev();
    const v1 = encodeFrame(FrameType.HINTS, { sid: this.sid, seq: fr.seq, rev, chunk: c.j, off: fr.off, ctlen: c.ct.length, hints: this.hints(c.symbols.subarray(fr.off, fr.off + fr.n), rev) }, { kind: 'mac', key: this.keys.fkG2d });
    // [0x84, 0x01, ...] with the MAC last: 0x50 and 16 bytes; the tba holds the same items after its prefix and 0x83
    const tba = decodeFrame(v1).tba.slice();
    const authStart = v1.length - 1 - MAC_LENGTH;
    tba[tba.length - (authStart - 1)] = version;
    const out = v1.slice();
    out[1] = version;
    out.set(frameMac(this.keys.fkG2d, tba), v1.length - MAC_LENGTH);
    this.frameSentTimes.push(Date.now());
    await this.t.link.send(topics.deviceIn(this.t.o.fleet, this.t.o.deviceId), out, FrameType.HINTS);
  }

  /** Sends chunk c's KEY of revision `rev`, wrapped under the session's wrap key or, to test a refusal, under `wrapKey`. */
  async sendKey(c: Chunk, rev = this.rev(), wrapKey = this.wrapKey(rev)): Promise<void> {
    await this.send(FrameType.KEY, { sid: this.sid, chunk: c.j, rev, wrapped: wrapChunkKey(wrapKey, this.sid, c.j, c.key) });
  }

  /**
   * Sends chunk c's HINTS until the device reports every frame of it received: the missing
   * ones again each time 2 P pass without it (a frame may be lost or come too late).
   */
  async sendChunk(c: Chunk, timeout = 10_000): Promise<void> {
    const t0 = Date.now();
    const missing = () => c.frames.flatMap((f, fi) => (this.received.has(f.seq) ? [] : [fi]));
    for (let left = missing(); left.length; left = missing()) {
      if (this.errors.length) throw new Error(`device error ${this.errors[0]!.code}: ${this.errors[0]!.detail}`);
      if (Date.now() - t0 > timeout) throw new Error(`chunk ${c.j}: ${left.length} of ${c.frames.length} frames not reported received in ${timeout} ms`);
      for (const fi of left) await this.sendFrame(c, fi);
      await until(() => missing().length === 0 || this.errors.length > 0, 2 * this.params.period, 'progress').catch(() => undefined);
    }
  }

  /**
   * Delivers a plaintext the standard way: frames in order within the device's window, re-sends
   * of NACKed symbols in a later revision and of silent frames after 2 P, a KEY once a chunk's
   * frames are received, END, then waits for the RECEIPT. Hooks let a scenario bend one step.
   */
  async deliver(data: Uint8Array, o: DeliverOptions = {}): Promise<{ receipt: Bodies[12] }> {
    const chunks = o.chunks ?? this.plan(data);
    const all = chunks.flatMap((c) => c.frames.map((_, fi) => ({ c, fi })));
    const d: Delivery = {
      data, o, chunks, all, order: o.order ? o.order(all) : all, window: o.window ?? 1 << 20, t0: Date.now(),
      next: 0, nacksSeen: 0, sentAt: new Map(), sentRev: new Map(), keyed: new Set(), keyAt: new Map(), retry: new Map(),
    };
    for (;;) {
      if (this.receipt) return { receipt: this.receipt };
      this.checkDelivery(d);
      const consumed = this.acks.length ? this.acks[this.acks.length - 1]!.consumed : 0;
      await this.sendNewFrames(d, consumed);
      this.readNacks(d);
      const rev = this.rev();
      await this.resendNacked(d, rev);
      await this.resendSilent(d, rev);
      await this.sendKeys(d, consumed);
      if (chunks.every((c) => d.keyed.has(c.j)) && !this.endSent) {
        this.endSent = true;
        // the transaction's digest: SHA-256 of the job, or for a protected job its keyed digest ([LM-PROT-4])
        await this.send(FrameType.END, { sid: this.sid, bytes: data.length, chunks: chunks.length, frames: all.length, digest: o.endDigest ?? (this.tx.body.jid ? this.tx.body.jd : digest(data)) });
      }
      await sleep(15);
    }
  }
  private endSent = false;

  /** Throws when a delivery cannot go on: the scenario ended the session, the device sent an ERROR, or time ran out. */
  private checkDelivery(d: Delivery): void {
    if (this.ended) throw new Error('the scenario ended the session');
    if (this.errors.length) throw new Error(`device error ${this.errors[0]!.code}: ${this.errors[0]!.detail}`);
    if (Date.now() - d.t0 > (d.o.timeout ?? 20_000)) {
      const last = this.acks[this.acks.length - 1];
      throw new Error(`delivery timed out: ${this.received.size} of ${d.all.length} frames received, ${d.keyed.size} of ${d.chunks.length} keys sent, consumed ${last?.consumed ?? 0} of ${d.data.length}`);
    }
  }

  /** New frames within the window past what the consumer took. */
  private async sendNewFrames(d: Delivery, consumed: number): Promise<void> {
    while (d.next < d.order.length && d.order[d.next]!.c.start < consumed + d.window) {
      const { c, fi } = d.order[d.next++]!;
      const seq = c.frames[fi]!.seq;
      d.sentAt.set(seq, Date.now());
      if (d.o.skipFirstSending?.(seq)) continue;
      d.sentRev.set(seq, this.rev());
      await this.sendFrame(c, fi);
    }
  }

  /** NACKs of the ACKs not read yet: re-send in a later revision ([LM-DLV-3]). */
  private readNacks(d: Delivery): void {
    for (; d.nacksSeen < this.acks.length; d.nacksSeen++) {
      for (const [seq, , idx] of this.acks[d.nacksSeen]!.nack) if (!this.received.has(seq)) d.retry.set(seq, { ...(idx.length ? { idx } : {}), after: d.sentRev.get(seq) ?? -1 });
    }
  }

  /** Re-sends NACKed frames (or only their NACKed symbols) once the revision they went in has passed. */
  private async resendNacked(d: Delivery, rev: number): Promise<void> {
    for (const [seq, r] of d.retry) {
      if (rev <= r.after) continue;
      d.retry.delete(seq);
      const it = d.all.find((x) => x.c.frames[x.fi]!.seq === seq);
      if (!it || this.received.has(seq)) continue;
      d.sentAt.set(seq, Date.now());
      d.sentRev.set(seq, rev);
      await this.sendFrame(it.c, it.fi, r.idx ? { idx: r.idx } : {});
    }
  }

  /** Silent frames: neither received nor NACKed 2 P after they went. */
  private async resendSilent(d: Delivery, rev: number): Promise<void> {
    for (const [seq, at] of d.sentAt) {
      if (this.received.has(seq) || d.retry.has(seq) || Date.now() - at < 2 * this.params.period) continue;
      const it = d.all.find((x) => x.c.frames[x.fi]!.seq === seq)!;
      d.sentAt.set(seq, Date.now());
      d.sentRev.set(seq, rev);
      await this.sendFrame(it.c, it.fi);
    }
  }

  /** Keys of received chunks; re-sent if the consumer has not got past them for 2 P. */
  private async sendKeys(d: Delivery, consumed: number): Promise<void> {
    for (const c of d.chunks) {
      if (!c.frames.every((f) => this.received.has(f.seq))) continue;
      const last = d.keyAt.get(c.j) ?? -Infinity;
      if (c.start + c.plaintext.length > consumed && Date.now() - last > (d.o.keyRetryMs ?? 2 * this.params.period)) {
        const first = !d.keyed.has(c.j);
        d.keyed.add(c.j);
        d.keyAt.set(c.j, Date.now());
        await this.sendKey(c, first && d.o.keyRev ? d.o.keyRev(c) : this.rev());
      }
    }
  }

  /** Waits for something the device sends. */
  wait<T>(pred: () => T | undefined | false | null, timeout: number, what: string): Promise<T> {
    return until(pred, timeout, what);
  }

  end(): void {
    this.ended = true;
    this.kernel.wipe();
    this.content?.destroy();
    this.v1G2d?.destroy();
  }
}
