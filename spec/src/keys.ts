/**
 * @module keys
 * The key schedule of SPEC.md §4: session keys from ephemeral X25519 and the licence secret
 * through HKDF-SHA-256, and a per-revision symmetric ratchet per direction with erasure.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf, expand, extract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { abytes, ascii, concatBytes, randomBytes, wipe } from './bytes.js';
import { LmError, Reason, errorMessage } from './errors.js';

export { hkdf };

/** An X25519 key pair. */
export interface X25519KeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

export function x25519KeyPair(seed?: Uint8Array): X25519KeyPair {
  const secretKey = seed ? abytes('x25519 seed', seed, 32).slice() : randomBytes(32); // [LM-SEC-3]
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/** z = X25519(sk, pk), refusing the all-zero output ([LM-KEY-1]). */
export function ecdh(secretKey: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  abytes('x25519 secret key', secretKey, 32);
  abytes('x25519 public key', peerPublic, 32);
  let z: Uint8Array;
  try {
    z = x25519.getSharedSecret(secretKey, peerPublic);
  } catch (e) {
    throw new LmError(Reason.auth, `X25519 failed: ${errorMessage(e)} ([LM-KEY-1])`);
  }
  if (z.every((b) => b === 0)) throw new LmError(Reason.auth, 'X25519 output is all zero ([LM-KEY-1])');
  return z;
}

/** The session keys of SPEC.md §4.1. */
export interface SessionKeys {
  ckG2d: Uint8Array;
  ckD2g: Uint8Array;
  fkG2d: Uint8Array;
  fkD2g: Uint8Array;
}

/** th = SHA-256(offer ‖ accept) ([LM-KEY-2]). */
export function transcriptHash(offer: Uint8Array, accept: Uint8Array): Uint8Array {
  return sha256(concatBytes(offer, accept));
}

/**
 * Derives the four session keys ([LM-KEY-2]) and erases the PRK and IKM ([LM-KEY-4]).
 * The caller erases z, K_lic and its ephemeral secret.
 */
export function deriveSessionKeys(z: Uint8Array, licence: Uint8Array, th: Uint8Array): SessionKeys {
  abytes('z', z, 32);
  abytes('licence secret', licence, 32);
  abytes('transcript hash', th, 32);
  const ikm = concatBytes(z, licence);
  const prk = extract(sha256, ikm, th);
  const keys: SessionKeys = {
    ckG2d: expand(sha256, prk, ascii('lm1 chain g2d'), 32),
    ckD2g: expand(sha256, prk, ascii('lm1 chain d2g'), 32),
    fkG2d: expand(sha256, prk, ascii('lm1 frame g2d'), 32),
    fkD2g: expand(sha256, prk, ascii('lm1 frame d2g'), 32),
  };
  wipe(prk, ikm);
  return keys;
}

/** Keys of one revision of one direction. */
export interface RevisionKeys {
  revision: number;
  /** hint key HK */
  hk: Uint8Array;
  /** wrap key WK */
  wk: Uint8Array;
}

const B1 = Uint8Array.of(0x01);
const B2 = Uint8Array.of(0x02);
const B3 = Uint8Array.of(0x03);

/**
 * The per-revision symmetric ratchet of SPEC.md §4.2 for one direction. It holds only the
 * chain key of the next revision it has not derived; every chain key is erased as soon as it
 * has been stepped ([LM-KEY-4]). Revisions only move forward.
 *
 * @example
 * const rc = new Ratchet(keys.ckG2d, r0); const k = rc.keysFor(r0 + 3); // jump
 */
export class Ratchet {
  private ck: Uint8Array;
  /** revision whose chain key `ck` is */
  private next: number;
  constructor(chainKey0: Uint8Array, readonly r0: number) {
    this.ck = abytes('chain key', chainKey0, 32).slice();
    this.next = r0;
  }
  /** The first revision whose keys can still be derived. */
  get position(): number {
    return this.next;
  }
  /**
   * Keys of revision r, stepping (and erasing) chain keys up to it ([LM-KEY-3]). Asking for a
   * revision already stepped past is refused with `rev-expired`: its chain key is gone.
   */
  keysFor(r: number): RevisionKeys {
    if (!Number.isSafeInteger(r)) throw new LmError(Reason.schema, `revision ${r} is not an integer`);
    if (r < this.r0) throw new LmError(Reason.revExpired, `revision ${r} precedes the session's first revision ${this.r0}`);
    if (r < this.next) throw new LmError(Reason.revExpired, `chain key of revision ${r} was erased (at ${this.next}) ([LM-KEY-4])`);
    while (this.next < r) this.step();
    const hk = hmac(sha256, this.ck, B1);
    const wk = hmac(sha256, this.ck, B3);
    this.step();
    return { revision: r, hk, wk };
  }
  private step(): void {
    const nextCk = hmac(sha256, this.ck, B2);
    wipe(this.ck);
    this.ck = nextCk;
    this.next++;
  }
  /** Erases the chain ([LM-KEY-5]); the ratchet is unusable afterwards. */
  destroy(): void {
    wipe(this.ck);
    this.next = Number.MAX_SAFE_INTEGER;
  }
}
