/**
 * @module plugin
 * The Live Matrix plugin for aedes: client authentication by connect token ([LM-BRK-1]),
 * per-role topic isolation ([LM-BRK-2]), frame checks ([LM-BRK-3]), rate alarms ([LM-BRK-4]),
 * registry reload and metrics ([LM-BRK-5]). It wires aedes' own hooks and keeps their semantics:
 * refused CONNECTs carry `returnCode`, refused subscriptions are negated (SUBACK 128).
 */
import type { Aedes, AuthenticateError, Client, PublishPacket } from 'aedes';
import { FrameType, LmError, Reason, decodeConnectToken, encodeFrame, equalBytes, reasonName, topics, verifyConnectToken } from '@livematrix/spec';
import { checkPublish } from './frame-check.js';
import { Metrics } from './metrics.js';
import { type Registry, type RegistryEntry, aclFor, filterWithin, topicMatches } from './registry.js';

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

interface Rate {
  windowStart: number;
  frames: number;
  bytes: number;
}

const DROPPED_TOPIC = '$LM/dropped';

function authError(message: string): AuthenticateError {
  const e = new Error(message) as AuthenticateError;
  e.returnCode = 4; // bad user name or password
  return e;
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
  const rates = new WeakMap<Client, Rate>();
  const nonces = new Map<string, number>();
  const live = new Set<Client>();

  metrics.gauge('livematrix_clients', 'connected, authenticated clients', () => live.size);
  aedes.on('client', (c) => live.add(c));
  aedes.on('clientDisconnect', (c) => live.delete(c));

  const refuse = (reason: string, done: (e: AuthenticateError | null, ok: boolean | null) => void, detail: string) => {
    metrics.inc('livematrix_connections_refused_total', 'CONNECTs refused, by reason', { reason });
    log(`refused CONNECT: ${detail}`);
    done(authError(detail), null);
  };

  aedes.authenticate = (client, username, password, done) => {
    try {
      if (!password) return refuse('no-token', done, 'no connect token');
      const t = decodeConnectToken(new Uint8Array(password));
      const e = registry.get(t.id);
      if (!e) return refuse('unknown-id', done, `"${t.id}" is not in the registry`);
      if (username !== t.id) return refuse('impersonation', done, `user name "${username ?? ''}" differs from the token's id "${t.id}"`);
      if ((t.role === 1 ? 'device' : 'gateway') !== e.role) return refuse('role', done, `"${t.id}" is registered as ${e.role}`);
      if (!verifyConnectToken(t, e.publicKey)) return refuse('signature', done, `token of "${t.id}" is not signed by its registered key`);
      const n = now();
      if (Math.abs(n - t.time) > maxSkew) return refuse('stale', done, `token of "${t.id}" is ${Math.round((n - t.time) / 1000)} s old`);
      for (const [k, exp] of nonces) if (exp < n) nonces.delete(k);
      const key = Buffer.from(t.nonce).toString('hex');
      if (nonces.has(key)) return refuse('replay', done, `token nonce of "${t.id}" was used before`);
      nonces.set(key, n + window);
      who.set(client, e);
      metrics.inc('livematrix_connections_total', 'authenticated CONNECTs', { role: e.role });
      done(null, true);
    } catch (err) {
      refuse('malformed', done, err instanceof LmError ? err.message : 'bad token');
    }
  };

  const alarm = (e: RegistryEntry, detail: string, observed: number, limit: number) => {
    metrics.inc('livematrix_alarms_total', 'rate alarms raised', { reason: 'rate' });
    log(`ALARM rate ${e.id}: ${detail}`);
    const payload = encodeFrame(FrameType.ALARM, { code: Reason.rate, detail: `${e.id}: ${detail}`.slice(0, 256), time: now(), observed: Math.floor(observed), limit: Math.floor(limit) }, { kind: 'none' });
    aedes.publish({ cmd: 'publish', topic: topics.alarm(e.fleet), payload: Buffer.from(payload), qos: 1, retain: false, dup: false } as PublishPacket, () => undefined);
  };

  aedes.authorizePublish = (client, packet, cb) => {
    try {
      if (!client) return cb(null); // an obsolete Last Will, already checked when it was set
      if (packet.topic.startsWith('$')) return cb(new Error(`${packet.topic}: reserved topic`));
      const e = who.get(client);
      if (!e) return cb(new Error('not authenticated'));
      const payload = packet.payload as Buffer;
      // [LM-BRK-4] rates over 1 s windows
      const n = now();
      let r = rates.get(client);
      if (!r || n - r.windowStart >= 1000) {
        r = { windowStart: n, frames: 0, bytes: 0 };
        rates.set(client, r);
      }
      r.frames++;
      r.bytes += payload.length;
      if (r.frames > e.limits.framesPerSecond || r.bytes > e.limits.bytesPerSecond) {
        const frames = r.frames > e.limits.framesPerSecond;
        alarm(e, frames ? `${r.frames} frames in 1 s over ${e.limits.framesPerSecond}` : `${r.bytes} bytes in 1 s over ${e.limits.bytesPerSecond}`, frames ? r.frames : r.bytes, frames ? e.limits.framesPerSecond : e.limits.bytesPerSecond);
        rates.delete(client);
        return cb(new Error('rate limit exceeded')); // aedes closes the connection
      }
      // [LM-BRK-2]
      if (!aclFor(e).publish.some((f) => topicMatches(f, packet.topic))) {
        metrics.inc('livematrix_publish_denied_total', 'publishes outside the client\'s topics', { role: e.role });
        return cb(new Error(`${e.id} may not publish to ${packet.topic}`));
      }
      // [LM-BRK-3] frame check: dropped and counted, never forwarded or retained, no disconnect
      const c = checkPublish(packet.topic, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
      if (c.ok !== true) {
        const reason = c.ok === false ? reasonName(c.reason) : 'not-a-frame';
        metrics.inc('livematrix_frames_dropped_total', 'payloads dropped by the frame check, by reason', { reason });
        packet.topic = DROPPED_TOPIC;
        packet.retain = false;
        return cb(null);
      }
      metrics.inc('livematrix_frames_total', 'frames forwarded', { type: String(c.type) });
      metrics.inc('livematrix_bytes_total', 'payload bytes forwarded', {}, payload.length);
      cb(null);
    } catch (err) {
      // never let a hook throw inside the broker
      cb(err instanceof Error ? err : new Error(String(err)));
    }
  };

  aedes.authorizeSubscribe = (client, sub, cb) => {
    const e = who.get(client);
    if (!e || !filterWithin(sub.topic, aclFor(e).subscribe)) {
      metrics.inc('livematrix_subscribe_denied_total', 'subscriptions refused (SUBACK 128)', { role: e?.role ?? 'unknown' });
      return cb(null, null); // negated: SUBACK 128, connection kept
    }
    cb(null, sub);
  };

  aedes.authorizeForward = (_client, packet) => (packet.topic.startsWith('$LM/') ? null : packet);

  return {
    metrics,
    registry,
    identity: (c) => who.get(c),
    reload: () => {
      registry.reload();
      for (const c of live) {
        const e = who.get(c);
        const now2 = e ? registry.get(e.id) : undefined;
        if (e && (!now2 || !equalBytes(now2.publicKey, e.publicKey) || now2.role !== e.role || now2.fleet !== e.fleet)) {
          log(`registry reload: disconnecting ${e.id}`);
          c.close();
        } else if (e && now2) who.set(c, now2);
      }
    },
  };
}

