/**
 * @module server
 * An embedded aedes broker on a TCP port (loopback by default), plain or TLS (with client
 * certificates, tls-listener.ts), for the demo and the tests.
 */
import { createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, createServer as createTlsServer } from 'node:tls';
import { Aedes, type AedesOptions } from 'aedes';
import { limitPacketSize, maxPacketSizeOption, type PacketViolation } from './packet-limit.js';
import { ClientCertificates, type TlsListenerConfig, tlsServerOptions } from './tls-listener.js';

export interface BrokerOptions {
  /** TCP port; 0 picks a free one */
  port?: number;
  host?: string;
  aedes?: AedesOptions;
  /** hook to wire plugins onto the instance before it listens */
  setup?: (broker: Aedes) => void | Promise<void>;
  /**
   * largest MQTT packet a client may send, bytes (fixed header included); a connection declaring
   * a larger one is dropped as soon as its fixed header arrives ([LM-BRK-6]); default 256 KiB
   */
  maxPacketSize?: number;
  /** called when a connection is dropped for its packet size */
  onPacketViolation?: (v: PacketViolation, remote: string) => void;
  /**
   * TLS on the port instead of plain TCP (the URL is then mqtts://); `bindIdentities`: a client
   * certificate's CN must be the user name a client connects with (checked before `setup`'s
   * authentication)
   */
  tls?: Omit<TlsListenerConfig, 'port'> & { bindIdentities?: boolean };
}

export interface RunningBroker {
  aedes: Aedes;
  server: Server;
  port: number;
  host: string;
  url: string;
  close(): Promise<void>;
}

export async function startBroker(o: BrokerOptions = {}): Promise<RunningBroker> {
  const maxPacketSize = maxPacketSizeOption(o.maxPacketSize);
  const tlsOptions = o.tls ? tlsServerOptions({ ...o.tls, port: 0 }) : undefined;
  const aedes = await Aedes.createBroker(o.aedes ?? {});
  await o.setup?.(aedes);
  const certs = new ClientCertificates();
  if (o.tls?.bindIdentities) certs.bindIdentities(aedes, { log: () => undefined });
  const guard = (socket: Duplex & { remoteAddress?: string | undefined; remotePort?: number | undefined }) => {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    return limitPacketSize(socket, maxPacketSize, (v) => o.onPacketViolation?.(v, remote));
  };
  const server: Server = tlsOptions
    ? createTlsServer({ ...tlsOptions, noDelay: true }, (socket: TLSSocket) => {
      const conn = guard(socket);
      if (certs.admit(socket, conn, () => undefined)) aedes.handle(conn);
    })
    : createServer({ noDelay: true }, (socket) => aedes.handle(guard(socket)));
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? 0);
  return {
    aedes, server, port, host, url: `${tlsOptions ? 'mqtts' : 'mqtt'}://${host}:${port}`,
    close: async () => {
      // aedes first: it ends the client connections that server.close() would wait for
      const closed = new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => aedes.close(() => r()));
      await closed;
    },
  };
}
