/**
 * Builds the test vectors of SPEC.md §14 from fixed inputs. Pure: the same bytes every run.
 * `gen-vectors.ts` writes them; the vector tests rebuild them and compare with the files.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { expand } from '@noble/hashes/hkdf.js';
import {
  type AnyFrame, type Bodies, type CborValue, type FrameTypeId, type Signer, type SuiteId, FRAME_TYPE_NAMES, FrameType, LmError,
  Ratchet, ReferenceTable, SUITE_NAMES, ascii, blake3Message, createTx, decodeCbor, decodeFrame, deriveSessionKeys, ecdh,
  encodeCbor, encodeFrame, hintDigest, hintInput, identityKeyPair, openChunk, openLicence, pack, reasonName, sealChunk, shiftedSymbol,
  sealTelemetry, toHex, transcriptHash, TX_MAX_VALIDITY_MS, unpack, verifyTx, wrapChunkKey, x25519KeyPair, Reason, type ReasonCode,
  verifyFrame as verifyFrameFn, fromHex as fromHexLocal, concatBytes as concat, frameMac,
  REVOCATION_PERIOD_MS, Revocations, decodeTx, signRevocation, signTicket, verifyRevocation, verifyTicket, type RevocationRequest, type RevokeBody, type TicketBody,
  MAX_HINT_BYTES, acceptFault, hintsFault, sign, validateParams, type SessionParams, hintSymbols, minHintLength,
} from '../src/index.js';
import { ledgerVectors } from './ledger-vectors.js';
import { protectedVectors } from './protected-vectors.js';

/** Deterministic bytes for a label. */
export function det(label: string, n = 32): Uint8Array {
  return expand(sha256, sha256(ascii('livematrix/1 vectors')), ascii(label), n);
}

/** Deterministic bytes of any length (HKDF gives at most 8160 per label). */
export function detLong(label: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i * 8160 < n; i++) out.set(det(`${label} ${i}`, Math.min(8160, n - i * 8160)), i * 8160);
  return out;
}

export interface VectorTest {
  tcId: number;
  comment: string;
  result: 'valid' | 'invalid';
  flags: string[];
  requirements: string[];
  [k: string]: unknown;
}
export interface VectorGroup {
  [k: string]: unknown;
  tests: VectorTest[];
}
export interface VectorFile {
  algorithm: string;
  version: 1;
  generator: string;
  notes: Record<string, string>;
  numberOfTests: number;
  testGroups: VectorGroup[];
}

function file(algorithm: string, notes: Record<string, string>, groups: VectorGroup[]): VectorFile {
  let id = 1;
  for (const g of groups) for (const t of g.tests) t.tcId = id++;
  return { algorithm, version: 1, generator: 'spec/scripts/gen-vectors.ts', notes, numberOfTests: id - 1, testGroups: groups };
}

/** The reason name of the LmError `f` throws (it must throw one). */
export const errorName = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof LmError) return reasonName(e.code);
    throw e;
  }
  throw new Error('expected an LmError');
};

/** JSON form of a CBOR value: bytes as hex strings, maps as objects. */
export function jsonOf(v: unknown): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return v.map(jsonOf);
  if (v instanceof Map) return Object.fromEntries([...v.entries()].map(([k, x]) => [String(k), jsonOf(x)]));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonOf(x)]));
  return v;
}

// ---- hints ---------------------------------------------------------------------------------

function hintVectors(): VectorFile {
  const groups: VectorGroup[] = [];
  const suites: SuiteId[] = [1, 2, 3];
  for (const suite of suites) {
    const tests: VectorTest[] = [];
    const hk = det(`hint key ${suite}`);
    for (const [w, L] of [[8, 2], [12, 3], [16, 3], [20, 4], [24, 4], [24, 5], [16, 32]] as const) {
      for (const g of [0, 1, 2 ** w - 1, Number(BigInt('0x' + toHex(det(`g ${suite} ${w} ${L}`, 4))) % BigInt(2 ** w))]) {
        const d = hintDigest(suite, hk, w, g);
        tests.push({
          tcId: 0, comment: `w=${w} L=${L} g=${g}`, result: 'valid', flags: [], requirements: ['LM-HINT-1'],
          hk: toHex(hk), w, L, g,
          input: toHex(suite === 3 ? blake3Message(w, g) : hintInput(hk, w, g)),
          digest: toHex(d), hint: toHex(d.subarray(0, L)),
        });
      }
    }
    for (const [w, g] of [[8, 256], [16, 65536], [24, 2 ** 24]] as const) {
      tests.push({
        tcId: 0, comment: `symbol ${g} is not below 2^${w}`, result: 'invalid', flags: ['SymbolOutOfRange'], requirements: ['LM-HINT-6'],
        hk: toHex(hk), w, L: 4, g, error: errorName(() => hintDigest(suite, hk, w, g)),
      });
    }
    groups.push({
      type: 'HintTest', suite, suiteName: SUITE_NAMES[suite],
      inputLayout: suite === 3 ? 'BLAKE3 keyed: key = hk, message = u32be(w) || u32be(g)' : 'hash of hk || u32be(w) || u32be(g)',
      tests,
    });
  }
  // Lookup semantics: w = 8 with L = 1 (below the rule on purpose) forces ambiguities.
  for (const suite of suites) {
    const hk = det(`table key ${suite}`);
    const t = new ReferenceTable(suite, hk, 8, 1);
    const lookups = [];
    for (let h = 0; h < 256; h++) {
      const r = t.lookup(Uint8Array.of(h));
      lookups.push(r.kind === 'symbol' ? r.symbol : r.kind);
    }
    groups.push({
      type: 'TableTest', suite, suiteName: SUITE_NAMES[suite],
      tests: [{
        tcId: 0, comment: 'every 1-byte hint value of a w=8, L=1 table: symbol, "ambiguous" or "absent"', result: 'valid', flags: ['BelowMinimumL'],
        requirements: ['LM-HINT-2', 'LM-HINT-3', 'LM-HINT-4'], hk: toHex(hk), w: 8, L: 1, ambiguousValues: t.ambiguousCount(), lookup: lookups,
      }],
    });
  }
  return file('LIVEMATRIX-HINT', {
    BelowMinimumL: 'L below ceil((w+8)/8), only to exercise ambiguity; a gateway never offers it',
    SymbolOutOfRange: 'the symbol does not fit in w bits',
  }, groups);
}

// ---- packing -------------------------------------------------------------------------------

function packVectors(): VectorFile {
  const tests: VectorTest[] = [];
  const inputs: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['one byte', Uint8Array.of(0xa5)],
    ['two bytes', Uint8Array.of(0xde, 0xad)],
    ['three bytes', Uint8Array.of(0x01, 0x02, 0x03)],
    ['seven bytes', det('pack 7', 7)],
    ['G-code line', ascii('G1 X10.5 Y20 E0.4\n')],
  ];
  for (const w of [8, 12, 16, 20, 24]) {
    for (const [name, b] of inputs) {
      tests.push({
        tcId: 0, comment: `${name} at w=${w}${(8 * b.length) % w ? ' (padded)' : ''}`, result: 'valid',
        flags: (8 * b.length) % w ? ['Padding'] : [], requirements: ['LM-PACK-1', 'LM-PACK-2', 'LM-PACK-3'],
        w, n: b.length, bytes: toHex(b), symbols: [...pack(b, w)],
      });
    }
  }
  const bad: [string, number, number, number[]][] = [
    ['non-zero padding bits', 12, 1, [0xa51]],
    ['one symbol too many', 8, 1, [1, 2]],
    ['one symbol too few', 16, 3, [1]],
    ['symbol not below 2^w', 8, 1, [256]],
    ['symbols for an empty string', 16, 0, [0]],
    ['non-zero padding at w=24', 24, 2, [0x010203]],
  ];
  for (const [comment, w, n, symbols] of bad) {
    tests.push({ tcId: 0, comment, result: 'invalid', flags: ['BadPacking'], requirements: ['LM-PACK-3'], w, n, symbols, error: errorName(() => unpack(symbols, w, n)) });
  }
  // [LM-DLV-11]: shifted symbols of a frame's symbols, every position 0..n
  const shifts: VectorTest[] = [];
  for (const w of [8, 12, 16, 20, 24]) {
    const symbols = [...pack(det(`shift ${w}`, 9), w)];
    for (const sh of [...new Set([1, Math.floor(w / 2), w - 1])]) {
      shifts.push({
        tcId: 0, comment: `shift ${sh} at w=${w}`, result: 'valid', flags: ['Shifted'], requirements: ['LM-DLV-11'],
        w, sh, symbols, shifted: symbols.map((_, j) => j).concat(symbols.length).map((j) => shiftedSymbol(symbols, w, sh, j)),
      });
    }
  }
  return file('LIVEMATRIX-PACK', { Padding: 'the last symbol carries zero padding bits', BadPacking: 'an unpacker must refuse it', Shifted: 'shifted symbols at positions 0..n of a frame\'s symbols' }, [{ type: 'PackTest', tests }, { type: 'ShiftTest', tests: shifts }]);
}

// ---- key schedule ----------------------------------------------------------------------------

export function keyFixture() {
  const gw = x25519KeyPair(det('gateway ephemeral'));
  const dev = x25519KeyPair(det('device ephemeral'));
  const licence = det('licence');
  const offer = det('offer frame bytes', 48);
  const accept = det('accept frame bytes', 40);
  return { gw, dev, licence, offer, accept };
}

