/**
 * @module gateway
 * The sender side of Live Matrix: a gateway on the broker that verifies transactions, hears its
 * devices' HELLOs ([LM-MQTT-6]) and streams jobs to them. Each stream runs its protocol phases
 * in modules of their own: offer.ts (OFFER to ACCEPT), sender.ts (HINTS), retransmit.ts
 * (re-sends and the congestion window), keys.ts (chunk keys), acks.ts, liveness.ts,
 * telemetry.ts, report.ts (END, receipt, report), composed by delivery.ts, session.ts and
 * stream.ts.
 */
import { EventEmitter } from 'node:events';
import {
  type AnyFrame, FrameType, type HelloBody, type StatusBody, type IdentityKeyPair, LmError, Reason, Revocations, decodeFrame, digest, encodeFrame, equalBytes,
  type SignedTx, toHex, toLmError, topics, verifyTx,
  Role,
} from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { type BrokerAuth, FrameLink, type TlsOptions, authOptions } from '@livematrix/spec/transport';
import { type Clock, systemClock } from './clock.js';
import { openLicenceDb } from './db/index.js';
import type { LicenceDb } from './db/types.js';
import { GatewayStoppedError, StreamBusyError } from './errors.js';
import { StreamLicence, startKind } from './licence.js';
import { HelloBook, type HelloFrame, helloRefusal, isRestart } from './hello.js';
import { StatusBook, lateByeReason } from './status.js';
import { type ProtectedServices, ProtectedSource } from './protected.js';
import { BytesSource, type JobSource, type JobStream, StreamSource } from './source.js';
import { type GatewayContext, GatewayStream } from './stream.js';
import type { GatewayEvents, StreamOptions } from './types.js';

/** ms Gateway.stop() waits for frames still on their way to the broker */
const STOP_FLUSH_MS = 2000;

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
  /** the gateway's clock (ms since the Unix epoch); default `Date.now` */
  clock?: () => number;
  /** how to authenticate to the broker: 'token' for a broker with the Live Matrix plugin, or a user name and password */
  brokerAuth?: BrokerAuth;
  /** TLS and mutual TLS to the broker (an `mqtts://` URL): CA, client certificate and key, as files or PEM */
  tls?: TlsOptions;
  /**
   * registered identity keys of devices, by id ([LM-MQTT-6]): a HELLO signed by another key is
   * ignored. Without it, a HELLO counts only when its key is the transaction's device key.
   */
  deviceKeys?: ReadonlyMap<string, Uint8Array>;
  /**
   * The database of print counts, sessions, the receipt ledger and the revocation list
   * ([LM-LIC-2], [LM-LEDGER-1]): an open {@link LicenceDb}, or where to open one (a SQLite file,
   * or a postgres:// URL). Default: SQLite in memory, which a restart forgets: production
   * gateways name a file or a server.
   */
  db?: LicenceDb | string;
  /**
   * The keys service and the store of protected jobs (SPEC §16): with them the gateway streams
   * jobs it never holds in the clear (`streamProtected`).
   */
  protected?: ProtectedServices;
}

/**
 * A gateway: verifies transactions, negotiates with devices and streams jobs to them.
 *
 * @example
 * const gw = await Gateway.start({ url, fleet: 'f1', id: 'gw-1', identity, trustedOperators: [opk] });
 * const s = await gw.stream('printer-1', gcode, tx, licence); const report = await s.done;
 */
export class Gateway extends EventEmitter<GatewayEvents> {
  readonly engine: MatrixEngine;
  private connection: FrameLink | undefined;
  private readonly clock: Clock;
  private readonly hellos: HelloBook;
  /** the devices' signed status (SPEC §10.2) */
  private readonly statuses = new StatusBook();
  private readonly streams = new Map<string, GatewayStream>();
  /** devices whose stream() is between its checks and its OFFER */
  private readonly starting = new Set<string>();
  private readonly ctx: GatewayContext;
  private database: LicenceDb | undefined;
  /** the database was opened here, and is closed by stop() */
  private ownDb = false;
  /** the newest verified revocation list ([LM-REVOKE-2]) */
  private readonly revocations = new Revocations();

  private constructor(private readonly o: GatewayOptions) {
    super();
    this.engine = new MatrixEngine(o.workers !== undefined ? { workers: o.workers } : {});
    this.clock = systemClock(o.clock);
    this.hellos = new HelloBook(this.clock);
    this.ctx = {
      clock: this.clock, engine: this.engine, fleet: o.fleet, identity: o.identity,
      send: (topic, frame, type, opts) => this.link.send(topic, frame, type, opts),
      log: (line) => this.log(line),
      reject: (code, detail) => void this.emit('reject', { code, detail }),
      ended: (s) => {
        if (this.streams.get(s.device) === s) this.streams.delete(s.device);
      },
      keyRelease: o.protected?.keys,
    };
  }

