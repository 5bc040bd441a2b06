/**
 * @module device
 * The public device: it connects, announces itself with HELLO ([LM-MQTT-2]), takes OFFERs
 * (offer.ts) and runs one session at a time (session.ts), whose streams it hands to the machine.
 */
import { EventEmitter } from 'node:events';
import {
  type AnyFrame, type Caps, type CborValue, FrameType, type FrameTypeId, type IdentityKeyPair, LmError, Reason, type SuiteId,
  Revocations, decodeFrame, encodeCbor, encodeFrame, equalBytes, randomBytes, reasonName, toLmError, topics,
  Role,
} from '@livematrix/spec';
import { Kernel, MatrixEngine } from '@livematrix/spec/engine';
import { type IdentityKeyStore, frameSigner, keyStoreOf } from '@livematrix/spec/keystore';
import type { DeviceStateName } from '@livematrix/spec';
import { type BrokerAuth, FrameLink, type TlsOptions, authOptions } from '@livematrix/spec/transport';
import { BootSequence } from './boot-sequence.js';
import { type Clock, systemTimers } from './clock.js';
import { NoSessionError } from './errors.js';
import { Licences, type LicenceStore, fileLicenceStore, memoryLicenceStore } from './licences.js';
import { OfferDesk, type ResumePoint, type SessionInit } from './offer.js';
import { type PhaseFactories, phaseFactories } from './phases.js';
import { DeviceSession } from './session.js';
import { DeviceStatus, STATUS_INTERVAL_MS, type StatusReport } from './status.js';
import type { IncomingStream, RejectEvent } from './stream.js';

export const SOFTWARE = 'livematrix-device/0.1';

export interface DeviceOptions {
  /** broker URL, e.g. mqtt://127.0.0.1:1883 */
  url: string;
  fleet: string;
  id: string;
  /**
   * the device's identity key: a key pair in memory, or a key store (`@livematrix/spec/keystore`:
   * a secure element signs and agrees on keys, and the SDK never holds the secret)
   */
  identity: IdentityKeyPair | IdentityKeyStore;
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
  /**
   * The device's clock in Unix ms, for everything it times: HELLO, revisions, time sync,
   * liveness, alarms, receipts; default Date.now (tests shift it to test skew).
   */
  clock?: Clock;
  /** MQTT protocol version; default 4 (3.1.1) */
  protocolVersion?: 4 | 5;
  /** capabilities to report instead of measuring them (tests) */
  caps?: Caps;
  /**
   * Where the device keeps its print counts, resume tickets, seen OFFERs and revocation list
   * across restarts ([LM-LIC-1]): a directory for the default crash-safe file store. Without it
   * (and without `licences`) they live in memory and a restart forgets them, which [LM-TX-7]
   * does not allow in production.
   */
  stateDir?: string;
  /** a store of your own for the licence state (a secure element, say); overrides `stateDir` */
  licences?: LicenceStore;
  /** how to authenticate to the broker: 'token' for a broker with the Live Matrix plugin, or a user name and password */
  brokerAuth?: BrokerAuth;
  /** brokers to fail over to, in turn, when the connection drops (a cluster of instances) */
  servers?: { host: string; port: number }[];
  /** TLS and mutual TLS to the broker (an `mqtts://` URL): CA, client certificate and key, as files or PEM */
  tls?: TlsOptions;
  /**
   * ms without an authenticated frame from the gateway after which a session ends as
   * interrupted ([LM-DLV-13]); the next OFFER of its transaction resumes it. Default 10000.
   */
  gatewayTimeout?: number;
  /**
   * ms between the device's signed status publications when nothing changes (SPEC §10.2,
   * [LM-STATE-1]); its HELLO is published again as often ([LM-STATE-4]). Default 30000.
   */
  statusInterval?: number;
  /** refused OFFERs answered per second at most, so the device cannot be made a flood amplifier ([LM-FRAME-9]); default 20 */
  refusalsPerSecond?: number;
  /** metrics hook: a HINTS frame is fully resolved (benchmarks measure hint latency with it) */
  onFrameResolved?: (seq: number) => void;
  /**
   * Where the consumer stands in a job, so that a restarted device resumes it ([LM-DLV-10]):
   * the bytes it took of the transaction (by its hash, hex). The device kept points of the job's
   * digest beside its ticket ([LM-DLV-20]), so `{ bytes }` is enough: the resumed stream starts at
   * its `offset` (at or below `bytes`) and the consumer skips the `bytes - offset` it already has.
   * The host must record the consumer's count durably at least once every 100 ×
   * `resumePointInterval` (about 16 min at the default): the device keeps points spread over the
   * last 2^9 writes, so one taken before the last record exists, and the resume repeats at most
   * about 3 × the time since that record. With no qualifying point it resumes from 0.
   */
  resume?: (txh: string) => Promise<ResumePoint | undefined> | ResumePoint | undefined;
  /**
   * ms of the device's clock between two durable writes of a resume point ([LM-DLV-20]); default
   * 10000 (POINT_SAVE_MS). Each write replaces the licence record with two fsyncs, so a short
   * interval wears an SD card and blocks the event loop for the whole print; 10 s of a printer's
   * work is little to repeat after a crash. Tests set it short.
   */
  resumePointInterval?: number;
  /**
   * Advanced: phase implementations that replace the SDK's own in every session
   * (`@livematrix/device-sdk/phases`), for instrumentation and for test kits. A phase that
   * breaks the protocol makes a non-conforming device; production code leaves this unset.
   */
  phases?: Partial<PhaseFactories>;
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
  private readonly opts: DeviceOptions;
  /** the identity key: every signature and the licence's key agreement go through it */
  private readonly keys: IdentityKeyStore;
  private readonly engine: MatrixEngine;
  private readonly ownEngine: boolean;
  private readonly kernel = new Kernel();
  private readonly clock: Clock;
  private readonly phases: PhaseFactories;
  private readonly offers: OfferDesk;
  private readonly window: number;
  private frameLink!: FrameLink;
  private measured!: Caps;
  private session: DeviceSession | undefined;
  private readonly waiting: ((s: IncomingStream) => void)[] = [];
  /**
   * the stream accepted while nobody waited in nextStream() (the consumer may still be leaving the
   * previous one, e.g. a resume right after a cut-off): the next nextStream() gets it; only the
   * newest is kept, since a device has one session at a time
   */
  private ready: IncomingStream | undefined;
  private readonly licences: Licences;
  private readonly revocations = new Revocations();
  /** random per start of this process: a gateway sees a restart by a new value ([LM-DLV-10]) */
  private readonly boot = randomBytes(8);
  /** the boot sequence of each connection, reserved in the licence store ([LM-STATE-3]) */
  private readonly boots: BootSequence;
  /** the signed status on the status topic (SPEC §10.2) */
  private readonly status: DeviceStatus;

