/**
 * @module takeover
 * One connection per device identity ([LM-BRK-14], [LM-BRK-15], [LM-BRK-16]): when a client
 * authenticates as a device that already has a connection, whatever client id either uses and on
 * whichever instance of a cluster, the older connection is closed before the newer one is
 * accepted, its Last Will is dropped (the device is not offline: its newer connection is it),
 * both are counted, and an ALARM `tamper` is raised when one device's connections keep taking
 * each other over (3 in 60 s by default): a cloned identity key, or two processes sharing it.
 *
 * Only takeovers by another client id count towards the alarm: a client that reconnects with its
 * own client id (a network that dropped it, before the broker noticed) is MQTT's own session
 * takeover, not a second party. Gateways and services are exempt: an operator publishes the
 * revocation list as a gateway while it runs (`livematrix revoke`, [LM-REVOKE-4]), and tools
 * open a second connection of a gateway to read retained state.
 *
 * Across instances, each instance hears of the others' new clients on aedes' own
 * `$SYS/{broker}/new/clients` topic (the one aedes uses to end a client id's older connection on
 * another instance) and closes its local connections of that device. aedes itself closes a local
 * connection whose client id connected elsewhere, and may publish its Will before this module
 * hears of it; so the decision on a local client's Will is taken one turn of the event loop later.
 */
import type { Aedes, Client } from 'aedes';
import type { Metrics } from '@livematrix/spec/metrics';
import type { RegistryEntry } from './registry.js';

export interface TakeoverOptions {
  now: () => number;
  metrics: Metrics;
  log: (line: string) => void;
  /** the registry entry a client id belongs to ([LM-BRK-8]) */
  clientIdOwner: (clientId: string) => RegistryEntry | undefined;
  /** raises ALARM `tamper` about `e` on its fleet's alarm topic */
  alarm: (e: RegistryEntry, detail: string, observed: number, limit: number) => void;
  /** takeovers by another client id of one device within `windowMs` that raise the alarm; default 3 */
  threshold?: number;
  /** default 60000 */
  windowMs?: number;
}

export interface Takeovers {
  /**
   * `client` authenticated as `e`: closes e's older connections (a device's), and calls `accept`
   * once they are closed. A connection with the same client id is left to aedes, which closes
   * it itself before it registers the newer (and waits for that).
   */
  authenticated(client: Client, e: RegistryEntry, accept: () => void): void;
  /** `client` is registered (aedes' 'client' event) */
  registered(client: Client, e: RegistryEntry): void;
  /** `client` is gone (aedes' 'clientDisconnect' event) */
  gone(client: Client, e: RegistryEntry | undefined): void;
  /** Decides whether the Will of local `client`, about to be published, is dropped ([LM-BRK-15]); answers on a later turn. */
  willDropped(client: Client, answer: (dropped: boolean) => void): void;
}

const NEW_CLIENTS = '$SYS/+/new/clients';

/** The part of aedes' message emitter (mqemitter, mqemitter-redis) used here; aedes' types leave `mq` out. */
interface Emitter {
  on(topic: string, notify: (packet: { topic: string; payload: unknown }, cb: () => void) => void): void;
}

/** Wires the rule into `aedes`; returns the hooks the plugin calls. */
export function takeovers(aedes: Aedes, o: TakeoverOptions): Takeovers {
  const threshold = o.threshold ?? 3;
  const windowMs = o.windowMs ?? 60_000;
  /** a device's registered connections, by device id, oldest first */
  const live = new Map<string, Set<Client>>();
  /** connections closed for a newer one: their Wills are dropped */
  const takenOver = new WeakSet<Client>();
  /** client ids that connected on another instance, and when (pruned as it grows) */
  const elsewhere = new Map<string, number>();
  /** per device: times of takeovers by another client id within the window, and the last alarm */
  const history = new Map<string, { times: number[]; alarmed: number }>();

  const count = (e: RegistryEntry, same: boolean) => {
    o.metrics.inc('livematrix_takeovers_total', 'older connections of a device closed for a newer one of the same identity ([LM-BRK-14])', { role: e.role, client_id: same ? 'same' : 'other' });
    if (same) return;
    const n = o.now();
    let h = history.get(e.id);
    if (!h) {
      h = { times: [], alarmed: -Infinity };
      history.set(e.id, h);
    }
    h.times = h.times.filter((t) => n - t < windowMs);
    h.times.push(n);
    // [LM-BRK-16] at most one alarm per device and window
    if (h.times.length >= threshold && n - h.alarmed >= windowMs) {
      h.alarmed = n;
      o.alarm(e, `${h.times.length} connections of device ${e.id} closed within ${Math.round(windowMs / 1000)} s for a newer one with another client id: its identity key is in use by two clients (a cloned device, or two processes sharing it)`, h.times.length, threshold);
    }
    for (const [id, x] of history) if (n - x.alarmed >= windowMs && x.times.every((t) => n - t >= windowMs)) history.delete(id);
  };

  /** Closes the local connections of device `e` other than `except`, and those with client id `except` (aedes closes those). */
  const closeOlder = (e: RegistryEntry, newClientId: string, except: Client | undefined, done: () => void) => {
    const conns = [...(live.get(e.id) ?? [])].filter((c) => c !== except);
    let pending = 1;
    const finished = () => {
      if (--pending === 0) done();
    };
    for (const c of conns) {
      const same = c.id === newClientId;
      takenOver.add(c);
      count(e, same);
      o.log(`device ${e.id}: closing its connection ${c.id} for a newer one (${newClientId}) ([LM-BRK-14])`);
      if (same) continue; // aedes closes an older connection of the same client id itself, and waits for it
      pending++;
      c.close(finished);
    }
    finished();
  };

  // other instances' new clients ([LM-BRK-14] across a cluster)
  (aedes as unknown as { mq: Emitter }).mq.on(NEW_CLIENTS, (packet, cb) => {
    const server = packet.topic.split('/')[1];
    if (server === aedes.id) return cb();
    const clientId = Buffer.isBuffer(packet.payload) ? packet.payload.toString('utf8') : String(packet.payload);
    const e = o.clientIdOwner(clientId);
    if (e?.role !== 'device') return cb();
    const n = o.now();
    elsewhere.set(clientId, n);
    if (elsewhere.size > 1024) for (const [id, t] of elsewhere) if (n - t > 10_000) elsewhere.delete(id);
    closeOlder(e, clientId, undefined, () => cb());
  });

  return {
    authenticated(client, e, accept) {
      if (e.role !== 'device') return accept();
      closeOlder(e, client.id, client, accept);
    },
    registered(client, e) {
      if (e.role !== 'device') return;
      let s = live.get(e.id);
      if (!s) {
        s = new Set();
        live.set(e.id, s);
      }
      s.add(client);
    },
    gone(client, e) {
      const s = e && live.get(e.id);
      if (!e || !s) return;
      s.delete(client);
      if (s.size === 0) live.delete(e.id);
    },
    willDropped(client, answer) {
      if (takenOver.has(client)) return answer(true);
      // aedes may be closing it for a client id that connected on another instance, which this
      // module hears of on the same message, after aedes: look again on the next turn
      setImmediate(() => {
        const at = elsewhere.get(client.id);
        answer(takenOver.has(client) || (at !== undefined && o.now() - at < 10_000));
      });
    },
  };
}