  /** Starts the engine, connects to the broker and subscribes to the fleet's devices. */
  static async start(o: GatewayOptions): Promise<Gateway> {
    const g = new Gateway(o);
    g.ownDb = typeof o.db !== 'object';
    g.database = typeof o.db === 'object' ? o.db : await openLicenceDb(o.db ?? ':memory:');
    const held = await g.database.revocation();
    try {
      if (held) g.revocations.offer(held, o.trustedOperators);
    } catch (e) {
      g.log(`the revocation list kept in the database no longer verifies (${toLmError(e).message}); waiting for a new one`);
    }
    await g.engine.start();
    const bye = encodeFrame(FrameType.BYE, { who: o.id, reason: Reason.offline }, { kind: 'none' });
    const link = await FrameLink.connect({
      url: o.url, clientId: `lm-gw-${o.id}-${Math.random().toString(16).slice(2, 8)}`, ...(o.protocolVersion ? { protocolVersion: o.protocolVersion } : {}),
      will: { topic: topics.gatewayState(o.fleet, o.id), payload: bye, retain: true }, ...authOptions(o.brokerAuth, o.id, Role.gateway, o.identity.secretKey),
      ...(o.tls ? { tls: o.tls } : {}),
    });
    g.connection = link;
    link.onPayload((t, p) => g.onPayload(t, p));
    link.onError((e) => g.log(`broker connection: ${e.message}; reconnecting`));
    await link.subscribe(`lm/1/${o.fleet}/d/+/state`);
    await link.subscribe(`lm/1/${o.fleet}/d/+/out`);
    await link.subscribe(`lm/1/${o.fleet}/d/+/status`); // [LM-STATE-6]
    await link.subscribe(topics.revocation(o.fleet)); // [LM-REVOKE-2]
    await link.subscribe(topics.alarm(o.fleet)); // [LM-FLEET-4]
    return g;
  }

  /** The gateway's connection to the broker. */
  get link(): FrameLink {
    if (!this.connection) throw new LmError(Reason.internal, 'the gateway is not connected: start it with Gateway.start()');
    return this.connection;
  }

  /** The gateway's licence database (print counts, sessions, receipt ledger). */
  get db(): LicenceDb {
    if (!this.database) throw new LmError(Reason.internal, 'the gateway is not started: start it with Gateway.start()');
    return this.database;
  }

  log(line: string): void {
    this.emit('log', line);
  }