  private constructor(o: DeviceOptions, engine?: MatrixEngine) {
    super();
    this.opts = o;
    this.keys = keyStoreOf(o.identity);
    this.ownEngine = !engine;
    this.engine = engine ?? new MatrixEngine(o.workers !== undefined ? { workers: o.workers } : {});
    this.clock = o.clock ?? Date.now;
    this.window = o.window ?? 4 * 1024 * 1024;
    this.phases = phaseFactories(o.phases);
    this.licences = new Licences(o.licences ?? (o.stateDir !== undefined ? fileLicenceStore(o.stateDir) : memoryLicenceStore()), this.keys, o.id, this.clock);
    const held = this.licences.revocation;
    try {
      if (held) this.revocations.offer(held, o.trustedOperators);
    } catch {
      // a list kept from before that no longer verifies (the operator keys changed) holds nothing;
      // the next list published takes its place
    }
    this.offers = new OfferDesk({
      clock: this.clock, identity: this.keys, deviceId: o.id, trustedOperators: o.trustedOperators, window: this.window,
      licences: this.licences, revocations: this.revocations, resume: o.resume, pointInterval: o.resumePointInterval,
      caps: () => this.caps, running: () => this.running(),
      send: (frame, type) => this.link.send(topics.deviceOut(o.fleet, o.id), frame, type),
      reject: (ev) => this.emit('reject', ev), open: (init, accept) => this.open(init, accept),
    }, this.phases.offer(), o.refusalsPerSecond ?? 20);
    const failed = (what: string) => (e: unknown) => this.emit('reject', { code: Reason.internal, reason: reasonName(Reason.internal), type: FrameType.STATUS, detail: `${what}: ${toLmError(e).message}` });
    this.boots = new BootSequence(this.licences, this.clock, failed('boot sequence not reserved in the licence store; numbers grow within this process only ([LM-STATE-3])'));
    this.status = new DeviceStatus({
      clock: this.clock, timers: systemTimers, interval: o.statusInterval ?? STATUS_INTERVAL_MS, device: o.id, streaming: () => this.running() !== undefined,
      sign: (body) => encodeFrame(FrameType.STATUS, body, frameSigner(this.keys)),
      publish: (frame) => this.link.send(topics.deviceStatus(o.fleet, o.id), frame, FrameType.STATUS, { retain: true }),
      announce: () => this.announce(), failed: failed('status not published'),
    });
  }

