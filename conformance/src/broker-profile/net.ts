/**
 * @module broker-profile/net
 * The suite's MQTT connections to the broker under test (MQTT 3.1.1, whose CONNACK return codes
 * SPEC.md §10.1 names): connecting as one of the target's identities, with a connect token or
 * its credentials, or with a token or client id of the test's choosing; what each connection
 * received; SUBACK codes; publishes that settle (acknowledged, or the connection closed).
 */
import { LmError, Role, errorMessage, makeConnectToken, randomBytes, toHex } from '@livematrix/spec';
import { FrameLink } from '@livematrix/spec/transport';
import { until } from '../wait.js';
import type { BrokerIdentity, BrokerTarget } from './target.js';

type MqttClient = FrameLink['client'];

/** A message a connection received. */
export interface Received {
  topic: string;
  payload: Uint8Array;
  qos: number;
  retain: boolean;
}

/** The broker refused a CONNECT: `returnCode` is the CONNACK's (undefined when it closed without one). */
export class ConnectRefused extends Error {
  override name = 'ConnectRefused';
  constructor(readonly returnCode: number | undefined, message: string) {
    super(message);
  }
}

/** One connection of the suite. */
export interface Conn {
  readonly label: string;
  readonly clientId: string;
  readonly client: MqttClient;
  /** every message received, in order */
  readonly received: Received[];
  /** resolves when the connection closes (the broker closed it, or the suite did) */
  readonly closed: Promise<void>;
  isClosed(): boolean;
  /** waits until a received message satisfies `pred` */
  waitFor(pred: (m: Received) => boolean, what: string, ms?: number): Promise<Received>;
  /** ends the connection at once (MQTT.js' forced end: no DISCONNECT is sent, so a Will set on it is published) */
  end(): Promise<void>;
  /** drops the TCP connection without a DISCONNECT, as a crash would (the Will is published) */
  drop(): void;
}

export interface ConnectOptions {
  /** client id; default `lm-dev-{id}-{random}` or `lm-gw-{id}-{random}` ([LM-BRK-8]) */
  clientId?: string;
  /** a connect token of the test's own (a forged one, a stale one, ...); default a fresh one of the identity */
  token?: Uint8Array;
  /** no password at all */
  noPassword?: boolean;
  username?: string;
  will?: { topic: string; payload: Uint8Array; retain: boolean };
}

/** The connections of one test, closed together at its end. */
export class Connections {
  private readonly open: Conn[] = [];
  constructor(readonly target: BrokerTarget) {}

  /** The default client id of an identity ([LM-BRK-8]): `lm-dev-{id}-{suffix}` or `lm-gw-{id}-{suffix}`. */
  clientIdOf(who: BrokerIdentity, suffix = toHex(randomBytes(4))): string {
    return `lm-${who.role === 'device' ? 'dev' : 'gw'}-${who.id}-${suffix}`;
  }

  /**
   * Connects as `who`: with its credentials when the target has them and the test gives no
   * token of its own, otherwise with a connect token ([LM-BRK-1]). Throws ConnectRefused.
   */
  async as(who: BrokerIdentity, o: ConnectOptions = {}): Promise<Conn> {
    const clientId = o.clientId ?? this.clientIdOf(who);
    const useCredentials = who.credentials && !o.token && !o.noPassword;
    const username = o.username ?? (useCredentials ? who.credentials?.username : who.id);
    const password = o.noPassword ? undefined : useCredentials ? who.credentials?.password : (o.token ?? makeConnectToken(who.id, Role[who.role], who.secretKey));
    let link: FrameLink;
    try {
      link = await FrameLink.connect({
        url: this.target.url, clientId, protocolVersion: 4, reconnectPeriod: 0,
        ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}), ...(o.will ? { will: o.will } : {}),
      });
    } catch (e) {
      const cause = e instanceof LmError ? e.cause : e;
      const code = (cause as { code?: unknown } | undefined)?.code;
      // a system error (ECONNREFUSED, ...) is no answer of the broker: the run cannot go on
      if (typeof code === 'string') throw new Error(`cannot reach the broker at ${this.target.url}: ${errorMessage(cause)}`);
      throw new ConnectRefused(typeof code === 'number' ? code : undefined, `CONNECT of ${clientId} refused: ${errorMessage(cause)}`);
    }
    const conn = wrap(`${who.id} (${clientId})`, clientId, link.client, this.target.waitMs);
    this.open.push(conn);
    return conn;
  }

  /**
   * Tries a CONNECT that the broker must refuse: resolves with its return code, or with 0 when the
   * broker accepted it (the connection is then closed again at once).
   */
  async refusal(who: BrokerIdentity, o: ConnectOptions): Promise<number | undefined> {
    try {
      const c = await this.as(who, o);
      await c.end();
      return 0;
    } catch (e) {
      if (e instanceof ConnectRefused) return e.returnCode;
      throw e;
    }
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((c) => c.end().catch(() => undefined)));
  }
}

function wrap(label: string, clientId: string, client: MqttClient, waitMs: number): Conn {
  const received: Received[] = [];
  let isClosed = false;
  const closed = new Promise<void>((r) => client.once('close', () => {
    isClosed = true;
    r();
  }));
  client.on('message', (topic, payload, packet) => {
    received.push({ topic, payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), qos: packet.qos, retain: packet.retain });
  });
  return {
    label, clientId, client, received, closed,
    isClosed: () => isClosed,
    waitFor: (pred, what, ms = waitMs) => until(() => received.find(pred), ms, `${label} to receive ${what}`),
    end: async () => {
      if (isClosed) return;
      await client.endAsync(true).catch(() => undefined);
    },
    drop: () => {
      const s = client.stream as { destroy?: () => void } | undefined;
      s?.destroy?.();
    },
  };
}

/**
 * The SUBACK return code for one filter at QoS 1: the granted QoS (0, 1, 2) or 128 (refused);
 * undefined when the connection closed instead.
 */
export async function suback(c: Conn, filter: string): Promise<number | undefined> {
  if (c.isClosed()) return undefined;
  const answer = new Promise<number | undefined>((res) => {
    // on a refusal MQTT.js hands back the requested QoS in `granted`: the SUBACK packet says what the broker answered
    c.client.subscribe(filter, { qos: 1 }, (err, _granted, packet) => {
      const g = packet?.granted[0];
      if (typeof g === 'number') return res(g);
      const code = (err as { code?: unknown } | null | undefined)?.code;
      res(typeof code === 'number' ? code : undefined);
    });
  });
  return Promise.race([answer, c.closed.then(() => undefined)]);
}

/**
 * Publishes at QoS 1 and waits until the broker has taken the publish: its PUBACK, or the broker
 * closing the connection for it (a broker may disconnect a client for a publish it refuses).
 */
export async function publishSettled(c: Conn, topic: string, payload: Uint8Array, retain = false): Promise<'acked' | 'closed'> {
  if (c.isClosed()) return 'closed';
  const acked = c.client.publishAsync(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos: 1, retain }).then(() => 'acked' as const, () => 'closed' as const);
  return Promise.race([acked, c.closed.then(() => 'closed' as const)]);
}

/** True when `payload` holds the 16 bytes `sidHex` anywhere (also in a payload that is no frame). */
export function carries(payload: Uint8Array, sidHex: string): boolean {
  return Buffer.from(payload).includes(Buffer.from(sidHex, 'hex'));
}
