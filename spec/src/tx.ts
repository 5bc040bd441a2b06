/**
 * @module tx
 * Signed streaming transactions (SPEC.md §11): encoding, signing, the sealed licence, and the
 * verification rules [LM-TX-1]..[LM-TX-7].
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { abytes, ascii, concatBytes, equalBytes, randomBytes, utf8Length, wipe } from './bytes.js';
import { type CborValue, decodeCbor, encodeCbor } from './cbor.js';
import { LmError, Reason, errorMessage } from './errors.js';
import { ID_RE } from './frame-schemas.js';
import { jobDigestKey, keyedJobDigest } from './protected.js';
import { edPublicToX25519, sign, verify } from './identity.js';
import { type IdentityKey, agreeWith, isKeyStore } from './keystore.js';
import { x25519KeyPair } from './keys.js';

export const TX_MAX_VALIDITY_MS = 30 * 24 * 3600 * 1000; // [LM-TX-8]

export interface SealedLicence {
  epk: Uint8Array;
  ct: Uint8Array;
}

/** Body of a transaction (SPEC.md §11.1). */
export interface TxBody {
  v: 1;
  job: string;
  jd: Uint8Array;
  size: number;
  device: string;
  dpk: Uint8Array;
  opk: Uint8Array;
  nbf: number;
  naf: number;
  rate: number;
  burst: number;
  prints: number;
  lic: SealedLicence;
  nonce: Uint8Array;
  gwpk?: Uint8Array;
  /** a protected job's id ([LM-PROT-2]): the content is the upload `uh`'s, its chunk keys come from the keys service */
  jid?: Uint8Array;
  /** SHA-256 of the protected job's upload transaction ([LM-PROT-2]) */
  uh?: Uint8Array;
}

export interface SignedTx {
  body: TxBody;
  sig: Uint8Array;
  /** the encoded transaction, [body, sig] */
  bytes: Uint8Array;
  /** SHA-256 of `bytes` (txh) */
  hash: Uint8Array;
}

const TX_PREFIX = concatBytes(ascii('livematrix/1 transaction'), Uint8Array.of(0));

function bodyToCbor(b: TxBody): Map<number, CborValue> {
  const m = new Map<number, CborValue>([
    [1, b.v],
    [2, b.job],
    [3, b.jd],
    [4, b.size],
    [5, b.device],
    [6, b.dpk],
    [7, b.opk],
    [8, b.nbf],
    [9, b.naf],
    [10, b.rate],
    [11, b.burst],
    [12, b.prints],
    [13, new Map<number, CborValue>([[1, b.lic.epk], [2, b.lic.ct]])],
    [14, b.nonce],
  ]);
  if (b.gwpk) m.set(15, b.gwpk);
  if (b.jid) m.set(16, b.jid);
  if (b.uh) m.set(17, b.uh);
  return m;
}

const txErr = (msg: string): never => {
  throw new LmError(Reason.txSchema, `transaction: ${msg} ([LM-TX-9])`);
};

function field<T>(m: ReadonlyMap<number | string, CborValue>, k: number, name: string, check: (v: CborValue) => v is CborValue & T): T {
  const v = m.get(k);
  if (v === undefined || !check(v)) return txErr(`field ${k} (${name}) missing or of the wrong type`);
  return v as T;
}
const isUint = (v: CborValue): v is number => typeof v === 'number' && v >= 0;
const isB = (n: number) => (v: CborValue): v is Uint8Array => v instanceof Uint8Array && v.length === n;
const isStr = (re: RegExp) => (v: CborValue): v is string => typeof v === 'string' && re.test(v);
/** text of min..max bytes of UTF-8 ([LM-FRAME-11]) */
const isText = (min: number, max: number) => (v: CborValue): v is string => typeof v === 'string' && utf8Length(v) >= min && utf8Length(v) <= max;
const isMap = (v: CborValue): v is ReadonlyMap<number | string, CborValue> => v instanceof Map;

