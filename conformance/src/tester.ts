/**
 * @module tester
 * The conformance suite's own gateway: it speaks the protocol to a device under test with full
 * control over every frame (revisions, order, loss, tampering, padding, time), and records what
 * the device answers.
 */
import { type BrokerAuth, FrameLink, authOptions } from '@livematrix/spec/transport';
import { type AnyFrame, ControlOp, type ErrorBody, FrameType, type HelloBody, type IdentityKeyPair, Reason, Role, type SessionParams, type SignedTx, decodeFrame, digest, encodeFrame, equalBytes, identityKeyPair, minHintLength, senderRevision, randomBytes, signTx, topics, verifyFrame, x25519KeyPair, createTx, type TxRequest } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import type { ProtectedJob } from './protected-job.js';
import { type SessionOptions, Session } from './session.js';
import { sleep, until } from './wait.js';

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

export class Tester {
  link!: FrameLink;
  readonly gateway: { id: string; identity: IdentityKeyPair };
  hello: HelloBody | undefined;
  /** whether the broker delivered a HELLO of the device as a retained message ([LM-MQTT-2]) */
  helloRetained = false;
  /** signed HELLOs of the device under test seen so far */
  hellos = 0;
  /** every frame the device published where the suite listens, with MQTT 5's Content Type when set */
  readonly inbound: { at: number; f: AnyFrame; raw: Uint8Array; topic: string; qos: number; contentType?: string }[] = [];
  private sessions = new Map<string, Session>();
  readonly engine = new MatrixEngine({ workers: 1 });

  private constructor(readonly o: TesterOptions) {
    this.gateway = o.gateway ?? { id: 'conformance-gw', identity: identityKeyPair() };
  }

  /** A connection as the suite's gateway: a client id of its own, its connect token or password (the status watch of SPEC §10.2 takes one too). */
  connectLink(): Promise<FrameLink> {
    const o = this.o;
    return FrameLink.connect({
      url: o.url, clientId: `lm-gw-${this.gateway.id}-${Math.random().toString(16).slice(2, 10)}`, ...(o.protocolVersion ? { protocolVersion: o.protocolVersion } : {}),
      ...authOptions(o.brokerAuth, this.gateway.id, Role.gateway, this.gateway.identity.secretKey),
    });
  }

