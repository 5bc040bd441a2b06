/**
 * @module plugin
 * The Live Matrix plugin for aedes: client authentication by connect token ([LM-BRK-1]),
 * per-role topic isolation ([LM-BRK-2]), frame checks ([LM-BRK-3]), rate alarms ([LM-BRK-4]),
 * registry reload and metrics ([LM-BRK-5]), Last Will checks ([LM-BRK-7]), client ids bound to
 * identities ([LM-BRK-8]), gateways kept to their devices ([LM-BRK-9]), the fleet's revocation
 * topic, where gateways publish REVOKE frames and devices read them ([LM-REVOKE-4]), and the service
 * inboxes of protected jobs, where gateways, stores, keys services and owners send requests that
 * name their publisher and read only their own ([LM-SVC-7]), and one connection per device, whose
 * older connection is closed without its Will and whose repeated takeovers raise ALARM `tamper`
 * ([LM-BRK-14] to [LM-BRK-16], takeover.ts). It wires aedes' own
 * hooks and keeps their semantics: refused CONNECTs carry `returnCode`, refused subscriptions are
 * negated (SUBACK 128). The maximum packet size ([LM-BRK-6]) is enforced by the listener, before
 * aedes parses a packet (packet-limit.ts).
 *
 * Every publish and delivery passes through here, so the per-frame path allocates little: the
 * frame check scans in place (frame-check.ts), a connection's topic decisions are kept per topic,
 * and forwarded frames are counted in plain numbers that reach `metrics` when it is read (the
 * plugin wraps that instance's `render` and `get`).
 */
import type { Aedes, AuthenticateError, Client, PublishPacket } from 'aedes';
import { FrameType, LmError, clipUtf8, ROLE_NAMES, Reason, decodeConnectToken, decodeFrame, encodeFrame, equalBytes, reasonName, topics, verifyConnectToken } from '@livematrix/spec';
import { type TopicClass, checkFrame, topicClass } from './frame-check.js';
import { Metrics } from '@livematrix/spec/metrics';
import { type Registry, type RegistryEntry, aclFor, clientIdPrefix, filterWithin, topicMatches } from './registry.js';
import { takeovers } from './takeover.js';
import { type WillMessage, checkWill, lateWill, retainedReader, storedWillClientId } from './wills.js';

export interface PluginOptions {
  registry: Registry;
  /** largest difference between a token's time and the broker's, ms; default 30000 */
  maxSkewMs?: number;
  /** how long accepted nonces are remembered, ms; default 60000 */
  nonceWindowMs?: number;
  now?: () => number;
  log?: (line: string) => void;
  metrics?: Metrics;
}

export interface LivematrixPlugin {
  readonly metrics: Metrics;
  readonly registry: Registry;
  /** the registry entry a connected client authenticated as */
  identity(client: Client): RegistryEntry | undefined;
  /** re-reads the registry file; connected clients of removed entries are disconnected */
  reload(): void;
}

/** What the plugin keeps per authenticated connection, beside its identity (`who`). */
interface ClientState {
  /** [LM-BRK-4] the current 1 s window: its start, frames and bytes */
  windowStart: number;
  frames: number;
  bytes: number;
  /** publish decisions by topic ([LM-BRK-2], and the topic's class for the frame check) */
  routes: Map<string, { allowed: boolean; where: TopicClass }>;
  /** delivery decisions by topic ([LM-BRK-9]) */
  reads: Map<string, boolean>;
}

/** Topics whose decisions a connection keeps (a device uses two or three; a gateway one per device it serves). */
const TOPIC_CACHE = 256;

/** A Will aedes is publishing for its own client carries it as `client.will` (aedes' types leave it out). */
type WillHolder = Client & { will?: unknown };

const DROPPED_TOPIC = '$LM/dropped';

/** CONNACK return codes of MQTT 3.1.1 the plugin refuses with */
const BAD_CREDENTIALS = 4;
const IDENTIFIER_REJECTED = 2;
const NOT_AUTHORIZED = 5;

