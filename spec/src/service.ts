/**
 * @module service
 * Services of protected jobs over the broker (SPEC.md §16.1): the ops a store and a keys service
 * answer, the sealing of an SVC_REQ's arguments and an SVC_RESP's result to the other party
 * ([LM-SVC-6]), the freshness window, and the keys service's signed list of a deleted job's
 * segments, which a store takes as its authority to delete them ([LM-SVC-5]). Decoding throws
 * only {@link LmError}.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { ascii, concatBytes, randomBytes } from './bytes.js';
import { type CborValue, decodeCbor, encodeCbor } from './cbor.js';
import { LmError, Reason, errorMessage } from './errors.js';
import { SVC_MAX } from './frame-schemas.js';
import { type IdentityKeyPair, edPublicToX25519, edSecretToX25519, sign, verify } from './identity.js';
import { ecdh, hkdf } from './keys.js';

/** A request older or newer than this (ms) against the receiver's clock is refused as `replay` ([LM-SVC-6]). */
export const SVC_WINDOW_MS = 120_000;
/** Bytes of data in one part: a `stage` part, a page of `get` ([LM-SVC-6]); leaves room for the CBOR and the seal within {@link SVC_MAX}. */
export const SVC_PART = 57_344;
/** Bytes the seal adds: a 12-byte nonce and a 16-byte tag. */
export const SVC_SEAL_OVERHEAD = 28;

/**
 * The ops of the services (SPEC §16.1), each with the service that answers it. Op 1 is every
 * service's: it stages a large argument in parts.
 */
export const SvcOp = {
  stage: 1,
  // keys service
  register: 16,
  playbook: 17,
  grant: 18,
  release: 19,
  endSession: 20,
  alarm: 21,
  delete: 22,
  deletedIds: 23,
  epoch: 24,
  established: 25,
  // store
  put: 32,
  get: 33,
  storeDelete: 34,
  stats: 35,
} as const;
export type SvcOpName = keyof typeof SvcOp;
export type SvcOpId = (typeof SvcOp)[SvcOpName];
export const SVC_OP_NAMES: Readonly<Record<SvcOpId, SvcOpName>> = Object.fromEntries(Object.entries(SvcOp).map(([k, v]) => [v, k])) as Record<SvcOpId, SvcOpName>;

/** True when `op` is an op of {@link SvcOp}. */
export function isSvcOp(op: number): op is SvcOpId {
  return Object.hasOwn(SVC_OP_NAMES, op);
}

/**
 * The pairwise secret of two identities: X25519 of their Ed25519 keys' Montgomery forms. One per
 * requester and service; each request's keys derive from it and the request id.
 */
export function svcShared(own: IdentityKeyPair, peerPublic: Uint8Array): Uint8Array {
  const x = edSecretToX25519(own.secretKey);
  try {
    return ecdh(x, edPublicToX25519(peerPublic));
  } finally {
    x.fill(0);
  }
}

/**
 * The key that seals one request's arguments (`dir` 'req') or its result ('resp') ([LM-SVC-6]):
 * `HKDF(salt = id, ikm = shared, info = ascii("lm2 svc req" | "lm2 svc resp") ‖ requester pk ‖ service pk)`.
 */
export function svcKey(shared: Uint8Array, id: Uint8Array, dir: 'req' | 'resp', requester: Uint8Array, service: Uint8Array): Uint8Array {
  return hkdf(sha256, shared, id, concatBytes(ascii(`lm2 svc ${dir}`), requester, service), 32);
}

/** `nonce ‖ ChaCha20-Poly1305(key, nonce, plaintext, aad = id)` with a random nonce ([LM-SVC-6]). */
export function svcSeal(key: Uint8Array, id: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const nonce = randomBytes(12);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(id, { plaintextLength: plaintext.length });
  const body = c.update(plaintext);
  c.final();
  const out = concatBytes(nonce, body, c.getAuthTag());
  if (out.length > SVC_MAX) throw new LmError(Reason.tooLarge, `sealed service payload of ${out.length} bytes exceeds ${SVC_MAX} ([LM-SVC-6])`);
  return out;
}

/** Opens what {@link svcSeal} sealed; throws LmError `auth`. */
export function svcOpen(key: Uint8Array, id: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed.length < SVC_SEAL_OVERHEAD) throw new LmError(Reason.auth, `sealed service payload of ${sealed.length} bytes is shorter than its seal`);
  const n = sealed.length - SVC_SEAL_OVERHEAD;
  const d = createDecipheriv('chacha20-poly1305', key, sealed.subarray(0, 12), { authTagLength: 16 });
  d.setAAD(id, { plaintextLength: n });
  d.setAuthTag(sealed.subarray(12 + n));
  const pt = new Uint8Array(n);
  pt.set(d.update(sealed.subarray(12, 12 + n)));
  try {
    d.final();
  } catch {
    pt.fill(0);
    throw new LmError(Reason.auth, 'sealed service payload: authentication tag does not verify ([LM-SVC-6])');
  }
  return pt;
}

/** Seals a CBOR value (deterministic encoding, SPEC §6). */
export function svcSealValue(key: Uint8Array, id: Uint8Array, v: CborValue): Uint8Array {
  const pt = encodeCbor(v);
  try {
    return svcSeal(key, id, pt);
  } finally {
    pt.fill(0);
  }
}

/** Opens and decodes a sealed CBOR value; throws LmError (`auth`, or the codec's reason). */
export function svcOpenValue(key: Uint8Array, id: Uint8Array, sealed: Uint8Array): CborValue {
  const pt = svcOpen(key, id, sealed);
  try {
    return decodeCbor(pt);
  } catch (e) {
    throw e instanceof LmError ? e : new LmError(Reason.malformed, errorMessage(e));
  } finally {
    pt.fill(0);
  }
}

// ---- the keys service's list of a deleted job's segments ([LM-SVC-5]) ---------------------------

const LIST_PREFIX = 'livematrix/2 segments';

function listMessage(dh: Uint8Array, jid: Uint8Array, ids: Uint8Array): Uint8Array {
  return concatBytes(ascii(LIST_PREFIX), Uint8Array.of(0), encodeCbor([dh, jid, ids.length / 16, sha256(ids)]));
}

function checkIds(ids: Uint8Array): void {
  if (ids.length % 16 !== 0) throw new LmError(Reason.schema, `segment list of ${ids.length} bytes is not a whole number of 16-byte ids`);
}

/**
 * The keys service's signature over the segments of a deleted job ([LM-SVC-5]):
 * `Ed25519(ascii("livematrix/2 segments") ‖ 0x00 ‖ enc([dh, jid, count, SHA-256(ids)]))`, `ids`
 * the 16-byte ids concatenated in ascending order, `dh` the delete transaction's SHA-256. A store
 * deletes segments on an owner's delete only under this signature.
 */
export function signSegmentList(dh: Uint8Array, jid: Uint8Array, ids: Uint8Array, keysService: IdentityKeyPair): Uint8Array {
  checkIds(ids);
  return sign(keysService.secretKey, listMessage(dh, jid, ids));
}

/** True when `sig` is the keys service's signature of this list ([LM-SVC-5]). */
export function verifySegmentList(dh: Uint8Array, jid: Uint8Array, ids: Uint8Array, sig: Uint8Array, keysServicePublic: Uint8Array): boolean {
  checkIds(ids);
  return verify(keysServicePublic, listMessage(dh, jid, ids), sig);
}