  private onPayload(topic: string, payload: Uint8Array): void {
    if (topic === topics.revocation(this.o.fleet)) return void this.onRevoke(payload);
    if (topic === topics.alarm(this.o.fleet)) return void this.onFleetAlarm(payload);
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
        const late = lateByeReason(f.body, this.hellos.latestOf(device, this.deviceKeyOf(device)));
        if (late) return void this.emit('reject', { code: Reason.offline, detail: `BYE of "${device}" ignored: ${late}` });
        this.hellos.offline(device);
        this.emit('offline', device);
        this.streams.get(device)?.deviceOffline(); // advisory: [LM-FRAME-5], [LM-DLV-13]
      }
      return;
    }
    if (parts[5] === 'status') {
      if (f.type !== FrameType.STATUS) return;
      if (this.statuses.isRepeat(device, f)) return;
      const key = this.deviceKeyOf(device);
      const hello = this.hellos.latestOf(device, key);
      const why = this.statuses.take(device, f, key, hello);
      if (why) this.emit('reject', { code: Reason.auth, detail: `STATUS of "${device}" ignored: ${why} ([LM-STATE-6])` });
      else this.emit('status', device, f.body);
      return;
    }
    const s = this.streams.get(device);
    if (!s) return;
    const sid = 'sid' in f.body ? f.body.sid : undefined;
    if (sid && !equalBytes(sid, s.sid)) return; // [LM-FRAME-8]
    void s.onFrame(f, payload).catch((e: unknown) => s.fail(toLmError(e)));
  }

  /**
   * The identity key this gateway knows the device by ([LM-STATE-5], [LM-STATE-6]): the registered
   * one; without a registry that of the transaction it streams to the device now, else that of the
   * first HELLO it accepted of the device; undefined when it has none (then a BYE counts as it is,
   * [LM-DLV-13], and no STATUS is taken).
   */
  private deviceKeyOf(device: string): Uint8Array | undefined {
    return this.o.deviceKeys?.get(device) ?? this.streams.get(device)?.tx.body.dpk ?? this.hellos.firstKeyOf(device);
  }

  /**
   * A HELLO counts only when it verifies under the device's registered key (or, without a
   * registry, under the key it carries, then matched against the transaction's in `stream()`),
   * and is later than the last one accepted for that device and key: a replayed HELLO changes
   * nothing ([LM-MQTT-6]).
   */
  private onHello(device: string, f: HelloFrame): void {
    const h = f.body;
    const why = helloRefusal(device, f, this.o.deviceKeys, this.hellos.history(device, h.idpk));
    if (why !== undefined) {
      this.emit('reject', { code: Reason.auth, detail: `HELLO of "${device}" ignored: ${why} ([LM-MQTT-6])` });
      return;
    }
    this.hellos.accept(device, h);
    const running = this.streams.get(device);
    if (running && isRestart(h, running.tx.body.dpk, running.offeredHello)) {
      void running.restart(h).catch((e: unknown) => running.fail(toLmError(e))); // [LM-DLV-10]
    }
    this.hellos.notify(device, h);
    this.emit('hello', device, h);
    // a STATUS of this connection that came before its HELLO ([LM-STATE-6])
    const key = this.deviceKeyOf(device);
    const taken = this.statuses.takePending(device, key, this.hellos.latestOf(device, key));
    if (taken) this.emit('status', device, taken);
  }

  /** An ALARM on the fleet's alarm topic, from this or another gateway or the broker ([LM-ALARM-6], [LM-FLEET-4]). */
  private onFleetAlarm(payload: Uint8Array): void {
    try {
      const f = decodeFrame(payload);
      if (f.type !== FrameType.ALARM) return;
      this.emit('alarm', { device: f.body.device, code: f.body.code, detail: f.body.detail, time: f.body.time });
    } catch (e) {
      const err = toLmError(e);
      this.emit('reject', { code: err.code, detail: `fleet alarm topic: ${err.message}` });
    }
  }

  /**
   * A revocation list: kept, in the database, when it verifies and is newer than the one held
   * ([LM-REVOKE-2]); running streams it revokes end ([LM-REVOKE-3]).
   */
  private async onRevoke(payload: Uint8Array): Promise<void> {
    try {
      const list = this.revocations.check(payload, this.o.trustedOperators);
      if (!list) return;
      await this.db.saveRevocation(payload, list.seq); // durable first ([LM-LIC-2])
      this.revocations.take(payload, list);
      this.log(`revocation list ${list.seq} taken: ${list.txs.length} transactions, ${list.devices.length} devices, ${list.operators.length} operator keys revoked; next due ${new Date(list.next).toISOString()}`);
      for (const s of this.streams.values()) {
        const why = this.revocations.refusal(s.tx.body, s.tx.hash, this.clock.now());
        if (why) s.fail(why);
      }
    } catch (e) {
      const err = toLmError(e);
      this.emit('reject', { code: err.code, detail: `revocation list ignored: ${err.message}` });
    }
  }

  /** Devices whose HELLO this gateway accepted and whose Last Will has not come since ([LM-MQTT-6]). */
  online(): string[] {
    return this.hellos.onlineDevices();
  }

  /** The latest signed status taken of `device` (SPEC §10.2, [LM-STATE-6]), if any. */
  status(device: string): StatusBody | undefined {
    return this.statuses.get(device);
  }

  /** The device's latest HELLO, of the given identity key if one is named (waits for it up to timeout ms). */
  hello(device: string, timeout = 10_000, publicKey?: Uint8Array): Promise<HelloBody> {
    return this.hellos.wait(device, timeout, publicKey, topics.deviceState(this.o.fleet, device));
  }

  /**
   * Streams a job to a device under a signed transaction ([LM-TX-2]..[LM-TX-7]). Resolves with
   * the running stream; its `done` resolves with the report after the device's signed receipt.
   * A job is bytes, a stream, or a function that opens it from its start (then a device that
   * restarts and resumes below what the stream has passed is served by reading it again).
   */
  async stream(device: string, job: Uint8Array | JobStream, txBytes: Uint8Array, licence: Uint8Array, opts: StreamOptions = {}): Promise<GatewayStream> {
    const { tx, kind } = await this.admit(device, txBytes);
    if (tx.body.jid) throw new LmError(Reason.txSchema, 'a protected job\'s transaction: stream it with streamProtected() ([LM-PROT-2])');
    let source: JobSource;
    if (job instanceof Uint8Array) {
      if (tx.body.size !== job.length || !equalBytes(digest(job), tx.body.jd)) throw new LmError(Reason.digest, 'the job does not match the transaction\'s digest or size ([LM-TX-6])');
      source = new BytesSource(job);
    } else {
      // checked as it is read; END waits for the check, a mismatch fails the stream
      source = new StreamSource(job, tx.body.size, tx.body.jd, opts.readAhead !== undefined ? { readAhead: opts.readAhead } : {});
    }
    return this.start(device, source, tx, licence, kind, opts);
  }

  /**
   * Streams a protected job (SPEC §16): its ciphertext comes from the store in the keys
   * service's order, its chunk keys come wrapped for the device's session from the keys service,
   * which holds the licence secret; this gateway holds neither plaintext nor key ([LM-PROT-2]).
   */
  async streamProtected(device: string, txBytes: Uint8Array, opts: StreamOptions = {}): Promise<GatewayStream> {
    const services = this.o.protected;
    if (!services) throw new LmError(Reason.internal, 'this gateway has no keys service and store: start it with the `protected` option');
    const { tx, kind } = await this.admit(device, txBytes);
    const source = await ProtectedSource.open(tx, services, (f) => void this.clock.after(500, f));
    // the session's chunks are the owner's: the chunk size is the upload's ([LM-PROT-1])
    return this.start(device, source, tx, undefined, kind, { ...opts, policy: { ...opts.policy, chunk: source.chunkSize } });
  }

  /** The checks before any stream ([LM-TX-2]..[LM-TX-7], [LM-REVOKE-3], [LM-LIC-2]). */
  private async admit(device: string, txBytes: Uint8Array): Promise<{ tx: SignedTx; kind: 'fresh' | 'resume' }> {
    const tx = verifyTx(txBytes, { now: this.clock.now(), trustedOperators: this.o.trustedOperators, gatewayPublic: this.o.identity.publicKey });
    const revoked = this.revocations.refusal(tx.body, tx.hash, this.clock.now()); // [LM-REVOKE-3]
    if (revoked) throw revoked;
    // [LM-TX-7], [LM-LIC-2]: prints left, or a cut-off print of it to resume ([LM-LIC-4])
    const kind = await startKind(this.db, tx);
    if (tx.body.device !== device) throw new LmError(Reason.txDevice, `transaction is for "${tx.body.device}", not "${device}" ([LM-TX-5])`);
    return { tx, kind };
  }

  private async start(device: string, source: JobSource, tx: SignedTx, licence: Uint8Array | undefined, kind: 'fresh' | 'resume', opts: StreamOptions): Promise<GatewayStream> {
    if (this.streams.has(device) || this.starting.has(device)) {
      source.close();
      throw new StreamBusyError(`a stream to "${device}" is already running`);
    }
    const registered = this.o.deviceKeys?.get(device);
    if (registered && !equalBytes(registered, tx.body.dpk)) {
      source.close();
      throw new LmError(Reason.txDevice, `the transaction names a key for "${device}" that differs from its registered key ([LM-TX-5])`);
    }
    // the device's slot is taken before the first await: two calls cannot both start a stream to it
    this.starting.add(device);
    try {
      // [LM-MQTT-6]: only a HELLO of the transaction's device key counts
      const hello = await this.hello(device, opts.helloTimeout, tx.body.dpk);
      const revoked = this.revocations.refusal(tx.body, tx.hash, this.clock.now()); // a list that came while it waited ([LM-REVOKE-3])
      if (revoked) throw revoked;
      if (source.cipher && hello.caps.prot !== true) {
        throw new LmError(Reason.params, `device "${device}" does not open protected jobs (its HELLO has no caps.prot): update its device SDK, or stream the job unprotected ([LM-PROT-3])`);
      }
      let s: GatewayStream | undefined;
      const record = new StreamLicence(this.db, tx, device, this.o.id, this.clock, (e) => s?.fail(e));
      s = new GatewayStream(this.ctx, device, source, tx, licence, opts, record, kind === 'resume');
      this.streams.set(device, s);
      try {
        await s.begin(hello);
      } catch (e) {
        this.streams.delete(device);
        throw e;
      }
      return s;
    } catch (e) {
      source.close();
      throw e;
    } finally {
      this.starting.delete(device);
    }
  }

  async stop(): Promise<void> {
    const running = [...this.streams.values()];
    for (const s of running) s.fail(new GatewayStoppedError('gateway stopped'));
    await Promise.all(running.map((s) => s.settled())); // every licence write is in before the database closes
    // frames still on their way (the ERROR that ended a stream, [LM-TX-6]) leave before the connection closes;
    // a broker that is gone is waited for at most STOP_FLUSH_MS
    let flushed: NodeJS.Timeout | undefined;
    await Promise.race([this.link.close(false), new Promise((r) => (flushed = setTimeout(r, STOP_FLUSH_MS)))]).catch(() => undefined);
    clearTimeout(flushed);
    await this.link.close(true).catch(() => undefined);
    await this.engine.stop();
    if (this.ownDb) await this.database?.close();
  }
}
