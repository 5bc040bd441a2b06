/**
 * Vectors of protected jobs (SPEC.md §16, `protected.json`): the owner's chunk encryption and
 * signed upload transaction ([LM-PROT-1]), and the distribution's keys ([LM-PROT-2]): the hint
 * layer keyed without K_lic, the content chain's wrap keys W_r and chunk keys wrapped under them,
 * and a streaming transaction naming the protected job. Pure: the same bytes every run. The
 * reference `sealUpload` draws its keys, ids and order at random, so the upload here is built
 * from fixed fields by {@link signUpload}, which writes the format of §16 directly.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  type CborValue, type TxBody, LmError, NO_LICENCE, Reason, Ratchet, ascii, concatBytes, contentChain, createTx, decodeCbor, decoyCount, deriveSessionKeys, ecdh, encodeCbor,
  epochKey, fromHex, hkdf, identityKeyPair, jobDigestKey, keyedJobDigest, nextEpochChain, openEnvelope, openOuter, openProtectedChunk, sealChunk, sealProtectedChunk, sign, signDelete,
  signDeletionReceipt, signTx, toHex, transcriptHash, u32be, unwrapChunkKey, verifyDelete, verifyDeletionReceipt, verifyTx, verifyUpload, wrapChunkKey, x25519KeyPair,
} from '../src/index.js';
import { seal } from '../src/aead.js';
import { u64be } from '../src/bytes.js';
import { type VectorFile, type VectorGroup, type VectorTest, det, errorName, jsonOf, keyFixture, linkTwins, txFixture } from './vectors.js';

type FileMaker = (algorithm: string, notes: Record<string, string>, groups: VectorGroup[]) => VectorFile;

const T0 = 1_764_000_000_000;
const UPLOAD_SIGNING_PREFIX = 'livematrix/2 upload';

/** The upload-body of [LM-PROT-1] as its CBOR map, keys 1..10 (a field may be given a wrong value on purpose). */
export interface UploadFields {
  v: number;
  jid: Uint8Array;
  size: number;
  jd: Uint8Array;
  C: number;
  n: number;
  segments: number;
  okp: Uint8Array;
  time: number;
  kspk: Uint8Array;
}

function uploadMap(f: UploadFields): Map<number, CborValue> {
  return new Map<number, CborValue>([[1, f.v], [2, f.jid], [3, f.size], [4, f.jd], [5, f.C], [6, f.n], [7, f.segments], [8, f.okp], [9, f.time], [10, f.kspk]]);
}

/**
 * An upload transaction from fixed fields ([LM-PROT-1]): `enc([upload-body, sig])`, `sig` the
 * Ed25519 signature by `secret` over `ascii("livematrix/2 upload") ‖ 0x00 ‖ enc(upload-body)`
 * (Ed25519 is deterministic, so the bytes are too).
 */
export function signUpload(f: UploadFields, secret: Uint8Array): Uint8Array {
  const body = uploadMap(f);
  const sig = sign(secret, concatBytes(ascii(UPLOAD_SIGNING_PREFIX), Uint8Array.of(0), encodeCbor(body)));
  return encodeCbor([body, sig]);
}

/** The upload's bytes with some body fields changed and the signature kept (a forger's edit). */
function editedUpload(bytes: Uint8Array, change: Partial<Record<number, CborValue>>): Uint8Array {
  const [body, sig] = decodeCbor(bytes) as [Map<number, CborValue>, Uint8Array];
  const m = new Map(body);
  for (const [k, v] of Object.entries(change)) m.set(Number(k), v as CborValue);
  return encodeCbor([m, sig]);
}

/** Deterministic G-code of exactly `bytes` bytes. */
function gcode(bytes: number): Uint8Array {
  let text = '; protected job\nG28\nM104 S215\nG90\n';
  for (let i = 0; text.length < bytes; i++) text += `G1 X${100 + (i % 37)}.${i % 10} Y${80 + ((7 * i) % 41)}.${(3 * i) % 10} E${i}.0${i % 7}\n`;
  return ascii(text.slice(0, bytes));
}

/** The owner's job, chunk keys, upload and the keys service's key pair: the fixed inputs of every group. */
export function protectedFixture() {
  const owner = identityKeyPair(det('owner identity'));
  const stranger = identityKeyPair(det('another owner identity'));
  const keysService = x25519KeyPair(det('keys service x25519'));
  const jid = det('protected jid', 16);
  const C = 256;
  const plaintext = gcode(600);
  const chunks = Array.from({ length: Math.ceil(plaintext.length / C) }, (_, j) => {
    const key = det(`protected chunk key ${j}`);
    const pt = plaintext.subarray(j * C, Math.min(plaintext.length, (j + 1) * C));
    return { j, key, pt, ct: sealProtectedChunk(key, jid, j, pt) };
  });
  const fields: UploadFields = {
    v: 2, jid, size: plaintext.length, jd: sha256(plaintext), C, n: chunks.length, segments: 16, okp: owner.publicKey, time: T0, kspk: keysService.publicKey,
  };
  const upload = signUpload(fields, owner.secretKey);
  const checked = verifyUpload(upload, [owner.publicKey]);
  if (toHex(checked.hash) !== toHex(sha256(upload))) throw new Error('upload hash');
  return { owner, stranger, keysService, jid, C, plaintext, chunks, fields, upload, uh: checked.hash };
}

