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
  type CborValue, type TxBody, NO_LICENCE, Ratchet, ascii, concatBytes, contentChain, createTx, decodeCbor, deriveSessionKeys, ecdh, encodeCbor,
  fromHex, identityKeyPair, openProtectedChunk, sealChunk, sealProtectedChunk, sign, signTx, toHex, transcriptHash, unwrapChunkKey, verifyTx,
  verifyUpload, wrapChunkKey, x25519KeyPair,
} from '../src/index.js';
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
  const main: VectorTest = {
    tcId: 0, comment: 'a transaction naming the upload\'s jid (key 16) and uh (key 17), its size the upload\'s, its jd the upload\'s digest keyed by the licence ([LM-PROT-4])', result: 'valid', flags: [],
    requirements: [...requirements, 'LM-PROT-4'], tx: toHex(tx.bytes), txh: toHex(ok.hash), decoded: jsonOf(ok.body), context, licence: toHex(det('protected tx licence')),
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
  const groups = [chunkGroup(fx, twins), uploadGroup(fx, twins), hintLayerGroup(), contentChainGroup(), contentWrapGroup(fx, twins), protectedTxGroup(fx, twins)];
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
    twin: 'an invalid test\'s twin is the valid test it differs from in one thing: the bytes under test or the context',
  }, groups), twins);
}
