/**
 * @module connection
 * The broker connection of the device, stream and gateway commands: the URL, where the user
 * name and password come from (a credentials file, the environment, else a connect token from
 * the identity file), TLS and mutual TLS (--ca, --cert, --key), and a broker's refusal turned
 * into a message that says what to check.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { IdentityFile } from '@livematrix/spec/keyfile';
import type { BrokerAuth, TlsOptions } from '@livematrix/spec/transport';
import { type RoleName, toHex } from '@livematrix/spec';
import { Failure, UsageError, type Values } from './args.js';
import { oneLine } from './log.js';

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883';
export const ENV_USER = 'LIVEMATRIX_MQTT_USERNAME';
export const ENV_PASSWORD = 'LIVEMATRIX_MQTT_PASSWORD';

export interface Connection {
  url: string;
  auth: BrokerAuth;
  /** where the user name and password came from, for messages ('token' for a connect token) */
  source: string;
  /** MQTT 3.1.1 (4, the default) or MQTT 5 (--mqtt 5, [LM-MQTT-3]) */
  protocolVersion: 4 | 5;
  /** --ca, --cert, --key: TLS files (read and checked when connecting); undefined without them */
  tls?: TlsOptions;
}

/** The TLS options of every command that connects: spread into its parse() options. */
export const TLS_OPTIONS = { ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' } } as const;

/** --ca, --cert and --key, checked against the URL (TLS needs mqtts:// or wss://, SPEC §10.1). */
function tlsOptions(values: Values, url: string): TlsOptions | undefined {
  const [ca, cert, key] = (['ca', 'cert', 'key'] as const).map((n) => (typeof values[n] === 'string' ? values[n] : undefined));
  if (ca === undefined && cert === undefined && key === undefined) return undefined;
  if (!/^(mqtts|wss):\/\//i.test(url)) throw new UsageError(`--ca, --cert and --key are TLS options: give an mqtts:// (or wss://) --url, not ${url}`);
  if ((cert === undefined) !== (key === undefined)) throw new UsageError(`mutual TLS needs both --cert and --key (${cert === undefined ? '--cert' : '--key'} is missing)`);
  return { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined && key !== undefined ? { cert, key } : {}) };
}

/**
 * The broker URL and how to authenticate: --credentials FILE, else the environment, else a
 * connect token from the identity file. A password never comes from the URL (ps shows it).
 */
export function connection(values: Values): Connection {
  const url = typeof values['url'] === 'string' ? values['url'] : DEFAULT_URL;
  const mqtt = values['mqtt'];
  if (mqtt !== undefined && mqtt !== '4' && mqtt !== '5') throw new UsageError(`--mqtt must be 4 (MQTT 3.1.1) or 5 (MQTT 5), not ${JSON.stringify(mqtt)}`);
  const protocolVersion: 4 | 5 = mqtt === '5' ? 5 : 4;
  // never echo the URL here: it may hold the very password this refuses
  if (url.includes('@')) throw new UsageError(`--url must not carry a user name or password (anyone can read them in ps, and they end up in logs): put them in a --credentials FILE (mode 600) or in ${ENV_USER} and ${ENV_PASSWORD}`);
  const tls = tlsOptions(values, url);
  const common = { url, protocolVersion, ...(tls ? { tls } : {}) };
  if (typeof values['credentials'] === 'string') {
    const path = values['credentials'];
    return { ...common, auth: readCredentials(path), source: `the credentials file ${path}` };
  }
  const user = process.env[ENV_USER];
  const password = process.env[ENV_PASSWORD];
  if (user) return { ...common, auth: { username: user, password: password ?? '' }, source: `${ENV_USER}${password !== undefined ? ` and ${ENV_PASSWORD}` : ''}` };
  if (password !== undefined) throw new UsageError(`${ENV_PASSWORD} is set but ${ENV_USER} is not`);
  return { ...common, auth: 'token', source: 'token' };
}

/** Reads { "username", "password" } from a file that only its owner can read (like ssh keys). */
function readCredentials(path: string): { username: string; password: string } {
  if (!existsSync(path)) throw new UsageError(`credentials file ${path} not found`);
  const mode = statSync(path).mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new UsageError(`credentials file ${path} has mode ${mode.toString(8).padStart(4, '0')}: it holds a password and must be readable by its owner only (run "chmod 600 ${path}")`);
  }
  let j: { username?: unknown; password?: unknown };
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as typeof j;
  } catch {
    // not the parser's message: it quotes the file, password included
    throw new UsageError(`credentials file ${path} is not JSON (expected { "username": "...", "password": "..." })`);
  }
  if (typeof j !== 'object' || j === null || typeof j.username !== 'string' || !j.username || typeof j.password !== 'string') {
    throw new UsageError(`credentials file ${path} must hold { "username": "...", "password": "..." } (two strings)`);
  }
  return { username: j.username, password: j.password };
}

/** MQTT CONNACK codes that mean "who you are was refused": 3.1.1 (4, 5) and 5 (134, 135). */
const AUTH_REFUSED = new Set([4, 5, 134, 135]);

/**
 * Connects through `start`; a broker's refusal of the credentials becomes an error that says
 * which identity was refused and what to check.
 */
export async function connectAs<T>(c: Connection, identity: IdentityFile, role: RoleName, fleet: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    const cause = e instanceof Error ? (e.cause as { code?: unknown } | undefined) : undefined;
    const refused = typeof cause?.code === 'number' ? AUTH_REFUSED.has(cause.code) : e instanceof Error && /Bad username or password|Not authorized/i.test(e.message);
    if (!refused) throw e;
    const why = cause instanceof Error ? cause.message : e instanceof Error ? e.message : String(e);
    throw new Failure(refusalHint(c, identity, role, fleet, why));
  }
}

/** What the operator should check when the broker refused these credentials. */
function refusalHint(c: Connection, identity: IdentityFile, role: RoleName, fleet: string, why: string): string {
  if (c.auth === 'token') {
    return `the broker at ${c.url} refused the connect token of "${identity.id}" (${why}).\n`
      + `  Is ${identity.id} in the broker's registry with public key ${toHex(identity.publicKey)} (role ${role}, fleet ${fleet})?\n`
      + `  Is this machine's clock within 30 s of the broker's?\n`
      + (c.tls?.cert !== undefined ? `  Is the subject CN of the client certificate ${String(c.tls.cert)} "${identity.id}"? (the broker binds certificates to identities)\n` : '')
      + `  (A broker with passwords instead, such as Mosquitto, needs --credentials FILE or ${ENV_USER} and ${ENV_PASSWORD}.)`;
  }
  return `the broker at ${c.url} refused the user name "${oneLine(c.auth.username, 64)}" and password from ${c.source} (${why}): `
    + 'check them against the broker\'s password file';
}