// ---- chunks ([LM-PROT-1]) ----------------------------------------------------------------------

function chunkGroup(fx: ReturnType<typeof protectedFixture>, twins: Map<VectorTest, VectorTest>): VectorGroup {
  const tests: VectorTest[] = [];
  const requirements = ['LM-PROT-1'];
  const valid = (comment: string, flags: string[], key: Uint8Array, jid: Uint8Array, j: number, pt: Uint8Array): VectorTest => {
    const ct = sealProtectedChunk(key, jid, j, pt);
    if (toHex(openProtectedChunk(key, jid, j, ct)) !== toHex(pt)) throw new Error(`chunk vector "${comment}" does not open`);
    const v: VectorTest = { tcId: 0, comment, result: 'valid', flags, requirements, key: toHex(key), jid: toHex(jid), index: j, plaintext: toHex(pt), ciphertext: toHex(ct) };
    tests.push(v);
    return v;
  };
  const invalid = (comment: string, flags: string[], key: Uint8Array, jid: Uint8Array, j: number, ct: Uint8Array, twin: VectorTest) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, key: toHex(key), jid: toHex(jid), index: j, ciphertext: toHex(ct), error: errorName(() => openProtectedChunk(key, jid, j, ct)) };
    twins.set(v, twin);
    tests.push(v);
  };
  const [c0] = fx.chunks;
  if (!c0) throw new Error('no chunk');
  const first = valid(`chunk 0 of the upload (${c0.pt.length} bytes, C = ${fx.C})`, [], c0.key, fx.jid, 0, c0.pt);
  for (const c of fx.chunks.slice(1)) valid(`chunk ${c.j} of the upload (${c.pt.length} bytes)${c.pt.length < fx.C ? ': the last, shorter' : ''}`, c.pt.length < fx.C ? ['LastChunk'] : [], c.key, fx.jid, c.j, c.pt);
  valid('chunk index above 2^32: u64be(j) in the AAD', ['LargeIndex'], det('protected chunk key large'), fx.jid, 2 ** 32 + 5, det('protected chunk plaintext', 100));
  const flipped = c0.ct.slice();
  flipped[3] = (flipped[3] as number) ^ 0x01;
  invalid('ciphertext with one bit flipped', ['Tampered'], c0.key, fx.jid, 0, flipped, first);
  const tag = c0.ct.slice();
  tag[tag.length - 1] = (tag[tag.length - 1] as number) ^ 0x80;
  invalid('tag with one bit flipped', ['Tampered'], c0.key, fx.jid, 0, tag, first);
  invalid('opened as chunk 1: j is bound by the AAD', ['WrongIndex'], c0.key, fx.jid, 1, c0.ct, first);
  invalid('opened under another job id', ['WrongJob'], c0.key, det('another protected jid', 16), 0, c0.ct, first);
  invalid('a v1 chunk of the same key and plaintext (aad "lm1 chunk" with sid = jid, nonce 0 || u64be(j))', ['V1Chunk'], c0.key, fx.jid, 0, sealChunk(c0.key, fx.jid, 0, c0.pt), first);
  invalid('shorter than the tag', ['Truncated'], c0.key, fx.jid, 0, c0.ct.subarray(0, 15), first);
  return { type: 'ProtectedChunkTest', layout: 'ChaCha20-Poly1305(key, nonce = 0^12, plaintext, aad = ascii("lm2 chunk") || jid || u64be(j))', tests };
}

// ---- the upload transaction ([LM-PROT-1]) ------------------------------------------------------

