/**
 * @module tester
 * The conformance suite's own gateway: it speaks the protocol to a device under test with full
 * control over every frame (revisions, order, loss, tampering, padding, time), and records what
 * the device answers.
 */
import { type BrokerAuth, FrameLink, authOptions } from '@livematrix/spec/transport';
import { type AckBody, type AnyFrame, type Bodies, ControlOp, type ErrorBody, FrameType, type FrameTypeId, type HelloBody, type IdentityKeyPair, LmError, Ratchet, Reason, Role, type RevisionKeys, type SessionKeys, type SessionParams, type SignedTx, decodeCbor, decodeFrame, deriveSessionKeys, digest, ecdh, encodeFrame, equalBytes, identityKeyPair, minHintLength, openTelemetry, pack, randomBytes, sealChunk, senderRevision, shiftedSymbol, signTx, topics, transcriptHash, unpack, verifyFrame, wrapChunkKey, x25519KeyPair, createTx, type TxRequest } from '@livematrix/spec';
import { Kernel, MatrixEngine } from '@livematrix/spec/engine';

export interface TesterOptions {
  url: string;
  fleet: string;
  deviceId: string;
  devicePublic: Uint8Array;
  operator: IdentityKeyPair;
  protocolVersion?: 4 | 5;
  brokerAuth?: BrokerAuth;
  gateway?: { id: string; identity: IdentityKeyPair };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until pred() is truthy (polling), or throws after timeout ms with the message. */
export async function until<T>(pred: () => T | undefined | false | null, timeout: number, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(10);
  }
}

export interface Chunk {
  j: number;
  start: number;
  plaintext: Uint8Array;
  key: Uint8Array;
  ct: Uint8Array;
  symbols: Uint32Array;
  frames: { seq: number; off: number; n: number }[];
}

export class Tester {
  link!: FrameLink;
  readonly gateway: { id: string; identity: IdentityKeyPair };
  hello: HelloBody | undefined;
  readonly inbound: { at: number; f: AnyFrame; raw: Uint8Array }[] = [];
  private sessions = new Map<string, Session>();
  readonly engine = new MatrixEngine({ workers: 1 });

  private constructor(readonly o: TesterOptions) {
    this.gateway = o.gateway ?? { id: 'conformance-gw', identity: identityKeyPair() };
  }

  static async connect(o: TesterOptions): Promise<Tester> {
    const t = new Tester(o);
    await t.engine.start();
    t.link = await FrameLink.connect({
      url: o.url, clientId: `lm-gw-${t.gateway.id}-${Math.random().toString(16).slice(2, 10)}`, ...(o.protocolVersion ? { protocolVersion: o.protocolVersion } : {}),
      ...authOptions(o.brokerAuth, t.gateway.id, Role.gateway, t.gateway.identity.secretKey),
    });
    t.link.onPayload((topic, payload) => t.onPayload(topic, payload));
    await t.link.subscribe(topics.deviceState(o.fleet, o.deviceId));
    await t.link.subscribe(topics.deviceOut(o.fleet, o.deviceId));
    return t;
  }

  async close(): Promise<void> {
    // end what the scenario left open, so the device is free for the next one
    for (const s of this.sessions.values()) {
      if (s.keys && !s.receipt && !s.ended) await s.send(FrameType.CONTROL, { sid: s.sid, op: ControlOp.abort, reason: Reason.aborted }).catch(() => undefined);
      s.end();
    }
    await this.link.close(true).catch(() => undefined);
    await this.engine.stop();
  }

  private onPayload(topic: string, raw: Uint8Array): void {
    let f: AnyFrame;
    try {
      f = decodeFrame(raw);
    } catch {
      return;
    }
    this.inbound.push({ at: Date.now(), f, raw: raw.slice() });
    if (topic.endsWith('/state') && f.type === FrameType.HELLO) {
      try {
        verifyFrame(f, { signer: this.o.devicePublic });
        this.hello = f.body;
      } catch {
        // a HELLO not signed by the device under test's key is not its HELLO
      }
      return;
    }
    const sid = (f.body as { sid?: Uint8Array }).sid;
    if (!sid) return;
    this.sessions.get(Buffer.from(sid).toString('hex'))?.onFrame(f, raw);
  }

  /** Sessions the device refused, in the order they were offered. */
  sessionsRefused(): Session[] {
    return [...this.sessions.values()].filter((s) => s.refusal !== undefined);
  }

