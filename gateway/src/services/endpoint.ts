/**
 * @module services/endpoint
 * One party's end of the services over the broker (SPEC §16.1): its inbox
 * `lm/1/{fleet}/s/{id}/in` ([LM-SVC-7]), where requests to it and answers for it arrive, a client
 * that asks other parties' services, and optionally one service it answers.
 *
 * Both directions authenticate each message ([LM-SVC-6]): a request is an SVC_REQ signed by the
 * requester's identity key, its arguments sealed to the service; a service answers only a request
 * whose key it trusts for that op, within 120 s of its clock, with an id it has not seen, and only
 * if it was made after the service started (ids are remembered in memory); an answer is an
 * SVC_RESP signed by the service's key, its result sealed to the requester, and a client takes
 * only an answer signed by the key it was configured with for that service.
 */
import {
  type CborValue, CLIENT_ID_PREFIX, FrameType, type IdentityKeyPair, LmError, Reason, Role, type RoleName, SVC_OP_NAMES, SVC_PART, SVC_WINDOW_MS, SvcOp,
  type SvcOpId, type SvcReqBody, type SvcRespBody, decodeFrame, encodeFrame, equalBytes, isReasonCode, isSvcOp, randomBytes, reasonName, svcKey,
  svcOpenValue, svcSealValue, svcShared, toHex, toLmError, topics, verifyFrame, wipe,
} from '@livematrix/spec';
import { type BrokerAuth, FrameLink, type TlsOptions, authOptions } from '@livematrix/spec/transport';
import { Fields, cmap } from './codec.js';

/** Another party: its id (its inbox) and the Ed25519 key its messages must be signed with. */
export interface ServicePeer {
  id: string;
  publicKey: Uint8Array;
}

export interface EndpointOptions {
  fleet: string;
  /** this party's id: its inbox is `lm/1/{fleet}/s/{id}/in` */
  id: string;
  /** signs what this party sends; its X25519 form opens what is sealed to it */
  identity: IdentityKeyPair;
  /** ms since the Unix epoch; default `Date.now` */
  clock?: () => number;
  /** refused and dropped messages, retries: one line each */
  log?: (line: string) => void;
}

export interface ConnectOptions extends EndpointOptions {
  url: string;
  /** the registry role this party connects as ([LM-SVC-7]) */
  role: RoleName;
  /** 'token' for a broker with the Live Matrix plugin, or a user name and password */
  auth?: BrokerAuth;
  protocolVersion?: 4 | 5;
  /** TLS and mutual TLS to the broker (an `mqtts://` URL) */
  tls?: TlsOptions;
}

export interface CallOptions {
  /** ms to wait for an answer before asking again (with `retry`) or giving up; default 5000 */
  attemptMs?: number;
  /**
   * ask again, under a new request id, while no answer came; only for ops that may run twice
   * (reads, releases, confirmations). Default false.
   */
  retry?: boolean;
  /** with `retry`: ms after which to give up; default 60 000 */
  deadlineMs?: number;
}

/** What a handler knows about the request it serves. */
export interface RequestContext {
  op: SvcOpId;
  /** the requester's id and key (verified: the request is signed by it, and it is trusted for the op) */
  from: string;
  pk: Uint8Array;
  /** a blob the requester staged with op `stage` under `tag`, complete; taken (removed) by this call */
  staged(tag: Uint8Array): Uint8Array;
}

export type Handler = (args: Fields, ctx: RequestContext) => CborValue | Promise<CborValue>;

/** One service: its handlers and whom it trusts for each op ([LM-SVC-6]). */
export interface ServiceDefinition {
  /** for messages: "keys service", "store" */
  name: string;
  handlers: Partial<Record<SvcOpId, Handler>>;
  /** the keys trusted for an op; an op with none is refused to everyone */
  trusted(op: SvcOpId): readonly Uint8Array[];
}

/** An answer and the service's clock when it answered. */
export interface Answer {
  value: CborValue;
  time: number;
}

interface Call {
  peer: ServicePeer;
  op: SvcOpId;
  ids: string[];
  resolve(a: Answer): void;
  reject(e: LmError): void;
}

interface Staged {
  parts: Uint8Array[];
  received: number;
  total: number;
  expires: number;
}

/** Refusals answered per requester key and second; beyond, requests are dropped unanswered, so that a flood cannot keep the service signing. */
export const REFUSALS_PER_SECOND = 20;

/** Largest blob one requester may stage, and all it may hold staged at once. */
export const STAGE_MAX = 64 * 1024 * 1024;
const STAGE_PER_REQUESTER = 128 * 1024 * 1024;