function uploadGroup(fx: ReturnType<typeof protectedFixture>, twins: Map<VectorTest, VectorTest>): VectorGroup {
  const tests: VectorTest[] = [];
  const requirements = ['LM-PROT-1'];
  const run = (bytes: Uint8Array, trusted: string[]) => verifyUpload(bytes, trusted.map(fromHex));
  const trusted = [toHex(fx.owner.publicKey)];
  const valid = (comment: string, flags: string[], bytes: Uint8Array, trustedOwners: string[]): VectorTest => {
    const u = run(bytes, trustedOwners);
    const v: VectorTest = { tcId: 0, comment, result: 'valid', flags, requirements, upload: toHex(bytes), trustedOwners, uh: toHex(u.hash), decoded: jsonOf(u.body) };
    tests.push(v);
    return v;
  };
  const invalid = (comment: string, flags: string[], bytes: Uint8Array, trustedOwners: string[], twin: VectorTest) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, upload: toHex(bytes), trustedOwners, error: errorName(() => run(bytes, trustedOwners)) };
    twins.set(v, twin);
    tests.push(v);
  };
  const main = valid(`an upload of ${fx.fields.size} bytes in ${fx.fields.n} chunks and ${fx.fields.segments} segments, signed by its trusted owner`, [], fx.upload, trusted);
  const both = [toHex(fx.stranger.publicKey), toHex(fx.owner.publicKey)];
  valid('the owner among two trusted owner keys', [], fx.upload, both);
  const sigFlip = fx.upload.slice();
  sigFlip[sigFlip.length - 1] = (sigFlip[sigFlip.length - 1] as number) ^ 0x01;
  invalid('signature with one bit flipped', ['BadSignature'], sigFlip, trusted, main);
  invalid('size raised by one after signing (n still matches)', ['Tampered'], editedUpload(fx.upload, { 3: fx.fields.size + 1 }), trusted, main);
  invalid('jd changed after signing', ['Tampered'], editedUpload(fx.upload, { 4: det('another job digest') }), trusted, main);
  invalid('kspk replaced after signing: the envelope sealed to another keys service', ['Tampered'], editedUpload(fx.upload, { 10: x25519KeyPair(det('another keys service')).publicKey }), trusted, main);
  invalid('signed by another key while okp names the owner', ['WrongOwnerKey'], signUpload(fx.fields, fx.stranger.secretKey), trusted, main);
  invalid('signed by its owner, whose key the verifier does not trust', ['Untrusted'], fx.upload, [toHex(fx.stranger.publicKey)], main);
  invalid('n does not match size and C (signed)', ['Malformed'], signUpload({ ...fx.fields, n: fx.fields.n + 1 }, fx.owner.secretKey), trusted, main);
  invalid('segments not a multiple of 16 (signed)', ['Malformed'], signUpload({ ...fx.fields, segments: 15 }, fx.owner.secretKey), trusted, main);
  invalid('version 1 (signed)', ['Version'], signUpload({ ...fx.fields, v: 1 }, fx.owner.secretKey), trusted, main);
  invalid('one trailing byte', ['Malformed'], concatBytes(fx.upload, Uint8Array.of(0)), trusted, main);
  return {
    type: 'UploadTest', ownerPublic: toHex(fx.owner.publicKey), keysServicePublic: toHex(fx.keysService.publicKey),
    signingInput: 'ascii("livematrix/2 upload") || 0x00 || enc(upload-body); upload = enc([upload-body, sig]); uh = SHA-256(upload)', tests,
  };
}

// ---- the distribution's keys ([LM-PROT-2]) -----------------------------------------------------

const revisionsOf = (r0: number) => [r0, r0 + 1, r0 + 2, r0 + 3, r0 + 10];

function hintLayerGroup(): VectorGroup {
  const { gw, dev, offer, accept } = keyFixture();
  const z = ecdh(gw.secretKey, dev.publicKey);
  const th = transcriptHash(offer, accept);
  const keys = deriveSessionKeys(z, NO_LICENCE, th);
  const r0 = 1_000_000;
  const chain = (ck: Uint8Array) => {
    const rc = new Ratchet(ck, r0);
    return revisionsOf(r0).map((r) => {
      const k = rc.keysFor(r);
      return { revision: r, hk: toHex(k.hk), wk: toHex(k.wk) };
    });
  };
  return {
    type: 'HintLayerTest',
    tests: [{
      tcId: 0, comment: 'a protected session\'s hint layer: the session of keys.json with 32 zero bytes for K_lic', result: 'valid', flags: ['NoLicence'],
      requirements: ['LM-PROT-2', 'LM-KEY-2'],
      gatewayEphemeralSecret: toHex(gw.secretKey), gatewayEphemeralPublic: toHex(gw.publicKey), deviceEphemeralSecret: toHex(dev.secretKey), deviceEphemeralPublic: toHex(dev.publicKey),
      licence: toHex(NO_LICENCE), offer: toHex(offer), accept: toHex(accept), z: toHex(z), th: toHex(th),
      ckG2d0: toHex(keys.ckG2d), ckD2g0: toHex(keys.ckD2g), fkG2d: toHex(keys.fkG2d), fkD2g: toHex(keys.fkD2g), r0, g2d: chain(keys.ckG2d), d2g: chain(keys.ckD2g),
    }],
  };
}

/** W_r of the content chain ([LM-PROT-2]): `wk` of Ratchet(contentChain(K_lic, th), r0) at r. */
function contentWrapKey(licence: Uint8Array, th: Uint8Array, r0: number, r: number): Uint8Array {
  return new Ratchet(contentChain(licence, th), r0).keysFor(r).wk;
}