function keyVectors(): VectorFile {
  const { gw, dev, licence, offer, accept } = keyFixture();
  const z = ecdh(gw.secretKey, dev.publicKey);
  const zD = ecdh(dev.secretKey, gw.publicKey);
  if (toHex(z) !== toHex(zD)) throw new Error('ECDH mismatch');
  const th = transcriptHash(offer, accept);
  const keys = deriveSessionKeys(z, licence, th);
  const r0 = 1_000_000;
  const revisions = [r0, r0 + 1, r0 + 2, r0 + 3, r0 + 10, r0 + 1000];
  const chain = (ck: Uint8Array) => {
    const rc = new Ratchet(ck, r0);
    return revisions.map((r) => {
      const k = rc.keysFor(r);
      return { revision: r, hk: toHex(k.hk), wk: toHex(k.wk) };
    });
  };
  const valid: VectorTest = {
    tcId: 0, comment: 'session keys and both chains through r0..r0+3, then jumps to r0+10 and r0+1000', result: 'valid', flags: ['Jump'],
    requirements: ['LM-KEY-1', 'LM-KEY-2', 'LM-KEY-3', 'LM-KEY-6'],
    gatewayEphemeralSecret: toHex(gw.secretKey), gatewayEphemeralPublic: toHex(gw.publicKey),
    deviceEphemeralSecret: toHex(dev.secretKey), deviceEphemeralPublic: toHex(dev.publicKey),
    licence: toHex(licence), offer: toHex(offer), accept: toHex(accept),
    z: toHex(z), th: toHex(th), ckG2d0: toHex(keys.ckG2d), ckD2g0: toHex(keys.ckD2g), fkG2d: toHex(keys.fkG2d), fkD2g: toHex(keys.fkD2g),
    r0, g2d: chain(keys.ckG2d), d2g: chain(keys.ckD2g),
  };
  const lowOrder = new Uint8Array(32); // u = 0: X25519 output is all zero
  const invalid: VectorTest = {
    tcId: 0, comment: 'peer public key of low order (u = 0): all-zero shared secret', result: 'invalid', flags: ['LowOrderPoint'],
    requirements: ['LM-KEY-1'], secret: toHex(gw.secretKey), peerPublic: toHex(lowOrder), error: errorName(() => ecdh(gw.secretKey, lowOrder)),
  };
  // No vector for [LM-KEY-4] (erasing CK[i]): what a process keeps in memory is not observable,
  // and an adapter handed CK[0] with the request could always derive an earlier revision again.
  const before = new Ratchet(keys.ckG2d, r0);
  const beforeR0: VectorTest = {
    tcId: 0, comment: 'revision r0 - 1 precedes the session: it has no keys', result: 'invalid', flags: ['BeforeFirst'],
    requirements: ['LM-KEY-7'], ckG2d0: toHex(keys.ckG2d), r0, asked: r0 - 1, error: errorName(() => before.keysFor(r0 - 1)),
  };
  return file('LIVEMATRIX-KEYS', {
    Jump: 'a revision reached by iterating the chain over skipped revisions',
    LowOrderPoint: 'X25519 with a low-order point gives zero; refused',
    BeforeFirst: 'a revision below r0 has no keys; a frame of it is refused as rev-expired',
  }, [{ type: 'KeyScheduleTest', tests: [valid, invalid, beforeR0] }]);
}

// ---- AEAD ------------------------------------------------------------------------------------

function aeadVectors(): VectorFile {
  const sid = det('sid', 16);
  const tests: VectorTest[] = [];
  for (const [j, pt] of [[0, ascii('G28 ; home all axes\nG1 Z0.3 F3000\n')], [1, new Uint8Array(0)], [2 ** 32 + 5, det('chunk plaintext', 100)]] as const) {
    const key = det(`chunk key ${j}`);
    tests.push({ tcId: 0, comment: `chunk ${j}`, result: 'valid', flags: [], requirements: ['LM-AEAD-1'], kind: 'chunk', key: toHex(key), sid: toHex(sid), index: j, plaintext: toHex(pt), ciphertext: toHex(sealChunk(key, sid, j, pt)) });
  }
  const key0 = det('chunk key 0');
  const ct0 = sealChunk(key0, sid, 0, ascii('G28\n'));
  const tampered = ct0.slice();
  tampered[0] = (tampered[0] as number) ^ 1;
  tests.push({ tcId: 0, comment: 'chunk ciphertext with one bit flipped', result: 'invalid', flags: ['Tampered'], requirements: ['LM-AEAD-4'], kind: 'chunk', key: toHex(key0), sid: toHex(sid), index: 0, ciphertext: toHex(tampered), error: errorName(() => openChunk(key0, sid, 0, tampered)) });
  tests.push({ tcId: 0, comment: 'chunk opened under the wrong index', result: 'invalid', flags: ['WrongIndex'], requirements: ['LM-AEAD-1', 'LM-AEAD-4'], kind: 'chunk', key: toHex(key0), sid: toHex(sid), index: 1, ciphertext: toHex(ct0), error: errorName(() => openChunk(key0, sid, 1, ct0)) });
  const wk = det('wrap key');
  for (const j of [0, 7]) {
    const ck = det(`chunk key ${j}`);
    tests.push({ tcId: 0, comment: `key wrap of chunk ${j}`, result: 'valid', flags: [], requirements: ['LM-AEAD-2'], kind: 'wrap', wrapKey: toHex(wk), sid: toHex(sid), index: j, chunkKey: toHex(ck), wrapped: toHex(wrapChunkKey(wk, sid, j, ck)) });
  }
  const payload = encodeCbor(new Map<string, CborValue>([['nozzle_mC', 215000], ['bed_mC', 60000], ['progress_ppm', 125000]]));
  // the telemetry AEAD, and the hints that carry its ciphertext at wt = 8 (suite 3), so that the
  // profile can drive it through telemetry_seal and telemetry_open ([LM-TEL-1])
  const telCt = sealTelemetry(wk, sid, 3, payload);
  const telHk = det('telemetry hint key');
  tests.push({
    tcId: 0, comment: 'telemetry payload', result: 'valid', flags: [], requirements: ['LM-TEL-1'], kind: 'telemetry', wrapKey: toHex(wk), sid: toHex(sid), seq: 3, plaintext: toHex(payload), ciphertext: toHex(telCt),
    suite: 3, hk: toHex(telHk), wt: 8, ctlen: telCt.length, hints: toHex(hintSymbols(3, telHk, 8, minHintLength(8), pack(telCt, 8))),
  });
  return file('LIVEMATRIX-AEAD', { Tampered: 'authentication must fail', WrongIndex: 'the index is bound by nonce and AAD' }, [{ type: 'AeadTest', tests }]);
}

// ---- frames ----------------------------------------------------------------------------------

export function frameFixture() {
  const device = identityKeyPair(det('device identity'));
  const gateway = identityKeyPair(det('gateway identity'));
  const sid = det('sid', 16);
  const fkG2d = det('frame key g2d');
  const fkD2g = det('frame key d2g');
  return { device, gateway, sid, fkG2d, fkD2g };
}

