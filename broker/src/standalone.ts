/**
 * @module standalone
 * A standalone Live Matrix broker: aedes with the plugin on TCP, optional TLS (with client
 * certificates: tls-listener.ts) and WebSocket listeners, a Prometheus endpoint, registry reload
 * on SIGHUP or file change, graceful shutdown. Every listener enforces the maximum packet size
 * before aedes parses a packet ([LM-BRK-6]).
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type Socket, createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, createServer as createTlsServer } from 'node:tls';
import { Aedes, type AedesOptions } from 'aedes';
import aedesPersistenceRedis from 'aedes-persistence-redis';
import mqemitterRedis from 'mqemitter-redis';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { LmError, Reason, ConfigError, errorMessage } from '@livematrix/spec';
import { Metrics } from '@livematrix/spec/metrics';
import { limitPacketSize, maxPacketSizeOption, type PacketViolation } from './packet-limit.js';
import { type LivematrixPlugin, livematrixPlugin } from './plugin.js';
import { Registry } from './registry.js';
import { ClientCertificates, type TlsListenerConfig, tlsServerOptions } from './tls-listener.js';

export interface BrokerConfig {
  host?: string;
  port?: number;
  /**
   * plain MQTT over TCP on `port`; default true; false (with `tls`) for a broker that speaks TLS
   * only. With `tls.requireClientCert` every CONNECT on it (and on `ws`) is refused: neither
   * carries a client certificate (the broker logs so at start)
   */
  tcp?: boolean;
  /**
   * a TLS listener; with `ca`, client certificates (mutual TLS with `requireClientCert`). With a
   * registry, a client certificate's CN must be the identity the client connects as (SPEC §10.1)
   */
  tls?: TlsListenerConfig;
  ws?: { port: number };
  metrics?: { port: number };
  /** registry file; without one the broker runs without authentication (development only) */
  registry?: string;
  /** redis://host:port shared by several broker instances (mqemitter-redis, aedes-persistence-redis) */
  redis?: string;
  /**
   * largest MQTT packet a client may send, bytes (fixed header included); a connection that
   * declares a larger one is dropped as soon as its fixed header arrives, before authentication
   * ([LM-BRK-6]); default 262144 (256 KiB)
   */
  maxPacketSize?: number;
  /**
   * cluster: how often this instance announces itself to the others, ms (aedes' heartbeat); an
   * instance silent for 3 periods counts as dead, and the others publish its clients' Last Wills
   * (checked again, [LM-BRK-7]) within 4 more periods; default 60000
   */
  heartbeatMs?: number;
}

/**
 * aedes options for a cluster of instances sharing one Redis server: messages through
 * mqemitter-redis, sessions and retained messages through aedes-persistence-redis.
 */
export function redisBackends(url: string): AedesOptions {
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw new ConfigError(`redis URL must start with redis://, got ${url}`);
  const conn = { host: u.hostname, port: Number(u.port || 6379) };
  return { mq: mqemitterRedis(conn), persistence: aedesPersistenceRedis(conn) };
}

export interface StandaloneBroker {
  aedes: Aedes;
  plugin?: LivematrixPlugin;
  /** `tcp` is 0 when the plain listener is off (`tcp: false`) */
  ports: { tcp: number; tls?: number; ws?: number; metrics?: number };
  close(): Promise<void>;
}

/** Reads a JSON config file (the same keys as BrokerConfig). */
export function readBrokerConfig(path: string): BrokerConfig {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as BrokerConfig;
  } catch (e) {
    throw new ConfigError(`broker config ${path}: ${errorMessage(e)}`);
  }
}

const listen = (s: Server | HttpServer, port: number, host: string): Promise<number> =>
  new Promise((res, rej) => {
    s.once('error', rej);
    s.listen(port, host, () => {
      const a = s.address();
      res(typeof a === 'object' && a ? a.port : port);
    });
  });

