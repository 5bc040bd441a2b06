/**
 * @module token
 * Connect tokens of the broker profile (SPEC.md §10.1, [LM-BRK-1]): a client's proof of its
 * identity key in the MQTT CONNECT password.
 */
import { ascii, concatBytes, randomBytes } from './bytes.js';
import { type CborValue, decodeCbor, encodeCbor } from './cbor.js';
import { LmError, Reason, errorMessage } from './errors.js';
import { ID_RE } from './frame-schemas.js';
import { verify } from './identity.js';
import { type SigningKey, signWith } from './keystore.js';

/**
 * Roles of the broker profile (SPEC §10.1) and of the services of protected jobs (SPEC §16.1,
 * [LM-SVC-7]): a store, a keys service, and an owner (the tool of a person who uploads,
 * deletes or grants: a job's owner, an operator).
 */
export const Role = { device: 1, gateway: 2, store: 3, keys: 4, owner: 5 } as const;
export type RoleName = keyof typeof Role;
export type RoleId = (typeof Role)[RoleName];
/** The role name of each role id. */
export const ROLE_NAMES: Readonly<Record<RoleId, RoleName>> = { 1: 'device', 2: 'gateway', 3: 'store', 4: 'keys', 5: 'owner' };
/**
 * The client id prefix of each role ([LM-BRK-8]): a client of identity `i` uses the client id
 * `lm-{prefix}-{i}-{suffix}`.
 */
export const CLIENT_ID_PREFIX: Readonly<Record<RoleName, string>> = { device: 'dev', gateway: 'gw', store: 'st', keys: 'ks', owner: 'own' };

const isRoleId = (r: unknown): r is RoleId => typeof r === 'number' && Object.hasOwn(ROLE_NAMES, r);

const PREFIX = concatBytes(ascii('livematrix/1 connect'), Uint8Array.of(0));

export interface ConnectToken {
  id: string;
  role: RoleId;
  time: number;
  nonce: Uint8Array;
  sig: Uint8Array;
}

/** A fresh token for a CONNECT (a new nonce each time: reconnects need a new one), signed with the identity's seed or key store. */
export function makeConnectToken(id: string, role: RoleId, key: SigningKey, time = Date.now(), nonce = randomBytes(16)): Uint8Array {
  const body: CborValue[] = [1, id, role, time, nonce];
  const sig = signWith(key, concatBytes(PREFIX, encodeCbor(body)));
  return encodeCbor([...body, sig]);
}

/** Decodes a token (structure only); throws LmError `auth`. */
export function decodeConnectToken(bytes: Uint8Array): ConnectToken {
  let v: CborValue;
  try {
    v = decodeCbor(bytes, 512);
  } catch (e) {
    throw new LmError(Reason.auth, `connect token is not CBOR: ${errorMessage(e)}`);
  }
  if (!Array.isArray(v) || v.length !== 6) throw new LmError(Reason.auth, 'connect token is not a 6-item array');
  const [ver, id, role, time, nonce, sig] = v as CborValue[];
  if (ver !== 1 || typeof id !== 'string' || !ID_RE.test(id) || !isRoleId(role) || typeof time !== 'number' || !(nonce instanceof Uint8Array) || nonce.length !== 16 || !(sig instanceof Uint8Array) || sig.length !== 64) {
    throw new LmError(Reason.auth, 'connect token fields have the wrong types');
  }
  return { id, role, time, nonce, sig };
}

/** True when the token's signature verifies under the key. */
export function verifyConnectToken(t: ConnectToken, publicKey: Uint8Array): boolean {
  return verify(publicKey, concatBytes(PREFIX, encodeCbor([1, t.id, t.role, t.time, t.nonce])), t.sig);
}