function frameVectors(txBytes: Uint8Array): VectorFile {
  const { device, gateway, sid, fkG2d, fkD2g } = frameFixture();
  const t = 1_764_000_000_000;
  const sigD: Signer = { kind: 'sig', secretKey: device.secretKey };
  const sigG: Signer = { kind: 'sig', secretKey: gateway.secretKey };
  const macG: Signer = { kind: 'mac', key: fkG2d };
  const macD: Signer = { kind: 'mac', key: fkD2g };
  const operator = identityKeyPair(det('operator identity'));
  const sigO: Signer = { kind: 'sig', secretKey: operator.secretKey };
  const keysService = identityKeyPair(det('keys service identity'));
  const sigK: Signer = { kind: 'sig', secretKey: keysService.secretKey };
  const params = { suite: 3 as const, w: 20, L: 4, period: 1000, epoch: t - 5000, grace: 250, r0: 5, chunk: 4096, symbolsPerFrame: 1024, wt: 16 };
  const samples: { [K in FrameTypeId]: [Bodies[K], Signer] } = {
    1: [{ device: 'printer-01', idpk: device.publicKey, caps: { suites: [[3, 24_000_000], [2, 9_000_000], [1, 9_000_000]], mem: 256 * 2 ** 20, wmax: 24, workers: 2 }, time: t, software: 'livematrix-device/0.1', online: true }, sigD],
    2: [{ sid, tx: txBytes, epk: det('offer epk'), params, gwpk: gateway.publicKey, time: t }, sigG],
    3: [{ sid, epk: det('accept epk'), oh: det('offer hash'), window: 65536 }, sigD],
    4: [{ sid, t1: t }, macD],
    5: [{ sid, t1: t, t2: t + 3, t3: t + 4 }, macG],
    6: [{ sid, seq: 0, rev: 6, chunk: 0, off: 0, ctlen: 4112, hints: det('hints', 12) }, macG],
    7: [{ sid, chunk: 0, rev: 6, wrapped: det('wrapped', 48) }, macG],
    8: [{ sid, cum: 3, sack: [[5, 7]], nack: [[4, Reason.ambiguous, [17, 900]]], consumed: 8192, credit: 57344 }, macD],
    9: [{ sid, op: 1, reason: 0 }, macG],
    10: [{ sid, seq: 2, rev: 7, ctlen: 40, hints: det('telemetry hints', 60) }, macD],
    11: [{ sid, bytes: 205508, chunks: 51, frames: 800, digest: det('end digest') }, macG],
    12: [{ sid, jd: det('job digest'), bytes: 205508, digest: det('job digest'), time: t + 60000, device: 'printer-01', txh: det('tx hash') }, sigD],
    13: [{ sid, code: Reason.rate, detail: 'consumed 2000000 bytes in 10 s; allowed 100000 bytes/s', time: t, observed: 200000, limit: 100000 }, macG],
    14: [{ code: Reason.unknownSession, detail: 'no such session', seq: 12 }, { kind: 'none' }],
    15: [{ who: 'printer-01', reason: Reason.offline }, { kind: 'none' }],
    16: [{ seq: 3, time: t, next: t + 3_600_000, txs: [det('revoked tx hash')], devices: ['printer-13'], operators: [], opk: operator.publicKey }, sigO],
    // a gateway asks the keys service for chunk keys; the arguments and the result are sealed (SPEC.md §17)
    17: [{ id: det('service request id', 16), op: 19, args: det('sealed arguments', 140), time: t, from: 'gateway-01', pk: gateway.publicKey }, sigG],
    18: [{ id: det('service request id', 16), code: 0, result: det('sealed result', 94), detail: '', time: t + 3 }, sigK],
    // a device's status outside any session, with the readings its host shows in clear (SPEC.md §10.2)
    19: [{ device: 'printer-01', state: 1, seq: 0, time: t, bd: 1_764_000_000_000 }, sigD],
  };
  const valid: VectorTest[] = [];
  const keyFor = (s: Signer) => (s.kind === 'sig' ? { signerPublic: toHex(s === sigD ? device.publicKey : s === sigO ? operator.publicKey : s === sigK ? keysService.publicKey : gateway.publicKey) } : s.kind === 'mac' ? { macKey: toHex(s.key) } : {});
  // a vector cites only what its requests check: decoding checks the schema and the authentication;
  // [LM-CBOR-1] only where the profile encodes the frame again (a SIG vector carries no secret key;
  // encode.json encodes every type); no trust, time or replay rule of the services ([LM-SVC-6])
  for (const type of Object.keys(samples).map(Number) as FrameTypeId[]) {
    const [body, signer] = samples[type] as [never, Signer];
    const bytes = encodeFrame(type, body, signer);
    const f = decodeFrame(bytes);
    valid.push({ tcId: 0, comment: FRAME_TYPE_NAMES[type], result: 'valid', flags: [], requirements: ['LM-FRAME-1', 'LM-FRAME-2', ...(signer.kind === 'sig' ? [] : ['LM-CBOR-1']), ...(type === FrameType.REVOKE ? ['LM-REVOKE-1'] : [])], type, name: FRAME_TYPE_NAMES[type], authKind: signer.kind, ...keyFor(signer), hex: toHex(bytes), decoded: jsonOf(f.body) });
  }
  // Extension key 16 is ignored ([LM-FRAME-4]).
  const ext = rewriteBody(encodeFrame(FrameType.TIME_REQ, { sid, t1: t }, macD), (m) => m.set(16, 'extension'), fkD2g);
  valid.push({ tcId: 0, comment: 'TIME_REQ with extension key 16, which its MAC covers', result: 'valid', flags: ['Extension'], requirements: ['LM-FRAME-4', 'LM-FRAME-12'], type: 4, name: 'TIME_REQ', authKind: 'mac', macKey: toHex(fkD2g), hex: toHex(ext), decoded: jsonOf(decodeFrame(ext).body) });

  // A shifted re-send ([LM-DLV-11]).
  const shifted = encodeFrame(FrameType.HINTS, { sid, seq: 0, rev: 6, chunk: 0, off: 0, ctlen: 4112, hints: det('shifted hints', 8), idx: [16, 17], sh: 10 }, macG);
  valid.push({ tcId: 0, comment: 'HINTS shifted re-send', result: 'valid', flags: ['Shifted'], requirements: ['LM-FRAME-1', 'LM-DLV-11'], type: 6, name: 'HINTS', authKind: 'mac', macKey: toHex(fkG2d), hex: toHex(shifted), decoded: jsonOf(decodeFrame(shifted).body) });

  // A device's signed refusal of an OFFER, naming it: its format only; when a device sends one is
  // [LM-FRAME-9], which the device profile checks (decoding one here says nothing about it).
  const refusal = encodeFrame(FrameType.ERROR, { sid, code: Reason.txCount, detail: 'the print count is used up', oh: det('offer hash') }, sigD);
  valid.push({ tcId: 0, comment: 'ERROR: a signed refusal naming the OFFER', result: 'valid', flags: ['Refusal'], requirements: ['LM-FRAME-1'], type: 14, name: 'ERROR', authKind: 'sig', signerPublic: toHex(device.publicKey), hex: toHex(refusal), decoded: jsonOf(decodeFrame(refusal).body) });

  // A resume OFFER that spends the device's ticket, and the refusal tx-resume that hands it back: their
  // format only (the ticket itself is ticket.json's, [LM-LIC-4]; what a device does with it, the device profile's).
  const { ticket } = ticketFixture();
  const resumeOffer = encodeFrame(FrameType.OFFER, { ...samples[2][0], resume: true, tk: ticket.bytes }, sigG);
  valid.push({ tcId: 0, comment: 'OFFER resuming with the device\'s ticket', result: 'valid', flags: ['Ticket'], requirements: ['LM-FRAME-1'], type: 2, name: 'OFFER', authKind: 'sig', signerPublic: toHex(gateway.publicKey), hex: toHex(resumeOffer), decoded: jsonOf(decodeFrame(resumeOffer).body) });
  const resumeRefusal = encodeFrame(FrameType.ERROR, { sid, code: Reason.txResume, detail: 'a resume without an unspent ticket', oh: det('offer hash'), tk: ticket.bytes }, sigD);
  valid.push({ tcId: 0, comment: 'ERROR tx-resume carrying the device\'s ticket', result: 'valid', flags: ['Ticket', 'Refusal'], requirements: ['LM-FRAME-1'], type: 14, name: 'ERROR', authKind: 'sig', signerPublic: toHex(device.publicKey), hex: toHex(resumeRefusal), decoded: jsonOf(decodeFrame(resumeRefusal).body) });

  // A refusal tx-count that hands back the RECEIPT of the transaction's last session: its format only
  // (keeping and handing back the RECEIPT is [LM-LIC-6], a device's and a gateway's behaviour).
  const lastReceipt = encodeFrame(FrameType.RECEIPT, samples[12][0], sigD);
  const receiptRefusal = encodeFrame(FrameType.ERROR, { sid, code: Reason.txCount, detail: 'print count exhausted: 1 of 1 used', oh: det('offer hash'), rc: lastReceipt }, sigD);
  valid.push({ tcId: 0, comment: 'ERROR tx-count carrying the RECEIPT of the last session', result: 'valid', flags: ['Receipt', 'Refusal'], requirements: ['LM-FRAME-1'], type: 14, name: 'ERROR', authKind: 'sig', signerPublic: toHex(device.publicKey), hex: toHex(receiptRefusal), decoded: jsonOf(decodeFrame(receiptRefusal).body) });

  // An ALARM on the fleet's alarm topic names its device ([LM-ALARM-6]).
  const fleetAlarm = encodeFrame(FrameType.ALARM, { code: Reason.rate, detail: 'printer-13: 9000 frames in 1 s over 5000', time: t, observed: 9000, limit: 5000, device: 'printer-13' }, { kind: 'none' });
  valid.push({ tcId: 0, comment: 'ALARM on the fleet alarm topic, naming its device', result: 'valid', flags: ['FleetAlarm'], requirements: ['LM-FRAME-1', 'LM-ALARM-6'], type: 13, name: 'ALARM', authKind: 'none', hex: toHex(fleetAlarm), decoded: jsonOf(decodeFrame(fleetAlarm).body) });

  const validFrame = (comment: string, flags: string[], requirements: string[], bytes: Uint8Array, keys: Record<string, string>, authKind: string) => {
    const f = decodeFrame(bytes);
    verifyFrameJson(f, keys);
    valid.push({ tcId: 0, comment, result: 'valid', flags, requirements, type: f.type, name: FRAME_TYPE_NAMES[f.type], authKind, ...keys, hex: toHex(bytes), decoded: jsonOf(f.body) });
  };
  const devKey = { signerPublic: toHex(device.publicKey) };
  const gwKey = { signerPublic: toHex(gateway.publicKey) };
  // Extension keys inside the maps nested in a body: caps and params ([LM-FRAME-4])
  const hello = encodeFrame(FrameType.HELLO, samples[1][0], sigD);
  const helloExt = rewriteBodySigned(hello, (m) => m.set(3, new Map(m.get(3) as Map<number, CborValue>).set(16, 'caps extension')), device.secretKey);
  validFrame('HELLO with extension key 16 inside caps', ['Extension', 'NestedExtension'], ['LM-FRAME-4', 'LM-FRAME-12'], helloExt, devKey, 'sig');
  const offerExt = rewriteBodySigned(encodeFrame(FrameType.OFFER, samples[2][0], sigG), (m) => m.set(3, new Map(m.get(3) as Map<number, CborValue>).set(16, [1, 2])), gateway.secretKey);
  validFrame('OFFER with extension key 16 inside params', ['Extension', 'NestedExtension'], ['LM-FRAME-4', 'LM-FRAME-12'], offerExt, gwKey, 'sig');
  // Text limits count bytes of UTF-8 ([LM-FRAME-11])
  const alarmAt = (detail: string) => rewriteBody(encodeFrame(FrameType.ALARM, samples[13][0], macG), (m) => m.set(2, detail), fkG2d);
  validFrame('ALARM detail of 256 bytes: 128 two-byte characters', ['TextBytes'], ['LM-FRAME-11'], alarmAt('é'.repeat(128)), { macKey: toHex(fkG2d) }, 'mac');
  validFrame('ALARM detail of 256 bytes: 64 four-byte characters (128 UTF-16 code units)', ['TextBytes'], ['LM-FRAME-11'], alarmAt('\u{1F5A8}'.repeat(64)), { macKey: toHex(fkG2d) }, 'mac');
  const helloSoftware = (software: string) => rewriteBodySigned(hello, (m) => m.set(5, software), device.secretKey);
  validFrame('HELLO software of 64 bytes: 21 three-byte characters and one ASCII', ['TextBytes'], ['LM-FRAME-11'], helloSoftware('€'.repeat(21) + 'a'), devKey, 'sig');
  // Nesting depth 8: the envelope 1, the body 2, six arrays in an extension value ([LM-CBOR-5])
  const timeReq = encodeFrame(FrameType.TIME_REQ, { sid, t1: t }, macD);
  const nested = (k: number): CborValue => (k === 0 ? 1 : [nested(k - 1)]);
  const depth8 = rewriteBody(timeReq, (m) => m.set(16, nested(6)), fkD2g);
  validFrame('nesting depth 8: six arrays inside the body (the frame 1, the body 2)', ['Depth'], ['LM-CBOR-5'], depth8, { macKey: toHex(fkD2g) }, 'mac');
  // idx of 4096 entries, the most the profile allows in one array ([LM-FRAME-13])
  const fullIdx = rewriteBody(encodeFrame(FrameType.HINTS, samples[6][0], macG), (m) => m.set(6, detLong('idx hints', 4096 * 4)).set(7, [...Array(4096).keys()]), fkG2d);
  validFrame('HINTS re-send with an idx of 4096 entries', ['IdxLimit'], ['LM-FRAME-13'], fullIdx, { macKey: toHex(fkG2d) }, 'mac');

  // The boot sequence ([LM-STATE-3]): a HELLO and the Last Will of its connection carry the same bd;
  // a STATUS with readings and a detail (their format only: when a device sends them is the device profile's)
  const bd = 1_764_000_000_017;
  validFrame('HELLO with the boot sequence of its connection', ['BootSequence'], ['LM-FRAME-1', 'LM-FRAME-2'], encodeFrame(FrameType.HELLO, { ...samples[1][0], boot: det('boot id', 8), bd }, sigD), devKey, 'sig');
  const will = encodeFrame(FrameType.BYE, { who: 'printer-01', reason: Reason.offline, bd }, { kind: 'none' });
  validFrame('BYE, the Last Will of the connection with that boot sequence (NONE)', ['BootSequence'], ['LM-FRAME-1'], will, {}, 'none');
  const status = (over: Partial<Bodies[19]>) => encodeFrame(FrameType.STATUS, { ...samples[19][0], bd, ...over }, sigD);
  const readings = new Map<string, CborValue>([['bed_mC', 60_125], ['nozzle_mC', 214_870], ['door', 'closed'], ['progress_ppm', 412_000]]);
  validFrame('STATUS streaming, with readings in clear', ['Status', 'BootSequence'], ['LM-FRAME-1', 'LM-FRAME-2'], status({ state: 2, seq: 41, tel: readings }), devKey, 'sig');
  validFrame('STATUS error with a detail', ['Status'], ['LM-FRAME-1', 'LM-FRAME-2'], status({ state: 4, seq: 42, detail: 'thermal runaway on the bed heater' }), devKey, 'sig');
  const statusFrame = status({ state: 2, seq: 41, tel: readings });

  const invalid: VectorTest[] = [];
  const bad = (comment: string, flags: string[], requirements: string[], bytes: Uint8Array, verifyWith?: Record<string, string>) => {
    let error: string;
    try {
      const f = decodeFrame(bytes);
      if (!verifyWith) throw new Error(`vector "${comment}" decodes`);
      error = errorName(() => verifyFrameJson(f, verifyWith));
    } catch (e) {
      if (!(e instanceof LmError)) throw e;
      error = reasonName(e.code);
    }
    invalid.push({ tcId: 0, comment, result: 'invalid', flags, requirements, hex: toHex(bytes), ...(verifyWith ?? {}), error });
  };
  const hintsFrame = encodeFrame(FrameType.HINTS, samples[6][0], macG);
  bad('truncated by one byte', ['Truncated'], ['LM-CBOR-5'], hintsFrame.subarray(0, hintsFrame.length - 1));
  bad('one trailing byte', ['Trailing'], ['LM-CBOR-4'], concat(hintsFrame, Uint8Array.of(0)));
  bad('version 2', ['Version'], ['LM-ROLE-2'], rewriteArray(hintsFrame, (a) => { a[0] = 2; }));
  bad('unknown type 99', ['UnknownType'], ['LM-FRAME-1'], rewriteArray(hintsFrame, (a) => { a[1] = 99; }));
  bad('seq is a text string', ['WrongType'], ['LM-FRAME-1'], rewriteBody(hintsFrame, (m) => m.set(1, 'zero'), fkG2d));
  bad('sid of 15 bytes', ['WrongType'], ['LM-FRAME-1'], rewriteBody(hintsFrame, (m) => m.set(0, sid.subarray(0, 15)), fkG2d));
  bad('missing field ctlen', ['MissingField'], ['LM-FRAME-1'], rewriteBody(hintsFrame, (m) => m.delete(5), fkG2d));
  bad('unknown key 9 below the extension range', ['UnknownKey'], ['LM-FRAME-4'], rewriteBody(hintsFrame, (m) => m.set(9, 1), fkG2d));
  bad('idx not increasing', ['WrongType'], ['LM-FRAME-13'], rewriteBody(hintsFrame, (m) => m.set(7, [3, 3]), fkG2d));
  bad('idx empty', ['WrongType'], ['LM-FRAME-13'], rewriteBody(hintsFrame, (m) => m.set(7, []), fkG2d));
  bad('idx of 4097 entries: over the array limit, too-large before the body is judged', ['WrongType', 'Precedence'], ['LM-FRAME-13', 'LM-CBOR-5', 'LM-CBOR-7'], rewriteBody(hintsFrame, (m) => m.set(7, [...Array(4097).keys()]), fkG2d));
  bad('sh without idx', ['WrongType'], ['LM-FRAME-14', 'LM-DLV-11'], rewriteBody(hintsFrame, (m) => m.set(8, 10), fkG2d));
  bad('sh of 0', ['WrongType'], ['LM-FRAME-14', 'LM-DLV-11'], rewriteBody(shifted, (m) => m.set(8, 0), fkG2d));
  bad('sh of 24', ['WrongType'], ['LM-FRAME-14', 'LM-DLV-11'], rewriteBody(shifted, (m) => m.set(8, 24), fkG2d));
  bad('unknown key 11 below the extension range inside OFFER params', ['UnknownKey', 'NestedExtension'], ['LM-FRAME-4'], rewriteBodySigned(encodeFrame(FrameType.OFFER, samples[2][0], sigG), (m) => m.set(3, new Map(m.get(3) as Map<number, CborValue>).set(11, 1)), gateway.secretKey), gwKey);
  bad('auth of 15 bytes', ['AuthLength'], ['LM-FRAME-3'], rewriteArray(hintsFrame, (a) => { a[3] = new Uint8Array(15); }));
  bad('HINTS with empty auth (NONE not allowed)', ['AuthLength'], ['LM-FRAME-3'], rewriteArray(hintsFrame, (a) => { a[3] = new Uint8Array(0); }));
  // text one byte over its limit in bytes of UTF-8, though within it in characters ([LM-FRAME-11])
  bad('ALARM detail of 257 bytes (129 characters)', ['TextBytes'], ['LM-FRAME-11'], alarmAt('é'.repeat(128) + 'a'), { macKey: toHex(fkG2d) });
  bad('ALARM detail of 260 bytes (65 four-byte characters, 130 UTF-16 code units)', ['TextBytes'], ['LM-FRAME-11'], alarmAt('\u{1F5A8}'.repeat(65)), { macKey: toHex(fkG2d) });
  bad('HELLO software of 65 bytes (23 characters)', ['TextBytes'], ['LM-FRAME-11'], helloSoftware('€'.repeat(21) + 'ab'), devKey);
  // the MAC covers the items as received, extension keys included ([LM-FRAME-12])
  bad('TIME_REQ whose MAC covers extension key 16, with the key stripped', ['BadAuth', 'Extension'], ['LM-FRAME-12'], rewriteBodyKeepAuth(ext, (m) => m.delete(16)), { macKey: toHex(fkD2g) });
  bad('TIME_REQ with extension key 16 added after its MAC was made', ['BadAuth', 'Extension'], ['LM-FRAME-12'], rewriteBodyKeepAuth(timeReq, (m) => m.set(16, 'extension')), { macKey: toHex(fkD2g) });
  // a HELLO is signed by the key it carries ([LM-FRAME-20])
  bad('HELLO carrying the device key, signed by another key', ['BadAuth'], ['LM-FRAME-20', 'LM-FRAME-2'], encodeFrame(FrameType.HELLO, samples[1][0], sigG), devKey);
  // nesting depth 9 ([LM-CBOR-5]): the depth-8 frame with one array more, MAC'd by hand
  bad('nesting depth 9: seven arrays inside the body', ['TooDeep'], ['LM-CBOR-5'], handFrame(itemsOf(depth8).replace('10' + '81'.repeat(6) + '01', '10' + '81'.repeat(7) + '01'), fkD2g));
  // which failure wins ([LM-FRAME-10], [LM-CBOR-7])
  bad('a tag with a non-shortest argument (d8 01): schema, not noncanonical', ['Precedence', 'Tag'], ['LM-CBOR-7', 'LM-CBOR-2'], handFrame(itemsOf(timeReq).replace(/^0104a2/, '0104a3') + '10d80100', fkD2g));
  bad('negative frame type: schema, not unknown-type', ['Precedence'], ['LM-FRAME-10'], rewriteArray(hintsFrame, (a) => { a[1] = -1; }));
  bad('negative version: schema, not version', ['Precedence'], ['LM-FRAME-10'], rewriteArray(hintsFrame, (a) => { a[0] = -1; }));
  bad('byte string declaring 65537 bytes in a short input: too-large, not malformed', ['Precedence'], ['LM-CBOR-7', 'LM-CBOR-5'], fromHexLocal('84010aa1045a00010001' + '00'.repeat(8)));
  bad('array declaring 4097 entries in a short input: too-large, not malformed', ['Precedence'], ['LM-CBOR-7', 'LM-CBOR-5'], fromHexLocal('84010aa1049910010102'));
  bad('input of 65537 bytes that is not CBOR: too-large before decoding', ['Precedence', 'Oversize'], ['LM-FRAME-10'], new Uint8Array(65537).fill(0xff));
  bad('version 2 with five elements: version, whatever the shape', ['Precedence', 'Version'], ['LM-FRAME-10', 'LM-ROLE-2'], rewriteArray(hintsFrame, (a) => { a[0] = 2; a.push(0); }));
  bad('version 1 with five elements: schema', ['Precedence', 'WrongType'], ['LM-FRAME-10'], rewriteArray(hintsFrame, (a) => { a.push(0); }));
  bad('version 2 with a non-canonical integer in the body: noncanonical, the whole input is CBOR first', ['Precedence', 'NonCanonical'], ['LM-FRAME-10', 'LM-CBOR-3'], nonCanonicalSeq(rewriteArray(hintsFrame, (a) => { a[0] = 2; })));
  bad('unknown type 99 with an auth of 15 bytes: unknown-type before the auth length', ['Precedence', 'UnknownType'], ['LM-FRAME-10'], rewriteArray(hintsFrame, (a) => { a[1] = 99; a[3] = new Uint8Array(15); }));
  bad('missing field and a wrong MAC: schema, before authentication (no auth failure to count)', ['Precedence', 'MissingField'], ['LM-FRAME-10'], rewriteBodyKeepAuth(hintsFrame, (m) => m.delete(5)), { macKey: toHex(fkG2d) });
  bad('a non-canonical integer before a float: the first failure in byte order', ['Precedence', 'NonCanonical'], ['LM-CBOR-7'], handFrame('0104a300' + '50' + toHex(sid) + '011a00000007' + '10f93c00', fkD2g));
  bad('a float before a non-canonical integer: the first failure in byte order', ['Precedence', 'Float'], ['LM-CBOR-7'], handFrame('0104a300' + '50' + toHex(sid) + '01f93c00' + '101a00000007', fkD2g));
  bad('a non-canonical integer and a trailing byte: noncanonical, met first', ['Precedence', 'NonCanonical'], ['LM-CBOR-7'], concat(nonCanonicalSeq(hintsFrame), Uint8Array.of(0)));
  bad('body is an array', ['WrongType'], ['LM-FRAME-1'], rewriteArray(hintsFrame, (a) => { a[2] = []; }));
  bad('frame is a map', ['WrongType'], ['LM-FRAME-1'], encodeCbor(new Map([[1, 1]])));
  bad('frame of 3 items', ['WrongType'], ['LM-FRAME-1'], encodeCbor([1, 6, new Map()]));
  bad('seq 0 encoded in two bytes', ['NonCanonical'], ['LM-CBOR-3'], nonCanonicalSeq(hintsFrame));
  bad('map keys out of order', ['NonCanonical'], ['LM-CBOR-3'], swapFirstTwoKeys(hintsFrame));
  bad('a float in the body', ['Float'], ['LM-CBOR-2'], replaceBytes(encodeCbor([1, 4, new Map<number, CborValue>([[0, sid], [1, 7]]), new Uint8Array(16)]), Uint8Array.of(0x01, 0x07), Uint8Array.of(0x01, 0xf9, 0x47, 0x00)));
  bad('frame over 65536 bytes', ['Oversize'], ['LM-FRAME-1', 'LM-CBOR-5'], oversize());
  // [1, 8, {16: [[[[[[[[1]]]]]]]]}, h'00..'] built by hand: the encoder refuses it too.
  const flipped = hintsFrame.slice();
  flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 0x80;
  bad('HINTS with a wrong MAC', ['BadAuth'], ['LM-FRAME-2'], flipped, { macKey: toHex(fkG2d) });
  bad('HINTS verified with the other direction\'s key', ['BadAuth'], ['LM-FRAME-2'], hintsFrame, { macKey: toHex(fkD2g) });
  const offer = encodeFrame(FrameType.OFFER, samples[2][0], sigG);
  bad('OFFER signed by the gateway, verified with the device key', ['BadAuth'], ['LM-FRAME-2', 'LM-FRAME-6'], offer, { signerPublic: toHex(device.publicKey) });
  const tamperedOffer = rewriteBodyKeepAuth(offer, (m) => m.set(5, t + 1));
  bad('OFFER with its time changed after signing', ['BadAuth'], ['LM-FRAME-2'], tamperedOffer, { signerPublic: toHex(gateway.publicKey) });
  bad('OFFER with a ticket of 257 bytes', ['WrongType'], ['LM-FRAME-1', 'LM-LIC-4'], rewriteBodyKeepAuth(resumeOffer, (m) => m.set(7, new Uint8Array(257))));
  const revoke = encodeFrame(FrameType.REVOKE, samples[16][0], sigO);
  bad('REVOKE with a 16-byte auth (only SIG is allowed)', ['AuthLength'], ['LM-FRAME-3', 'LM-REVOKE-1'], rewriteArray(revoke, (a) => { a[3] = new Uint8Array(16); }));
  bad('REVOKE signed by the operator, verified with the gateway key', ['BadAuth'], ['LM-FRAME-2', 'LM-REVOKE-1'], revoke, { signerPublic: toHex(gateway.publicKey) });
  // STATUS: a state outside 1..5, readings with a number as a key or over 4096 bytes, no signature ([LM-FRAME-1], [LM-FRAME-3])
  bad('STATUS with state 6', ['Status', 'WrongType'], ['LM-FRAME-1'], rewriteBodySigned(statusFrame, (m) => m.set(2, 6), device.secretKey), devKey);
  bad('STATUS without bd', ['Status', 'MissingField'], ['LM-FRAME-1'], rewriteBodySigned(statusFrame, (m) => m.delete(5), device.secretKey), devKey);
  bad('STATUS readings with an integer key', ['Status', 'WrongType'], ['LM-FRAME-1'], rewriteBodySigned(statusFrame, (m) => m.set(6, new Map<number | string, CborValue>([[1, 60_125]])), device.secretKey), devKey);
  bad('STATUS readings of 4097 bytes encoded', ['Status', 'WrongType'], ['LM-FRAME-1'], rewriteBodySigned(statusFrame, (m) => m.set(6, new Map<string, CborValue>([['log', 'x'.repeat(4089)]])), device.secretKey), devKey);
  bad('STATUS with a 16-byte auth (only SIG is allowed)', ['Status', 'AuthLength'], ['LM-FRAME-3'], rewriteArray(statusFrame, (a) => { a[3] = new Uint8Array(16); }));
  bad('STATUS signed by another key than the device\'s', ['Status', 'BadAuth'], ['LM-FRAME-2'], encodeFrame(FrameType.STATUS, decodeFrame(statusFrame).body as Bodies[19], sigG), devKey);
  return file('LIVEMATRIX-FRAMES', {
    Extension: 'keys of 16 and above are ignored', Shifted: 'a shifted re-send (LM-DLV-11)', Ticket: 'carries a resume ticket (LM-LIC-4)', Refusal: 'a device\'s signed refusal of an OFFER (LM-FRAME-9)',
    Truncated: 'input ends inside a data item', Trailing: 'bytes after the frame', Version: 'unsupported version', UnknownType: 'no such frame type',
    WrongType: 'a field or the envelope has the wrong type', MissingField: 'a required field is absent', UnknownKey: 'a body key below 16 that the type does not define',
    AuthLength: 'auth length fits no allowed kind', NonCanonical: 'not deterministic CBOR', Float: 'floats are outside the profile', Oversize: 'over the frame limit',
    TooDeep: 'over the depth limit', BadAuth: 'decodes, but its MAC or signature does not verify',
    NestedExtension: 'a key inside caps or params: 16 and above ignored, below 16 refused (LM-FRAME-4)', TextBytes: 'text limits count bytes of UTF-8 (LM-FRAME-11)',
    Depth: 'at the nesting limit (LM-CBOR-5)', IdxLimit: 'idx at the 4096-entry array limit (LM-FRAME-13)', Tag: 'tags are outside the profile',
    Precedence: 'more than one check fails: the reason is the first in the order of LM-FRAME-10 and LM-CBOR-7',
    BootSequence: 'carries the boot sequence bd of its connection (LM-STATE-3)', Status: 'a device\'s signed status (SPEC.md §10.2)',
  }, [{ type: 'FrameTest', tests: valid }, { type: 'InvalidFrameTest', tests: invalid }]);
}

