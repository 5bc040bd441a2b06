/**
 * @module keystore
 * An identity key store for tests, in the shape a secure element has (`@livematrix/spec`'s
 * IdentityKeyStore): the seed never leaves its closure, and every use is recorded, each
 * signature by what it signs (a frame type, a resume ticket, a connect token), read from the
 * domain prefix of the signed message (SPEC §7.1, §10.1, §11.4).
 */
import { FRAME_TYPE_NAMES, type FrameTypeId, type IdentityKeyStore, decodeCbor, identityKeyPair, memoryKeyStore } from '@livematrix/spec';

export interface CountingKeyStore extends IdentityKeyStore {
  /** what was signed, in order: a frame type name (HELLO, ACCEPT, ERROR, RECEIPT...), 'ticket', 'token', 'self-test' (keyStoreOf), or 'other' */
  readonly signed: string[];
  /** X25519 agreements done (a sealed licence opened per accepted OFFER, [LM-TX-1]) */
  readonly agreements: number;
  /** from now on, sign and x25519 throw this (a secure element that fails) */
  failWith(e: Error | undefined): void;
}

const PREFIXES: [string, (rest: Uint8Array) => string][] = [
  ['livematrix/1 frame\0', (rest) => {
    const v = decodeCbor(rest, 1 << 20);
    const type = Array.isArray(v) ? v[1] : undefined;
    return typeof type === 'number' ? (FRAME_TYPE_NAMES[type as FrameTypeId] ?? `frame ${type}`) : 'frame';
  }],
  ['livematrix/1 ticket\0', () => 'ticket'],
  ['livematrix/1 connect\0', () => 'token'],
  ['livematrix identity key self-test\0', () => 'self-test'], // keyStoreOf's check of the store (spec/src/keystore.ts)
];

function whatIsSigned(m: Uint8Array): string {
  for (const [p, name] of PREFIXES) {
    const prefix = new TextEncoder().encode(p);
    if (m.length >= prefix.length && prefix.every((b, i) => m[i] === b)) {
      try {
        return name(m.subarray(prefix.length));
      } catch {
        return 'other';
      }
    }
  }
  return 'other';
}

/** A key store over a new (or the given) Ed25519 seed, which the caller never gets back. */
export function countingKeyStore(seed?: Uint8Array): CountingKeyStore {
  const inner = memoryKeyStore(identityKeyPair(seed));
  const signed: string[] = [];
  let agreements = 0;
  let failure: Error | undefined;
  return {
    publicKey: inner.publicKey,
    sign(message) {
      if (failure) throw failure;
      signed.push(whatIsSigned(message));
      return inner.sign(message);
    },
    x25519(peer) {
      if (failure) throw failure;
      agreements++;
      return inner.x25519(peer);
    },
    signed,
    get agreements() {
      return agreements;
    },
    failWith(e) {
      failure = e;
    },
  };
}