  static async connect(o: TesterOptions): Promise<Tester> {
    const t = new Tester(o);
    await t.engine.start();
    t.link = await t.connectLink();
    t.link.onPayload((topic, payload, meta) => t.onPayload(topic, payload, meta));
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

  private onPayload(topic: string, raw: Uint8Array, meta: { retain: boolean; qos: number; contentType?: string }): void {
    const retained = meta.retain;
    const contentType = meta.contentType;
    let f: AnyFrame;
    try {
      f = decodeFrame(raw);
    } catch {
      return;
    }
    this.inbound.push({ at: Date.now(), f, raw: raw.slice(), topic, qos: meta.qos, ...(contentType !== undefined ? { contentType } : {}) });
    if (topic.endsWith('/state') && f.type === FrameType.HELLO) {
      try {
        verifyFrame(f, { signer: this.o.devicePublic });
        this.hello = f.body;
        // the first HELLO after subscribing is the retained one; later ones may come live
        this.helloRetained ||= retained;
        this.hellos++;
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

  /**
   * The device's refusals of an OFFER, given as its exact bytes: ERROR frames signed with the
   * device's identity key whose `oh` is SHA-256 of those bytes ([LM-FRAME-9]), in the order they
   * arrived. A replayed OFFER's refusals land here (its session, if any, ignores them).
   */
  refusalsOf(offer: Uint8Array): ErrorBody[] {
    const oh = digest(offer);
    const out: ErrorBody[] = [];
    for (const { f } of this.inbound) {
      if (f.type !== FrameType.ERROR || f.authKind !== 'sig' || !f.body.oh || !equalBytes(f.body.oh, oh)) continue;
      try {
        verifyFrame(f, { signer: this.o.devicePublic });
      } catch {
        continue;
      }
      out.push(f.body);
    }
    return out;
  }

  /**
   * Publishes a payload retained on the fleet's revocation topic ([LM-REVOKE-2]): a REVOKE frame,
   * or an empty payload that clears the retained one.
   */
  async publishRevocation(payload: Uint8Array): Promise<void> {
    await this.link.send(topics.revocation(this.o.fleet), payload, FrameType.REVOKE, { retain: true });
  }

  /** Publishes any payload on the device's inbound topic (QoS 1, as an OFFER). */
  async sendRaw(payload: Uint8Array): Promise<void> {
    await this.link.send(topics.deviceIn(this.o.fleet, this.o.deviceId), payload, FrameType.OFFER);
  }

  /**
   * Whether the device's HELLO is retained on its state topic ([LM-MQTT-2]): a second connection
   * subscribes anew and must get it flagged retained (a HELLO that came live, because the device
   * started after the suite subscribed, says nothing about retention).
   */
  async helloIsRetained(timeout = 5000): Promise<boolean> {
    if (this.helloRetained) return true;
    const o = this.o;
    const link = await this.connectLink();
    let retained = false;
    link.onPayload((_topic, raw, meta) => {
      try {
        const f = decodeFrame(raw);
        if (f.type === FrameType.HELLO && meta.retain) {
          verifyFrame(f, { signer: o.devicePublic });
          retained = true;
        }
      } catch {
        // not the device's HELLO
      }
    });
    try {
      await link.subscribe(topics.deviceState(o.fleet, o.deviceId));
      return await until(() => retained || undefined, timeout, 'a retained HELLO').then(() => true, () => false);
    } finally {
      await link.close(true).catch(() => undefined);
    }
  }

  /** The device's HELLO ([LM-MQTT-2]). */
  waitHello(timeout = 10_000): Promise<HelloBody> {
    return until(() => this.hello, timeout, `a signed HELLO on ${topics.deviceState(this.o.fleet, this.o.deviceId)}`);
  }

  /**
   * A HELLO that came after `seen` HELLOs (the device announcing itself again after a restart,
   * [LM-DLV-10]) whose `boot` differs from `boot` when the device sends one.
   */
  waitNextHello(seen: number, boot: Uint8Array | undefined, timeout = 30_000): Promise<HelloBody> {
    return until(() => (this.hellos > seen && this.hello?.online && !(boot && this.hello.boot && equalBytes(boot, this.hello.boot)) ? this.hello : undefined), timeout, `a new HELLO of the restarted device on ${topics.deviceState(this.o.fleet, this.o.deviceId)}`);
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

  /**
   * A transaction for a protected job ([LM-PROT-2]): it names the upload (keys 16 `jid`, 17 `uh`),
   * and its size and digest are the upload's. Its licence goes to the keys service (this tester).
   */
  protectedTx(job: ProtectedJob, over: Partial<TxRequest> = {}): { tx: SignedTx; licence: Uint8Array } {
    const b = job.upload.body;
    // no plaintext here: `plaintext` (size and digest) is the upload's
    return this.tx(new Uint8Array(0), { plaintext: { digest: b.jd, size: b.size }, protectedJob: { jid: job.jid, uh: job.upload.hash }, ...over });
  }

  /** Parameters for a session (the suite picks them; the device must accept any in range). */
  params(p: Partial<SessionParams> & { w: number }): SessionParams {
    const period = p.period ?? 1000;
    const now = Date.now();
    const epoch = Math.floor(now / period) * period - 10 * period;
    const grace = p.grace ?? Math.floor(period / 4);
    // the revision a sender stamps now ([LM-REV-1]): within G of a revision's start it is the one
    // before, and a ratchet started at the later one could not give its keys
    return {
      suite: 3, L: minHintLength(p.w), period, epoch, grace, r0: senderRevision(now, { epoch, period, grace }),
      chunk: 4096, symbolsPerFrame: 512, wt: 16, ...p,
    };
  }

  /**
   * Sends an OFFER. Resolves with the session once the device answered ACCEPT and, when it
   * streams, finished time sync (its first ACK); or with the device's ERROR. `resume` and `tk`
   * go into the OFFER (keys 6 and 7: a resume with the device's ticket, [LM-LIC-4]); with
   * `protected` the session streams that protected job ([LM-PROT-2]).
   */
  async offer(params: SessionParams, tx: SignedTx, licence: Uint8Array, o: { timeShift?: number; waitReady?: boolean; timeout?: number } & SessionOptions = {}): Promise<Session | { refused: ErrorBody }> {
    const timeout = o.timeout ?? 10_000;
    const t0 = Date.now();
    for (;;) {
      const s = new Session(this, params, tx, licence, o.timeShift ?? 0, o);
      this.sessions.set(Buffer.from(s.sid).toString('hex'), s);
      await s.sendOffer();
      // no answer at all within 3 s: the device may have dropped the OFFER unchecked under a
      // flood of OFFERs; offer again under a new sid, as a gateway may ([LM-FRAME-9])
      const left = () => Math.max(0, timeout - (Date.now() - t0));
      const r = await until(() => s.refusal ?? (s.keys ? 'accepted' : undefined), Math.min(3000, left()), 'ACCEPT or an ERROR').catch(() => 'again' as const);
      if (r === 'again') {
        if (left() === 0) throw new Error(`timed out after ${timeout} ms waiting for ACCEPT and the first ACK, or an ERROR`);
        s.end();
        continue;
      }
      if (r === 'accepted') {
        if (o.waitReady !== false) await until(() => s.acks.length > 0, left(), 'the first ACK after ACCEPT');
        return s;
      }
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