/** Verifies a frame with keys given as hex (the vectors' form). */
export function verifyFrameJson(f: AnyFrame, keys: Record<string, string>): void {
  const mac = keys['macKey'];
  const signer = keys['signerPublic'];
  verifyFrameFn(f, { ...(mac ? { mac: fromHexLocal(mac) } : {}), ...(signer ? { signer: fromHexLocal(signer) } : {}) });
}

function rewriteArray(bytes: Uint8Array, f: (a: CborValue[]) => void): Uint8Array {
  const a = [...(decodeCbor(bytes) as CborValue[])];
  f(a);
  return encodeCbor(a);
}
/** Changes the body and re-computes the MAC, so only the change is wrong. */
function rewriteBody(bytes: Uint8Array, f: (m: Map<number | string, CborValue>) => void, macKey: Uint8Array): Uint8Array {
  const a = [...(decodeCbor(bytes) as CborValue[])];
  const m = new Map(a[2] as Map<number | string, CborValue>);
  f(m);
  const tba = concat(ascii('livematrix/1 frame'), Uint8Array.of(0), encodeCbor([a[0] as CborValue, a[1] as CborValue, m]));
  return encodeCbor([a[0] as CborValue, a[1] as CborValue, m, frameMac(macKey, tba)]);
}
/** Changes the body and signs the frame again with an Ed25519 seed. */
function rewriteBodySigned(bytes: Uint8Array, f: (m: Map<number | string, CborValue>) => void, secretKey: Uint8Array): Uint8Array {
  const a = [...(decodeCbor(bytes) as CborValue[])];
  const m = new Map(a[2] as Map<number | string, CborValue>);
  f(m);
  const tba = concat(ascii('livematrix/1 frame'), Uint8Array.of(0), encodeCbor([a[0] as CborValue, a[1] as CborValue, m]));
  return encodeCbor([a[0] as CborValue, a[1] as CborValue, m, sign(secretKey, tba)]);
}
/**
 * A frame built by hand from the hex of its first three items (after the array head), for bytes
 * the encoder refuses to write; its MAC is computed over them as they are ([LM-FRAME-12]).
 */