/** The message of an LmError without its "reason (code): " prefix (the code travels apart). */
export function detailOf(e: LmError): string {
  const prefix = `${reasonName(e.code)} (${e.code}): `;
  const m = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
  return m.length > 256 ? `${m.slice(0, 253)}...` : m;
}

/**
 * A party's inbox and its requests. Connect with {@link ServiceEndpoint.connect}, or wrap a
 * link of one's own and call {@link ServiceEndpoint.start}.
 *
 * @example
 * const ep = await ServiceEndpoint.connect({ url, fleet, id: 'gw-1', role: 'gateway', identity, auth: 'token' });
 * const value = await ep.call({ id: 'keys-1', publicKey }, SvcOp.playbook, cmap([1, jid], [2, 0]), { retry: true });
 */
export class ServiceEndpoint {
  readonly fleet: string;
  readonly id: string;
  readonly identity: IdentityKeyPair;
  readonly inbox: string;
  /** requests made before this are refused as `replay`: their ids may have been seen before a restart */
  readonly startedAt: number;
  private readonly clock: () => number;
  private readonly logLine: (line: string) => void;
  private readonly calls = new Map<string, Call>();
  private readonly shared = new Map<string, Uint8Array>();
  private readonly seen = new Map<string, number>();
  private readonly staging = new Map<string, Staged>();
  private readonly refusals = new Map<string, { start: number; n: number }>();
  private service: ServiceDefinition | undefined;
  private closed = false;
  private prunedAt = 0;

  constructor(readonly link: FrameLink, o: EndpointOptions, private readonly ownsLink = false) {
    this.fleet = o.fleet;
    this.id = o.id;
    this.identity = o.identity;
    this.inbox = topics.serviceIn(o.fleet, o.id);
    this.clock = o.clock ?? Date.now;
    this.logLine = o.log ?? (() => undefined);
    this.startedAt = this.clock();
  }

  /** Connects to the broker as `role` (its client id prefix and connect token, [LM-BRK-8]) and subscribes to the inbox. */
  static async connect(o: ConnectOptions): Promise<ServiceEndpoint> {
    const link = await FrameLink.connect({
      url: o.url, clientId: `lm-${CLIENT_ID_PREFIX[o.role]}-${o.id}-svc${toHex(randomBytes(3))}`, ...(o.protocolVersion ? { protocolVersion: o.protocolVersion } : {}),
      ...authOptions(o.auth, o.id, Role[o.role], o.identity.secretKey), ...(o.tls ? { tls: o.tls } : {}),
    });
    const ep = new ServiceEndpoint(link, o, true);
    try {
      await ep.start();
    } catch (e) {
      await link.close(true).catch(() => undefined);
      throw e;
    }
    return ep;
  }

  /** Subscribes to the inbox ([LM-SVC-7]) and handles what arrives there. */
  async start(): Promise<void> {
    this.link.onPayload((topic, payload) => {
      if (topic === this.inbox) this.onPayload(payload);
    });
    await this.link.subscribe(this.inbox);
  }

  /** Answers requests for `def`'s ops ([LM-SVC-6]); one service per endpoint. */
  serve(def: ServiceDefinition): void {
    if (this.service) throw new LmError(Reason.internal, `${this.id} already serves the ${this.service.name}`);
    this.service = def;
  }

  log(line: string): void {
    this.logLine(line);
  }

  // ---- client -------------------------------------------------------------------------------

  /** Asks `peer` for `op` with `args` (a CBOR map); resolves with the result, rejects with the service's reason. */
  async call(peer: ServicePeer, op: SvcOpId, args: Map<number, CborValue>, o: CallOptions = {}): Promise<CborValue> {
    return (await this.ask(peer, op, args, o)).value;
  }