  /** A genuine, signed OFFER's bytes, for scenarios that forge OFFERs from it. */
  rawOffer(params: SessionParams, m: { tx: SignedTx }): Uint8Array {
    return encodeFrame(FrameType.OFFER, { sid: randomBytes(16), tx: m.tx.bytes, epk: x25519KeyPair().publicKey, params, gwpk: this.gateway.identity.publicKey, time: Date.now() }, { kind: 'sig', secretKey: this.gateway.identity.secretKey });
  }

  /** Publishes any payload on the device's inbound topic (QoS 1, as an OFFER). */
  async sendRaw(payload: Uint8Array): Promise<void> {
    await this.link.send(topics.deviceIn(this.o.fleet, this.o.deviceId), payload, FrameType.OFFER);
  }

  /** The device's HELLO ([LM-MQTT-2]). */
  waitHello(timeout = 10_000): Promise<HelloBody> {
    return until(() => this.hello, timeout, `a signed HELLO on ${topics.deviceState(this.o.fleet, this.o.deviceId)}`);
  }

  /** A transaction for this device; `over` changes fields (and `badSignature` breaks it). */
  tx(plaintext: Uint8Array, over: Partial<TxRequest> & { badSignature?: boolean; bodyPatch?: (b: SignedTx['body']) => void } = {}): { tx: SignedTx; licence: Uint8Array } {
    const now = Date.now();
    const made = createTx({
      job: 'conformance', plaintext: { digest: digest(plaintext), size: plaintext.length }, device: this.o.deviceId, devicePublic: this.o.devicePublic,
      operatorSecret: this.o.operator.secretKey, operatorPublic: this.o.operator.publicKey, notBefore: now - 60_000, notAfter: now + 3600_000,
      rate: 1e9, burst: 1e9, gatewayPublic: this.gateway.identity.publicKey, ...over,
    });
    if (over.bodyPatch) {
      over.bodyPatch(made.tx.body);
      made.tx = signTx(made.tx.body, this.o.operator.secretKey);
    }
    if (over.badSignature) {
      const bytes = made.tx.bytes.slice();
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
      made.tx = { ...made.tx, bytes };
    }
    return made;
  }

  /** Parameters for a session (the suite picks them; the device must accept any in range). */
  params(p: Partial<SessionParams> & { w: number }): SessionParams {
    const period = p.period ?? 1000;
    const now = Date.now();
    const epoch = Math.floor(now / period) * period - 10 * period;
    return {
      suite: 3, L: minHintLength(p.w), period, epoch, grace: Math.floor(period / 4), r0: Math.floor((now - epoch) / period),
      chunk: 4096, symbolsPerFrame: 512, wt: 16, ...p,
    };
  }

  /**
   * Sends an OFFER. Resolves with the session once the device answered ACCEPT and, when it
   * streams, finished time sync (its first ACK); or with the device's ERROR.
   */
  async offer(params: SessionParams, tx: SignedTx, licence: Uint8Array, o: { timeShift?: number; waitReady?: boolean; timeout?: number } = {}): Promise<Session | { refused: ErrorBody }> {
    const timeout = o.timeout ?? 10_000;
    const t0 = Date.now();
    for (;;) {
      const s = new Session(this, params, tx, licence, o.timeShift ?? 0);
      this.sessions.set(Buffer.from(s.sid).toString('hex'), s);
      await s.sendOffer();
      const r = await until(() => s.refusal ?? (s.keys && (o.waitReady === false || s.acks.length > 0) ? 'ready' : undefined), timeout, 'ACCEPT and the first ACK, or an ERROR');
      if (r === 'ready') return s;
      // the previous scenario's session may still be ending on the device: offer again, under a
      // new sid, as a gateway may ([LM-FRAME-9]); any other refusal is the answer
      if (r.code === Reason.busy && Date.now() - t0 < 5000) {
        s.end();
        await sleep(50);
        continue;
      }
      return { refused: r };
    }
  }
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
  readonly acks: AckBody[] = [];
  readonly errors: ErrorBody[] = [];
  readonly alarms: Bodies[13][] = [];
  readonly telemetry: Record<string, unknown>[] = [];
  receipt: Bodies[12] | undefined;
  receiptRaw: AnyFrame | undefined;
  timeRequests = 0;
  /** frames complete at the device (from ACK cum and sack) */
  readonly received = new Set<number>();
  private g2d!: Ratchet;
  private d2g!: Ratchet;
  /** the tester keeps every revision's keys, so it can send under expired ones on purpose */
  private readonly g2dKeys = new Map<number, RevisionKeys>();
  private readonly d2gKeys = new Map<number, RevisionKeys>();
  private readonly eph = x25519KeyPair();
  private offerBytes!: Uint8Array;
  private readonly kernel = new Kernel();
  ended = false;