export async function runBroker(c: BrokerConfig, log: (l: string) => void = () => undefined): Promise<StandaloneBroker> {
  const host = c.host ?? '127.0.0.1';
  const maxPacketSize = maxPacketSizeOption(c.maxPacketSize);
  if (c.tcp === false && !c.tls) throw new ConfigError('tcp: false leaves no listener: give a TLS listener (tls) too');
  const tlsOptions = c.tls ? tlsServerOptions(c.tls) : undefined; // unusable files fail before anything listens
  if (c.heartbeatMs !== undefined && !(Number.isInteger(c.heartbeatMs) && c.heartbeatMs >= 10)) throw new ConfigError(`heartbeatMs must be an integer of at least 10 (ms), got ${String(c.heartbeatMs)}`);
  const aedes = await Aedes.createBroker({ ...(c.redis ? redisBackends(c.redis) : {}), ...(c.heartbeatMs ? { heartbeatInterval: c.heartbeatMs } : {}) });
  const metrics = new Metrics();
  // [LM-BRK-6] every connection, whatever its transport, passes the packet size check first
  const guard = (conn: Duplex, remote: string): Duplex => limitPacketSize(conn, maxPacketSize, (v: PacketViolation) => {
    metrics.inc('livematrix_packet_limit_drops_total', 'connections dropped for a packet over the maximum size', { reason: v.kind });
    log(`dropped connection from ${remote}: ${v.kind === 'too-large' ? `packet of ${v.size} bytes declared, over the limit of ${v.limit}` : 'malformed remaining length'}`);
  });
  const peer = (s: Socket) => `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
  let plugin: LivematrixPlugin | undefined;
  let watcher: FSWatcher | undefined;
  const onHup = () => reload('SIGHUP');
  const reload = (why: string) => {
    if (!plugin) return;
    try {
      plugin.reload();
      log(`registry reloaded (${why}): ${plugin.registry.all().length} clients`);
    } catch (e) {
      log(`registry NOT reloaded (${why}), keeping the previous one: ${errorMessage(e)}`);
    }
  };
  if (c.registry) {
    plugin = livematrixPlugin(aedes, { registry: Registry.load(c.registry), metrics, log });
    let timer: NodeJS.Timeout | undefined;
    watcher = watch(c.registry, () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => reload('file changed'), 200);
    });
    process.on('SIGHUP', onHup);
  } else log('no registry given: running WITHOUT authentication, topic isolation or frame checks (development only)');
  const servers: (Server | HttpServer)[] = [];
  const ports: StandaloneBroker['ports'] = { tcp: 0 };
  if (c.tcp !== false) {
    const tcp = createServer({ noDelay: true }, (s) => aedes.handle(guard(s, peer(s))));
    servers.push(tcp);
    ports.tcp = await listen(tcp, c.port ?? 1883, host);
  }
  if (c.tls && tlsOptions) {
    const certs = new ClientCertificates();
    // with a registry, a client certificate names the identity it may connect as; required
    // client certificates refuse a CONNECT without one on every listener (SPEC §10.1)
    const required = c.tls.requireClientCert === true;
    if (c.tls.ca !== undefined && (plugin || required)) certs.bindIdentities(aedes, { log, metrics, required, identities: plugin !== undefined });
    if (required && (c.tcp !== false || c.ws)) {
      log(`WARNING: client certificates are required (tls.requireClientCert), and the ${[c.tcp !== false ? 'plain mqtt' : '', c.ws ? 'WebSocket' : ''].filter(Boolean).join(' and ')} listener carries none: every CONNECT on it is refused (certificate-required). Set tcp: false${c.ws ? ' and drop ws' : ''} to close it`);
    } else if (!required && c.tls.ca !== undefined && plugin) {
      log('client certificates are optional (a tls.ca, no requireClientCert): a client without one authenticates by its connect token alone');
    }
    const tls = createTlsServer({ ...tlsOptions, noDelay: true }, (s: TLSSocket) => {
      const conn = guard(s, peer(s));
      if (certs.admit(s, conn, log)) aedes.handle(conn);
    });
    // a handshake that fails (a client certificate of another CA, none where one is required) is the client's problem, told in the log
    tls.on('tlsClientError', (e: Error & { code?: string }, s: TLSSocket) => log(`TLS handshake with ${peer(s)} failed: ${e.code ?? e.message}`));
    servers.push(tls);
    ports.tls = await listen(tls, c.tls.port, host);
  }
  let wss: WebSocketServer | undefined;
  if (c.ws) {
    const http = createHttpServer();
    // a WebSocket message is buffered whole by ws: no larger than one packet either
    wss = new WebSocketServer({ server: http, maxPayload: maxPacketSize });
    wss.on('connection', (socket, req) => aedes.handle(guard(createWebSocketStream(socket), `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'} (ws)`), req));
    servers.push(http);
    ports.ws = await listen(http, c.ws.port, host);
  }
  if (c.metrics) {
    const m = await metrics.serve(c.metrics.port, host);
    servers.push(m.server);
    ports.metrics = m.port;
  }
  return {
    aedes, ...(plugin ? { plugin } : {}), ports,
    close: async () => {
      watcher?.close();
      process.off('SIGHUP', onHup);
      wss?.close();
      const closing = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
      await new Promise<void>((r) => aedes.close(() => r()));
      await Promise.all(closing);
    },
  };
}