/** The hex of a MAC frame's first three items: without the array head and the 16-byte MAC. */
function itemsOf(frame: Uint8Array): string {
  const h = toHex(frame);
  if (!h.startsWith('84') || h.slice(-34, -32) !== '50') throw new Error('not a MAC frame');
  return h.slice(2, -34);
}
function handFrame(itemsHex: string, macKey: Uint8Array): Uint8Array {
  const tba = concat(ascii('livematrix/1 frame'), Uint8Array.of(0, 0x83), fromHexLocal(itemsHex));
  return fromHexLocal('84' + itemsHex + '50' + toHex(frameMac(macKey, tba)));
}
function rewriteBodyKeepAuth(bytes: Uint8Array, f: (m: Map<number | string, CborValue>) => void): Uint8Array {
  const a = [...(decodeCbor(bytes) as CborValue[])];
  const m = new Map(a[2] as Map<number | string, CborValue>);
  f(m);
  a[2] = m;
  return encodeCbor(a);
}
function replaceBytes(hay: Uint8Array, needle: Uint8Array, repl: Uint8Array): Uint8Array {
  const h = toHex(hay);
  const n = toHex(needle);
  const i = h.lastIndexOf(n);
  if (i < 0 || i % 2) throw new Error('needle not found');
  return fromHexLocal(h.slice(0, i) + toHex(repl) + h.slice(i + n.length));
}
function nonCanonicalSeq(frame: Uint8Array): Uint8Array {
  // body map starts with key 0 (sid) then key 1 (seq = 0): "01 00" -> "01 18 00"
  return replaceFirst(frame, '0100', '011800');
}
function swapFirstTwoKeys(frame: Uint8Array): Uint8Array {
  // The body begins a8 00 50 <sid16> 01 00 ...: move "01 00" in front of the sid.
  const h = toHex(frame);
  const i = h.indexOf('0050');
  const sidPart = h.slice(i, i + 4 + 32);
  const seqPart = h.slice(i + 36, i + 40);
  if (seqPart !== '0100') throw new Error('unexpected layout');
  return fromHexLocal(h.slice(0, i) + seqPart + sidPart + h.slice(i + 40));
}
function replaceFirst(b: Uint8Array, from: string, to: string): Uint8Array {
  const h = toHex(b);
  let i = h.indexOf(from);
  while (i >= 0 && i % 2) i = h.indexOf(from, i + 1);
  if (i < 0) throw new Error('pattern not found');
  return fromHexLocal(h.slice(0, i) + to + h.slice(i + from.length));
}
function oversize(): Uint8Array {
  const f = encodeCbor([1, 6, new Map<number, CborValue>([[6, new Uint8Array(65536)]]), new Uint8Array(16)]);
  return f;
}

