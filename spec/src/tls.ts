/**
 * @module tls
 * TLS and mutual TLS for broker connections (SPEC §10.1): PEM files read and checked before any
 * connection (a missing file, a file that holds no certificate, a key that does not match its
 * certificate are {@link TlsConfigError}s that name the file), and the handshake failures a
 * client meets named by what to check ({@link TlsHandshakeError}) instead of OpenSSL's codes.
 * The broker's listener reads its files with the same checks.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, LmError, Reason, errorMessage } from './errors.js';

/** A PEM input: a file path, or the PEM itself (text that holds `-----BEGIN`, or bytes). */
export type PemSource = string | Uint8Array;

/** TLS of a client's broker connection (an `mqtts://` URL). */
export interface TlsOptions {
  /** CA certificate(s), PEM, the broker's certificate must chain to; default Node's bundled roots */
  ca?: PemSource;
  /** client certificate, PEM (mutual TLS); needs `key` */
  cert?: PemSource;
  /** the client certificate's private key, PEM, unencrypted (mode 600 for a file) */
  key?: PemSource;
  /** the name the broker's certificate must carry (and SNI); default the URL's host */
  servername?: string;
  /**
   * default true: a broker whose certificate does not verify is refused. false accepts any
   * certificate, which protects against no one in the middle: for a first test only.
   */
  rejectUnauthorized?: boolean;
}

/** What Node's tls.connect takes from {@link TlsOptions}, read and checked. */
export interface LoadedTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
}

/** A TLS file (or PEM) that cannot be used: missing, unreadable, not PEM, not matching. */
export class TlsConfigError extends ConfigError {
  constructor(readonly field: 'ca' | 'cert' | 'key', readonly file: string | undefined, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsConfigError';
  }
}

/**
 * Why a TLS handshake with the broker failed:
 * - `server-untrusted`: the broker's certificate does not chain to the CA the client trusts;
 * - `server-name`: the certificate is not for the host connected to;
 * - `server-expired`: the certificate has expired or is not yet valid;
 * - `client-certificate-required`: the broker wants a client certificate and none was given;
 * - `client-certificate-refused`: the broker refused the client certificate (another CA, expired);
 * - `not-tls`: the port does not speak TLS (a plain MQTT port);
 * - `closed`: the broker closed the connection during or right after the handshake, saying nothing;
 * - `handshake`: any other TLS failure.
 */
export type TlsFailure = 'server-untrusted' | 'server-name' | 'server-expired' | 'client-certificate-required' | 'client-certificate-refused' | 'not-tls' | 'closed' | 'handshake';

/**
 * A TLS handshake with the broker failed (reason `offline`); `failure` says why, `detail` what to
 * check, `tlsCode` is Node's or OpenSSL's code.
 */
export class TlsHandshakeError extends LmError {
  constructor(readonly failure: TlsFailure, readonly tlsCode: string | undefined, readonly detail: string, options?: { cause?: unknown }) {
    super(Reason.offline, detail, options);
    this.name = 'TlsHandshakeError';
  }
}

/** OpenSSL's text of an error (`...:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:...`), without its file and line. */
function opensslText(message: string): string {
  return /:SSL routines:[^:]*:([^:]+):/.exec(message)?.[1] ?? message.trim();
}

const SERVER_UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA', 'INVALID_PURPOSE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_CHAIN_TOO_LONG', 'PATH_LENGTH_EXCEEDED',
]);
const CLIENT_REFUSED = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR', 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
]);
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_UNKNOWN_PROTOCOL', 'ERR_SSL_HTTP_REQUEST']);

const HINTS: Record<TlsFailure, string> = {
  'server-untrusted': 'the broker\'s certificate does not chain to the CA this client trusts: give the CA that issued it (--ca FILE, TlsOptions.ca)',
  'server-name': 'the broker\'s certificate is not for this host: connect by a name or address its subjectAltName lists, or set servername',
  'server-expired': 'the broker\'s certificate has expired or is not yet valid: renew it, and check this machine\'s clock',
  'client-certificate-required': 'the broker requires a client certificate (mutual TLS): give one and its key (--cert FILE --key FILE)',
  'client-certificate-refused': 'the broker refused this client certificate: is it issued by a CA the broker trusts, and still valid? (a broker may refuse it by closing the connection without a word)',
  'not-tls': 'the port does not speak TLS: is it the broker\'s plain MQTT port? use mqtt:// there, or the broker\'s TLS port',
  'closed': 'the broker closed the connection during the TLS handshake or right after it, before CONNACK: is this its TLS port (not a plain MQTT one)? does it require a client certificate (--cert, --key), or refuse this one?',
  'handshake': 'the TLS handshake failed',
};

/**
 * The TLS failure an error of a broker connection is, or undefined when it is not one (a refused
 * TCP connection, a refused CONNECT).
 */