  constructor(private readonly t: Tester, readonly params: SessionParams, readonly tx: SignedTx, private readonly licence: Uint8Array, private readonly timeShift: number) {}

  /** when the OFFER went out (ms) */
  offeredAt = 0;

  async sendOffer(): Promise<void> {
    this.offeredAt = Date.now();
    this.offerBytes = encodeFrame(FrameType.OFFER, { sid: this.sid, tx: this.tx.bytes, epk: this.eph.publicKey, params: this.params, gwpk: this.t.gateway.identity.publicKey, time: Date.now() }, { kind: 'sig', secretKey: this.t.gateway.identity.secretKey });
    await this.t.link.send(topics.deviceIn(this.t.o.fleet, this.t.o.deviceId), this.offerBytes, FrameType.OFFER);
  }

  onFrame(f: AnyFrame, raw: Uint8Array): void {
    if (f.type === FrameType.ACCEPT) {
      verifyFrame(f, { signer: this.t.o.devicePublic });
      if (!equalBytes(f.body.oh, digest(this.offerBytes))) throw new LmError(Reason.auth, 'ACCEPT oh mismatch');
      this.keys = deriveSessionKeys(ecdh(this.eph.secretKey, f.body.epk), this.licence, transcriptHash(this.offerBytes, raw));
      this.g2d = new Ratchet(this.keys.ckG2d, this.params.r0);
      this.d2g = new Ratchet(this.keys.ckD2g, this.params.r0);
      return;
    }
    if (f.type === FrameType.ERROR && !this.keys) {
      try {
        this.refusalSigned = f.authKind === 'sig' && verifyFrame(f, { signer: this.t.o.devicePublic });
      } catch {
        this.refusalSigned = false;
      }
      this.refusal = f.body;
      return;
    }
    if (f.type === FrameType.RECEIPT) {
      this.receiptRaw = f;
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
        this.timeRequests++;
        this.timeRequestTimes.push(Date.now());
        if (this.mute) return;
        const now = Date.now() + this.timeShift;
        void this.send(FrameType.TIME_RESP, { sid: this.sid, t1: f.body.t1, t2: now, t3: now });
        return;
      }
      case FrameType.ACK:
        this.acks.push(f.body);
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

  /** Keys of a g2d revision (the tester keeps old ones on purpose). */
  keysFor(rev: number): RevisionKeys {
    for (let r = this.g2d.position; r <= rev; r++) this.g2dKeys.set(r, this.g2d.keysFor(r));
    const k = this.g2dKeys.get(rev);
    if (!k) throw new Error(`revision ${rev} precedes the session`);
    return k;
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

  /** Cuts a plaintext into chunks and frames (seq numbers in order). */
  plan(data: Uint8Array): Chunk[] {
    const p = this.params;
    const out: Chunk[] = [];
    let seq = 0;
    for (let j = 0; j * p.chunk < data.length; j++) {
      const start = j * p.chunk;
      const plaintext = data.subarray(start, Math.min(data.length, start + p.chunk));
      const key = randomBytes(32);
      const ct = sealChunk(key, this.sid, j, plaintext);
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
    await this.send(FrameType.HINTS, { sid: this.sid, seq: fr.seq, rev, chunk: c.j, off: fr.off, ctlen: c.ct.length, hints, ...(o.idx ? { idx: o.idx } : {}), ...(sh !== undefined ? { sh } : {}) }, { tamper: o.tamper ?? false });
  }

  async sendKey(c: Chunk, rev = this.rev()): Promise<void> {
    await this.send(FrameType.KEY, { sid: this.sid, chunk: c.j, rev, wrapped: wrapChunkKey(this.keysFor(rev).wk, this.sid, c.j, c.key) });
  }

  /**
   * Delivers a plaintext the standard way: frames in order within the device's window, re-sends
   * of NACKed symbols in a later revision and of silent frames after 2 P, a KEY once a chunk's
   * frames are received, END, then waits for the RECEIPT. Hooks let a scenario bend one step.
   */
  async deliver(data: Uint8Array, o: {
    chunks?: Chunk[];
    order?: (frames: { c: Chunk; fi: number }[]) => { c: Chunk; fi: number }[];
    skipFirstSending?: (seq: number) => boolean;
    keyRev?: (c: Chunk) => number;
    timeout?: number;
    window?: number;
    /** ms before a KEY whose chunk the consumer has not passed goes again; default 2 P */
    keyRetryMs?: number;
  } = {}): Promise<{ receipt: Bodies[12] }> {
    const p = this.params;
    const chunks = o.chunks ?? this.plan(data);
    const window = o.window ?? 1 << 20;
    const all = chunks.flatMap((c) => c.frames.map((_, fi) => ({ c, fi })));
    const order = o.order ? o.order(all) : all;
    const sentAt = new Map<number, number>();
    const sentRev = new Map<number, number>();
    const keyed = new Set<number>();
    const keyAt = new Map<number, number>();
    const t0 = Date.now();
    let next = 0;
    let nacksSeen = 0;
    const retry = new Map<number, { idx?: number[]; after: number }>();
    for (;;) {
      if (this.receipt) return { receipt: this.receipt };
      if (this.ended) throw new Error('the scenario ended the session');
      if (this.errors.length) throw new Error(`device error ${this.errors[0]!.code}: ${this.errors[0]!.detail}`);
      if (Date.now() - t0 > (o.timeout ?? 20_000)) {
        const last = this.acks[this.acks.length - 1];
        throw new Error(`delivery timed out: ${this.received.size} of ${all.length} frames received, ${keyed.size} of ${chunks.length} keys sent, consumed ${last?.consumed ?? 0} of ${data.length}`);
      }
      const consumed = this.acks.length ? this.acks[this.acks.length - 1]!.consumed : 0;
      // new frames within the window
      while (next < order.length && order[next]!.c.start < consumed + window) {
        const { c, fi } = order[next++]!;
        const seq = c.frames[fi]!.seq;
        sentAt.set(seq, Date.now());
        if (o.skipFirstSending?.(seq)) continue;
        sentRev.set(seq, this.rev());
        await this.sendFrame(c, fi);
      }
      // NACKs: re-send in a later revision ([LM-DLV-3])
      for (; nacksSeen < this.acks.length; nacksSeen++) {
        for (const [seq, , idx] of this.acks[nacksSeen]!.nack) if (!this.received.has(seq)) retry.set(seq, { ...(idx.length ? { idx } : {}), after: sentRev.get(seq) ?? -1 });
      }
      const rev = this.rev();
      for (const [seq, r] of retry) {
        if (rev <= r.after) continue;
        retry.delete(seq);
        const it = all.find((x) => x.c.frames[x.fi]!.seq === seq);
        if (!it || this.received.has(seq)) continue;
        sentAt.set(seq, Date.now());
        sentRev.set(seq, rev);
        await this.sendFrame(it.c, it.fi, r.idx ? { idx: r.idx } : {});
      }
      // silent frames
      for (const [seq, at] of sentAt) {
        if (this.received.has(seq) || retry.has(seq) || Date.now() - at < 2 * p.period) continue;
        const it = all.find((x) => x.c.frames[x.fi]!.seq === seq)!;
        sentAt.set(seq, Date.now());
        sentRev.set(seq, rev);
        await this.sendFrame(it.c, it.fi);
      }
      // keys of received chunks; re-sent if the consumer has not got past them for 2 P
      for (const c of chunks) {
        if (!c.frames.every((f) => this.received.has(f.seq))) continue;
        const last = keyAt.get(c.j) ?? -Infinity;
        if (c.start + c.plaintext.length > consumed && Date.now() - last > (o.keyRetryMs ?? 2 * p.period)) {
          const first = !keyed.has(c.j);
          keyed.add(c.j);
          keyAt.set(c.j, Date.now());
          await this.sendKey(c, first && o.keyRev ? o.keyRev(c) : this.rev());
        }
      }
      if (chunks.every((c) => keyed.has(c.j)) && !this.endSent) {
        this.endSent = true;
        await this.send(FrameType.END, { sid: this.sid, bytes: data.length, chunks: chunks.length, frames: all.length, digest: digest(data) });
      }
      await sleep(15);
    }
  }
  private endSent = false;

  /** Waits for something the device sends. */
  wait<T>(pred: () => T | undefined | false | null, timeout: number, what: string): Promise<T> {
    return until(pred, timeout, what);
  }

  end(): void {
    this.ended = true;
    this.kernel.wipe();
  }
}