function contentChainGroup(): VectorGroup {
  const { licence, offer, accept } = keyFixture();
  const th = transcriptHash(offer, accept);
  const tests: VectorTest[] = [];
  for (const [comment, k, r0] of [['the session of keys.json', licence, 1_000_000], ['another licence secret, first revision 0', det('protected licence'), 0]] as const) {
    const ckc = contentChain(k, th);
    const rc = new Ratchet(ckc, r0);
    tests.push({
      tcId: 0, comment: `content chain: ${comment}, through r0..r0+3 and a jump to r0+10`, result: 'valid', flags: ['Jump'], requirements: ['LM-PROT-2'],
      licence: toHex(k), th: toHex(th), r0, ckc: toHex(ckc), wrapKeys: revisionsOf(r0).map((r) => ({ revision: r, wk: toHex(rc.keysFor(r).wk) })),
    });
  }
  return { type: 'ContentChainTest', derivation: 'ckc = HKDF(salt = th, ikm = K_lic, info = ascii("lm2 content chain")); W_r = wk of the ratchet of section 4.2 from (ckc, r0) at r', tests };
}

function contentWrapGroup(fx: ReturnType<typeof protectedFixture>, twins: Map<VectorTest, VectorTest>): VectorGroup {
  const { gw, dev, licence, offer, accept } = keyFixture();
  const th = transcriptHash(offer, accept);
  const z = ecdh(gw.secretKey, dev.publicKey);
  const r0 = 1_000_000;
  const sid = det('sid', 16);
  const tests: VectorTest[] = [];
  const requirements = ['LM-PROT-2'];
  const context = (k: Uint8Array, r: number, j: number) => ({ licence: toHex(k), th: toHex(th), r0, revision: r, sid: toHex(sid), index: j });
  const unwrap = (t: { licence: string; revision: number; index: number }, wrapped: Uint8Array) => unwrapChunkKey(contentWrapKey(fromHex(t.licence), th, r0, t.revision), sid, t.index, wrapped);
  const valid = (comment: string, r: number, j: number): VectorTest => {
    const chunkKey = fx.chunks[j]?.key;
    if (!chunkKey) throw new Error(`no chunk ${j}`);
    const wk = contentWrapKey(licence, th, r0, r);
    const wrapped = wrapChunkKey(wk, sid, j, chunkKey);
    const c = context(licence, r, j);
    if (toHex(unwrap(c, wrapped)) !== toHex(chunkKey)) throw new Error(`wrap vector "${comment}"`);
    const v: VectorTest = { tcId: 0, comment, result: 'valid', flags: [], requirements, ...c, wrapKey: toHex(wk), chunkKey: toHex(chunkKey), wrapped: toHex(wrapped) };
    tests.push(v);
    return v;
  };
  const invalid = (comment: string, flags: string[], c: ReturnType<typeof context>, wrapped: Uint8Array, twin: VectorTest) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, ...c, wrapped: toHex(wrapped), error: errorName(() => unwrap(c, wrapped)) };
    twins.set(v, twin);
    tests.push(v);
  };
  const r = r0 + 2;
  const main = valid(`chunk 0's key wrapped under W_r of revision r0+2`, r, 0);
  valid('the last chunk\'s key wrapped under W_r of revision r0+3', r0 + 3, fx.chunks.length - 1);
  const k0 = fx.chunks[0]!.key;
  const c = context(licence, r, 0);
  const v1Wk = new Ratchet(deriveSessionKeys(z, licence, th).ckG2d, r0).keysFor(r).wk;
  invalid('wrapped under the v1 revision wrap key WK_g2d[r] of K_lic in the hint layer: what a gateway holding the licence would send', ['V1WrapKey'], c, wrapChunkKey(v1Wk, sid, 0, k0), main);
  const hintWk = new Ratchet(deriveSessionKeys(z, NO_LICENCE, th).ckG2d, r0).keysFor(r).wk;
  invalid('wrapped under the protected hint layer\'s WK_g2d[r] (32 zero bytes for K_lic): what the gateway alone could make', ['HintLayerWrapKey'], c, wrapChunkKey(hintWk, sid, 0, k0), main);
  const wrapped = fromHex(main['wrapped'] as string);
  invalid('unwrapped under W_r of the next revision', ['WrongRevision'], context(licence, r + 1, 0), wrapped, main);
  invalid('unwrapped as chunk 1', ['WrongIndex'], context(licence, r, 1), wrapped, main);
  invalid('unwrapped under the content chain of another licence secret', ['WrongLicence'], context(det('another licence'), r, 0), wrapped, main);
  const flipped = wrapped.slice();
  flipped[0] = (flipped[0] as number) ^ 0x01;
  invalid('wrap with one bit flipped', ['Tampered'], c, flipped, main);
  return { type: 'ContentWrapTest', layout: 'wrapped = ChaCha20-Poly1305(W_r, nonce = 0x00000000 || u64be(j), k_j, aad = ascii("lm1 wrap") || sid || u64be(j)) (section 7.4, [LM-AEAD-2], under W_r)', tests };
}

