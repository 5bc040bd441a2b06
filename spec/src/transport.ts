/**
 * @module link
 * A frame link over MQTT.js: publishes encoded frames at the QoS of SPEC.md §7.2 on the topics
 * of §10, hands received payloads to handlers, counts wire bytes. Used by the device SDK and
 * the gateway. Over TLS and mutual TLS too (`mqtts://`, {@link TlsOptions}): PEM files are checked
 * before connecting, and a failed handshake is a {@link TlsHandshakeError} that says what to check,
 * at the first connect (which it ends) and at reconnects (reported through `onError`).
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ConfigError, LmError, Reason, errorMessage } from './errors.js';
import type { FrameTypeId } from './frames.js';
import { type IdentityKey, type SigningKey, signingKey } from './keystore.js';
import { TlsHandshakeError, type TlsOptions, loadTls, tlsFailure, tlsFailureOf } from './tls.js';
import { FRAME_QOS } from './topics.js';
import { type RoleId, makeConnectToken } from './token.js';

export {
  type LoadedTls, type PemSource, type TlsFailure, type TlsOptions, TlsConfigError, TlsHandshakeError, commonName, loadTls, readCertificates, readKeyPair, readPrivateKey, tlsFailureOf,
} from './tls.js';

export interface LinkOptions {
  /**
   * broker URL; user information in it (`mqtt://user:pass@host`) is used only when `username`,
   * `password` and `token` do not say otherwise, and is never printed (errors redact it)
   */
  url: string;
  clientId: string;
  /** MQTT protocol version: 4 (3.1.1, default: aedes speaks only 3.1.1) or 5 */
  protocolVersion?: 4 | 5;
  will?: { topic: string; payload: Uint8Array; retain: boolean };
  username?: string;
  password?: Uint8Array | string;
  /** ms between reconnect attempts; default 500 */
  reconnectPeriod?: number;
  /**
   * prove the identity to a broker with the Live Matrix plugin: a fresh connect token per CONNECT
   * ([LM-BRK-1]), signed with the identity's seed (`secretKey`) or its key store (`key`)
   */
  token?: { id: string; role: RoleId } & ({ secretKey: Uint8Array } | { key: SigningKey });
  /** more brokers to fail over to, tried in turn on reconnect */
  servers?: { host: string; port: number }[];
  /** TLS and mutual TLS (the URL must be `mqtts://` or `wss://`); files are read and checked before connecting */
  tls?: TlsOptions;
}

/** How a device or gateway authenticates to its broker. */
export type BrokerAuth = 'token' | { username: string; password: string };

/** A payload as it arrived; `meta.retain` is set when the broker delivered a retained message, `meta.qos` the QoS it was delivered at, `meta.contentType` MQTT 5's Content Type when the publisher set one. */
export type PayloadHandler = (topic: string, payload: Uint8Array, meta: { retain: boolean; qos: number; contentType?: string }) => void;

/** Counters of what crossed the link. */
export interface LinkStats {
  framesOut: number;
  bytesOut: number;
  framesIn: number;
  bytesIn: number;
}

/**
 * @example
 * const link = await FrameLink.connect({ url: 'mqtt://127.0.0.1:1883', clientId: 'dev-1' });
 * link.onPayload((t, p) => ...); await link.subscribe(topic); await link.send(topic, bytes, FrameType.ACK);
 */