  /** The Last Will of a connection with boot sequence `bd` ([LM-MQTT-2], [LM-STATE-3]). */
  private will(bd: number): Uint8Array {
    return encodeFrame(FrameType.BYE, { who: this.opts.id, reason: Reason.offline, bd }, { kind: 'none' });
  }

  /** Starts the engine, measures capabilities, connects and publishes HELLO ([LM-MQTT-2]). */
  static async start(o: DeviceOptions, engine?: MatrixEngine): Promise<Device> {
    const d = new Device(o, engine);
    await d.engine.start();
    const caps = o.caps ?? (await d.measure());
    d.measured = { ...caps, prot: caps.prot ?? true }; // [LM-PROT-3]: this SDK opens protected jobs
    const link = await FrameLink.connect({
      url: o.url, clientId: `lm-dev-${o.id}-${Math.random().toString(16).slice(2, 8)}`, ...(o.protocolVersion ? { protocolVersion: o.protocolVersion } : {}),
      will: { topic: topics.deviceState(o.fleet, o.id), payload: d.will(d.boots.next()), retain: true }, ...authOptions(o.brokerAuth, o.id, Role.device, d.keys),
      ...(o.servers ? { servers: o.servers } : {}), ...(o.tls ? { tls: o.tls } : {}),
    });
    d.frameLink = link;
    link.onPayload((topic, payload) => d.onPayload(topic, payload));
    await link.subscribe(topics.deviceIn(o.fleet, o.id));
    await link.subscribe(topics.revocation(o.fleet)); // [LM-REVOKE-2]
    // [LM-STATE-3] each CONNECT, reconnects too, gets a new boot sequence, in its Will first
    link.client.on('reconnect', () => {
      const will = link.client.options.will;
      if (will) will.payload = Buffer.from(d.will(d.boots.next()));
    });
    link.client.on('close', () => d.status.disconnected());
    link.client.on('connect', () => void d.online());
    await d.online();
    return d;
  }

  /** A connection is up: its HELLO ([LM-MQTT-2]), then its first STATUS ([LM-STATE-1]). */
  private async online(): Promise<void> {
    const bd = this.boots.current;
    try {
      await this.announce();
      if (bd !== undefined) await this.status.connected(bd);
    } catch (e) {
      this.emit('reject', { code: Reason.internal, reason: reasonName(Reason.internal), type: FrameType.HELLO, detail: `announcing the connection failed: ${toLmError(e).message}` });
    }
  }

  /**
   * Reports the machine's condition and readings for the device's signed status (SPEC §10.2): a
   * change of state is published at once, readings with the next STATUS. What goes in `readings`
   * is shown in clear to whoever may read the status topic; job content belongs in {@link telemetry}.
   * Throws StatusReportError for readings or a detail a STATUS cannot carry (floats, over 4096 bytes).
   *
   * @example
   * await dev.setStatus({ readings: { nozzle_mC: 214_870, progress_ppm: 412_000 } });
   * await dev.setStatus({ machine: 'error', detail: 'thermal runaway' });
   */
  setStatus(report: StatusReport): Promise<void> {
    return this.status.report(report);
  }

  /** The state the device's status shows now ([LM-STATE-2]). */
  get state(): DeviceStateName {
    return this.status.state;
  }

  /** The device's MQTT link (its statistics; tests cut it to simulate a lost connection). */
  get link(): FrameLink {
    return this.frameLink;
  }

  /** The capabilities this device reports in HELLO (SPEC §12). */
  get caps(): Caps {
    return this.measured;
  }

  /** The running session's stream, if any. */
  get current(): IncomingStream | undefined {
    return this.session?.stream;
  }

  /** Resolves with the next accepted stream. */
  nextStream(): Promise<IncomingStream> {
    const s = this.ready;
    this.ready = undefined;
    if (s) return Promise.resolve(s);
    return new Promise((r) => this.waiting.push(r));
  }

  /** Sends machine status to the gateway of the current session as telemetry ([LM-TEL-1]); NoSessionError between sessions. */
  async telemetry(status: Record<string, CborValue>): Promise<void> {
    const s = this.running();
    if (!s) throw new NoSessionError('telemetry needs an active session');
    await s.telemetry(encodeCbor(new Map(Object.entries(status))));
  }

