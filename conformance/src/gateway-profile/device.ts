/**
 * @module gateway-profile/device
 * A device the suite plays against the gateway under test, built from the spec's primitives so
 * that a test controls every frame: its HELLO (genuine, forged, replayed), its answer to an OFFER
 * (ACCEPT, a forged ACCEPT, a refusal signed or not), and, through {@link DeviceSession}, its
 * ACKs, NACKs, telemetry and receipt. Every frame the gateway sends it is audited
 * ({@link auditInbound}); OFFERs are checked against the device's capabilities as they arrive.
 */
import { type BrokerAuth, FrameLink, authOptions } from '@livematrix/spec/transport';
import {
  type AlarmBody, type AnyFrame, type Caps, FrameType, type FrameTypeId, type Frame, type HelloBody, type IdentityKeyPair, type OfferBody, Role, type SignedTx, decodeFrame, digest, encodeFrame, equalBytes,
  identityKeyPair, randomBytes, toHex, topics, x25519KeyPair,
} from '@livematrix/spec';
import type { MatrixEngine } from '@livematrix/spec/engine';
import { type Inbound, auditInbound } from './audit.js';
import type { Findings } from './findings.js';
import { type Behaviour, DeviceSession } from './session.js';
import { until } from '../wait.js';

export interface SuiteDeviceOptions {
  url: string;
  fleet: string;
  id: string;
  caps: Caps;
  engine: MatrixEngine;
  findings: Findings;
  /** chunk keys seen in this run ([LM-AEAD-5]) */
  keySeen: Map<string, string>;
  /** the gateway key the transactions name, when the suite was told it */
  gatewayKey?: Uint8Array | undefined;
  protocolVersion?: 4 | 5 | undefined;
  brokerAuth?: BrokerAuth | undefined;
}

/** An OFFER as it arrived. */
export interface OfferIn {
  at: number;
  raw: Uint8Array;
  body: OfferBody;
}

/** How the device answers an OFFER with ACCEPT; the overrides forge one ([LM-FRAME-7], [LM-KEY-1]). */
export interface AcceptOptions {
  data: Uint8Array;
  tx: SignedTx;
  licence: Uint8Array;
  /** receive window in plaintext bytes; default 4 chunks */
  window?: number;
  from?: number;
  /** sign with this secret key instead of the device's */
  signer?: Uint8Array;
  /** `oh` other than SHA-256 of the OFFER */
  oh?: Uint8Array;
  /** an ephemeral public key other than the device's own */
  epk?: Uint8Array;
  /** key the device's side of the session with this X25519 output (see {@link SessionInit}) */
  z?: Uint8Array;
  behaviour?: Partial<Behaviour>;
}

export class SuiteDevice {
  readonly identity: IdentityKeyPair = identityKeyPair();
  readonly id: string;
  readonly caps: Caps;
  boot = randomBytes(8);
  /** the boot sequence its HELLOs carry, when set ([LM-STATE-3]) */
  bd: number | undefined;
  readonly inbound: Inbound[] = [];
  /** ALARMs on the fleet's alarm topic that name this device ([LM-ALARM-6]), and those that name none */
  readonly fleetAlarms: { at: number; body: AlarmBody }[] = [];
  readonly sessions = new Map<string, DeviceSession>();
  readonly offers: OfferIn[] = [];
  private link!: FrameLink;
  private readonly offeredSids = new Set<string>();
  private helloPublished = false;

  private constructor(readonly o: SuiteDeviceOptions) {
    this.id = o.id;
    this.caps = o.caps;
  }

  get findings(): Findings {
    return this.o.findings;
  }

  get engine(): MatrixEngine {
    return this.o.engine;
  }

  get keySeen(): Map<string, string> {
    return this.o.keySeen;
  }