export class FrameLink {
  readonly stats: LinkStats = { framesOut: 0, bytesOut: 0, framesIn: 0, bytesIn: 0 };
  private readonly handlers: PayloadHandler[] = [];
  private readonly errorHandlers: ((e: Error) => void)[] = [];
  /** the latest error of the connection (a refused reconnect, a keepalive timeout); the link keeps reconnecting */
  lastError: Error | undefined;
  private readonly subscriptions = new Set<string>();
  private constructor(readonly client: MqttClient, readonly protocolVersion: 4 | 5) {
    // Hints, ACKs and KEYs are small and latency-bound: Nagle's algorithm would hold them back
    // behind unacknowledged segments. Every new connection (reconnects too) gets TCP_NODELAY.
    const noDelay = () => {
      const st = client.stream as { setNoDelay?: (v: boolean) => void } | undefined;
      if (typeof st?.setNoDelay === 'function') st.setNoDelay(true);
    };
    noDelay();
    client.on('connect', noDelay);
    // MQTT.js emits 'error' for a refused reconnect and a keepalive timeout: without a listener
    // that would throw out of its socket handler and end the process. A TLS failure of a
    // reconnect (a certificate expired since) is reported typed, not as OpenSSL's code.
    client.on('error', (raw: Error) => {
      const e = tlsFailureOf(raw) ?? raw;
      this.lastError = e;
      for (const h of this.errorHandlers) h(e);
    });
    client.on('message', (topic, payload, packet) => {
      this.stats.framesIn++;
      this.stats.bytesIn += payload.length;
      const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
      const contentType = packet.properties?.contentType;
      const meta = { retain: packet.retain, qos: packet.qos, ...(contentType !== undefined ? { contentType } : {}) };
      for (const h of this.handlers) h(topic, bytes, meta);
    });
  }

  static async connect(o: LinkOptions): Promise<FrameLink> {
    const protocolVersion = o.protocolVersion ?? 4;
    // User information in the URL is taken out of it: MQTT.js would let it override the
    // explicit user name and password (and a token), and the URL goes into error messages.
    const { url, username, password } = splitUserinfo(o.url);
    const opts: IClientOptions = {
      clientId: o.clientId,
      protocolVersion,
      clean: true,
      reconnectPeriod: o.reconnectPeriod ?? 500,
      connectTimeout: 10_000,
      keepalive: 30,
      resubscribe: true,
      // a refused reconnect (a token stale after a clock step, a registry being edited) is tried
      // again, not the end of the link
      reconnectOnConnackError: true,
    };
    if (username !== undefined) opts.username = username;
    if (password !== undefined) opts.password = password;
    if (o.username !== undefined) opts.username = o.username;
    if (o.password !== undefined) opts.password = typeof o.password === 'string' ? o.password : Buffer.from(o.password);
    const t = o.token;
    const tokenKey: SigningKey | undefined = t ? ('key' in t ? t.key : t.secretKey) : undefined;
    if (t && tokenKey) {
      opts.username = t.id;
      opts.password = Buffer.from(makeConnectToken(t.id, t.role, tokenKey));
    }
    if (o.servers) opts.servers = o.servers;
    if (o.will) opts.will = { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: 1, retain: o.will.retain };
    const secure = /^(mqtts|wss|ssl|tls):\/\//i.test(url);
    if (o.tls) {
      // MQTT.js would quietly switch an mqtt:// URL to TLS when given a certificate and key
      if (!secure) throw new ConfigError(`TLS options need an mqtts:// (or wss://) broker URL, got ${redactUrl(o.url)}`);
      Object.assign(opts, loadTls(o.tls)); // TlsConfigError before any connection
    }
    try {
      const client = await connectClient(url, opts, secure, opts.cert !== undefined);
      if (t && tokenKey) client.on('reconnect', () => {
        // a token is good for one CONNECT: its nonce must not repeat
        client.options.password = Buffer.from(makeConnectToken(t.id, t.role, tokenKey));
      });
      return new FrameLink(client, protocolVersion);
    } catch (e) {
      // never echo a secret: the URL without its user information ([LM-BRK-1] tokens and
      // passwords are credentials); the broker's refusal stays reachable as `cause`
      const where = `cannot connect to the MQTT broker at ${redactUrl(o.url)}`;
      // a TLS connection reset before CONNACK (a plain MQTT port that read a ClientHello, a broker
      // that refuses the handshake by hanging up) is a TLS failure too
      const reset = secure && ['ECONNRESET', 'EPIPE'].includes(String((e as { code?: unknown }).code));
      const tls = tlsFailureOf(e) ?? (reset ? tlsFailure('closed', errorMessage(e)) : undefined);
      if (tls) throw new TlsHandshakeError(tls.failure, tls.tlsCode, `${where}: ${tls.detail}`, { cause: tls.cause ?? e });
      throw new LmError(Reason.offline, `${where}: ${errorMessage(e)}`, { cause: e });
    }
  }

