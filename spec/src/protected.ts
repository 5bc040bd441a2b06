/**
 * @module protected
 * Protected jobs (SPEC.md §16): the owner encrypts a job before it leaves their machine, under a
 * fresh key per chunk bound to the job and the chunk index ([LM-PROT-1]); the store keeps the
 * ciphertext as equal-sized segments among decoys ([LM-SVC-1]) under an outer layer whose key
 * changes every epoch ([LM-SVC-3]); the chunk keys and the playbook travel sealed to the keys
 * service ([LM-SVC-2]), which releases each chunk key wrapped for one device session under a
 * content chain derived from the licence secret ([LM-PROT-2]). Decoding throws only {@link LmError}.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { expand } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { open, seal } from './aead.js';
import { ascii, concatBytes, equalBytes, randomBytes, u64be, wipe } from './bytes.js';
import { type CborValue, decodeCbor, encodeCbor } from './cbor.js';
import { LmError, Reason, errorMessage } from './errors.js';
import { type IdentityKeyPair, sign, verify } from './identity.js';
import { Ratchet, type RevisionKeys, ecdh, hkdf, x25519KeyPair } from './keys.js';

export const PROTECTED_VERSION = 2;
/** default chunk size of an upload */
export const UPLOAD_CHUNK = 4096;
/** segment counts are rounded up to a multiple of this ([LM-SVC-1]) */
export const SEGMENT_GRANULARITY = 16;
const TAG = 16;

// ---- AEAD: ChaCha20-Poly1305 as in aead.ts -------------------------------------------------

const ZERO_NONCE = new Uint8Array(12);

/** n random bytes, n beyond the 65,536 one call of the platform's generator gives (a segment of C = 65,536 is 65,552). */
function randomOf(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) out.set(randomBytes(Math.min(65536, n - at)), at);
  return out;
}
const chunkAad = (jid: Uint8Array, j: number) => concatBytes(ascii('lm2 chunk'), jid, u64be(j));

/** ct_j of [LM-PROT-1]: a fresh key per chunk, so the zero nonce never repeats under a key. */
export function sealProtectedChunk(chunkKey: Uint8Array, jid: Uint8Array, j: number, plaintext: Uint8Array): Uint8Array {
  return seal(chunkKey, ZERO_NONCE, chunkAad(jid, j), plaintext);
}

/** Opens ct_j of [LM-PROT-1]; throws LmError `auth`. */
export function openProtectedChunk(chunkKey: Uint8Array, jid: Uint8Array, j: number, ct: Uint8Array): Uint8Array {
  return open(chunkKey, ZERO_NONCE, ct, chunkAad(jid, j), `protected chunk ${j} ([LM-PROT-1])`);
}

// ---- signed objects --------------------------------------------------------------------------

function signed(prefix: string, body: Map<number, CborValue>, secret: Uint8Array): { bytes: Uint8Array; sig: Uint8Array } {
  const sig = sign(secret, concatBytes(ascii(prefix), Uint8Array.of(0), encodeCbor(body)));
  return { bytes: encodeCbor([body, sig]), sig };
}

function unsigned(bytes: Uint8Array, what: string, max = 4096): { m: Map<number, CborValue>; sig: Uint8Array } {
  let v: CborValue;
  try {
    v = decodeCbor(bytes, max);
  } catch (e) {
    throw new LmError(Reason.schema, `${what}: not valid CBOR: ${errorMessage(e)}`);
  }
  if (!Array.isArray(v) || v.length !== 2) throw new LmError(Reason.schema, `${what}: not a [body, sig] array`);
  const [m, sig] = v as [CborValue, CborValue];
  if (!(m instanceof Map)) throw new LmError(Reason.schema, `${what}: body is not a map`);
  if (!(sig instanceof Uint8Array) || sig.length !== 64) throw new LmError(Reason.auth, `${what}: no 64-byte signature`);
  if (!equalBytes(encodeCbor([m, sig]), bytes)) throw new LmError(Reason.noncanonical, `${what}: not canonically encoded`);
  return { m: m as Map<number, CborValue>, sig };
}