export function tlsFailureOf(e: unknown): TlsHandshakeError | undefined {
  if (e instanceof TlsHandshakeError) return e;
  if (!(e instanceof Error)) return undefined;
  const c = (e as Error & { code?: unknown }).code;
  const code = typeof c === 'string' ? c : undefined;
  let failure: TlsFailure | undefined;
  if (code && SERVER_UNTRUSTED.has(code)) failure = 'server-untrusted';
  else if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') failure = 'server-expired';
  else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') failure = 'server-name';
  else if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') failure = 'client-certificate-required';
  else if (code && CLIENT_REFUSED.has(code)) failure = 'client-certificate-refused';
  else if (code && NOT_TLS.has(code)) failure = 'not-tls';
  else if (code?.startsWith('ERR_SSL_') || code?.startsWith('ERR_TLS_')) failure = 'handshake';
  else if (e.message === 'TLS not authorized') failure = 'server-untrusted'; // MQTT.js, a handshake that ended unauthorized
  else if (e.message.includes('before secure TLS connection was established')) failure = 'closed'; // Node: the peer hung up in the handshake
  if (!failure) return undefined;
  return new TlsHandshakeError(failure, code, `${HINTS[failure]} (${opensslText(e.message)})`, { cause: e });
}

/** A handshake failure of kind `failure` with its hint, for a close without an error. */
export function tlsFailure(failure: TlsFailure, detail: string): TlsHandshakeError {
  return new TlsHandshakeError(failure, undefined, `${HINTS[failure]} (${detail})`);
}

/** Reads a PEM source: a path's file (errors name it), or the PEM given. */
function readPem(field: TlsConfigError['field'], src: PemSource): { pem: Buffer; file: string | undefined } {
  if (src instanceof Uint8Array) return { pem: Buffer.from(src), file: undefined };
  if (src.includes('-----BEGIN')) return { pem: Buffer.from(src), file: undefined };
  try {
    return { pem: readFileSync(src), file: src };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const why = code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'not readable (permission denied)' : errorMessage(e);
    throw new TlsConfigError(field, src, `TLS ${field} file ${src}: ${why}`, { cause: e });
  }
}

const named = (field: string, file: string | undefined) => (file ? `TLS ${field} file ${file}` : `TLS ${field} (PEM given inline)`);

/** Every certificate of a PEM bundle, parsed; a TlsConfigError when it holds none or a bad one. */
export function readCertificates(field: 'ca' | 'cert', src: PemSource): { pem: Buffer; certs: X509Certificate[]; file: string | undefined } {
  const { pem, file } = readPem(field, src);
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new TlsConfigError(field, file, `${named(field, file)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)${/PRIVATE KEY-----/.test(pem.toString('latin1')) ? ': it is a private key; did you swap the certificate and the key?' : ''}`);
  const certs = blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new TlsConfigError(field, file, `${named(field, file)}: certificate ${i + 1} does not parse: ${errorMessage(e)}`, { cause: e });
    }
  });
  return { pem, certs, file };
}

/** A private key, parsed; a TlsConfigError when it is not an unencrypted PEM private key. */
export function readPrivateKey(src: PemSource): { pem: Buffer; key: ReturnType<typeof createPrivateKey>; file: string | undefined } {
  const { pem, file } = readPem('key', src);
  const text = pem.toString('latin1');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) throw new TlsConfigError('key', file, `${named('key', file)} is encrypted; give it unencrypted (openssl pkey -in KEY -out PLAIN), readable by its owner only`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new TlsConfigError('key', file, `${named('key', file)} holds no PEM private key (-----BEGIN PRIVATE KEY-----)${/CERTIFICATE-----/.test(text) ? ': it is a certificate; did you swap the certificate and the key?' : ''}`);
  try {
    return { pem, key: createPrivateKey(pem), file };
  } catch (e) {
    throw new TlsConfigError('key', file, `${named('key', file)} does not parse: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * A certificate (the first of `cert`, its chain after it) and its key, checked to belong
 * together; what a client's or a listener's `cert` and `key` take.
 */
export function readKeyPair(cert: PemSource, key: PemSource): { cert: Buffer; key: Buffer; leaf: X509Certificate } {
  const c = readCertificates('cert', cert);
  const k = readPrivateKey(key);
  const leaf = c.certs[0] as X509Certificate;
  if (!leaf.checkPrivateKey(k.key)) {
    throw new TlsConfigError('key', k.file, `${named('key', k.file)} is not the key of ${named('cert', c.file).replace(/^TLS /, 'the ')} (subject ${leaf.subject.replace(/\n/g, ', ')})`);
  }
  return { cert: c.pem, key: k.pem, leaf };
}

/** Reads and checks a client's TLS options ({@link TlsConfigError} before any connection). */
export function loadTls(o: TlsOptions): LoadedTls {
  const out: LoadedTls = { rejectUnauthorized: o.rejectUnauthorized !== false };
  if (o.ca !== undefined) out.ca = readCertificates('ca', o.ca).pem;
  if ((o.cert === undefined) !== (o.key === undefined)) {
    throw new TlsConfigError(o.cert === undefined ? 'cert' : 'key', undefined, `mutual TLS needs both a client certificate and its key: ${o.cert === undefined ? 'the certificate (--cert)' : 'the key (--key)'} is missing`);
  }
  if (o.cert !== undefined && o.key !== undefined) {
    const p = readKeyPair(o.cert, o.key);
    out.cert = p.cert;
    out.key = p.key;
  }
  if (o.servername !== undefined) out.servername = o.servername;
  return out;
}

/** The subject's common name (CN) of a certificate as Node's TLS reports it, or undefined. */
export function commonName(subject: Record<string, string | string[] | undefined> | undefined): string | undefined {
  const cn = subject?.['CN'];
  return Array.isArray(cn) ? (cn.length === 1 ? cn[0] : undefined) : cn;
}
