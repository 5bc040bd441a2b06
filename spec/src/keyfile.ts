/**
 * @module keyfile
 * Identity key files: an Ed25519 seed kept with owner-only permissions (0600), written
 * atomically. Format: JSON `{ "kind": "livematrix-identity", "id", "secretKey", "publicKey" }`
 * with hex keys. {@link fileKeyStore} is the default key store (keystore.ts) over such a file.
 */
import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { fromHex, toHex } from './bytes.js';
import { LmError, Reason, ConfigError, errorMessage } from './errors.js';
import { type IdentityKeyPair, identityKeyPair } from './identity.js';
import { type IdentityKeyStore, memoryKeyStore } from './keystore.js';

export interface IdentityFile extends IdentityKeyPair {
  id: string;
}

/** Writes a new identity, refusing to overwrite an existing file. */
export function createIdentityFile(path: string, id: string, keys: IdentityKeyPair = identityKeyPair()): IdentityFile {
  if (existsSync(path)) throw new ConfigError(`${path} exists; refusing to overwrite an identity key`);
  const body = JSON.stringify({ kind: 'livematrix-identity', id, secretKey: toHex(keys.secretKey), publicKey: toHex(keys.publicKey) }, null, 2) + '\n';
  writeFileSync(path + '.tmp', body, { mode: 0o600 });
  chmodSync(path + '.tmp', 0o600);
  renameSync(path + '.tmp', path);
  return { id, ...keys };
}

/** Reads an identity file; refuses one that others can read. */
export function readIdentityFile(path: string): IdentityFile {
  if (!existsSync(path)) throw new ConfigError(`identity file ${path} not found (create one with "livematrix keygen")`);
  const mode = statSync(path).mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new ConfigError(`identity file ${path} has mode ${mode.toString(8)}; it must be readable by its owner only (chmod 600)`);
  }
  let j: { kind?: unknown; id?: unknown; secretKey?: unknown; publicKey?: unknown };
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as typeof j;
  } catch (e) {
    throw new ConfigError(`identity file ${path} is not JSON: ${errorMessage(e)}`);
  }
  if (j.kind !== 'livematrix-identity' || typeof j.id !== 'string' || typeof j.secretKey !== 'string') {
    throw new ConfigError(`${path} is not a livematrix identity file`);
  }
  const keys = identityKeyPair(fromHex(j.secretKey));
  if (typeof j.publicKey === 'string' && j.publicKey !== toHex(keys.publicKey)) throw new ConfigError(`${path}: public key does not match the secret key`);
  return { id: j.id, ...keys };
}

/**
 * The default key store: the identity file's key, read once and kept in a closure (the store
 * has no property that holds the seed), with the file's id.
 *
 * @example
 * const identity = fileKeyStore('/etc/livematrix/printer-1.key');
 * await Device.start({ url, fleet, id: identity.id, identity, trustedOperators });
 */
export function fileKeyStore(path: string): IdentityKeyStore & { readonly id: string } {
  const f = readIdentityFile(path);
  const store = memoryKeyStore(f);
  f.secretKey.fill(0);
  return { id: f.id, ...store };
}
