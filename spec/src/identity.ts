/**
 * @module identity
 * Ed25519 identity keys of devices, gateways and operators, and their X25519 forms
 * (SPEC.md §11.2).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { abytes, randomBytes } from './bytes.js';
import { LmError, Reason, errorMessage } from './errors.js';

export interface IdentityKeyPair {
  /** 32-byte Ed25519 seed */
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

export function identityKeyPair(seed?: Uint8Array): IdentityKeyPair {
  const secretKey = seed ? abytes('ed25519 seed', seed, 32).slice() : randomBytes(32); // [LM-SEC-3]
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

/** X25519 public key of an Ed25519 public key, u = (1 + y) / (1 - y) (RFC 7748 §4.1). */
export function edPublicToX25519(edPublic: Uint8Array): Uint8Array {
  abytes('ed25519 public key', edPublic, 32);
  try {
    return ed25519.utils.toMontgomery(edPublic);
  } catch (e) {
    throw new LmError(Reason.txDevice, `device key is not a valid Ed25519 point: ${errorMessage(e)}`);
  }
}

/** X25519 secret of an Ed25519 seed: clamped first half of SHA-512(seed) ([LM-TX-1]). */
export function edSecretToX25519(edSeed: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomerySecret(abytes('ed25519 seed', edSeed, 32));
}

export function sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return ed25519.sign(message, secretKey);
}

/** Strict RFC 8032 verification (no ZIP-215 leniency); never throws. */
export function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return signature.length === 64 && publicKey.length === 32 && ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}