// ---- transactions ----------------------------------------------------------------------------

/** The request the transaction vectors sign; the limit tests change one field of it. */
function txRequest() {
  const operator = identityKeyPair(det('operator identity'));
  const { device, gateway } = frameFixture();
  const plaintext = ascii('G28\nG1 X10 Y10 F3000\nM104 S215\n');
  const nbf = 1_764_000_000_000;
  return {
    job: 'calib_cube', plaintext: { digest: sha256(plaintext), size: plaintext.length }, device: 'printer-01', devicePublic: device.publicKey,
    operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: nbf, notAfter: nbf + 24 * 3600 * 1000,
    rate: 2000, burst: 65536, prints: 1, gatewayPublic: gateway.publicKey,
    fixed: { licence: det('tx licence'), ephemeral: det('tx licence ephemeral'), nonce: det('tx nonce', 16) },
  };
}

export function txFixture() {
  const operator = identityKeyPair(det('operator identity'));
  const { device, gateway } = frameFixture();
  const other = identityKeyPair(det('other device identity'));
  const plaintext = ascii('G28\nG1 X10 Y10 F3000\nM104 S215\n');
  const nbf = 1_764_000_000_000;
  const made = createTx(txRequest());
  return { operator, device, gateway, other, plaintext, nbf, ...made };
}

function txVectors(): VectorFile {
  const { operator, device, gateway, other, nbf, tx, licence } = txFixture();
  const ctx = { now: nbf + 1000, trustedOperators: [toHex(operator.publicKey)], device: { id: 'printer-01', publicKey: toHex(device.publicKey) }, gatewayPublic: toHex(gateway.publicKey), printsUsed: 0 };
  const check = (bytes: Uint8Array, c: typeof ctx) => errorName(() => verifyTx(bytes, {
    now: c.now, trustedOperators: c.trustedOperators.map(fromHexLocal), device: { id: c.device.id, publicKey: fromHexLocal(c.device.publicKey) }, gatewayPublic: fromHexLocal(c.gatewayPublic), printsUsed: c.printsUsed,
  }));
  const opened = openLicence(tx.body.lic, device.secretKey, device.publicKey, tx.body.jd);
  if (toHex(opened) !== toHex(licence)) throw new Error('licence does not open');
  const tests: VectorTest[] = [{
    tcId: 0, comment: 'valid transaction; the device opens the sealed licence', result: 'valid', flags: [], requirements: ['LM-TX-1', 'LM-TX-2', 'LM-TX-4', 'LM-TX-5'],
    tx: toHex(tx.bytes), txh: toHex(tx.hash), decoded: jsonOf(tx.body), context: ctx, deviceSecret: toHex(device.secretKey), licence: toHex(licence),
  }];
  // valid at the limits: a 30-day window, a job name of 128 bytes in two-byte characters
  const remake = (o: Partial<Parameters<typeof createTx>[0]>) => createTx({ ...txRequest(), ...o });
  const window30 = { at: remake({ notAfter: nbf + TX_MAX_VALIDITY_MS }), over: remake({ notAfter: nbf + TX_MAX_VALIDITY_MS + 1 }) };
  const reversed = remake({ notBefore: nbf, notAfter: nbf - 1000 });
  const jobAt = remake({ job: 'é'.repeat(64) });
  const jobOver = remake({ job: 'é'.repeat(64) + 'a' });
  for (const [comment, flags, requirements, made] of [
    ['validity window of exactly 30 days', ['LongWindow'], ['LM-TX-8'], window30.at],
    ['job of 128 bytes of UTF-8 (64 two-byte characters)', ['TextBytes'], ['LM-FRAME-11', 'LM-TX-9'], jobAt],
  ] as const) {
    tests.push({
      tcId: 0, comment, result: 'valid', flags: [...flags], requirements: [...requirements],
      tx: toHex(made.tx.bytes), txh: toHex(made.tx.hash), decoded: jsonOf(made.tx.body), context: ctx, deviceSecret: toHex(device.secretKey), licence: toHex(made.licence),
    });
  }
  const sigFlip = tx.bytes.slice();
  sigFlip[sigFlip.length - 1] = (sigFlip[sigFlip.length - 1] as number) ^ 1;
  const cases: [string, string[], string[], Uint8Array, typeof ctx][] = [
    ['signature with one bit flipped', ['BadSignature'], ['LM-TX-2'], sigFlip, ctx],
    ['body changed after signing (rate raised)', ['BadSignature'], ['LM-TX-2'], resignedBody(tx.bytes, 10, 2_000_000), ctx],
    ['unsigned: empty transaction', ['Unsigned'], ['LM-TX-2'], new Uint8Array(0), ctx],
    ['expired: now after naf', ['Expired'], ['LM-TX-4'], tx.bytes, { ...ctx, now: tx.body.naf + 1 }],
    ['not yet valid: now before nbf', ['Expired'], ['LM-TX-4'], tx.bytes, { ...ctx, now: nbf - 1 }],
    ['for another device', ['WrongDevice'], ['LM-TX-5'], tx.bytes, { ...ctx, device: { id: 'printer-02', publicKey: toHex(other.publicKey) } }],
    ['operator not trusted', ['Untrusted'], ['LM-TX-3'], tx.bytes, { ...ctx, trustedOperators: [toHex(other.publicKey)] }],
    ['print count exhausted', ['Count'], ['LM-TX-7'], tx.bytes, { ...ctx, printsUsed: 1 }],
    ['for another gateway', ['WrongGateway'], ['LM-FRAME-6'], tx.bytes, { ...ctx, gatewayPublic: toHex(other.publicKey) }],
    ['not CBOR', ['Malformed'], ['LM-TX-9'], Uint8Array.of(0xff, 0x00), ctx],
    ['signature of 63 bytes: tx-schema, not tx-signature', ['Malformed', 'SignatureLength'], ['LM-TX-9'], withSig(tx.bytes, (s) => s.subarray(0, 63)), ctx],
    ['signature of 65 bytes', ['Malformed', 'SignatureLength'], ['LM-TX-9'], withSig(tx.bytes, (s) => concat(s, Uint8Array.of(0))), ctx],
    ['signature element missing: [body] only', ['Malformed'], ['LM-TX-9'], encodeCbor([(decodeCbor(tx.bytes) as CborValue[])[0] as CborValue]), ctx],
    ['a third element after the signature', ['Malformed'], ['LM-TX-9'], encodeCbor([...(decodeCbor(tx.bytes) as CborValue[]), 0]), ctx],
    ['validity window of 30 days and 1 ms', ['LongWindow'], ['LM-TX-8'], window30.over.tx.bytes, { ...ctx, now: nbf + 1000 }],
    ['naf before nbf', ['LongWindow'], ['LM-TX-8'], reversed.tx.bytes, { ...ctx, now: nbf - 500 }],
    ['job of 129 bytes of UTF-8 (65 characters)', ['TextBytes'], ['LM-FRAME-11', 'LM-TX-9'], jobOver.tx.bytes, ctx],
  ];
  for (const [comment, flags, requirements, bytes, c] of cases) {
    tests.push({ tcId: 0, comment, result: 'invalid', flags, requirements, tx: toHex(bytes), context: c, error: check(bytes, c) });
  }
  return file('LIVEMATRIX-TX', {
    BadSignature: 'the operator signature does not verify', Unsigned: 'no transaction', Expired: 'outside nbf..naf', WrongDevice: 'names another device or key',
    Untrusted: 'signed by an operator key the verifier does not trust', Count: 'prints used up', WrongGateway: 'names another gateway key', Malformed: 'not a transaction (LM-TX-9)',
    SignatureLength: 'sig is not 64 bytes: a malformed transaction (LM-TX-9)', LongWindow: 'naf - nbf against the 30-day limit (LM-TX-8)', TextBytes: 'job counts bytes of UTF-8 (LM-FRAME-11)',
  }, [{ type: 'TransactionTest', operatorPublic: toHex(operator.publicKey), tests }]);
}

/** The transaction with its signature element replaced. */
function withSig(bytes: Uint8Array, f: (sig: Uint8Array) => Uint8Array): Uint8Array {
  const [body, sig] = decodeCbor(bytes) as [CborValue, Uint8Array];
  return encodeCbor([body, f(sig)]);
}

function resignedBody(bytes: Uint8Array, key: number, value: number): Uint8Array {
  const [body, sig] = decodeCbor(bytes) as [Map<number, CborValue>, Uint8Array];
  const m = new Map(body);
  m.set(key, value);
  return encodeCbor([m, sig]);
}

// ---- resume tickets ([LM-LIC-3], [LM-LIC-4]) --------------------------------------------------

export function ticketFixture() {
  const { device, other, tx, nbf } = txFixture();
  const body: TicketBody = { v: 1, id: det('ticket id', 16), txh: tx.hash, sid: det('sid', 16), off: 8192, exp: nbf + 3_600_000, device: 'printer-01' };
  return { device, other, tx, nbf, body, ticket: signTicket(body, device.secretKey) };
}

/** What a device checks a ticket against, as the vectors write it (hex keys). */
export interface TicketContextJson {
  device: string;
  devicePublic: string;
  txh: string;
  now: number;
}

/** Sets `twin` of each invalid test to the tcId of its valid twin (the test it differs from in one thing), once ids are assigned. */
export function linkTwins(f: VectorFile, twins: Map<VectorTest, VectorTest>): VectorFile {
  for (const [t, twin] of twins) t['twin'] = twin.tcId;
  return f;
}