// ---- the streaming transaction of a protected job ([LM-PROT-2]) --------------------------------

function protectedTxGroup(fx: ReturnType<typeof protectedFixture>, twins: Map<VectorTest, VectorTest>): VectorGroup {
  const { operator, device, gateway, nbf } = txFixture();
  const { tx } = createTx({
    job: 'protected_part', plaintext: { digest: fx.fields.jd, size: fx.fields.size }, device: 'printer-01', devicePublic: device.publicKey,
    operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: nbf, notAfter: nbf + 24 * 3600 * 1000,
    rate: 2000, burst: 65536, prints: 1, gatewayPublic: gateway.publicKey, protectedJob: { jid: fx.jid, uh: fx.uh },
    fixed: { licence: det('protected tx licence'), ephemeral: det('protected tx licence ephemeral'), nonce: det('protected tx nonce', 16) },
  });
  const context = { now: nbf + 1000, trustedOperators: [toHex(operator.publicKey)], device: { id: 'printer-01', publicKey: toHex(device.publicKey) }, gatewayPublic: toHex(gateway.publicKey), printsUsed: 0 };
  const run = (bytes: Uint8Array) => verifyTx(bytes, {
    now: context.now, trustedOperators: context.trustedOperators.map(fromHex), device: { id: context.device.id, publicKey: device.publicKey }, gatewayPublic: gateway.publicKey, printsUsed: 0,
  });
  const requirements = ['LM-PROT-2', 'LM-TX-2'];
  const ok = run(tx.bytes);
  // the keyed digest the transaction carries in jd, from K_lic and the plaintext's SHA-256: the
  // profile asks the adapter for it (job_digest) and compares it with the transaction's ([LM-PROT-4])
  const licence = det('protected tx licence');
  const jd = keyedJobDigest(jobDigestKey(licence), fx.fields.jd);
  if (toHex(jd) !== toHex(ok.body.jd)) throw new Error('protected tx: jd is not the keyed digest');
  const main: VectorTest = {
    tcId: 0, comment: 'a transaction naming the upload\'s jid (key 16) and uh (key 17), its size the upload\'s, its jd the upload\'s digest keyed by the licence ([LM-PROT-4])', result: 'valid', flags: [],
    requirements: [...requirements, 'LM-PROT-4'], tx: toHex(tx.bytes), txh: toHex(ok.hash), decoded: jsonOf(ok.body), context, licence: toHex(licence),
    plaintextDigest: toHex(fx.fields.jd), jd: toHex(jd),
  };
  const tests: VectorTest[] = [main];
  const invalid = (comment: string, flags: string[], bytes: Uint8Array) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, tx: toHex(bytes), context, error: errorName(() => run(bytes)) };
    twins.set(v, main);
    tests.push(v);
  };
  const noUh: TxBody = { ...tx.body };
  delete noUh.uh;
  invalid('jid without uh (signed)', ['Malformed'], signTx(noUh, operator.secretKey).bytes);
  invalid('uh of 31 bytes (signed)', ['Malformed'], signTx({ ...tx.body, uh: fx.uh.subarray(0, 31) }, operator.secretKey).bytes);
  const [body, sig] = decodeCbor(tx.bytes) as [Map<number, CborValue>, Uint8Array];
  invalid('uh replaced after signing: another upload', ['BadSignature'], encodeCbor([new Map(body).set(17, det('another upload hash')), sig]));
  return { type: 'ProtectedTxTest', operatorPublic: toHex(operator.publicKey), tests };
}

/** protected.json. */
export function protectedVectors(file: FileMaker): VectorFile {
  const fx = protectedFixture();
  const twins = new Map<VectorTest, VectorTest>();
  const groups = [
    chunkGroup(fx, twins), uploadGroup(fx, twins), hintLayerGroup(), contentChainGroup(), contentWrapGroup(fx, twins), protectedTxGroup(fx, twins),
    segmentGroup(), envelopeGroup(fx, twins), epochChainGroup(), epochSegmentGroup(fx, twins), deleteGroup(fx, twins), deletionReceiptGroup(fx, twins),
  ];
  return linkTwins(file('LIVEMATRIX-PROTECTED', {
    LastChunk: 'the job\'s last chunk, shorter than C', LargeIndex: 'a chunk index that does not fit in 32 bits', Tampered: 'changed after sealing or signing',
    WrongIndex: 'opened as another chunk index', WrongJob: 'opened under another jid', V1Chunk: 'sealed as a v1 chunk (section 7.4), not as the owner\'s',
    Truncated: 'shorter than a tag', BadSignature: 'the signature does not verify', WrongOwnerKey: 'signed by a key other than okp',
    Untrusted: 'signed by an owner key the verifier does not trust', Malformed: 'not a well-formed upload or transaction', Version: 'not version 2',
    NoLicence: 'the hint layer of a protected session: K_lic is replaced by 32 zero bytes (the gateway never holds it)',
    Jump: 'a revision reached by iterating the chain over skipped revisions',
    V1WrapKey: 'wrapped under the wrap key a v1 session of the same OFFER and ACCEPT would have',
    HintLayerWrapKey: 'wrapped under the protected session\'s hint-layer wrap key, which the gateway holds',
    WrongRevision: 'unwrapped under another revision\'s W_r', WrongLicence: 'the content chain of another K_lic',
    Density: 'a decoy density outside [0, 1)', WrongUpload: 'opened against another upload (another uh)', WrongKeysService: 'opened with another keys service\'s secret',
    Contents: 'sealed correctly, but its contents do not match the upload', WrongEpoch: 'opened as another epoch', WrongId: 'opened under another segment id',
    NextEpochKey: 'opened with the key of the next epoch', NotOwner: 'signed by a key other than the upload\'s owner key',
    twin: 'an invalid test\'s twin is the valid test it differs from in one thing: the bytes under test or the context',
  }, groups), twins);
}