function bodyFromCbor(v: CborValue): TxBody {
  if (!(v instanceof Map)) return txErr('body is not a map');
  for (const k of v.keys()) if (typeof k !== 'number' || k < 1 || k > 17) txErr(`unexpected key ${String(k)}`);
  const ver = field(v, 1, 'v', isUint);
  if (ver !== 1) txErr(`version ${ver} is not 1`);
  const lic = field(v, 13, 'lic', isMap);
  const body: TxBody = {
    v: 1,
    job: field(v, 2, 'job', isText(1, 128)), // 1..128 bytes of UTF-8 ([LM-FRAME-11])
    jd: field(v, 3, 'jd', isB(32)),
    size: field(v, 4, 'size', isUint),
    device: field(v, 5, 'device', isStr(ID_RE)),
    dpk: field(v, 6, 'dpk', isB(32)),
    opk: field(v, 7, 'opk', isB(32)),
    nbf: field(v, 8, 'nbf', isUint),
    naf: field(v, 9, 'naf', isUint),
    rate: field(v, 10, 'rate', isUint),
    burst: field(v, 11, 'burst', isUint),
    prints: field(v, 12, 'prints', isUint),
    lic: { epk: field(lic, 1, 'lic.epk', isB(32)), ct: field(lic, 2, 'lic.ct', isB(48)) },
    nonce: field(v, 14, 'nonce', isB(16)),
  };
  if (v.has(15)) body.gwpk = field(v, 15, 'gwpk', isB(32));
  if (v.has(16) !== v.has(17)) txErr('jid and uh come together (a protected job) ([LM-PROT-2])');
  if (v.has(16)) {
    body.jid = field(v, 16, 'jid', isB(16));
    body.uh = field(v, 17, 'uh', isB(32));
  }
  if (body.rate < 1) txErr('rate must be at least 1');
  if (body.prints < 1) txErr('prints must be at least 1');
  return body;
}

/** Key for the sealed licence (SPEC.md §11.2). */
function licenceKey(s: Uint8Array, epk: Uint8Array, dX: Uint8Array): Uint8Array {
  const prk = extract(sha256, s, concatBytes(epk, dX));
  const k = expand(sha256, prk, ascii('lm1 licence'), 32);
  wipe(prk);
  return k;
}

/** Seals K_lic to the device's identity key (SPEC.md §11.2). */
export function sealLicence(licence: Uint8Array, devicePublic: Uint8Array, jd: Uint8Array, ephemeralSeed?: Uint8Array): SealedLicence {
  abytes('licence secret', licence, 32);
  const dX = edPublicToX25519(devicePublic);
  const e = x25519KeyPair(ephemeralSeed);
  const s = x25519.getSharedSecret(e.secretKey, dX);
  const k = licenceKey(s, e.publicKey, dX);
  const ct = chacha20poly1305(k, new Uint8Array(12), jd).encrypt(licence);
  wipe(s, k, e.secretKey);
  return { epk: e.publicKey, ct };
}

/**
 * Opens the sealed licence with the device's identity key ([LM-TX-1]): its Ed25519 seed, its key
 * pair, or a key store that does the X25519 agreement itself (a store's own failure is thrown as
 * it is, not as a licence that does not open).
 */
export function openLicence(sealed: SealedLicence, deviceKey: Uint8Array | IdentityKey, devicePublic: Uint8Array, jd: Uint8Array): Uint8Array {
  const dX = edPublicToX25519(devicePublic);
  let s: Uint8Array;
  try {
    s = agreeWith(deviceKey, sealed.epk);
  } catch (e) {
    if (!(deviceKey instanceof Uint8Array) && isKeyStore(deviceKey)) throw e;
    throw new LmError(Reason.txSchema, 'sealed licence does not open with this device key ([LM-TX-1])');
  }
  try {
    const k = licenceKey(s, sealed.epk, dX);
    const out = chacha20poly1305(k, new Uint8Array(12), jd).decrypt(sealed.ct);
    wipe(k);
    return out;
  } catch {
    throw new LmError(Reason.txSchema, 'sealed licence does not open with this device key ([LM-TX-1])');
  } finally {
    wipe(s);
  }
}

/** Input of the operator's signature. */
export function txSigningInput(body: TxBody): Uint8Array {
  return concatBytes(TX_PREFIX, encodeCbor(bodyToCbor(body)));
}

/** Signs a transaction with the operator's Ed25519 seed. */
export function signTx(body: TxBody, operatorSecret: Uint8Array): SignedTx {
  const sig = sign(operatorSecret, txSigningInput(body));
  const bytes = encodeCbor([bodyToCbor(body), sig]);
  return { body, sig, bytes, hash: sha256(bytes) };
}

/** Parameters an operator gives to make a transaction. */
export interface TxRequest {
  job: string;
  plaintext: { digest: Uint8Array; size: number };
  device: string;
  devicePublic: Uint8Array;
  operatorSecret: Uint8Array;
  operatorPublic: Uint8Array;
  notBefore: number;
  notAfter: number;
  rate: number;
  burst: number;
  prints?: number;
  gatewayPublic?: Uint8Array;
  /** a protected job ([LM-PROT-2]): its id and the hash of its upload transaction */
  protectedJob?: { jid: Uint8Array; uh: Uint8Array };
  /** fixed randomness, for vectors only */
  fixed?: { licence: Uint8Array; ephemeral: Uint8Array; nonce: Uint8Array };
}

