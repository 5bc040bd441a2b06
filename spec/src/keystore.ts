/**
 * @module keystore
 * Identity keys behind a small interface, so that a device's Ed25519 identity can live in a
 * secure element (a PKCS#11 token, an SE050, an HSM) and never in the process's memory.
 *
 * What the protocol does with a device's identity key, and so all a key store must offer:
 * - `sign`: Ed25519 (RFC 8032, pure) signatures of HELLO, ACCEPT, refusals (ERROR), RECEIPTs,
 *   resume tickets and connect tokens (SPEC §7.1, §10.1, §11.4);
 * - `x25519`: one use that is not a signature. A transaction's licence is sealed to the X25519
 *   form of the device's identity key ([LM-TX-1], SPEC §11.2): opening it is an X25519 key
 *   agreement with the secret `edSecretToX25519(seed)`. A secure element can hold that X25519
 *   secret beside the Ed25519 key (derive it once when the key is provisioned).
 *
 * Both are synchronous on purpose: the SDK signs at points whose order the protocol fixes (the
 * ticket of a cut-off session is re-signed and written before anything else happens, a RECEIPT
 * is kept durably before it is sent, ACCEPT is signed before its transcript hash keys the
 * session), and a synchronous call keeps every one of them free of interleavings. PKCS#11's
 * `C_Sign` is a blocking call, and so are the Node bindings of it.
 *
 * @example
 * const store: IdentityKeyStore = { publicKey, sign: (m) => token.sign(m), x25519: (peer) => token.derive(peer) };
 * await Device.start({ ..., identity: store });
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { abytes, concatBytes, randomBytes, toHex, wipe } from './bytes.js';
import { ConfigError, LmError, Reason, errorMessage } from './errors.js';
import { type IdentityKeyPair, edSecretToX25519, sign, verify } from './identity.js';

/** Length of an Ed25519 signature. */
const SIGNATURE_LENGTH = 64;

/** Anything that makes Ed25519 signatures with one identity key. */
export interface IdentitySigner {
  /** the Ed25519 signature (RFC 8032, 64 bytes) of `message` */
  sign(message: Uint8Array): Uint8Array;
}

/**
 * An identity key the SDK never sees: it asks the store to sign and to agree on keys.
 * A device needs all three members; a gateway or a service needs `publicKey` and `sign` only.
 */
export interface IdentityKeyStore extends IdentitySigner {
  /** the Ed25519 public key (32 bytes) */
  readonly publicKey: Uint8Array;
  /**
   * X25519 (RFC 7748) of the identity key's X25519 form (the clamped first half of SHA-512 of
   * the Ed25519 seed, `edSecretToX25519`) with `peerPublic`; the 32-byte shared secret. A device
   * opens the sealed licence of every transaction with it ([LM-TX-1]).
   */
  x25519(peerPublic: Uint8Array): Uint8Array;
}

/** An identity as the SDK takes it: a key pair in memory, or a key store. */
export type IdentityKey = IdentityKeyPair | IdentityKeyStore;

/** What signs: an Ed25519 seed (32 bytes) or a signer. */
export type SigningKey = Uint8Array | IdentitySigner;

/** True when `k` is a key store (it signs by itself) rather than a key pair in memory. */
export function isKeyStore(k: IdentityKey): k is IdentityKeyStore {
  return typeof (k as Partial<IdentityKeyStore>).sign === 'function';
}

/**
 * A key store over a key pair in memory, the seed kept in a closure (not a property: a log of
 * the store object shows no secret).
 */
export function memoryKeyStore(pair: IdentityKeyPair): IdentityKeyStore {
  const seed = abytes('ed25519 seed', pair.secretKey, 32).slice();
  const publicKey = abytes('ed25519 public key', pair.publicKey, 32).slice();
  return {
    publicKey,
    sign: (message) => sign(seed, message),
    x25519: (peerPublic) => x25519With(seed, peerPublic),
  };
}

/**
 * An identity whose signing key is not the key of its `publicKey` (a key store pointed at the
 * wrong slot of a token, a key file whose public half was edited): every frame it signed would
 * fail at its peers, so it fails where the identity is first taken instead.
 */
export class KeyStoreMismatchError extends ConfigError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyStoreMismatchError';
  }
}