  /** Connects with a Last Will on its state topic ([LM-MQTT-2]) and subscribes to its inbound and the fleet's alarm topic. */
  static async connect(o: SuiteDeviceOptions): Promise<SuiteDevice> {
    const d = new SuiteDevice(o);
    const will = encodeFrame(FrameType.BYE, { who: o.id, reason: 81 }, { kind: 'none' });
    d.link = await FrameLink.connect({
      url: o.url, clientId: `lm-dev-${o.id}-${toHex(randomBytes(4))}`, ...(o.protocolVersion ? { protocolVersion: o.protocolVersion } : {}),
      will: { topic: topics.deviceState(o.fleet, o.id), payload: will, retain: true }, ...authOptions(o.brokerAuth, o.id, Role.device, d.identity.secretKey),
    });
    // the QoS of each message ([LM-MQTT-1]) is on the packet, which FrameLink's handlers do not see
    d.link.client.on('message', (topic: string, payload: Buffer, packet: { qos: number }) => d.onMessage(topic, new Uint8Array(payload), packet.qos));
    await d.link.subscribe(topics.deviceIn(o.fleet, o.id));
    await d.link.subscribe(topics.alarm(o.fleet));
    return d;
  }

  /**
   * Publishes a HELLO on the device's state topic, retained ([LM-MQTT-2]). `signer` signs it
   * with another key (a forgery), `idpk` names another key, `boot`, `time` and `caps` change
   * those fields (a replay, a restart).
   */
  async hello(o: { signer?: Uint8Array; idpk?: Uint8Array; boot?: Uint8Array; time?: number; caps?: Caps; retain?: boolean } = {}): Promise<HelloBody> {
    const body: HelloBody = { device: this.id, idpk: o.idpk ?? this.identity.publicKey, caps: o.caps ?? this.caps, time: o.time ?? Date.now(), software: 'livematrix-conformance', online: true, boot: o.boot ?? this.boot, ...(this.bd !== undefined ? { bd: this.bd } : {}) };
    const frame = encodeFrame(FrameType.HELLO, body, { kind: 'sig', secretKey: o.signer ?? this.identity.secretKey });
    await this.link.send(topics.deviceState(this.o.fleet, this.id), frame, FrameType.HELLO, { retain: o.retain ?? true });
    this.helloPublished = true;
    return body;
  }

  /** Publishes a payload on the device's outbound topic at the QoS of `type`. */
  async publish(frame: Uint8Array, type: FrameTypeId): Promise<void> {
    await this.link.send(topics.deviceOut(this.o.fleet, this.id), frame, type);
  }

  /** Publishes a payload on the device's state topic (a Last Will, a HELLO made elsewhere). */
  async publishState(frame: Uint8Array, type: FrameTypeId, retain = false): Promise<void> {
    await this.link.send(topics.deviceState(this.o.fleet, this.id), frame, type, { retain });
  }

  private onMessage(topic: string, raw: Uint8Array, qos: number): void {
    const at = Date.now();
    if (topic === topics.alarm(this.o.fleet)) {
      try {
        const f = decodeFrame(raw);
        if (f.type === FrameType.ALARM && (f.body.device === this.id || f.body.device === undefined)) this.fleetAlarms.push({ at, body: f.body });
      } catch {
        // not a frame: the broker's business
      }
      return;
    }
    if (topic !== topics.deviceIn(this.o.fleet, this.id)) return;
    const frame = auditInbound({ at, topic, qos, raw }, {
      frameKey: (sid) => this.sessions.get(sid)?.keys.fkG2d,
      offered: (sid) => this.offeredSids.has(sid),
      gatewayKey: this.o.gatewayKey,
    }, this.o.findings);
    this.inbound.push({ at, topic, qos, raw: raw.slice(), ...(frame ? { frame } : {}) });
    if (frame) this.onFrame(frame, raw, at);
  }