/** Makes and signs a transaction; returns it with the licence secret for the gateway. */
export function createTx(req: TxRequest): { tx: SignedTx; licence: Uint8Array } {
  const licence = req.fixed?.licence.slice() ?? randomBytes(32); // [LM-SEC-3]
  // a protected job's digest travels keyed by the licence ([LM-PROT-4])
  const jd = req.protectedJob ? keyedJobDigest(jobDigestKey(licence), req.plaintext.digest) : req.plaintext.digest;
  const body: TxBody = {
    v: 1,
    job: req.job,
    jd,
    size: req.plaintext.size,
    device: req.device,
    dpk: req.devicePublic,
    opk: req.operatorPublic,
    nbf: req.notBefore,
    naf: req.notAfter,
    rate: req.rate,
    burst: req.burst,
    prints: req.prints ?? 1,
    lic: sealLicence(licence, req.devicePublic, jd, req.fixed?.ephemeral),
    nonce: req.fixed?.nonce ?? randomBytes(16),
  };
  if (req.gatewayPublic) body.gwpk = req.gatewayPublic;
  if (req.protectedJob) {
    body.jid = req.protectedJob.jid;
    body.uh = req.protectedJob.uh;
  }
  return { tx: signTx(body, req.operatorSecret), licence };
}

/** Decodes a transaction without judging it (structure only). Throws LmError `tx-schema`. */
export function decodeTx(bytes: Uint8Array): SignedTx {
  let v: CborValue;
  try {
    v = decodeCbor(bytes, 4096);
  } catch (e) {
    throw new LmError(Reason.txSchema, `transaction is not valid CBOR: ${errorMessage(e)}`);
  }
  if (!Array.isArray(v) || v.length !== 2) return txErr('not a [body, sig] array');
  const [b, sig] = v as [CborValue, CborValue];
  // [LM-TX-9]: a signature of the wrong type or length is a malformed transaction, not a bad signature
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return txErr('sig is not a byte string of 64 bytes');
  return { body: bodyFromCbor(b), sig, bytes: bytes.slice(), hash: sha256(bytes) };
}

/** What the verifier knows. */
export interface TxContext {
  now: number;
  trustedOperators: readonly Uint8Array[];
  /** for a device: its own id and key ([LM-TX-5]) */
  device?: { id: string; publicKey: Uint8Array };
  /** for a device: the OFFER's gateway key ([LM-FRAME-6]) */
  gatewayPublic?: Uint8Array;
  /** streams already started under this transaction ([LM-TX-7]) */
  printsUsed?: number;
}

/**
 * Verifies a transaction under [LM-TX-2]..[LM-TX-5], [LM-TX-7] and [LM-FRAME-6]. Throws the
 * reason code of the first rule that fails.
 */
export function verifyTx(bytes: Uint8Array | undefined, ctx: TxContext): SignedTx {
  if (!bytes || bytes.length === 0) throw new LmError(Reason.txSignature, 'no transaction: streaming needs one signed by an operator ([LM-TX-2])');
  const tx = decodeTx(bytes);
  const b = tx.body;
  // Canonical: the bytes must be exactly the encoding of what we decoded.
  if (!equalBytes(encodeCbor([bodyToCbor(b), tx.sig]), bytes)) txErr('not canonically encoded');
  if (!verify(b.opk, txSigningInput(b), tx.sig)) throw new LmError(Reason.txSignature, 'transaction signature does not verify under its operator key ([LM-TX-2])');
  if (!ctx.trustedOperators.some((k) => equalBytes(k, b.opk))) throw new LmError(Reason.txOperator, 'transaction is signed by an operator key that is not trusted here ([LM-TX-3])');
  if (b.naf < b.nbf || b.naf - b.nbf > TX_MAX_VALIDITY_MS) throw new LmError(Reason.txExpired, `validity window of ${b.naf - b.nbf} ms is negative or longer than 30 days ([LM-TX-8])`);
  if (ctx.now < b.nbf) throw new LmError(Reason.txExpired, `transaction is not valid before ${new Date(b.nbf).toISOString()} ([LM-TX-4])`);
  if (ctx.now > b.naf) throw new LmError(Reason.txExpired, `transaction expired at ${new Date(b.naf).toISOString()} ([LM-TX-4])`);
  if (ctx.device) {
    if (b.device !== ctx.device.id || !equalBytes(b.dpk, ctx.device.publicKey)) {
      throw new LmError(Reason.txDevice, `transaction is for device "${b.device}", not "${ctx.device.id}" with this key ([LM-TX-5])`);
    }
  }
  if (ctx.gatewayPublic && b.gwpk && !equalBytes(b.gwpk, ctx.gatewayPublic)) {
    throw new LmError(Reason.txGateway, 'transaction names another gateway ([LM-FRAME-6])');
  }
  if (ctx.printsUsed !== undefined && ctx.printsUsed >= b.prints) {
    throw new LmError(Reason.txCount, `print count exhausted: ${ctx.printsUsed} of ${b.prints} used ([LM-TX-7])`);
  }
  return tx;
}