const field = {
  uint(m: Map<number, CborValue>, k: number, what: string): number {
    const x = m.get(k);
    if (typeof x !== 'number' || x < 0) throw new LmError(Reason.schema, `${what}: field ${k} must be an unsigned integer`);
    return x;
  },
  bytes(m: Map<number, CborValue>, k: number, n: number, what: string): Uint8Array {
    const x = m.get(k);
    if (!(x instanceof Uint8Array) || x.length !== n) throw new LmError(Reason.schema, `${what}: field ${k} must be a bstr of ${n} bytes`);
    return x;
  },
  text(m: Map<number, CborValue>, k: number, what: string): string {
    const x = m.get(k);
    if (typeof x !== 'string' || x.length < 1 || x.length > 64) throw new LmError(Reason.schema, `${what}: field ${k} must be a text of 1 to 64 characters`);
    return x;
  },
};

// ---- upload ----------------------------------------------------------------------------------

/** The owner-signed upload transaction ([LM-PROT-1]). */
export interface UploadBody {
  v: 2;
  jid: Uint8Array;
  size: number;
  /** SHA-256 of the plaintext */
  jd: Uint8Array;
  /** chunk size */
  C: number;
  /** chunks */
  n: number;
  /** segments stored, decoys included */
  segments: number;
  /** the owner's Ed25519 public key */
  okp: Uint8Array;
  time: number;
  /** the keys service's X25519 public key the envelope is sealed to */
  kspk: Uint8Array;
}

export interface SignedUpload {
  body: UploadBody;
  bytes: Uint8Array;
  /** uh: SHA-256 of `bytes` */
  hash: Uint8Array;
}

const UPLOAD_PREFIX = 'livematrix/2 upload';

function uploadMap(b: UploadBody): Map<number, CborValue> {
  return new Map<number, CborValue>([[1, b.v], [2, b.jid], [3, b.size], [4, b.jd], [5, b.C], [6, b.n], [7, b.segments], [8, b.okp], [9, b.time], [10, b.kspk]]);
}

/** Decodes and verifies an upload transaction under its owner key, and that key among `trustedOwners` when given ([LM-PROT-1]). */
export function verifyUpload(bytes: Uint8Array, trustedOwners?: readonly Uint8Array[]): SignedUpload {
  const w = 'upload';
  const { m, sig } = unsigned(bytes, w);
  for (const k of m.keys()) if (typeof k !== 'number' || k < 1 || k > 10) throw new LmError(Reason.schema, `${w}: unexpected key ${String(k)}`);
  if (field.uint(m, 1, w) !== PROTECTED_VERSION) throw new LmError(Reason.version, `${w}: version ${String(m.get(1))} is not 2`);
  const body: UploadBody = {
    v: 2, jid: field.bytes(m, 2, 16, w), size: field.uint(m, 3, w), jd: field.bytes(m, 4, 32, w), C: field.uint(m, 5, w), n: field.uint(m, 6, w),
    segments: field.uint(m, 7, w), okp: field.bytes(m, 8, 32, w), time: field.uint(m, 9, w), kspk: field.bytes(m, 10, 32, w),
  };
  if (body.C < 256 || body.C > 65536) throw new LmError(Reason.schema, `${w}: chunk size ${body.C} outside 256..65536`);
  if (body.n !== Math.ceil(body.size / body.C)) throw new LmError(Reason.schema, `${w}: ${body.n} chunks for ${body.size} bytes of ${body.C}`);
  // [LM-SVC-1] n + decoys is a non-zero multiple of 16: an empty job still hides among 16 decoys
  if (body.segments < body.n || body.segments === 0 || body.segments % SEGMENT_GRANULARITY !== 0) throw new LmError(Reason.schema, `${w}: ${body.segments} segments for ${body.n} chunks (a non-zero multiple of ${SEGMENT_GRANULARITY}, [LM-SVC-1])`);
  if (!verify(body.okp, concatBytes(ascii(UPLOAD_PREFIX), Uint8Array.of(0), encodeCbor(uploadMap(body))), sig)) throw new LmError(Reason.auth, `${w}: the owner's signature does not verify ([LM-PROT-1])`);
  if (trustedOwners && !trustedOwners.some((k) => equalBytes(k, body.okp))) throw new LmError(Reason.txOperator, `${w}: signed by an owner key that is not trusted here`);
  return { body, bytes: bytes.slice(), hash: sha256(bytes) };
}