/** What the self-test signs: a prefix no protocol message starts with, and 16 random bytes. */
const SELF_TEST = new TextEncoder().encode('livematrix identity key self-test\0');

/**
 * Signs one test message with `store` and verifies it under its `publicKey`; a
 * {@link KeyStoreMismatchError} when it does not verify, the errors of {@link signWith} when the
 * store fails or answers with no signature.
 */
export function checkKeyStore(store: IdentityKeyStore): void {
  const publicKey = store.publicKey as unknown;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new KeyStoreMismatchError(`the identity key store's publicKey must be a 32-byte Ed25519 public key, got ${publicKey instanceof Uint8Array ? `${publicKey.length} bytes` : typeof publicKey}`);
  }
  const message = concatBytes(SELF_TEST, randomBytes(16));
  if (!verify(publicKey, message, signWith(store, message))) {
    throw new KeyStoreMismatchError(`the identity key store signs with another key than its publicKey ${toHex(publicKey)}: every frame it signed would be refused by its peers (is the store's key the one registered for this identity?)`);
  }
}

/**
 * The identity as a key store: a store as it is, a key pair wrapped by {@link memoryKeyStore};
 * checked once by {@link checkKeyStore} (a sign and a verify), so that a signing key that does
 * not match the public key fails here with a KeyStoreMismatchError.
 */
export function keyStoreOf(k: IdentityKey): IdentityKeyStore {
  const store = isKeyStore(k) ? k : memoryKeyStore(k);
  checkKeyStore(store);
  return store;
}

/**
 * Signs `message` with a seed or a signer; a signer's answer is checked for its length, so that
 * a faulty store fails here, with its name, and not as a frame that no peer accepts.
 */
export function signWith(key: SigningKey, message: Uint8Array): Uint8Array {
  if (key instanceof Uint8Array) return sign(key, message);
  let sig: unknown;
  try {
    sig = key.sign(message);
  } catch (e) {
    throw new LmError(Reason.internal, `the identity key store failed to sign: ${errorMessage(e)}`, { cause: e });
  }
  if (!(sig instanceof Uint8Array)) {
    const what = sig instanceof Promise ? 'a Promise (key stores sign synchronously)' : typeof sig;
    throw new TypeError(`"signature" expected Uint8Array from the identity key store, got ${what}`);
  }
  if (sig.length !== SIGNATURE_LENGTH) throw new RangeError(`"signature" expected Uint8Array of length ${SIGNATURE_LENGTH} from the identity key store, got length=${sig.length}`);
  return sig;
}

/** The signer of an identity: its seed for a key pair, the store itself otherwise. */
export function signingKey(k: IdentityKey): SigningKey {
  return isKeyStore(k) ? k : k.secretKey;
}

/**
 * X25519 of an identity's X25519 form with `peerPublic` ([LM-TX-1]): from the seed of a key pair
 * (erased after use), or by the store; the answer of a store is checked for its length.
 */
export function agreeWith(k: IdentityKey | Uint8Array, peerPublic: Uint8Array): Uint8Array {
  if (k instanceof Uint8Array) return x25519With(k, peerPublic);
  if (!isKeyStore(k)) return x25519With(k.secretKey, peerPublic);
  let s: unknown;
  try {
    s = k.x25519(peerPublic);
  } catch (e) {
    throw new LmError(Reason.internal, `the identity key store failed the X25519 agreement: ${errorMessage(e)}`, { cause: e });
  }
  if (!(s instanceof Uint8Array) || s.length !== 32) throw new RangeError('"shared secret" expected Uint8Array of length 32 from the identity key store');
  return s;
}

function x25519With(seed: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  const xs = edSecretToX25519(seed);
  try {
    return x25519.getSharedSecret(xs, peerPublic);
  } finally {
    wipe(xs);
  }
}

/** The frame signer (frames.ts' `Signer`) of an identity: `encodeFrame(type, body, frameSigner(identity))`. */
export function frameSigner(k: IdentityKey): { kind: 'sig'; secretKey: Uint8Array } | { kind: 'sig'; key: IdentitySigner } {
  return isKeyStore(k) ? { kind: 'sig', key: k } : { kind: 'sig', secretKey: k.secretKey };
}