  /** {@link call}, with the service's clock at its answer. */
  ask(peer: ServicePeer, op: SvcOpId, args: Map<number, CborValue>, o: CallOptions = {}): Promise<Answer> {
    if (this.closed) return Promise.reject(new LmError(Reason.internal, `the service endpoint of ${this.id} is closed`));
    const attemptMs = o.attemptMs ?? 5000;
    const deadline = this.clock() + (o.retry ? o.deadlineMs ?? 60_000 : attemptMs);
    return new Promise<Answer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(timer);
        for (const id of call.ids) this.calls.delete(id);
      };
      const call: Call = {
        peer, op, ids: [],
        resolve: (a) => {
          finish();
          resolve(a);
        },
        reject: (e) => {
          finish();
          reject(e);
        },
      };
      const attempt = (n: number) => {
        if (this.closed) return call.reject(new LmError(Reason.aborted, `the service endpoint of ${this.id} closed while asking ${peer.id} for ${SVC_OP_NAMES[op]}`));
        const left = deadline - this.clock();
        if (n > 0 && left <= 0) {
          return call.reject(new LmError(Reason.timeout, `${peer.id} did not answer ${SVC_OP_NAMES[op]} within ${Math.round((o.retry ? o.deadlineMs ?? 60_000 : attemptMs) / 1000)} s (is it running, and does the broker let ${this.id} reach it?)`));
        }
        if (n > 0) this.logLine(`no answer from ${peer.id} to ${SVC_OP_NAMES[op]} within ${(attemptMs / 1000).toFixed(1)} s; asking again`);
        try {
          this.send(peer, op, args, call);
        } catch (e) {
          return call.reject(toLmError(e, `${SVC_OP_NAMES[op]} to ${peer.id}`));
        }
        timer = setTimeout(() => attempt(n + 1), o.retry ? Math.min(attemptMs, Math.max(1, left)) : attemptMs);
      };
      attempt(0);
    });
  }

  /** Stages `blob` at `peer` in parts (op `stage`); returns its tag, for an op that takes it. */
  async stage(peer: ServicePeer, blob: Uint8Array, o: CallOptions = {}): Promise<Uint8Array> {
    const tag = randomBytes(16);
    for (let off = 0; off < blob.length || off === 0; off += SVC_PART) {
      const data = blob.subarray(off, Math.min(blob.length, off + SVC_PART));
      // a part asked again after a lost answer is taken once ([LM-SVC-6]): `stage` may retry
      await this.call(peer, SvcOp.stage, cmap([1, tag], [2, off], [3, blob.length], [4, data]), { retry: true, ...o });
      if (blob.length === 0) break;
    }
    return tag;
  }

  private send(peer: ServicePeer, op: SvcOpId, args: Map<number, CborValue>, call: Call): void {
    const id = randomBytes(16);
    const key = svcKey(this.sharedWith(peer.publicKey), id, 'req', this.identity.publicKey, peer.publicKey);
    let sealed: Uint8Array;
    try {
      sealed = svcSealValue(key, id, args);
    } finally {
      wipe(key);
    }
    const body: SvcReqBody = { id, op, args: sealed, time: this.clock(), from: this.id, pk: this.identity.publicKey };
    const frame = encodeFrame(FrameType.SVC_REQ, body, { kind: 'sig', secretKey: this.identity.secretKey });
    const hex = toHex(id);
    call.ids.push(hex);
    this.calls.set(hex, call);
    this.link.send(topics.serviceIn(this.fleet, peer.id), frame, FrameType.SVC_REQ).catch((e: unknown) => this.logLine(`cannot send ${SVC_OP_NAMES[op]} to ${peer.id}: ${toLmError(e).message}`));
  }

  private onResponse(b: SvcRespBody, verify: (pk: Uint8Array) => void): void {
    const hex = toHex(b.id);
    const call = this.calls.get(hex);
    if (!call) return; // not ours, or answered already (a duplicate of QoS 1, an answer to an earlier attempt)
    try {
      verify(call.peer.publicKey); // [LM-SVC-6]: only the key configured for this service
    } catch {
      this.logLine(`dropped an answer to ${SVC_OP_NAMES[call.op]} that is not signed by ${call.peer.id}'s key ([LM-SVC-6])`);
      return; // a forgery cannot end the call: the real answer may still come
    }
    const now = this.clock();
    if (Math.abs(now - b.time) > SVC_WINDOW_MS) {
      this.logLine(`dropped an answer of ${call.peer.id} stamped ${Math.round((b.time - now) / 1000)} s from this clock ([LM-SVC-6])`);
      return;
    }
    if (b.code !== 0) {
      const code = isReasonCode(b.code) ? b.code : Reason.internal;
      call.reject(new LmError(code, `${call.peer.id}: ${b.detail}`));
      return;
    }
    const key = svcKey(this.sharedWith(call.peer.publicKey), b.id, 'resp', this.identity.publicKey, call.peer.publicKey);
    try {
      call.resolve({ value: svcOpenValue(key, b.id, b.result), time: b.time });
    } catch (e) {
      call.reject(toLmError(e, `the answer of ${call.peer.id} to ${SVC_OP_NAMES[call.op]}`));
    } finally {
      wipe(key);
    }
  }

  // ---- service ------------------------------------------------------------------------------

  private onRequest(b: SvcReqBody, verify: (pk: Uint8Array) => void): void {
    const def = this.service;
    if (!def) return; // a client only: nothing here answers requests
    try {
      verify(b.pk);
    } catch {
      this.logLine(`dropped a request whose signature does not verify under the key it names (${toHex(b.pk).slice(0, 16)}..., "${b.from}") ([LM-SVC-6])`);
      return; // its `from` and `pk` are a claim: no answer
    }
    const respond = (code: number, detail: string) => this.refuse(b, code, detail);
    const opName = isSvcOp(b.op) ? SVC_OP_NAMES[b.op] : `op ${b.op}`;
    const now = this.clock();
    // [LM-SVC-6] freshness: within the window, made after this service started, an id not seen
    if (Math.abs(now - b.time) > SVC_WINDOW_MS) return respond(Reason.replay, `${opName}: request stamped ${Math.round((b.time - now) / 1000)} s from the ${def.name}'s clock, beyond 120 s ([LM-SVC-6])`);
    if (b.time < this.startedAt) return respond(Reason.replay, `${opName}: request made before the ${def.name} started; ask again ([LM-SVC-6])`);
    const seenKey = toHex(b.pk) + toHex(b.id);
    if (this.seen.has(seenKey)) return respond(Reason.replay, `${opName}: request id ${toHex(b.id)} seen before ([LM-SVC-6])`);
    this.seen.set(seenKey, b.time + SVC_WINDOW_MS);
    this.prune(now);
    const op = isSvcOp(b.op) ? b.op : undefined;
    const handler = op === undefined ? undefined : op === SvcOp.stage ? (a: Fields, c: RequestContext) => this.stagePart(a, c) : def.handlers[op];
    if (op === undefined || !handler) return respond(Reason.schema, `${opName} is not an op of the ${def.name}`);
    // [LM-SVC-6] only a key trusted for this op; everyone else is refused and changes nothing
    if (!def.trusted(op).some((k) => equalBytes(k, b.pk))) {
      this.logLine(`refused ${opName} of "${b.from}": key ${toHex(b.pk)} is not trusted for it ([LM-SVC-6])`);
      return respond(Reason.auth, `the ${def.name} ${this.id} does not trust key ${toHex(b.pk)} for ${opName} ([LM-SVC-6])`);
    }
    void this.run(b, op, handler, def);
  }

  private async run(b: SvcReqBody, op: SvcOpId, handler: Handler, def: ServiceDefinition): Promise<void> {
    const shared = this.sharedWith(b.pk);
    try {
      const kReq = svcKey(shared, b.id, 'req', b.pk, this.identity.publicKey);
      let args: CborValue;
      try {
        args = svcOpenValue(kReq, b.id, b.args);
      } finally {
        wipe(kReq);
      }
      const ctx: RequestContext = { op, from: b.from, pk: b.pk, staged: (tag) => this.takeStaged(b.pk, tag) };
      const value = await handler(new Fields(args, `${def.name} ${SVC_OP_NAMES[op]}`), ctx);
      if (this.closed) return;
      const kResp = svcKey(shared, b.id, 'resp', b.pk, this.identity.publicKey);
      let result: Uint8Array;
      try {
        result = svcSealValue(kResp, b.id, value);
      } finally {
        wipe(kResp);
      }
      this.respond(b, 0, '', result);
    } catch (e) {
      const err = toLmError(e);
      this.respond(b, err.code, detailOf(err));
    }
  }

  /** A refusal, answered at most {@link REFUSALS_PER_SECOND} times a second per requester key. */
  private refuse(b: SvcReqBody, code: number, detail: string): void {
    const k = toHex(b.pk);
    const now = this.clock();
    let r = this.refusals.get(k);
    if (!r || now - r.start >= 1000) {
      if (this.refusals.size >= 4096) this.refusals.clear();
      r = { start: now, n: 0 };
      this.refusals.set(k, r);
    }
    if (++r.n > REFUSALS_PER_SECOND) return;
    this.respond(b, code, detail);
  }

  private respond(b: SvcReqBody, code: number, detail: string, result: Uint8Array = new Uint8Array(0)): void {
    if (this.closed) return;
    const body: SvcRespBody = { id: b.id, code, result, detail: detail.length > 256 ? `${detail.slice(0, 253)}...` : detail, time: this.clock() };
    const frame = encodeFrame(FrameType.SVC_RESP, body, { kind: 'sig', secretKey: this.identity.secretKey });
    this.link.send(topics.serviceIn(this.fleet, b.from), frame, FrameType.SVC_RESP).catch((e: unknown) => this.logLine(`cannot answer "${b.from}": ${toLmError(e).message}`));
  }

  /** Op `stage`: {1 tag, 2 off, 3 total, 4 data} → {1 received}; parts in order, a repeated part taken once. */
  private stagePart(a: Fields, ctx: RequestContext): CborValue {
    const tag = a.bytes(1, 16);
    const off = a.uint(2);
    const total = a.uint(3);
    const data = a.bytes(4, [0, SVC_PART]);
    if (total > STAGE_MAX) throw new LmError(Reason.tooLarge, `stage: ${total} bytes exceeds ${STAGE_MAX}`);
    const now = this.clock();
    const key = toHex(ctx.pk) + toHex(tag);
    let s = this.staging.get(key);
    if (off === 0 && (!s || s.total !== total)) {
      const held = [...this.staging.entries()].filter(([k]) => k.startsWith(toHex(ctx.pk)) && k !== key).reduce((n, [, x]) => n + x.total, 0);
      if (held + total > STAGE_PER_REQUESTER) throw new LmError(Reason.tooLarge, `stage: this requester holds ${held} bytes staged; ${total} more exceeds ${STAGE_PER_REQUESTER}`);
      s = { parts: [], received: 0, total, expires: now + SVC_WINDOW_MS };
      this.staging.set(key, s);
    }
    if (!s) throw new LmError(Reason.unknown, `stage: no staged blob ${toHex(tag)} to continue at ${off} (begin at 0)`);
    if (s.total !== total) throw new LmError(Reason.schema, `stage: blob ${toHex(tag)} is ${s.total} bytes, not ${total}`);
    if (off + data.length <= s.received) return cmap([1, s.received]); // a part asked again: taken already
    if (off !== s.received) throw new LmError(Reason.schema, `stage: part at ${off}, expected ${s.received}`);
    if (off + data.length > total) throw new LmError(Reason.schema, `stage: part ends at ${off + data.length}, beyond ${total}`);
    s.parts.push(data.slice());
    s.received += data.length;
    s.expires = now + SVC_WINDOW_MS;
    return cmap([1, s.received]);
  }

  private takeStaged(pk: Uint8Array, tag: Uint8Array): Uint8Array {
    const key = toHex(pk) + toHex(tag);
    const s = this.staging.get(key);
    if (!s) throw new LmError(Reason.unknown, `no staged blob ${toHex(tag)} (stage it first; a staged blob is kept 120 s)`);
    if (s.received !== s.total) throw new LmError(Reason.schema, `staged blob ${toHex(tag)} has ${s.received} of its ${s.total} bytes`);
    this.staging.delete(key);
    const out = new Uint8Array(s.total);
    let at = 0;
    for (const p of s.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Forgets ids and staged blobs past the window (at most once a second). */
  private prune(now: number): void {
    if (now - this.prunedAt < 1000) return;
    this.prunedAt = now;
    for (const [k, exp] of this.seen) if (exp < now) this.seen.delete(k);
    for (const [k, s] of this.staging) if (s.expires < now) this.staging.delete(k);
  }

  // ---- the inbox ----------------------------------------------------------------------------

  private onPayload(payload: Uint8Array): void {
    if (this.closed) return;
    try {
      const f = decodeFrame(payload);
      const verify = (pk: Uint8Array) => void verifyFrame(f, { signer: pk });
      if (f.type === FrameType.SVC_REQ) this.onRequest(f.body, verify);
      else if (f.type === FrameType.SVC_RESP) this.onResponse(f.body, verify);
      else this.logLine(`dropped a frame of type ${f.type} on the service inbox ${this.inbox} ([LM-SVC-7])`);
    } catch (e) {
      this.logLine(`dropped a payload on ${this.inbox}: ${toLmError(e).message}`);
    }
  }

  private sharedWith(pk: Uint8Array): Uint8Array {
    const hex = toHex(pk);
    let s = this.shared.get(hex);
    if (!s) {
      s = svcShared(this.identity, pk);
      if (this.shared.size > 1024) {
        const first = this.shared.keys().next().value as string;
        wipe(this.shared.get(first));
        this.shared.delete(first);
      }
      this.shared.set(hex, s);
    }
    return s;
  }

  /** Ends pending calls, erases the pairwise secrets, and closes the link if it was opened here. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of new Set(this.calls.values())) c.reject(new LmError(Reason.aborted, `the service endpoint of ${this.id} closed`));
    for (const s of this.shared.values()) wipe(s);
    this.shared.clear();
    this.staging.clear();
    if (this.ownsLink) await this.link.close().catch(() => undefined);
  }
}