/** What the keys service learns from an envelope ([LM-SVC-2]). */
export interface Playbook {
  jid: Uint8Array;
  /** k_0..k_{n-1} */
  keys: Uint8Array[];
  /** ids of the real segments, in chunk order */
  order: Uint8Array[];
  /** ciphertext length of the last chunk (0 for an empty job) */
  last: number;
  decoys: Uint8Array[];
}

/** One stored segment: an opaque id and exactly C + 16 bytes ([LM-SVC-1]). */
export interface Segment {
  id: Uint8Array;
  bytes: Uint8Array;
}

export interface UploadOptions {
  owner: IdentityKeyPair;
  /** the keys service's X25519 public key */
  keysService: Uint8Array;
  /** chunk size, default 4096 */
  C?: number;
  /** share of decoys among the segments, default 0.5 ([LM-SVC-1]) */
  density?: number;
  now: number;
}

/** The number of decoys for n chunks at density d: at least n·d/(1−d), the total a multiple of 16 ([LM-SVC-1]). */
export function decoyCount(n: number, density: number): number {
  if (!(density >= 0 && density < 1)) throw new LmError(Reason.schema, `decoy density ${density} outside [0, 1)`);
  const min = Math.ceil((n * density) / (1 - density));
  const total = Math.max(SEGMENT_GRANULARITY, Math.ceil((n + min) / SEGMENT_GRANULARITY) * SEGMENT_GRANULARITY);
  return total - n;
}

/**
 * The owner's side of an upload ([LM-PROT-1]..[LM-SVC-2]): chunks sealed under fresh keys,
 * segments of one size among decoys in a random order, the signed upload transaction, and the
 * envelope of chunk keys and playbook sealed to the keys service. The plaintext and the chunk
 * keys leave only inside the envelope.
 */
export function sealUpload(plaintext: Uint8Array, o: UploadOptions): { upload: SignedUpload; segments: Segment[]; envelope: Uint8Array; jid: Uint8Array } {
  const C = o.C ?? UPLOAD_CHUNK;
  if (C < 256 || C > 65536) throw new LmError(Reason.schema, `chunk size ${C} outside 256..65536`);
  const jid = randomBytes(16);
  const n = Math.ceil(plaintext.length / C);
  const S = C + TAG;
  const keys: Uint8Array[] = [];
  const order: Uint8Array[] = [];
  const segments: Segment[] = [];
  let last = 0;
  for (let j = 0; j < n; j++) {
    const k = randomBytes(32);
    const ct = sealProtectedChunk(k, jid, j, plaintext.subarray(j * C, Math.min(plaintext.length, (j + 1) * C)));
    last = ct.length;
    const bytes = ct.length === S ? ct : concatBytes(ct, randomOf(S - ct.length));
    const id = randomBytes(16);
    keys.push(k);
    order.push(id);
    segments.push({ id, bytes });
  }
  const decoys: Uint8Array[] = [];
  for (let i = 0, d = decoyCount(n, o.density ?? 0.5); i < d; i++) {
    const id = randomBytes(16);
    decoys.push(id);
    segments.push({ id, bytes: randomOf(S) });
  }
  shuffle(segments);
  const body: UploadBody = {
    v: 2, jid, size: plaintext.length, jd: sha256(plaintext), C, n, segments: segments.length, okp: o.owner.publicKey, time: o.now, kspk: o.keysService,
  };
  const { bytes } = signed(UPLOAD_PREFIX, uploadMap(body), o.owner.secretKey);
  const upload: SignedUpload = { body, bytes, hash: sha256(bytes) };
  const envelope = sealEnvelope({ jid, keys, order, last, decoys }, o.keysService, upload.hash);
  wipe(...keys);
  return { upload, segments, envelope, jid };
}

