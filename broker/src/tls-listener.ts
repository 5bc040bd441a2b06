/**
 * @module tls-listener
 * The broker's TLS listener: its certificate and key (checked to belong together before it
 * listens), and with a CA, client certificates (mutual TLS), required or optional. A client
 * certificate that does not verify ends the connection in the handshake. With a registry, a
 * verified client certificate names the identity it was issued to: its subject CN must be the id
 * the client authenticates as (SPEC §10.1); the connect token stays the proof of the identity key.
 * With requireClientCert, a CONNECT on a connection without a verified client certificate is
 * refused whatever listener it came in on (plain TCP and WebSocket carry none), so a stolen
 * identity key is not enough without the certificate's key. With optional client certificates,
 * a client that presents none authenticates by its connect token alone.
 */
import type { Duplex } from 'node:stream';
import { type TLSSocket, type TlsOptions as NodeTlsServerOptions } from 'node:tls';
import type { Aedes, AuthenticateError } from 'aedes';
import { ConfigError } from '@livematrix/spec';
import type { Metrics } from '@livematrix/spec/metrics';
import { commonName, readCertificates, readKeyPair } from '@livematrix/spec/transport';

export interface TlsListenerConfig {
  /** TCP port of the TLS listener; 0 picks a free one */
  port: number;
  /** the broker's certificate (PEM file; its chain may follow it) and its key */
  cert: string;
  key: string;
  /** CA certificate(s) (PEM file) that issue client certificates: with it, clients may present one */
  ca?: string;
  /**
   * refuse, in the handshake, a client without a certificate of `ca` (mutual TLS), and on every
   * listener a CONNECT without a verified client certificate; needs `ca`
   */
  requireClientCert?: boolean;
}

/** Node's TLS server options for a listener config; a TlsConfigError (naming the file) when a file is unusable. */
export function tlsServerOptions(c: TlsListenerConfig): NodeTlsServerOptions {
  if (c.requireClientCert && c.ca === undefined) throw new ConfigError('requireClientCert needs a CA that issues the client certificates (tls.ca, --tls-ca)');
  const pair = readKeyPair(c.cert, c.key);
  const o: NodeTlsServerOptions = { cert: pair.cert, key: pair.key };
  if (c.ca !== undefined) {
    o.ca = readCertificates('ca', c.ca).pem;
    o.requestCert = true;
    // optional client certificates: a missing one passes the handshake, a bad one is refused in
    // ClientCertificates.admit (Node's rejectUnauthorized would refuse a missing one too)
    o.rejectUnauthorized = c.requireClientCert === true;
  }
  return o;
}

/** What the broker knows of a connection's client certificate. */
interface PeerCertificate {
  /** the subject CN of a verified certificate */
  cn: string | undefined;
}

const NOT_AUTHORIZED = 5;

/**
 * The verified client certificates of the TLS listener's connections, by the stream aedes
 * handles (the connection after the packet-size guard).
 */
export class ClientCertificates {
  private readonly byConn = new WeakMap<Duplex, PeerCertificate>();

  /**
   * Called for each TLS connection before aedes gets it: false (and the socket destroyed) for a
   * presented certificate that does not verify; otherwise remembers the verified one, if any.
   */
  admit(socket: TLSSocket, conn: Duplex, log: (l: string) => void): boolean {
    const peer = socket.getPeerCertificate();
    const presented = peer !== null && typeof peer === 'object' && Object.keys(peer).length > 0;
    if (presented && !socket.authorized) {
      log(`refused TLS client ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}: its certificate does not verify (${String(socket.authorizationError)})`);
      socket.destroy();
      return false;
    }
    if (presented) this.byConn.set(conn, { cn: commonName(peer.subject) });
    return true;
  }

  /** The verified client certificate of a connection, if it presented one. */
  of(conn: Duplex): PeerCertificate | undefined {
    return this.byConn.get(conn);
  }

  /**
   * Binds certificates to identities, before the authentication installed so far (the plugin's),
   * so that a refused CONNECT changes nothing; a refusal is CONNACK 5 (not authorized), logged and
   * counted in livematrix_connections_refused_total by its reason:
   * - `required` (default false): a connection without a verified client certificate, whatever its listener
   *   (plain TCP and WebSocket carry none): `certificate-required`;
   * - `identities` (default true; with a registry): a certificate whose CN is not the user name the client
   *   connects with (which the registry's authentication checks against its token's id):
   *   `certificate-identity`.
   */
  bindIdentities(aedes: Aedes, o: { log: (l: string) => void; metrics?: Metrics; required?: boolean; identities?: boolean }): void {
    const required = o.required === true;
    const identities = o.identities !== false;
    const inner = aedes.authenticate;
    const refuse = (reason: string, detail: string, done: (e: AuthenticateError | null, ok: boolean | null) => void) => {
      o.metrics?.inc('livematrix_connections_refused_total', 'CONNECTs refused, by reason', { reason });
      o.log(`refused CONNECT: ${detail}`);
      const e = new Error(detail) as AuthenticateError;
      e.returnCode = NOT_AUTHORIZED;
      done(e, null);
    };
    aedes.authenticate = (client, username, password, done) => {
      const cert = this.byConn.get(client.conn as unknown as Duplex);
      if (!cert && required) {
        refuse('certificate-required', `"${username ?? ''}" (client ${client.id}) connects without a verified client certificate, which this broker requires (tls.requireClientCert): only its TLS listener with a certificate of its CA is open to clients`, done);
        return;
      }
      if (cert && identities && cert.cn !== username) {
        refuse('certificate-identity', `client certificate CN "${cert.cn ?? ''}" is not the identity "${username ?? ''}" it connects as`, done);
        return;
      }
      inner.call(aedes, client, username, password, done);
    };
  }
}