// ---- the services ([LM-SVC-1], [LM-SVC-2], [LM-SVC-3], [LM-SVC-5]) ----------------------------

function segmentGroup(): VectorGroup {
  const tests: VectorTest[] = [];
  const add = (n: number, density: number, C: number) => {
    let error: string | undefined;
    let decoys = 0;
    try {
      decoys = decoyCount(n, density);
    } catch {
      error = errorName(() => decoyCount(n, density));
    }
    tests.push({
      tcId: 0, comment: `${n} chunks of ${C} bytes at density ${density}`, result: error ? 'invalid' : 'valid', flags: error ? ['Density'] : [], requirements: ['LM-SVC-1'],
      chunks: n, density, C, ...(error ? { error } : { decoys, segments: n + decoys, segmentSize: C + 16 }),
    });
  };
  add(3, 0.5, 256);
  add(8, 0.5, 4096);
  add(9, 0.5, 4096);
  add(100, 0.5, 65536);
  add(10, 0.75, 4096);
  add(5, 0, 4096);
  add(0, 0.5, 4096);
  add(3, 1, 4096);
  add(3, -0.25, 4096);
  return { type: 'SegmentTest', rule: 'decoys >= ceil(n·d / (1 − d)), then more until n + decoys is a multiple of 16 (at least 16); every segment C + 16 bytes', tests };
}

/** An envelope from fixed contents and ephemeral key ([LM-SVC-2]); the reference seals with a fresh ephemeral key. */
function envelopeOf(contents: Uint8Array, ephemeralSeed: Uint8Array, kspk: Uint8Array, uh: Uint8Array): Uint8Array {
  const eph = x25519KeyPair(ephemeralSeed);
  const k = hkdf(sha256, ecdh(eph.secretKey, kspk), uh, concatBytes(ascii('lm2 envelope'), eph.publicKey, kspk), 32);
  return concatBytes(eph.publicKey, seal(k, new Uint8Array(12), uh, contents));
}