  /** Called with each error of the connection while the link reconnects by itself. */
  onError(h: (e: Error) => void): void {
    this.errorHandlers.push(h);
  }

  onPayload(h: PayloadHandler): void {
    this.handlers.push(h);
  }

  async subscribe(topic: string): Promise<void> {
    this.subscriptions.add(topic);
    await this.client.subscribeAsync(topic, { qos: 1 });
  }

  /** Publishes one frame ([LM-MQTT-1], [LM-MQTT-3]). */
  async send(topic: string, frame: Uint8Array, type: FrameTypeId, opts: { retain?: boolean; expirySeconds?: number } = {}): Promise<void> {
    this.stats.framesOut++;
    this.stats.bytesOut += frame.length;
    const properties = this.protocolVersion === 5
      ? { contentType: 'application/livematrix+cbor', ...(opts.expirySeconds ? { messageExpiryInterval: opts.expirySeconds } : {}) }
      : undefined;
    await this.client.publishAsync(topic, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), {
      qos: FRAME_QOS[type],
      retain: opts.retain ?? false,
      ...(properties ? { properties } : {}),
    });
  }

  get connected(): boolean {
    return this.client.connected;
  }

  async close(force = false): Promise<void> {
    await this.client.endAsync(force);
  }
}

/** LinkOptions fields for a BrokerAuth; the token is signed with the identity's seed, key pair or key store. */
export function authOptions(auth: BrokerAuth | undefined, id: string, role: RoleId, key: Uint8Array | IdentityKey): Partial<LinkOptions> {
  if (!auth) return {};
  if (auth === 'token') return { token: { id, role, key: key instanceof Uint8Array ? key : signingKey(key) } };
  return { username: auth.username, password: auth.password };
}

/**
 * mqtt.connectAsync, and one thing more for TLS: a broker that refuses a client certificate may
 * close the connection without an alert (Node's TLS server does, for a certificate of another
 * CA; AWS IoT does, MQTT.js issue 1776), and MQTT.js would then reconnect, silently, for ever. A
 * TLS connection closed before its first CONNACK ends the first connect with a
 * {@link TlsHandshakeError} instead: `client-certificate-refused` when one was presented. Later
 * drops reconnect as before.
 */
function connectClient(url: string, opts: IClientOptions, secure: boolean, clientCert: boolean): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, opts);
    const done = () => {
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    const onConnect = () => {
      done();
      resolve(client);
    };
    const onError = (e: Error) => {
      done();
      client.end(true);
      reject(e);
    };
    const onClose = () => {
      if (!secure) return; // a plain connection reconnects, as MQTT.js does
      done();
      client.end(true);
      reject(clientCert
        ? tlsFailure('client-certificate-refused', 'the broker closed the connection after the TLS handshake, before CONNACK')
        : tlsFailure('closed', 'the connection closed before CONNACK'));
    };
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

/**
 * The URL with any user information (user name, password) replaced by `***`, for messages:
 * everything between `://` and the last `@` goes (a password may hold an unencoded `@`).
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const scheme = url.indexOf('://');
  const from = scheme >= 0 ? scheme + 3 : 0;
  return at < from ? url : `${url.slice(0, from)}***${url.slice(at)}`;
}

/** Splits `scheme://user:pass@host...` into the URL without user information and its decoded parts. */
function splitUserinfo(url: string): { url: string; username?: string; password?: string } {
  if (!url.includes('@')) return { url };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // handed on, MQTT.js (or Node's deprecation warning for url.parse) would print it whole
    throw new LmError(Reason.offline, `the broker URL ${redactUrl(url)} does not parse; percent-encode the user information, or better, pass credentials apart from the URL`);
  }
  if (!u.username && !u.password) return { url };
  const decode = (x: string) => {
    try {
      return decodeURIComponent(x);
    } catch {
      return x;
    }
  };
  const username = decode(u.username);
  const password = decode(u.password);
  u.username = '';
  u.password = '';
  return { url: u.toString(), ...(username ? { username } : {}), ...(password ? { password } : {}) };
}