  /** Leaves: BYE, disconnect, stop the engine, erase session keys. */
  async stop(): Promise<void> {
    // a last STATUS offline, not idle once the session ends ([LM-STATE-2]); nothing to say without a connection
    const connected = this.link.connected;
    const leaving = this.status.leaving(connected);
    this.session?.fail(new LmError(Reason.offline, 'device stopped'), false); // its ticket resumes it ([LM-LIC-3])
    const o = this.opts;
    try {
      await leaving;
      if (!connected) throw new LmError(Reason.offline, 'not connected'); // a publish would wait for a connection that never comes
      const bye = this.will(this.boots.current ?? 0);
      await this.link.send(topics.deviceState(o.fleet, o.id), bye, FrameType.BYE, { retain: true });
    } catch {
      // broker gone: the Last Will says the same
    }
    await this.link.close(true).catch(() => undefined);
    if (this.ownEngine) await this.engine.stop();
    this.kernel.wipe();
  }

  private async measure(): Promise<Caps> {
    const rates = await this.engine.buildRate(undefined, Math.min(20, this.opts.wmax ?? 24)); // [LM-CAP-1]
    return {
      suites: [...rates.entries()].map(([s, r]) => [s, r] as [SuiteId, number]),
      mem: this.opts.memory ?? 512 * 2 ** 20,
      wmax: this.opts.wmax ?? 24,
      workers: this.engine.workers,
    };
  }

  private async announce(): Promise<void> {
    const o = this.opts;
    const hello = encodeFrame(FrameType.HELLO, {
      device: o.id, idpk: this.keys.publicKey, caps: this.caps, time: this.clock(), software: SOFTWARE, online: true, boot: this.boot,
      ...(this.boots.current !== undefined ? { bd: this.boots.current } : {}), // [LM-STATE-3]
    }, frameSigner(this.keys));
    await this.link.send(topics.deviceState(o.fleet, o.id), hello, FrameType.HELLO, { retain: true });
  }

  private running(): DeviceSession | undefined {
    return this.session && !this.session.isClosed ? this.session : undefined;
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
    if (f.type === FrameType.REVOKE) return this.onRevoke(payload);
    if (f.type === FrameType.OFFER) {
      // a device never dies of a frame: whatever goes wrong with an OFFER is a refusal ([LM-FRAME-9])
      void this.offers.onOffer(f, payload).catch((e: unknown) => {
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

  /** A revocation list: kept, durably, when it verifies and is newer than the one held ([LM-REVOKE-2]). */
  private onRevoke(payload: Uint8Array): void {
    try {
      const list = this.revocations.check(payload, this.opts.trustedOperators);
      if (!list) return;
      this.licences.revocation = payload; // durable first ([LM-LIC-2]); a failed write takes nothing
      this.revocations.take(payload, list);
      // a running session of a transaction the list revokes ends ([LM-REVOKE-3])
      const s = this.running();
      const why = s && this.revocations.refusal(s.tx.body, s.tx.hash, this.clock());
      if (s && why) s.fail(why);
    } catch (e) {
      const err = toLmError(e);
      this.emit('reject', { code: err.code, reason: reasonName(err.code), type: FrameType.REVOKE, detail: `revocation list ignored: ${err.message}` });
    }
  }

  /** Starts the session an accepted OFFER opens, sends ACCEPT and hands its stream over. */
  private async open(init: SessionInit, accept: Uint8Array): Promise<void> {
    const o = this.opts;
    const s = new DeviceSession({
      engine: this.engine, kernel: this.kernel, clock: this.clock, timers: systemTimers, phases: this.phases,
      deviceId: o.id, identity: this.keys, window: this.window, gatewayTimeout: o.gatewayTimeout ?? 10_000, onFrameResolved: o.onFrameResolved,
      send: (frame, type) => this.link.send(topics.deviceOut(o.fleet, o.id), frame, type),
      closed: (ended) => {
        if (this.session === ended) this.session = undefined;
        void this.status.changed(); // streaming -> idle ([LM-STATE-1])
      },
    }, init);
    this.session = s;
    void this.status.changed(); // idle -> streaming ([LM-STATE-1])
    s.stream.on('reject', (r) => this.emit('reject', r));
    await this.link.send(topics.deviceOut(o.fleet, o.id), accept, FrameType.ACCEPT);
    s.begin();
    const taker = this.waiting.shift();
    if (taker) taker(s.stream);
    else this.ready = s.stream; // not lost: the next nextStream() gets it
    this.emit('stream', s.stream);
  }
}