function envelopeGroup(fx: ReturnType<typeof protectedFixture>, twins: Map<VectorTest, VectorTest>): VectorGroup {
  const n = fx.chunks.length;
  const d = fx.fields.segments - n;
  const last = fx.plaintext.length - (n - 1) * fx.C + 16;
  const order = Array.from({ length: n }, (_, i) => det(`segment id ${i}`, 16));
  const decoys = Array.from({ length: d }, (_, i) => det(`decoy id ${i}`, 16));
  const contents = (o: { last?: number; d?: number } = {}) => concatBytes(fx.jid, u32be(n), u32be(o.last ?? last), u32be(o.d ?? d), ...fx.chunks.map((c) => c.key), ...order, ...decoys.slice(0, o.d ?? d));
  const seed = det('envelope ephemeral');
  const ks = fx.keysService;
  const tests: VectorTest[] = [];
  const requirements = ['LM-SVC-2'];
  const run = (env: Uint8Array, secret: Uint8Array, upload: Uint8Array) => openEnvelope(env, x25519KeyPair(secret), verifyUpload(upload));
  const base = (env: Uint8Array, secret: Uint8Array, upload: Uint8Array) => ({ envelope: toHex(env), keysServiceSecret: toHex(secret), upload: toHex(upload) });
  const env = envelopeOf(contents(), seed, ks.publicKey, fx.uh);
  const p = run(env, ks.secretKey, fx.upload);
  const main: VectorTest = {
    tcId: 0, comment: `the envelope of the upload: ${n} chunk keys, ${n} ids in chunk order, ${d} decoys`, result: 'valid', flags: [], requirements, ...base(env, ks.secretKey, fx.upload),
    jid: toHex(p.jid), keys: p.keys.map(toHex), order: p.order.map(toHex), last: p.last, decoys: p.decoys.map(toHex),
  };
  tests.push(main);
  const invalid = (comment: string, flags: string[], e: Uint8Array, secret: Uint8Array, upload: Uint8Array) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, ...base(e, secret, upload), error: errorName(() => run(e, secret, upload)) };
    twins.set(v, main);
    tests.push(v);
  };
  const flipped = env.slice();
  flipped[40] = (flipped[40] as number) ^ 1;
  invalid('one bit of the ciphertext flipped', ['Tampered'], flipped, ks.secretKey, fx.upload);
  const otherUpload = signUpload({ ...fx.fields, time: fx.fields.time + 1 }, fx.owner.secretKey);
  invalid('opened against another upload of the same job (another uh: the HKDF salt and the aad)', ['WrongUpload'], env, ks.secretKey, otherUpload);
  invalid('opened with another keys service\'s secret', ['WrongKeysService'], env, det('another keys service x25519'), fx.upload);
  invalid(`contents saying the last chunk has ${last + 1} bytes`, ['Contents'], envelopeOf(contents({ last: last + 1 }), seed, ks.publicKey, fx.uh), ks.secretKey, fx.upload);
  invalid(`contents with ${d - 1} decoys: n + d is not the upload's segments`, ['Contents'], envelopeOf(contents({ d: d - 1 }), seed, ks.publicKey, fx.uh), ks.secretKey, fx.upload);
  invalid('shorter than a public key, a header and a tag', ['Truncated'], env.subarray(0, 60), ks.secretKey, fx.upload);
  return {
    type: 'EnvelopeTest', keysServicePublic: toHex(ks.publicKey),
    layout: 'envelope = epk || ChaCha20-Poly1305(k, 0^12, contents, aad = uh), k = HKDF-SHA-256(salt = uh, ikm = X25519(e, kspk), info = ascii("lm2 envelope") || epk || kspk); contents = jid || u32(n) || u32(last) || u32(d) || k_0..k_{n-1} || n ids || d decoy ids',
    tests,
  };
}

function epochChainGroup(): VectorGroup {
  const tests: VectorTest[] = [];
  for (const [comment, c, e0] of [['from c_0', det('epoch chain c0'), 0], ['from c_41 (epoch 41)', det('epoch chain c41'), 41]] as const) {
    const epochs: { epoch: number; chain: string; key: string }[] = [];
    let ce: Uint8Array = c;
    for (let e = e0; e < e0 + 4; e++) {
      epochs.push({ epoch: e, chain: toHex(ce), key: toHex(epochKey(ce)) });
      ce = nextEpochChain(ce);
    }
    tests.push({ tcId: 0, comment: `epoch chain ${comment} through 4 epochs`, result: 'valid', flags: [], requirements: ['LM-SVC-3'], chain: toHex(c), epoch: e0, count: 4, epochs });
  }
  return { type: 'EpochChainTest', derivation: 'c_{e+1} = HKDF-Expand-SHA-256(c_e, ascii("lm2 epoch chain"), 32); K_e = HKDF-Expand-SHA-256(c_e, ascii("lm2 epoch key"), 32)', tests };
}

function epochSegmentGroup(fx: ReturnType<typeof protectedFixture>, twins: Map<VectorTest, VectorTest>): VectorGroup {
  const c = det('epoch chain c41');
  const e = 41;
  const key = epochKey(c);
  const nextKey = epochKey(nextEpochChain(c));
  const id = det('segment id 0', 16);
  const segment = fx.chunks[0]!.ct;
  const nonce = det('outer nonce', 12);
  const stored = concatBytes(nonce, seal(key, nonce, concatBytes(ascii('lm2 outer'), id, u64be(e)), segment));
  const requirements = ['LM-SVC-3'];
  const tests: VectorTest[] = [];
  const main: VectorTest = { tcId: 0, comment: `chunk 0's segment (${segment.length} bytes) at rest in epoch ${e}`, result: 'valid', flags: [], requirements, key: toHex(key), epoch: e, segmentId: toHex(id), stored: toHex(stored), segment: toHex(openOuter(key, e, id, stored)) };
  tests.push(main);
  const invalid = (comment: string, flags: string[], k: Uint8Array, ep: number, i: Uint8Array, st: Uint8Array) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, key: toHex(k), epoch: ep, segmentId: toHex(i), stored: toHex(st), error: errorName(() => openOuter(k, ep, i, st)) };
    twins.set(v, main);
    tests.push(v);
  };
  invalid('opened as epoch 42: e is bound by the aad', ['WrongEpoch'], key, e + 1, id, stored);
  invalid('opened under another segment id', ['WrongId'], key, e, det('segment id 1', 16), stored);
  invalid('opened with K_42: a copy of epoch 41 is useless with later keys', ['NextEpochKey'], nextKey, e, id, stored);
  const flipped = stored.slice();
  flipped[20] = (flipped[20] as number) ^ 1;
  invalid('one bit of the ciphertext flipped', ['Tampered'], key, e, id, flipped);
  invalid('shorter than a nonce and a tag', ['Truncated'], key, e, id, stored.subarray(0, 27));
  return { type: 'EpochSegmentTest', layout: 'stored = nonce(12) || ChaCha20-Poly1305(K_e, nonce, segment, aad = ascii("lm2 outer") || id || u64be(e))', tests };
}