/** Fisher-Yates with a CSPRNG: the store must not learn the order from the upload's ([LM-SVC-1]). */
function shuffle<T>(xs: T[]): void {
  const r = randomBytes(4 * xs.length);
  const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
  for (let i = xs.length - 1; i > 0; i--) {
    const j = dv.getUint32(4 * i) % (i + 1);
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
}

function envelopeKey(shared: Uint8Array, uh: Uint8Array, epk: Uint8Array, kspk: Uint8Array): Uint8Array {
  return hkdf(sha256, shared, uh, concatBytes(ascii('lm2 envelope'), epk, kspk), 32);
}

/**
 * The envelope's layout ([LM-SVC-2]): fixed-width binary, not CBOR, so that its size is
 * bounded by the job (about 64 bytes a chunk) rather than by the frame codec's limits:
 * `envelope = epk(32) ‖ AEAD(k, 0^12, contents, aad = uh)`, `contents = jid(16) ‖ u32(n) ‖
 * u32(last) ‖ u32(d) ‖ k_0..k_{n-1} (32 each) ‖ order (16 each) ‖ decoys (16 each)`.
 */
function sealEnvelope(p: Playbook, kspk: Uint8Array, uh: Uint8Array): Uint8Array {
  const eph = x25519KeyPair();
  const shared = ecdh(eph.secretKey, kspk);
  const k = envelopeKey(shared, uh, eph.publicKey, kspk);
  const n = p.keys.length;
  const env = new Uint8Array(16 + 12 + 32 * n + 16 * n + 16 * p.decoys.length);
  const dv = new DataView(env.buffer);
  env.set(p.jid, 0);
  dv.setUint32(16, n);
  dv.setUint32(20, p.last);
  dv.setUint32(24, p.decoys.length);
  let at = 28;
  for (const x of [...p.keys, ...p.order, ...p.decoys]) {
    env.set(x, at);
    at += x.length;
  }
  const ct = seal(k, ZERO_NONCE, uh, env);
  wipe(shared, k, eph.secretKey, env);
  return concatBytes(eph.publicKey, ct);
}

/** Opens an envelope with the keys service's X25519 secret and checks it against its upload ([LM-SVC-2]). Throws LmError. */
export function openEnvelope(envelope: Uint8Array, ks: { secretKey: Uint8Array; publicKey: Uint8Array }, upload: SignedUpload): Playbook {
  const w = 'envelope';
  if (envelope.length < 32 + 28 + TAG) throw new LmError(Reason.schema, `${w}: ${envelope.length} bytes is too short`);
  if (!equalBytes(ks.publicKey, upload.body.kspk)) throw new LmError(Reason.auth, `${w}: sealed to another keys service`);
  const epk = envelope.subarray(0, 32);
  const shared = ecdh(ks.secretKey, epk);
  const k = envelopeKey(shared, upload.hash, epk, ks.publicKey);
  const env = open(k, ZERO_NONCE, envelope.subarray(32), upload.hash, `${w} ([LM-SVC-2])`);
  wipe(shared, k);
  try {
    const dv = new DataView(env.buffer, env.byteOffset, env.byteLength);
    const n = dv.getUint32(16);
    const last = dv.getUint32(20);
    const d = dv.getUint32(24);
    if (env.length !== 28 + 48 * n + 16 * d) throw new LmError(Reason.schema, `${w}: ${env.length} bytes of contents for ${n} chunks and ${d} decoys`);
    const slice = (at: number, len: number, count: number) => Array.from({ length: count }, (_, i) => env.slice(at + i * len, at + (i + 1) * len));
    const out: Playbook = { jid: env.slice(0, 16), keys: slice(28, 32, n), order: slice(28 + 32 * n, 16, n), last, decoys: slice(28 + 48 * n, 16, d) };
    const b = upload.body;
    if (!equalBytes(out.jid, b.jid) || n !== b.n || n + d !== b.segments) throw new LmError(Reason.schema, `${w}: does not match its upload (job, ${b.n} chunks, ${b.segments} segments)`);
    const lastExpected = b.n === 0 ? 0 : b.size - (b.n - 1) * b.C + TAG;
    if (out.last !== lastExpected) throw new LmError(Reason.schema, `${w}: last chunk of ${out.last} bytes, expected ${lastExpected}`);
    return out;
  } finally {
    env.fill(0);
  }
}

// ---- delete ----------------------------------------------------------------------------------

export interface DeleteBody {
  v: 2;
  jid: Uint8Array;
  okp: Uint8Array;
  time: number;
}

const DELETE_PREFIX = 'livematrix/2 delete';
const DELETED_PREFIX = 'livematrix/2 deleted';

/** The owner's signed delete transaction ([LM-SVC-5]). */
export function signDelete(jid: Uint8Array, owner: IdentityKeyPair, time: number): Uint8Array {
  return signed(DELETE_PREFIX, new Map<number, CborValue>([[1, 2], [2, jid], [3, owner.publicKey], [4, time]]), owner.secretKey).bytes;
}

/** Verifies a delete transaction under its owner key ([LM-SVC-5]). */
export function verifyDelete(bytes: Uint8Array): DeleteBody & { hash: Uint8Array } {
  const w = 'delete';
  const { m, sig } = unsigned(bytes, w);
  if (field.uint(m, 1, w) !== PROTECTED_VERSION) throw new LmError(Reason.version, `${w}: version is not 2`);
  const body: DeleteBody = { v: 2, jid: field.bytes(m, 2, 16, w), okp: field.bytes(m, 3, 32, w), time: field.uint(m, 4, w) };
  if (!verify(body.okp, concatBytes(ascii(DELETE_PREFIX), Uint8Array.of(0), encodeCbor(m)), sig)) throw new LmError(Reason.auth, `${w}: the owner's signature does not verify ([LM-SVC-5])`);
  return { ...body, hash: sha256(bytes) };
}

export interface DeletionReceipt {
  jid: Uint8Array;
  service: string;
  removed: number;
  time: number;
  /** SHA-256 of the delete transaction */
  dh: Uint8Array;
}

/** A service's signed statement of what it removed ([LM-SVC-5]). */
export function signDeletionReceipt(r: DeletionReceipt, identity: IdentityKeyPair): Uint8Array {
  return signed(DELETED_PREFIX, new Map<number, CborValue>([[1, r.jid], [2, r.service], [3, r.removed], [4, r.time], [5, r.dh]]), identity.secretKey).bytes;
}

/** Verifies a deletion receipt under the service's key. */
export function verifyDeletionReceipt(bytes: Uint8Array, servicePublic: Uint8Array): DeletionReceipt {
  const w = 'deletion receipt';
  const { m, sig } = unsigned(bytes, w);
  if (!verify(servicePublic, concatBytes(ascii(DELETED_PREFIX), Uint8Array.of(0), encodeCbor(m)), sig)) throw new LmError(Reason.auth, `${w}: signature does not verify`);
  return { jid: field.bytes(m, 1, 16, w), service: field.text(m, 2, w), removed: field.uint(m, 3, w), time: field.uint(m, 4, w), dh: field.bytes(m, 5, 32, w) };
}

// ---- the epoch layer -------------------------------------------------------------------------

/** c_{e+1} from c_e ([LM-SVC-3]): one way; erasing c_e erases every key of epoch e and before. */
export function nextEpochChain(c: Uint8Array): Uint8Array {
  return expand(sha256, c, ascii('lm2 epoch chain'), 32);
}

/** K_e from c_e ([LM-SVC-3]). */
export function epochKey(c: Uint8Array): Uint8Array {
  return expand(sha256, c, ascii('lm2 epoch key'), 32);
}

const outerAad = (id: Uint8Array, e: number) => concatBytes(ascii('lm2 outer'), id, u64be(e));

/** A segment at rest in epoch e: nonce ‖ AEAD(K_e, nonce, segment, aad = "lm2 outer" ‖ id ‖ u64(e)) ([LM-SVC-3]). */
export function sealOuter(key: Uint8Array, e: number, id: Uint8Array, segment: Uint8Array): Uint8Array {
  const nonce = randomBytes(12);
  return concatBytes(nonce, seal(key, nonce, outerAad(id, e), segment));
}

/** Opens a segment at rest; throws LmError `auth` under any other key, id or epoch. */
export function openOuter(key: Uint8Array, e: number, id: Uint8Array, stored: Uint8Array): Uint8Array {
  if (stored.length < 12 + TAG) throw new LmError(Reason.auth, 'stored segment too short');
  return open(key, stored.subarray(0, 12), stored.subarray(12), outerAad(id, e), `segment at rest (epoch ${e}) ([LM-SVC-3])`);
}

// ---- the content chain -----------------------------------------------------------------------

/**
 * The session's content chain ([LM-PROT-2]): from the licence secret and the transcript, so that
 * only the device and the keys service (which hold K_lic) derive the chunk keys' wrap keys; it
 * feeds the per-revision {@link Ratchet} of SPEC §4.2 (W_r = its `wk` of revision r).
 */
export function contentChain(licence: Uint8Array, th: Uint8Array): Uint8Array {
  return hkdf(sha256, licence, th, ascii('lm2 content chain'), 32);
}

/** The hint layer's licence input in a protected session: none (32 zero bytes) ([LM-PROT-2]). */
export const NO_LICENCE = new Uint8Array(32);

/**
 * The content chain's wrap keys of one session ([LM-PROT-2]): W_r of each revision asked for,
 * kept for the last `keep` revisions (KEY frames of the previous revision may still arrive within
 * the grace time) and erased after; a revision older than those is gone ([LM-KEY-4]).
 */
export class ContentKeys {
  private readonly ratchet: Ratchet;
  private readonly held = new Map<number, RevisionKeys>();

  constructor(ckc: Uint8Array, r0: number, private readonly keep = 3) {
    this.ratchet = new Ratchet(ckc, r0);
    wipe(ckc);
  }

  /** W_r (as RevisionKeys: `wk`), or undefined for a revision whose key was erased. */
  keysFor(r: number): RevisionKeys | undefined {
    const had = this.held.get(r);
    if (had) return had;
    if (r < this.ratchet.position) return undefined;
    const k = this.ratchet.keysFor(r);
    this.held.set(r, k);
    for (const [old, ok] of this.held) {
      if (old > r - this.keep) continue;
      wipe(ok.hk, ok.wk);
      this.held.delete(old);
    }
    return k;
  }

  destroy(): void {
    for (const k of this.held.values()) wipe(k.hk, k.wk);
    this.held.clear();
    this.ratchet.destroy();
  }
}

/**
 * The key of a protected job's keyed digest ([LM-PROT-4]): from the licence secret, which only the
 * operator, the keys service and the device hold.
 */
export function jobDigestKey(licence: Uint8Array): Uint8Array {
  return hkdf(sha256, licence, new Uint8Array(0), ascii('lm2 job digest'), 32);
}

/**
 * What a protected job's transaction, END and RECEIPT carry for its SHA-256 ([LM-PROT-4]):
 * HMAC-SHA-256 under {@link jobDigestKey}, so that whoever holds a candidate file and sees the
 * traffic cannot confirm that it is the one printing.
 */
export function keyedJobDigest(key: Uint8Array, jd: Uint8Array): Uint8Array {
  return hmac(sha256, key, concatBytes(ascii('lm2 jd'), jd));
}