function ticketVectors(): VectorFile {
  const { device, other, tx, body, ticket } = ticketFixture();
  const ctx: TicketContextJson = { device: 'printer-01', devicePublic: toHex(device.publicKey), txh: toHex(tx.hash), now: body.exp - 60_000 };
  const run = (bytes: Uint8Array, c: TicketContextJson) => verifyTicket(bytes, { device: c.device, devicePublic: fromHexLocal(c.devicePublic), txh: fromHexLocal(c.txh), now: c.now });
  const tests: VectorTest[] = [];
  const twins = new Map<VectorTest, VectorTest>();
  const requirements = ['LM-LIC-3', 'LM-LIC-4'];
  const valid = (comment: string, flags: string[], bytes: Uint8Array, context: TicketContextJson): VectorTest => {
    const t = run(bytes, context);
    const v: VectorTest = { tcId: 0, comment, result: 'valid', flags, requirements, ticket: toHex(bytes), context, id: toHex(t.body.id), decoded: jsonOf(t.body) };
    tests.push(v);
    return v;
  };
  const invalid = (comment: string, flags: string[], bytes: Uint8Array, context: TicketContextJson, twin: VectorTest) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, ticket: toHex(bytes), context, error: errorName(() => run(bytes, context)) };
    twins.set(v, twin);
    tests.push(v);
  };
  const main = valid('valid ticket, presented to its device for its transaction', [], ticket.bytes, ctx);
  const atExp = valid('valid at its expiry time exactly', ['Boundary'], ticket.bytes, { ...ctx, now: body.exp });
  const sigFlip = ticket.bytes.slice();
  sigFlip[sigFlip.length - 1] = (sigFlip[sigFlip.length - 1] as number) ^ 1;
  invalid('signature with one bit flipped', ['Tampered'], sigFlip, ctx, main);
  const [m, sig] = decodeCbor(ticket.bytes) as [Map<number, CborValue>, Uint8Array];
  invalid('offset raised after signing', ['Tampered'], encodeCbor([new Map(m).set(5, body.off + 4096), sig]), ctx, main);
  invalid('presented to another device (its id and key)', ['WrongDevice'], ticket.bytes, { ...ctx, device: 'printer-02', devicePublic: toHex(other.publicKey) }, main);
  invalid('signed by this device\'s key for another device id', ['WrongDevice'], signTicket({ ...body, device: 'printer-02' }, device.secretKey).bytes, ctx, main);
  invalid('expired: presented one ms after its expiry', ['Expired'], ticket.bytes, { ...ctx, now: body.exp + 1 }, atExp);
  invalid('for another transaction', ['WrongTx'], ticket.bytes, { ...ctx, txh: toHex(det('another transaction')) }, main);
  invalid('one trailing byte', ['Malformed'], concat(ticket.bytes, Uint8Array.of(0)), ctx, main);
  return linkTwins(file('LIVEMATRIX-TICKET', {
    Boundary: 'at the limit the ticket still holds', Tampered: 'the device signature does not verify', WrongDevice: 'not this device\'s ticket',
    Expired: 'now is after exp', WrongTx: 'issued for another transaction', Malformed: 'not a ticket',
    twin: 'an invalid test\'s twin is the valid test it differs from in one thing: the ticket bytes or the context',
  }, [{ type: 'TicketTest', signingInput: 'ascii("livematrix/1 ticket") || 0x00 || enc(body)', tests }]), twins);
}

// ---- revocation lists ([LM-REVOKE-1] .. [LM-REVOKE-3]) ----------------------------------------

export function revocationFixture() {
  const { operator, tx, nbf } = txFixture();
  const second = identityKeyPair(det('second operator identity'));
  const stranger = identityKeyPair(det('untrusted operator identity'));
  const retired = identityKeyPair(det('retired operator identity'));
  const time = nbf + 3_600_000;
  const base: RevocationRequest = {
    seq: 7, time, next: time + REVOCATION_PERIOD_MS, txs: [det('revoked tx hash')], devices: ['printer-13'], operators: [retired.publicKey],
    operatorSecret: operator.secretKey, operatorPublic: operator.publicKey,
  };
  return { operator, second, stranger, retired, tx, time, base };
}

function revocationVectors(): VectorFile {
  const { operator, second, stranger, retired, tx, time, base } = revocationFixture();
  const by = (k: { secretKey: Uint8Array; publicKey: Uint8Array }) => ({ operatorSecret: k.secretKey, operatorPublic: k.publicKey });
  const trusted = [toHex(operator.publicKey)];
  const both = [toHex(operator.publicKey), toHex(second.publicKey)];
  const verify = (bytes: Uint8Array, keys: string[]) => verifyRevocation(bytes, keys.map(fromHexLocal));
  const twins = new Map<VectorTest, VectorTest>();

  // the list itself: format and signature ([LM-REVOKE-1])
  const lists: VectorTest[] = [];
  const listValid = (comment: string, flags: string[], bytes: Uint8Array, keys: string[]): VectorTest => {
    const v: VectorTest = { tcId: 0, comment, result: 'valid', flags, requirements: ['LM-REVOKE-1'], list: toHex(bytes), trustedOperators: keys, decoded: jsonOf(verify(bytes, keys)) };
    lists.push(v);
    return v;
  };
  const listInvalid = (comment: string, flags: string[], bytes: Uint8Array, keys: string[], twin: VectorTest) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements: ['LM-REVOKE-1'], list: toHex(bytes), trustedOperators: keys, error: errorName(() => verify(bytes, keys)) };
    twins.set(v, twin);
    lists.push(v);
  };
  const mainBytes = signRevocation(base);
  const main = listValid('a list signed by a trusted operator: a transaction, a device and a retired operator key', [], mainBytes, trusted);
  listValid('an empty list', ['Empty'], signRevocation({ ...base, seq: 1, txs: [], devices: [], operators: [] }), trusted);
  const bySecond = signRevocation({ ...base, ...by(second) });
  const secondOk = listValid('signed by a second operator the verifier trusts', [], bySecond, both);
  listInvalid('signed by an operator key the verifier does not trust', ['Untrusted'], bySecond, trusted, secondOk);
  listInvalid('signed by a stranger, naming the trusted key as its signer', ['BadSignature'], encodeFrame(FrameType.REVOKE, verify(mainBytes, trusted), { kind: 'sig', secretKey: stranger.secretKey }), trusted, main);
  const sigFlip = mainBytes.slice();
  sigFlip[sigFlip.length - 1] = (sigFlip[sigFlip.length - 1] as number) ^ 1;
  listInvalid('signature with one bit flipped', ['BadSignature'], sigFlip, trusted, main);
  listInvalid('seq raised after signing', ['BadSignature'], rewriteBodyKeepAuth(mainBytes, (m) => m.set(1, base.seq + 1)), trusted, main);
  listInvalid('revokes the key that signs it', ['SelfRevoking'], signRevocation({ ...base, operators: [retired.publicKey, operator.publicKey] }), trusted, main);
  const sameTime: RevokeBody = { ...verify(mainBytes, trusted), next: time };
  listInvalid('next update not after its time', ['BadNext'], encodeFrame(FrameType.REVOKE, sameTime, { kind: 'sig', secretKey: operator.secretKey }), trusted, main);

  // what a verifier holding a list refuses ([LM-REVOKE-3])
  const refusals: VectorTest[] = [];
  const refusal = (bytes: Uint8Array, keys: string[], now: number): string | null => {
    const r = new Revocations();
    r.offer(bytes, keys.map(fromHexLocal));
    const t = decodeTx(tx.bytes);
    const e = r.refusal(t.body, t.hash, now);
    return e ? reasonName(e.code) : null;
  };
  const refusalTest = (comment: string, flags: string[], bytes: Uint8Array, keys: string[], now: number, twin?: VectorTest): VectorTest => {
    const error = refusal(bytes, keys, now);
    const v: VectorTest = { tcId: 0, comment, result: error ? 'invalid' : 'valid', flags, requirements: ['LM-REVOKE-3'], list: toHex(bytes), trustedOperators: keys, tx: toHex(tx.bytes), now, ...(error ? { error } : {}) };
    if ((error === null) !== (twin === undefined)) throw new Error(`refusal vector "${comment}": ${error ?? 'no refusal'}`);
    if (twin) twins.set(v, twin);
    refusals.push(v);
    return v;
  };
  const fresh = refusalTest('a transaction the list does not name, while the list is fresh', [], mainBytes, trusted, time + 60_000);
  const atNext = refusalTest('at the list\'s next update time exactly, it still holds', ['Boundary'], mainBytes, trusted, base.next);
  refusalTest('stale: one ms after the list\'s next update time, every transaction is refused', ['Stale'], mainBytes, trusted, base.next + 1, atNext);
  refusalTest('the transaction is revoked', ['RevokedTx'], signRevocation({ ...base, txs: [det('revoked tx hash'), tx.hash] }), trusted, time + 60_000, fresh);
  refusalTest('the transaction\'s device is revoked', ['RevokedDevice'], signRevocation({ ...base, devices: ['printer-13', tx.body.device] }), trusted, time + 60_000, fresh);
  const secondFresh = refusalTest('a second trusted operator\'s list that does not revoke the first', [], bySecond, both, time + 60_000);
  refusalTest('the transaction\'s operator key is revoked by a second trusted operator', ['RevokedOperator'], signRevocation({ ...base, ...by(second), operators: [retired.publicKey, operator.publicKey] }), both, time + 60_000, secondFresh);

  // the newest list by seq, never an older or equal one ([LM-REVOKE-2])
  const sequences: VectorTest[] = [];
  const sequence = (comment: string, flags: string[], offered: Uint8Array[], twin?: VectorTest): VectorTest => {
    const r = new Revocations();
    const held = offered.map((b) => {
      r.offer(b, [operator.publicKey]);
      return offered.findIndex((x) => r.current !== undefined && toHex(x) === toHex(r.current));
    });
    const rolledBack = held.some((h, i) => h !== i);
    const v: VectorTest = { tcId: 0, comment, result: rolledBack ? 'invalid' : 'valid', flags, requirements: ['LM-REVOKE-2'], lists: offered.map(toHex), trustedOperators: trusted, held, ...(rolledBack ? { error: 'rollback' } : {}) };
    if (rolledBack !== (twin !== undefined)) throw new Error(`sequence vector "${comment}"`);
    if (twin) twins.set(v, twin);
    sequences.push(v);
    return v;
  };
  const newer = sequence('a newer seq replaces the list held', [], [mainBytes, signRevocation({ ...base, seq: 8, time: time + 1000, next: time + 1000 + REVOCATION_PERIOD_MS, devices: [] })]);
  sequence('an older seq is ignored: no rollback', ['Rollback'], [mainBytes, signRevocation({ ...base, seq: 6, time: time + 1000, next: time + 1000 + REVOCATION_PERIOD_MS, devices: [] })], newer);
  sequence('an equal seq with other entries is ignored', ['Rollback'], [mainBytes, signRevocation({ ...base, time: time + 1000, next: time + 1000 + REVOCATION_PERIOD_MS, devices: [] })], newer);

  return linkTwins(file('LIVEMATRIX-REVOCATION', {
    Empty: 'a list that revokes nothing (it still bounds staleness)', Untrusted: 'signed by a key the verifier does not trust', BadSignature: 'the signature does not verify under opk',
    SelfRevoking: 'the list revokes its own signing key', BadNext: 'next is not after time', Boundary: 'at the limit the list still holds',
    Stale: 'now is after next: the verifier refuses every transaction until a newer list arrives', RevokedTx: 'the list names the transaction\'s SHA-256',
    RevokedDevice: 'the list names the transaction\'s device', RevokedOperator: 'the list names the transaction\'s operator key',
    Rollback: 'not a reason code: the verifier keeps the list it holds and ignores the offered one; held[i] is the index in lists of the list held after offering lists[i]',
    twin: 'an invalid test\'s twin is the valid test it differs from in one thing',
  }, [
    { type: 'RevocationListTest', signingInput: 'the REVOKE frame\'s tba (SPEC.md §7.1), signed by opk', tests: lists },
    { type: 'RevocationRefusalTest', tests: refusals },
    { type: 'RevocationSequenceTest', tests: sequences },
  ]), twins);
}