function authError(message: string, returnCode: number): AuthenticateError {
  const e = new Error(message) as AuthenticateError;
  e.returnCode = returnCode;
  return e;
}

interface Acl {
  publish: string[];
  /** the topics the client may receive */
  read: string[];
  /** the filters a SUBSCRIBE may ask for: `read`, or for a gateway with a device list the fleet-wide
   * filters of [LM-BRK-2], whose deliveries are then narrowed to `read` ([LM-BRK-9]) */
  subscribe: string[];
}

/**
 * Wires the plugin into an aedes instance.
 * @example
 * const aedes = await Aedes.createBroker(); const lm = livematrixPlugin(aedes, { registry: Registry.load('registry.json') });
 */
export function livematrixPlugin(aedes: Aedes, o: PluginOptions): LivematrixPlugin {
  const registry = o.registry;
  const metrics = o.metrics ?? new Metrics();
  const now = o.now ?? Date.now;
  const maxSkew = o.maxSkewMs ?? 30_000;
  const window = o.nonceWindowMs ?? 60_000;
  const log = o.log ?? (() => undefined);
  const who = new WeakMap<Client, RegistryEntry>();
  const state = new WeakMap<Client, ClientState>();
  const nonces = new Map<string, number>();
  const live = new Set<Client>();
  const retained = retainedReader(aedes); // [LM-STATE-8]
  /** the Will each CONNECT carried, seen in preConnect (aedes keeps it private until authenticated) */
  const connectWills = new WeakMap<Client, WillMessage | null>();
  const acls = new WeakMap<RegistryEntry, Acl>();
  const acl = (e: RegistryEntry): Acl => {
    let a = acls.get(e);
    if (!a) {
      const own = aclFor(e);
      a = { publish: own.publish, read: own.subscribe, subscribe: e.devices ? aclFor({ ...e, devices: undefined }).subscribe : own.subscribe };
      acls.set(e, a);
    }
    return a;
  };
  const warn = () => {
    for (const w of registry.warnings) log(`registry warning: ${w}`);
  };
  warn();

  metrics.gauge('livematrix_clients', 'connected, authenticated clients', () => live.size);
  aedes.on('client', (c) => {
    live.add(c);
    const e = who.get(c);
    if (e) takeover.registered(c, e);
  });
  aedes.on('clientDisconnect', (c) => {
    live.delete(c);
    takeover.gone(c, who.get(c));
  });

  // [LM-BRK-5] forwarded frames and bytes are counted here and added to `metrics` before anyone
  // reads it (its render and get), not one Metrics.inc per frame: labelling a count costs more than
  // the frame check itself
  const framesByType: number[] = [];
  let bytesForwarded = 0;
  const flush = () => {
    for (let t = 0; t < framesByType.length; t++) {
      const n = framesByType[t];
      if (n) metrics.inc('livematrix_frames_total', 'frames forwarded', { type: String(t) }, n);
      framesByType[t] = 0;
    }
    if (bytesForwarded) metrics.inc('livematrix_bytes_total', 'payload bytes forwarded', {}, bytesForwarded);
    bytesForwarded = 0;
  };
  const render = metrics.render;
  const get = metrics.get;
  metrics.render = () => {
    flush();
    return render.call(metrics);
  };
  metrics.get = (name, labels) => {
    flush();
    return get.call(metrics, name, labels);
  };

  const refuse = (reason: string, done: (e: AuthenticateError | null, ok: boolean | null) => void, detail: string, returnCode = BAD_CREDENTIALS) => {
    metrics.inc('livematrix_connections_refused_total', 'CONNECTs refused, by reason', { reason });
    log(`refused CONNECT: ${detail}`);
    done(authError(detail, returnCode), null);
  };

  const previousPreConnect = aedes.preConnect;
  aedes.preConnect = (client, packet, cb) => {
    connectWills.set(client, packet.will ? { topic: packet.will.topic, payload: packet.will.payload } : null);
    previousPreConnect.call(aedes, client, packet, cb);
  };

  aedes.authenticate = (client, username, password, done) => {
    try {
      if (!password) return refuse('no-token', done, 'no connect token');
      const t = decodeConnectToken(new Uint8Array(password));
      const e = registry.get(t.id);
      if (!e) return refuse('unknown-id', done, `"${t.id}" is not in the registry`);
      if (username !== t.id) return refuse('impersonation', done, `user name "${username ?? ''}" differs from the token's id "${t.id}"`);
      if (ROLE_NAMES[t.role] !== e.role) return refuse('role', done, `"${t.id}" is registered as ${e.role}`);
      if (!verifyConnectToken(t, e.publicKey)) return refuse('signature', done, `token of "${t.id}" is not signed by its registered key`);
      const n = now();
      if (Math.abs(n - t.time) > maxSkew) return refuse('stale', done, `token of "${t.id}" is ${Math.round((n - t.time) / 1000)} s old`);
      for (const [k, exp] of nonces) if (exp < n) nonces.delete(k);
      const key = Buffer.from(t.nonce).toString('hex');
      if (nonces.has(key)) return refuse('replay', done, `token nonce of "${t.id}" was used before`);
      nonces.set(key, n + window); // spent from here on, even if the CONNECT is refused below
      // [LM-BRK-8] the client id must belong to this identity: no taking over another's session
      if (registry.clientIdOwner(client.id)?.id !== e.id) return refuse('client-id', done, `client id "${client.id}" does not belong to "${e.id}" (use ${clientIdPrefix(e)}...)`, IDENTIFIER_REJECTED);
      // [LM-BRK-7] a Last Will is a publish on the client's behalf: same topics, a valid frame
      const will = connectWills.get(client);
      if (will) {
        const w = checkWill(e.id, acl(e).publish, will);
        if (!w.ok) return refuse(w.reason, done, w.detail, NOT_AUTHORIZED);
      }
      who.set(client, e);
      metrics.inc('livematrix_connections_total', 'authenticated CONNECTs', { role: e.role });
      // [LM-BRK-14] a device's older connection is closed before this one is accepted
      takeover.authenticated(client, e, () => done(null, true));
    } catch (err) {
      refuse('malformed', done, err instanceof LmError ? err.message : 'bad token');
    }
  };

  /** Publishes an ALARM (NONE) about `e` on its fleet's alarm topic: `rate` ([LM-BRK-4]) or `tamper` for takeovers ([LM-BRK-16]). */
  const alarm = (code: typeof Reason.rate | typeof Reason.tamper, why: string, e: RegistryEntry, detail: string, observed: number, limit: number) => {
    metrics.inc('livematrix_alarms_total', 'alarms raised, by reason', { reason: why });
    log(`ALARM ${reasonName(code)} ${e.id}: ${detail}`);
    // [LM-ALARM-6]: the alarm names the client's registry id
    const payload = encodeFrame(FrameType.ALARM, { code, detail: clipUtf8(`${e.id}: ${detail}`, 256), time: now(), observed: Math.floor(observed), limit: Math.floor(limit), device: e.id }, { kind: 'none' });
    aedes.publish({ cmd: 'publish', topic: topics.alarm(e.fleet), payload: Buffer.from(payload), qos: 1, retain: false, dup: false } as PublishPacket, () => undefined);
  };

  const takeover = takeovers(aedes, {
    now, metrics, log,
    clientIdOwner: (id) => registry.clientIdOwner(id),
    alarm: (e, detail, observed, limit) => alarm(Reason.tamper, 'takeover', e, detail, observed, limit),
  });
  /** [LM-BRK-15] whether `packet` is the Will of a local client closed for a newer connection of its device */
  const takenOver = (client: Client | null, packet: PublishPacket): Promise<boolean> =>
    client && (client as WillHolder).will === packet ? new Promise((r) => takeover.willDropped(client, r)) : Promise.resolve(false);

  const stateOf = (c: Client): ClientState => {
    let s = state.get(c);
    if (!s) {
      s = { windowStart: -Infinity, frames: 0, bytes: 0, routes: new Map(), reads: new Map() };
      state.set(c, s);
    }
    return s;
  };

  /** Drops a publish: it goes to a topic nobody receives ($LM/ is never forwarded) and is not retained. */
  const drop = (packet: PublishPacket) => {
    packet.topic = DROPPED_TOPIC;
    packet.retain = false;
  };

  /**
   * [LM-BRK-7] A Will about to be published, by this instance or for a dead one: checked against
   * the identity its client id belongs to now; a failing one is dropped, never an error (aedes'
   * _clearWills would raise it as an 'error' event and keep the Will for the next round).
   */
  const authorizeWill = (clientId: string, packet: PublishPacket) => {
    const e = registry.clientIdOwner(clientId);
    const w = e ? checkWill(e.id, acl(e).publish, { topic: packet.topic, payload: packet.payload }) : { ok: false as const, reason: 'will-owner', detail: `Last Will of client id "${clientId}", which belongs to no registered identity` };
    if (w.ok) {
      metrics.inc('livematrix_wills_total', 'Last Wills published');
      return;
    }
    metrics.inc('livematrix_wills_dropped_total', 'Last Wills dropped at publication, by reason', { reason: w.reason });
    log(`dropped ${w.detail}`);
    drop(packet);
  };

  aedes.authorizePublish = (client, packet, cb) => {
    try {
      const willOf = client ? (connectWills.get(client) === packet ? client.id : storedWillClientId(packet)) : (storedWillClientId(packet) ?? '');
      if (willOf !== undefined) {
        // [LM-BRK-15] the Will of a connection closed for a newer one of its device is dropped;
        // [LM-STATE-8] a late Will of an earlier connection is dropped before it replaces a newer HELLO
        return void takenOver(client, packet).then(async (took) => {
          if (took) {
            metrics.inc('livematrix_wills_dropped_total', 'Last Wills dropped at publication, by reason', { reason: 'takeover' });
            log(`dropped the Last Will of client id "${willOf}": its connection was closed for a newer one of its device ([LM-BRK-15])`);
            return drop(packet);
          }
          const late = await lateWill(packet, retained);
          if (late) {
            metrics.inc('livematrix_wills_dropped_total', 'Last Wills dropped at publication, by reason', { reason: 'late' });
            log(`dropped ${late}`);
            return drop(packet);
          }
          authorizeWill(willOf, packet);
        }).catch((err: unknown) => {
          log(`dropped Last Will of client id "${willOf}": ${String(err)}`);
          drop(packet);
        }).finally(() => cb(null));
      }
      if (!client) return cb(new Error('publish without a client'));
      if (packet.topic.startsWith('$')) return cb(new Error(`${packet.topic}: reserved topic`));
      const e = who.get(client);
      if (!e) return cb(new Error('not authenticated'));
      const payload = packet.payload as Buffer;
      const s = stateOf(client);
      // [LM-BRK-4] rates over 1 s windows
      const n = now();
      if (n - s.windowStart >= 1000) {
        s.windowStart = n;
        s.frames = 0;
        s.bytes = 0;
      }
      s.frames++;
      s.bytes += payload.length;
      if (s.frames > e.limits.framesPerSecond || s.bytes > e.limits.bytesPerSecond) {
        const frames = s.frames > e.limits.framesPerSecond;
        alarm(Reason.rate, 'rate', e, frames ? `${s.frames} frames in 1 s over ${e.limits.framesPerSecond}` : `${s.bytes} bytes in 1 s over ${e.limits.bytesPerSecond}`, frames ? s.frames : s.bytes, frames ? e.limits.framesPerSecond : e.limits.bytesPerSecond);
        s.windowStart = -Infinity;
        return cb(new Error('rate limit exceeded')); // aedes closes the connection
      }
      // [LM-BRK-2], decided once per topic
      const topic = packet.topic;
      let route = s.routes.get(topic);
      if (route === undefined) {
        route = { allowed: acl(e).publish.some((f) => topicMatches(f, topic)), where: topicClass(topic) };
        if (s.routes.size >= TOPIC_CACHE) s.routes.clear();
        s.routes.set(topic, route);
      }
      if (!route.allowed) {
        metrics.inc('livematrix_publish_denied_total', 'publishes outside the client\'s topics', { role: e.role });
        return cb(new Error(`${e.id} may not publish to ${topic}`));
      }
      // [LM-BRK-3] frame check: dropped and counted, never forwarded or retained, no disconnect;
      // on the revocation topic only REVOKE passes ([LM-REVOKE-4])
      const c = checkFrame(topic, route.where, payload);
      const forged = c.ok === true && c.type === FrameType.SVC_REQ && !requesterIs(e, payload);
      if (c.ok !== true || forged) {
        const reason = forged ? 'svc-from' : c.ok === false ? reasonName(c.reason) : 'not-a-frame';
        metrics.inc('livematrix_frames_dropped_total', 'payloads dropped by the frame check, by reason', { reason });
        drop(packet);
        return cb(null);
      }
      framesByType[c.type] = (framesByType[c.type] ?? 0) + 1;
      bytesForwarded += payload.length;
      cb(null);
    } catch (err) {
      // never let a hook throw inside the broker
      cb(err instanceof Error ? err : new Error(String(err)));
    }
  };

  /**
   * [LM-SVC-7] A service request names its requester (its inbox gets the answer) and its key: both
   * must be the publisher's, so that no client can have answers sent to another's inbox.
   */
  const requesterIs = (e: RegistryEntry, payload: Buffer): boolean => {
    const f = decodeFrame(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
    return f.type === FrameType.SVC_REQ && f.body.from === e.id && equalBytes(f.body.pk, e.publicKey);
  };

  aedes.authorizeSubscribe = (client, sub, cb) => {
    const e = who.get(client);
    if (!e || !filterWithin(sub.topic, acl(e).subscribe)) {
      metrics.inc('livematrix_subscribe_denied_total', 'subscriptions refused (SUBACK 128)', { role: e?.role ?? 'unknown' });
      return cb(null, null); // negated: SUBACK 128, connection kept
    }
    cb(null, sub);
  };

  aedes.authorizeForward = (client, packet) => {
    const topic = packet.topic;
    if (topic.startsWith('$LM/')) return null;
    // [LM-BRK-9] a gateway's fleet-wide subscription delivers only its own devices' topics,
    // decided once per topic
    const e = who.get(client);
    if (!e) return packet;
    const s = stateOf(client);
    let ok = s.reads.get(topic);
    if (ok === undefined) {
      ok = acl(e).read.some((f) => topicMatches(f, topic));
      if (s.reads.size >= TOPIC_CACHE) s.reads.clear();
      s.reads.set(topic, ok);
    }
    return ok ? packet : null;
  };

  return {
    metrics,
    registry,
    identity: (c) => who.get(c),
    reload: () => {
      registry.reload();
      warn();
      for (const c of live) {
        const e = who.get(c);
        const now2 = e ? registry.get(e.id) : undefined;
        // [LM-BRK-8] a new identity may now own a connected client's id
        if (e && (!now2 || !equalBytes(now2.publicKey, e.publicKey) || now2.role !== e.role || now2.fleet !== e.fleet || registry.clientIdOwner(c.id) !== now2)) {
          log(`registry reload: disconnecting ${e.id}`);
          c.close();
        } else if (e && now2) {
          who.set(c, now2);
          const s = state.get(c); // its topics are decided again under the new entry
          s?.routes.clear();
          s?.reads.clear();
        }
      }
    },
  };
}