  private onFrame(f: AnyFrame, raw: Uint8Array, at: number): void {
    if (f.type === FrameType.OFFER) {
      // [LM-FRAME-25]: an offer made again goes under a new sid (the same bytes again are only a duplicate delivery)
      const same = this.offers.find((o) => equalBytes(o.body.sid, f.body.sid));
      if (same && !equalBytes(same.raw, raw)) this.o.findings.fail('LM-FRAME-25', `the gateway sent another OFFER under session id ${toHex(f.body.sid).slice(0, 8)}, which an earlier OFFER had; an offer made again takes a new sid`);
      this.offeredSids.add(toHex(f.body.sid));
      this.offers.push({ at, raw: raw.slice(), body: f.body });
      return;
    }
    const sid = (f.body as { sid?: Uint8Array }).sid;
    const s = sid ? this.sessions.get(toHex(sid)) : undefined;
    if (!s) return;
    // the audit verified the MAC of session frames; NONE frames are advisory ([LM-FRAME-5])
    s.onFrame(f.type, f.body, f.authKind, at);
  }

  /** Waits for the `n`-th OFFER (counting from 1) this device received. */
  waitOffer(n: number, timeout = 15_000): Promise<OfferIn> {
    return until(() => this.offers[n - 1], timeout, `OFFER number ${n} on ${topics.deviceIn(this.o.fleet, this.id)}`);
  }

  /** Frames of `type` the gateway sent this device, with their arrival times. */
  framesOf<T extends FrameTypeId>(type: T): { at: number; frame: Frame<T> }[] {
    return this.inbound.filter((x) => x.frame?.type === type).map((x) => ({ at: x.at, frame: x.frame as Frame<T> }));
  }

  /** Answers an OFFER with ACCEPT ([LM-FRAME-7]) and starts the session (time sync, then ACKs). */
  async accept(offer: OfferIn, o: AcceptOptions): Promise<DeviceSession> {
    const eph = x25519KeyPair();
    const p = offer.body.params;
    const window = o.window ?? 4 * p.chunk;
    const from = o.from ?? 0;
    const raw = encodeFrame(FrameType.ACCEPT, { sid: offer.body.sid, epk: o.epk ?? eph.publicKey, oh: o.oh ?? digest(offer.raw), window, ...(o.from !== undefined ? { from } : {}) },
      { kind: 'sig', secretKey: o.signer ?? this.identity.secretKey });
    const behaviour: Behaviour = { ack: true, consume: true, receipt: true, ...o.behaviour };
    const s = new DeviceSession(this, {
      offerRaw: offer.raw, params: p, sid: offer.body.sid, gatewayEpk: offer.body.epk, ephemeralSecret: eph.secretKey, acceptRaw: raw,
      tx: o.tx, licence: o.licence, data: o.data, window, from, behaviour, z: o.z,
    });
    this.sessions.set(s.sidHex, s);
    await this.publish(raw, FrameType.ACCEPT);
    s.start();
    return s;
  }

  /**
   * Refuses an OFFER with ERROR ([LM-FRAME-9]): signed by the device (`auth` 'sig'), by another
   * key ('other'), or unauthenticated ('none'); `oh` names another OFFER; `tk` hands over a ticket.
   */
  async refuse(offer: OfferIn, code: number, o: { auth?: 'sig' | 'other' | 'none'; oh?: Uint8Array; tk?: Uint8Array; detail?: string } = {}): Promise<void> {
    const auth = o.auth ?? 'sig';
    const body = { sid: offer.body.sid, code, detail: o.detail ?? 'refused by the conformance suite', oh: o.oh ?? digest(offer.raw), ...(o.tk ? { tk: o.tk } : {}) };
    const frame = encodeFrame(FrameType.ERROR, body, auth === 'none' ? { kind: 'none' } : { kind: 'sig', secretKey: auth === 'sig' ? this.identity.secretKey : identityKeyPair().secretKey });
    await this.publish(frame, FrameType.ERROR);
  }

  /** Stops its sessions, clears its retained HELLO and disconnects. */
  async close(): Promise<void> {
    for (const s of this.sessions.values()) s.stop();
    if (this.helloPublished) await this.link.send(topics.deviceState(this.o.fleet, this.id), new Uint8Array(0), FrameType.HELLO, { retain: true }).catch(() => undefined);
    await this.link.close().catch(() => undefined);
  }
}
