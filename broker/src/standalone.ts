/**
 * @module standalone
 * A standalone Live Matrix broker: aedes with the plugin on TCP, optional TLS and WebSocket
 * listeners, a Prometheus endpoint, registry reload on SIGHUP or file change, graceful shutdown.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AedesOptions } from 'aedes';
import aedesPersistenceRedis from 'aedes-persistence-redis';
import mqemitterRedis from 'mqemitter-redis';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { LmError, Reason } from '@livematrix/spec';
import { Metrics } from './metrics.js';
import { type LivematrixPlugin, livematrixPlugin } from './plugin.js';
import { Registry } from './registry.js';

export interface BrokerConfig {
  host?: string;
  port?: number;
  tls?: { port: number; cert: string; key: string };
  ws?: { port: number };
  metrics?: { port: number };
  /** registry file; without one the broker runs without authentication (development only) */
  registry?: string;
  /** redis://host:port shared by several broker instances (mqemitter-redis, aedes-persistence-redis) */
  redis?: string;
}

/**
 * aedes options for a cluster of instances sharing one Redis server: messages through
 * mqemitter-redis, sessions and retained messages through aedes-persistence-redis.
 */
export function redisBackends(url: string): AedesOptions {
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw new LmError(Reason.schema, `redis URL must start with redis://, got ${url}`);
  const conn = { host: u.hostname, port: Number(u.port || 6379) };
  return { mq: mqemitterRedis(conn), persistence: aedesPersistenceRedis(conn) };
}

export interface StandaloneBroker {
  aedes: Aedes;
  plugin?: LivematrixPlugin;
  ports: { tcp: number; tls?: number; ws?: number; metrics?: number };
  close(): Promise<void>;
}

/** Reads a JSON config file (the same keys as BrokerConfig). */
export function readBrokerConfig(path: string): BrokerConfig {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as BrokerConfig;
  } catch (e) {
    throw new LmError(Reason.schema, `broker config ${path}: ${(e as Error).message}`);
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
  const aedes = await Aedes.createBroker(c.redis ? redisBackends(c.redis) : {});
  const metrics = new Metrics();
  let plugin: LivematrixPlugin | undefined;
  let watcher: FSWatcher | undefined;
  const onHup = () => reload('SIGHUP');
  const reload = (why: string) => {
    if (!plugin) return;
    try {
      plugin.reload();
      log(`registry reloaded (${why}): ${plugin.registry.all().length} clients`);
    } catch (e) {
      log(`registry NOT reloaded (${why}), keeping the previous one: ${(e as Error).message}`);
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
  const tcp = createServer({ noDelay: true }, aedes.handle);
  servers.push(tcp);
  const ports: StandaloneBroker['ports'] = { tcp: await listen(tcp, c.port ?? 1883, host) };
  if (c.tls) {
    const tls = createTlsServer({ cert: readFileSync(c.tls.cert), key: readFileSync(c.tls.key) }, aedes.handle);
    servers.push(tls);
    ports.tls = await listen(tls, c.tls.port, host);
  }
  let wss: WebSocketServer | undefined;
  if (c.ws) {
    const http = createHttpServer();
    wss = new WebSocketServer({ server: http });
    wss.on('connection', (socket, req) => aedes.handle(createWebSocketStream(socket), req));
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
