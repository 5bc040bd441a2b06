/**
 * @module broker-profile/target
 * What the broker profile runs against: the broker's URL and fleet, and the three identities the
 * suite plays (two devices and a gateway that serves the first device only), each proved by a
 * connect token signed with its identity key ([LM-BRK-1]) or, for a broker with passwords such
 * as Mosquitto, by a user name and password.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, ID_RE, errorMessage } from '@livematrix/spec';
import { readIdentityFile } from '@livematrix/spec/keyfile';

/** A user name and password for a broker that authenticates with passwords. */
export interface Credentials {
  username: string;
  password: string;
}

/** One identity the suite connects as. */
export interface BrokerIdentity {
  id: string;
  role: 'device' | 'gateway';
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  /** set for a broker with passwords: the suite then authenticates with these, not with a token */
  credentials?: Credentials;
}

export interface BrokerTarget {
  url: string;
  fleet: string;
  /** device 1: the gateway serves it ([LM-BRK-9]) */
  device1: BrokerIdentity;
  /** device 2: the gateway does not serve it */
  device2: BrokerIdentity;
  /** a gateway of the fleet whose registry entry lists device 1 and not device 2 */
  gateway: BrokerIdentity;
  /** the frames-per-second limit of device 1's registry entry ([LM-BRK-4]; default 5000) */
  rateLimit: number;
  /** the broker's maximum MQTT packet size, bytes ([LM-BRK-6]; default 262144) */
  maxPacketSize: number;
  /** the broker's Prometheus endpoint ([LM-BRK-5]); without it that test is NOT EXECUTED */
  metricsUrl?: string;
  /** how long the suite waits for something that must arrive (a frame, a close), ms */
  waitMs: number;
}

/** Reads a credentials file: JSON `{ "username": "...", "password": "..." }`. */
export function readCredentials(path: string): Credentials {
  if (!existsSync(path)) throw new ConfigError(`credentials file ${path} not found`);
  let j: { username?: unknown; password?: unknown };
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as typeof j;
  } catch (e) {
    throw new ConfigError(`credentials file ${path} is not JSON: ${errorMessage(e)}`);
  }
  if (typeof j.username !== 'string' || typeof j.password !== 'string') throw new ConfigError(`credentials file ${path} must hold { "username": "...", "password": "..." }`);
  return { username: j.username, password: j.password };
}

/** Reads an identity file (from `livematrix keygen`) and, when given, its credentials file. */
export function readBrokerIdentity(file: string, role: BrokerIdentity['role'], credentialsFile?: string): BrokerIdentity {
  const f = readIdentityFile(file);
  if (!ID_RE.test(f.id)) throw new ConfigError(`identity file ${file}: id "${f.id}" must be 1-64 of [A-Za-z0-9._-]`);
  return { id: f.id, role, secretKey: f.secretKey, publicKey: f.publicKey, ...(credentialsFile ? { credentials: readCredentials(credentialsFile) } : {}) };
}