// ---- frames against their session ([LM-FRAME-15] .. [LM-FRAME-19], [LM-PARAM-1], [LM-PARAM-6]) ----

/**
 * The reason a verified frame fails its session with, or null: HINTS against `L`, `N` and `w`,
 * ACCEPT against `C` and the job's size. What `session.json` checks.
 */
export function sessionFrameError(hex: string, keys: Record<string, string>, params: SessionParams, size: number): string | null {
  try {
    const f = decodeFrame(fromHexLocal(hex));
    verifyFrameJson(f, keys);
    const e = f.type === FrameType.HINTS ? hintsFault(f.body, params) : f.type === FrameType.ACCEPT ? acceptFault(f.body, params, size) : undefined;
    return e ? reasonName(e.code) : null;
  } catch (e) {
    if (e instanceof LmError) return reasonName(e.code);
    throw e;
  }
}

function sessionVectors(): VectorFile {
  const { device, sid, fkG2d } = frameFixture();
  const t = 1_764_000_000_000;
  const params: SessionParams = { suite: 3, w: 20, L: 4, period: 1000, epoch: t - 5000, grace: 250, r0: 5, chunk: 4096, symbolsPerFrame: 1024, wt: 16 };
  const size = 205508;
  const macG: Signer = { kind: 'mac', key: fkG2d };
  const hintsBase = { sid, seq: 3, rev: 6, chunk: 0, off: 0, ctlen: 4112 };
  const frames: VectorTest[] = [];
  const hints = (comment: string, requirements: string[], body: Partial<Bodies[6]>, flags: string[] = []) => {
    // built with the frame's MAC; rewriteBody lets a hints length the encoder would accept anyway
    const bytes = encodeFrame(FrameType.HINTS, { ...hintsBase, hints: det('session hints', 12), ...body }, macG);
    const keys = { macKey: toHex(fkG2d) };
    const error = sessionFrameError(toHex(bytes), keys, params, size);
    frames.push({ tcId: 0, comment, result: error ? 'invalid' : 'valid', flags, requirements, params: jsonOf(params), size, ...keys, hex: toHex(bytes), ...(error ? { error } : {}) });
  };
  hints('3 hints of L = 4 bytes', ['LM-FRAME-15'], {});
  hints('13 bytes of hints: not a multiple of L = 4', ['LM-FRAME-15'], { hints: det('session hints', 13) }, ['HintsLength']);
  hints('N = 1024 hints', ['LM-FRAME-15'], { hints: detLong('session hints', 1024 * 4) }, ['Boundary']);
  hints('N + 1 = 1025 hints without sh', ['LM-FRAME-15'], { hints: detLong('session hints', 1025 * 4) }, ['HintsLength']);
  hints('N + 1 = 1025 shifted hints (positions 0..N)', ['LM-FRAME-15', 'LM-FRAME-16'], { hints: detLong('session hints', 1025 * 4), idx: [...Array(1025).keys()], sh: 10 }, ['Boundary', 'Shifted']);
  hints('re-send of 2 symbols with idx of 2 entries', ['LM-FRAME-16'], { hints: det('session hints', 8), idx: [16, 17] });
  hints('idx of 3 entries for 2 hints', ['LM-FRAME-16'], { hints: det('session hints', 8), idx: [16, 17, 18] }, ['IdxLength']);
  hints('idx of 1 entry for 2 hints', ['LM-FRAME-16'], { hints: det('session hints', 8), idx: [16] }, ['IdxLength']);
  hints('sh = w - 1 = 19', ['LM-FRAME-17'], { hints: det('session hints', 8), idx: [16, 17], sh: 19 }, ['Boundary', 'Shifted']);
  hints('sh = w = 20', ['LM-FRAME-17'], { hints: det('session hints', 8), idx: [16, 17], sh: 20 }, ['Shifted', 'ShiftWidth']);
  const accept = (comment: string, requirements: string[], body: { window: number; from?: number }, flags: string[] = []) => {
    const bytes = encodeFrame(FrameType.ACCEPT, { sid, epk: det('accept epk'), oh: det('offer hash'), ...body }, { kind: 'sig', secretKey: device.secretKey });
    const keys = { signerPublic: toHex(device.publicKey) };
    const error = sessionFrameError(toHex(bytes), keys, params, size);
    frames.push({ tcId: 0, comment, result: error ? 'invalid' : 'valid', flags, requirements, params: jsonOf(params), size, ...keys, hex: toHex(bytes), ...(error ? { error } : {}) });
  };
  accept('window of 64 KiB, no resume point', ['LM-FRAME-19'], { window: 65536 });
  accept('window of one chunk exactly', ['LM-FRAME-19'], { window: 4096 }, ['Boundary']);
  accept('window of one byte less than a chunk', ['LM-FRAME-19'], { window: 4095 }, ['Window']);
  accept('resume from chunk 2 (8192 bytes)', ['LM-FRAME-18'], { window: 65536, from: 8192 });
  accept('resume from the last chunk boundary within the job', ['LM-FRAME-18'], { window: 65536, from: 50 * 4096 }, ['Boundary']);
  accept('resume point 4097: not a multiple of C', ['LM-FRAME-18'], { window: 65536, from: 4097 }, ['ResumePoint']);
  accept('resume point 208896: a chunk boundary beyond the job of 205508 bytes', ['LM-FRAME-18'], { window: 65536, from: 51 * 4096 }, ['ResumePoint']);

  const offers: VectorTest[] = [];
  const offer = (comment: string, requirements: string[], p: SessionParams, flags: string[] = []) => {
    const error = errorOrNull(() => validateParams(p));
    // the ranges a device checks an OFFER against ([LM-PARAM-1]); a validator's verdict is not a
    // gateway's offer: [LM-PARAM-7] is the gateway profile's (gateway/deliver checks the OFFER it makes)
    offers.push({ tcId: 0, comment, result: error ? 'invalid' : 'valid', flags, requirements, params: jsonOf(p), ...(error ? { error } : {}) });
  };
  offer('the parameters of the OFFER vector', ['LM-PARAM-1'], params);
  offer(`N·L = 4096·12 = ${MAX_HINT_BYTES}`, ['LM-PARAM-6'], { ...params, w: 24, L: 12, symbolsPerFrame: 4096 }, ['Boundary']);
  offer('N·L = 4096·13 = 53248', ['LM-PARAM-6', 'LM-PARAM-1'], { ...params, w: 24, L: 13, symbolsPerFrame: 4096 }, ['HintBytes']);
  offer('N·L = 2048·24 = 49152 at w = 16', ['LM-PARAM-6'], { ...params, w: 16, L: 24, symbolsPerFrame: 2048 }, ['Boundary']);
  offer('P = 99 ms, below the range', ['LM-PARAM-1'], { ...params, period: 99 }, ['Range']);
  offer('G = P / 2: 2·G is not below P', ['LM-PARAM-1', 'LM-PARAM-5'], { ...params, grace: 500 }, ['Range']);
  offer('L = 3 at w = 20: 8·L < w + 8', ['LM-PARAM-1', 'LM-PARAM-3'], { ...params, L: 3 }, ['Range']);
  offer('w = 25', ['LM-PARAM-1', 'LM-PARAM-2'], { ...params, w: 25, L: 5 }, ['Range']);
  offer('N = 4097', ['LM-PARAM-1'], { ...params, symbolsPerFrame: 4097 }, ['Range']);
  return file('LIVEMATRIX-SESSION', {
    HintsLength: 'hints not a multiple of L, or more of them than N (N + 1 with sh)', IdxLength: 'idx does not have one entry per hint',
    ShiftWidth: 'sh not below w', Window: 'window below one chunk', ResumePoint: 'from not a chunk boundary within the job',
    HintBytes: 'N·L over 49152', Range: 'a parameter outside the table of SPEC.md §2', Boundary: 'at the limit, still valid', Shifted: 'a shifted re-send (LM-DLV-11)',
    params: 'the session parameters of its OFFER (SPEC.md §7.2 names: period = P, grace = G, chunk = C, symbolsPerFrame = N); size: the job\'s plaintext bytes',
  }, [
    { type: 'SessionFrameTest', checkOrder: 'decode and verify the frame (LM-FRAME-10), then check it against params and size', tests: frames },
    { type: 'OfferParamsTest', tests: offers },
  ]);
}

const errorOrNull = (f: () => unknown): string | null => {
  try {
    f();
    return null;
  } catch (e) {
    if (e instanceof LmError) return reasonName(e.code);
    throw e;
  }
};

/** All vector files by name. */
export function buildVectors(): Record<string, VectorFile> {
  const { tx } = txFixture();
  return {
    'hint.json': hintVectors(),
    'pack.json': packVectors(),
    'keys.json': keyVectors(),
    'aead.json': aeadVectors(),
    'frames.json': frameVectors(tx.bytes),
    'tx.json': txVectors(),
    'ledger.json': ledgerVectors(file),
    'ticket.json': ticketVectors(),
    'revocation.json': revocationVectors(),
    'protected.json': protectedVectors(file),
    'session.json': sessionVectors(),
  };
}

export function renderVectorFile(v: VectorFile): string {
  return JSON.stringify(v, null, 1) + '\n';
}

export type { ReasonCode };