function deleteGroup(fx: ReturnType<typeof protectedFixture>, twins: Map<VectorTest, VectorTest>): VectorGroup {
  const requirements = ['LM-SVC-5'];
  const time = T0 + 3_600_000;
  const del = signDelete(fx.jid, fx.owner, time);
  const ownerPublic = toHex(fx.owner.publicKey);
  const run = (bytes: Uint8Array, owner: string) => {
    const d = verifyDelete(bytes);
    if (toHex(d.okp) !== owner) throw new LmError(Reason.auth, 'not signed by the upload\'s owner');
    return d;
  };
  const ok = run(del, ownerPublic);
  const main: VectorTest = {
    tcId: 0, comment: 'the owner deletes the job of the upload', result: 'valid', flags: [], requirements, jid: toHex(fx.jid), ownerSecret: toHex(det('owner identity')), time,
    ownerPublic, delete: toHex(del), dh: toHex(ok.hash),
  };
  const tests: VectorTest[] = [main];
  const invalid = (comment: string, flags: string[], bytes: Uint8Array) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, ownerPublic, delete: toHex(bytes), error: errorName(() => run(bytes, ownerPublic)) };
    twins.set(v, main);
    tests.push(v);
  };
  const flipped = del.slice();
  flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
  invalid('signature with one bit flipped', ['BadSignature'], flipped);
  invalid('signed and named by another owner key (okp its own): not the upload\'s owner', ['NotOwner'], signDelete(fx.jid, fx.stranger, time));
  const [body, sig] = decodeCbor(del) as [Map<number, CborValue>, Uint8Array];
  invalid('time changed after signing', ['Tampered'], encodeCbor([new Map(body).set(4, time + 1), sig]));
  invalid('version 1 (signed)', ['Version'], signedDelete(new Map(body).set(1, 1), fx.owner.secretKey));
  invalid('jid of 15 bytes (signed)', ['Malformed'], signedDelete(new Map(body).set(2, fx.jid.subarray(0, 15)), fx.owner.secretKey));
  return { type: 'DeleteTest', signingInput: 'ascii("livematrix/2 delete") || 0x00 || enc({1 v: 2, 2 jid, 3 okp, 4 time}); delete = enc([body, sig]); dh = SHA-256(delete)', tests };
}

/** A delete transaction from a body map (a field may be wrong on purpose), signed. */
function signedDelete(body: Map<number, CborValue>, secret: Uint8Array): Uint8Array {
  return encodeCbor([body, sign(secret, concatBytes(ascii('livematrix/2 delete'), Uint8Array.of(0), encodeCbor(body)))]);
}

function deletionReceiptGroup(fx: ReturnType<typeof protectedFixture>, twins: Map<VectorTest, VectorTest>): VectorGroup {
  const requirements = ['LM-SVC-5'];
  const service = identityKeyPair(det('store identity'));
  const del = signDelete(fx.jid, fx.owner, T0 + 3_600_000);
  const r = { jid: fx.jid, service: 'store-1', removed: 16, time: T0 + 3_600_500, dh: sha256(del) };
  const bytes = signDeletionReceipt(r, service);
  const servicePublic = toHex(service.publicKey);
  const main: VectorTest = {
    tcId: 0, comment: 'the store\'s receipt for the 16 segments of the job (real and decoy)', result: 'valid', flags: [], requirements, serviceSecret: toHex(det('store identity')),
    servicePublic, receipt: toHex(bytes), decoded: { jid: toHex(r.jid), service: r.service, removed: r.removed, time: r.time, dh: toHex(r.dh) },
  };
  verifyDeletionReceipt(bytes, service.publicKey);
  const tests: VectorTest[] = [main];
  const invalid = (comment: string, flags: string[], b: Uint8Array, pub: string) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, servicePublic: pub, receipt: toHex(b), error: errorName(() => verifyDeletionReceipt(b, fromHex(pub))) };
    twins.set(v, main);
    tests.push(v);
  };
  invalid('verified under another service\'s key', ['BadSignature'], bytes, toHex(fx.owner.publicKey));
  const [body, sig] = decodeCbor(bytes) as [Map<number, CborValue>, Uint8Array];
  invalid('removed changed after signing', ['Tampered'], encodeCbor([new Map(body).set(3, 15), sig]), servicePublic);
  return { type: 'DeletionReceiptTest', signingInput: 'ascii("livematrix/2 deleted") || 0x00 || enc({1 jid, 2 service, 3 removed, 4 time, 5 dh}); receipt = enc([body, sig])', tests };
}
