/**
 * @module semantic-vectors
 * Vectors that drive an implementation in both directions (SPEC.md §14): frames encoded from
 * their fields and compared byte for byte, and decoded to their fields (encode.json); sealed
 * licences opened with a device's identity secret (licence.json); revision-table lookups and
 * the hints of a byte string (table.json); the revision clock and time sync (clock.json);
 * parameter ranges (params.json); telemetry sealed and opened (telemetry.json). Built from the
 * reference code with fixed inputs: the same bytes every run. `gen-vectors.ts` writes them.
 *
 * The JSON form of a CBOR value (the "wire JSON" of conformance/README.md): byte strings as
 * lowercase hex, integers as numbers, text as strings, maps as objects keyed by the map key
 * (a frame body's keys are its key numbers, "0", "1", ...), arrays as arrays.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  AUTH_KINDS, type AuthKind, type Bodies, type CborValue, FRAME_TYPE_NAMES, type FrameTypeId, LmError, Reason, SCHEMAS, type SessionParams, type SuiteId,
  ascii, checkRevision, checkSkew, concatBytes, createTx, decodeCbor, decodeFrame, decodeTx, encodeCbor, encodeFrame, frameMac, hint, hintSymbols, identityKeyPair,
  minHintLength, openLicence, openTelemetry, pack, reasonName, revisionAt, scanResolve, sealTelemetry, senderRevision, sign, signTx, syncResult, bestSample,
  toHex, unpack, validateParams, verifyFrame, type Signer, type TimeSample, type TxBody, edSecretToX25519, edPublicToX25519, fromHex, x25519KeyPair,
} from '../src/index.js';
import { det, errorName, frameFixture, txFixture, type VectorFile, type VectorGroup, type VectorTest } from './vectors.js';
import { ledgerAppendVectors } from './ledger-vectors.js';

const GENERATOR = 'spec/scripts/semantic-vectors.ts';

function file(algorithm: string, notes: Record<string, string>, groups: VectorGroup[]): VectorFile {
  let id = 1;
  for (const g of groups) for (const t of g.tests) t.tcId = id++;
  return { algorithm, version: 1, generator: GENERATOR, notes: { wireJson: 'byte strings as lowercase hex, integers as numbers, text as strings, maps as objects keyed by their map keys (frame bodies by key number), arrays as arrays', ...notes }, numberOfTests: id - 1, testGroups: groups };
}

/** The wire JSON of a CBOR value (see the module doc). */
export function wireJson(v: CborValue): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return (v as readonly CborValue[]).map(wireJson);
  if (v instanceof Map) return Object.fromEntries([...(v as ReadonlyMap<number | string, CborValue>).entries()].map(([k, x]) => [String(k), wireJson(x)]));
  return v;
}

/** A frame's body as the wire JSON of the fields its type defines (extension keys dropped, [LM-FRAME-4]). */
export function frameBodyJson(bytes: Uint8Array): unknown {
  const [, type, body] = decodeCbor(bytes) as [number, FrameTypeId, ReadonlyMap<number, CborValue>];
  const known = new Set(SCHEMAS[type].map((f) => f.key));
  return wireJson(new Map([...body].filter(([k]) => known.has(k))));
}

const TBA_PREFIX = concatBytes(ascii('livematrix/1 frame'), Uint8Array.of(0));

/**
 * The reference encoder over a raw body map: the authentication kind must be one of the type's
 * ([LM-FRAME-21]), the bytes are the deterministic encoding ([LM-CBOR-1]), the body must satisfy
 * the type's schema ([LM-FRAME-1]).
 */
function encodeRaw(type: FrameTypeId, body: Map<number, CborValue>, kind: AuthKind, key?: Uint8Array): Uint8Array {
  if (!AUTH_KINDS[type].includes(kind)) throw new LmError(Reason.schema, `${FRAME_TYPE_NAMES[type]} cannot use authentication "${kind}" ([LM-FRAME-21])`);
  const tba = concatBytes(TBA_PREFIX, encodeCbor([1, type, body]));
  const auth = kind === 'sig' ? sign(key as Uint8Array, tba) : kind === 'mac' ? frameMac(key as Uint8Array, tba) : new Uint8Array(0);
  const bytes = encodeCbor([1, type, body, auth]);
  decodeFrame(bytes); // the schema
  return bytes;
}

/** The raw body map of an encoded frame. */
const rawBody = (bytes: Uint8Array): Map<number, CborValue> => new Map((decodeCbor(bytes) as [number, number, ReadonlyMap<number, CborValue>])[2]);

// ---- frames, both directions (encode.json) --------------------------------------------------

function encodeVectors(): VectorFile {
  const { device, gateway, sid, fkG2d, fkD2g } = frameFixture();
  const { tx, operator } = txFixture();
  const keysService = identityKeyPair(det('keys service identity'));
  const t = 1_764_000_123_456;
  interface Auth { signer: Signer; key: Uint8Array | undefined; verify: Record<string, string> }
  const sig = (k: { secretKey: Uint8Array; publicKey: Uint8Array }): Auth => ({ signer: { kind: 'sig', secretKey: k.secretKey }, key: k.secretKey, verify: { signerPublic: toHex(k.publicKey) } });
  const mac = (k: Uint8Array): Auth => ({ signer: { kind: 'mac', key: k }, key: k, verify: { macKey: toHex(k) } });
  const none: Auth = { signer: { kind: 'none' }, key: undefined, verify: {} };
  const params: SessionParams = { suite: 1, w: 24, L: 4, period: 60000, epoch: t - 120_000, grace: 29999, r0: 2, chunk: 65536, symbolsPerFrame: 4096, wt: 8 };
  // each body chosen to exercise the encoding: integers at the 1/2/3/5/9-byte boundaries of
  // their heads, optional keys, nested maps and arrays, UTF-8 text, an empty job's zero totals
  const samples: { comment: string; type: FrameTypeId; body: Bodies[FrameTypeId]; auth: Auth; extra?: string[] }[] = [
    { comment: 'HELLO with every capability and a boot id', type: 1, body: { device: 'printer-7', idpk: device.publicKey, caps: { suites: [[3, 24_000_000], [1, 8_000_000]], mem: 2 ** 28, wmax: 24, workers: 4, prot: true }, time: t, software: 'vendor-fw/2.0 (Prüfstand)', online: true, boot: det('boot id', 8) }, auth: sig(device) },
    { comment: 'OFFER with the longest period and grace', type: 2, body: { sid, tx: tx.bytes, epk: det('encode offer epk'), params, gwpk: gateway.publicKey, time: t, resume: false }, auth: sig(gateway) },
    { comment: 'ACCEPT resuming from a chunk boundary', type: 3, body: { sid, epk: det('encode accept epk'), oh: det('encode offer hash'), window: 65536, from: 8192 }, auth: sig(device) },
    { comment: 'TIME_REQ', type: 4, body: { sid, t1: t }, auth: mac(fkD2g) },
    { comment: 'TIME_RESP', type: 5, body: { sid, t1: t, t2: t + 23, t3: t + 24 }, auth: mac(fkG2d) },
    { comment: 'HINTS shifted re-send; seq, rev, chunk, off and ctlen at head boundaries', type: 6, body: { sid, seq: 23, rev: 24, chunk: 255, off: 256, ctlen: 65535, hints: det('encode hints', 12), idx: [0, 23, 24], sh: 5 }, auth: mac(fkG2d) },
    { comment: 'KEY of chunk 65536 at revision 2^32', type: 7, body: { sid, chunk: 65536, rev: 2 ** 32, wrapped: det('encode wrapped', 48) }, auth: mac(fkG2d) },
    { comment: 'ACK with NACKs of reasons unknown and ambiguous', type: 8, body: { sid, cum: 0, sack: [], nack: [[7, Reason.unknown, []], [9, Reason.ambiguous, [1, 4095]]], consumed: 2 ** 32 - 1, credit: 0 }, auth: mac(fkD2g) },
    { comment: 'CONTROL abort by the device', type: 9, body: { sid, op: 3, reason: Reason.aborted }, auth: mac(fkD2g) },
    { comment: 'TELEMETRY', type: 10, body: { sid, seq: 1000, rev: 42, ctlen: 59, hints: det('encode telemetry hints', 80) }, auth: mac(fkD2g) },
    { comment: 'END of an empty job', type: 11, body: { sid, bytes: 0, chunks: 0, frames: 0, digest: sha256(new Uint8Array(0)) }, auth: mac(fkG2d) },
    { comment: 'RECEIPT', type: 12, body: { sid, jd: tx.body.jd, bytes: tx.body.size, digest: tx.body.jd, time: t + 90_000, device: 'printer-01', txh: tx.hash }, auth: sig(device) },
    { comment: 'ALARM tamper with observed and limit', type: 13, body: { sid, code: Reason.tamper, detail: '3 MAC failures in 60 s', time: t, observed: 3, limit: 2 }, auth: mac(fkG2d) },
    { comment: 'ALARM rate on the fleet alarm topic (NONE), naming its device', type: 13, body: { code: Reason.rate, detail: 'printer-7: 5001 frames in 1 s', time: t, observed: 5001, limit: 5000, device: 'printer-7' }, auth: none, extra: ['LM-ALARM-6'] },
    { comment: 'ERROR: a signed refusal naming the OFFER, UTF-8 detail', type: 14, body: { sid, code: Reason.txExpired, detail: 'Transaktion abgelaufen — naf überschritten', oh: det('encode offer hash') }, auth: sig(device) },
    { comment: 'ERROR with a seq (MAC)', type: 14, body: { sid, code: Reason.padding, detail: 'padding bits not zero', seq: 24 }, auth: mac(fkD2g) },
    { comment: 'BYE, the Last Will (NONE)', type: 15, body: { who: 'printer-7', reason: Reason.offline }, auth: none },
    { comment: 'REVOKE', type: 16, body: { seq: 1_764_000_123, time: t, next: t + 86_400_000, txs: [tx.hash, det('encode revoked tx')], devices: ['printer-13', 'printer-7'], operators: [], opk: operator.publicKey }, auth: sig(operator), extra: ['LM-REVOKE-1'] },
    { comment: 'SVC_REQ', type: 17, body: { id: det('encode svc id', 16), op: 17, args: det('encode sealed args', 60), time: t, from: 'gateway-01', pk: gateway.publicKey }, auth: sig(gateway) },
    { comment: 'SVC_RESP with an error code and an empty result', type: 18, body: { id: det('encode svc id', 16), code: Reason.busy, result: new Uint8Array(0), detail: 'retry later', time: t + 5 }, auth: sig(keysService) },
    // the boot sequence in a Last Will and a STATUS with readings whose text keys sort by length first ([LM-CBOR-1], SPEC.md §10.2)
    { comment: 'BYE, the Last Will of a connection, with its boot sequence (NONE)', type: 15, body: { who: 'printer-7', reason: Reason.offline, bd: 2 ** 32 }, auth: none },
    { comment: 'STATUS paused, with readings and a detail', type: 19, body: { device: 'printer-7', state: 3, seq: 255, time: t, bd: 2 ** 32, tel: new Map<string, CborValue>([['progress_ppm', 65_536], ['bed_mC', -1], ['door', 'open'], ['z', [1, 2]]]), detail: 'filament runout' }, auth: sig(device) },
  ];
  const enc: VectorTest[] = [];
  const dec: VectorTest[] = [];
  for (const s of samples) {
    const bytes = encodeFrame(s.type, s.body as never, s.auth.signer);
    const body = rawBody(bytes);
    if (toHex(encodeRaw(s.type, body, s.auth.signer.kind, s.auth.key)) !== toHex(bytes)) throw new Error(`encode vector "${s.comment}": the raw encoder differs`);
    const kind = s.auth.signer.kind;
    // a sender authenticates with its type's kind: MAC and SIG as [LM-FRAME-2] computes them, NONE
    // only for ALARM, ERROR and BYE ([LM-FRAME-21]); the decoder's answer `authenticated` says
    // whether the MAC or signature verified ([LM-FRAME-2]), not what a receiver then refrains from
    // doing with a NONE frame ([LM-FRAME-5], a device's and a gateway's behaviour)
    const encIds = kind === 'none' ? ['LM-FRAME-21'] : ['LM-FRAME-2'];
    const decIds = kind === 'none' ? [] : ['LM-FRAME-2'];
    enc.push({
      tcId: 0, comment: s.comment, result: 'valid', flags: [], requirements: ['LM-CBOR-1', 'LM-FRAME-1', ...encIds], type: s.type, name: FRAME_TYPE_NAMES[s.type], auth: kind,
      ...(s.auth.key ? { key: toHex(s.auth.key) } : {}), body: wireJson(body), hex: toHex(bytes),
    });
    const f = decodeFrame(bytes);
    const authenticated = verifyFrame(f, { ...(kind === 'sig' ? { signer: identityKeyPair(s.auth.key).publicKey } : {}), ...(kind === 'mac' ? { mac: s.auth.key } : {}) });
    dec.push({ tcId: 0, comment: s.comment, result: 'valid', flags: [], requirements: ['LM-FRAME-1', ...decIds, ...(s.extra ?? [])], hex: toHex(bytes), ...s.auth.verify, type: s.type, name: FRAME_TYPE_NAMES[s.type], body: frameBodyJson(bytes), authenticated });
  }
  // what an encoder must refuse
  const base = (type: FrameTypeId, i: number) => rawBody(encodeFrame(type, samples[i]?.body as never, samples[i]?.auth.signer as Signer));
  const hints = base(6, 5);
  const bad: [string, string[], FrameTypeId, Map<number, CborValue>, AuthKind, Uint8Array | undefined][] = [
    ['HINTS authenticated with NONE', ['LM-FRAME-21'], 6, hints, 'none', undefined],
    ['OFFER authenticated with a MAC', ['LM-FRAME-21'], 2, base(2, 1), 'mac', fkG2d],
    ['HINTS without ctlen (key 5)', ['LM-FRAME-1'], 6, new Map([...hints].filter(([k]) => k !== 5)), 'mac', fkG2d],
    ['HINTS with seq as text', ['LM-FRAME-1'], 6, new Map(hints).set(1, 'twenty-three'), 'mac', fkG2d],
    ['KEY with a wrapped key of 47 bytes', ['LM-FRAME-1'], 7, new Map(base(7, 6)).set(3, det('encode wrapped', 47)), 'mac', fkG2d],
    ['TIME_REQ with key 9, unknown below the extension range', ['LM-FRAME-4'], 4, new Map(base(4, 3)).set(9, 1), 'mac', fkD2g],
  ];
  for (const [comment, requirements, type, body, kind, key] of bad) {
    enc.push({ tcId: 0, comment, result: 'invalid', flags: ['Refused'], requirements, type, name: FRAME_TYPE_NAMES[type], auth: kind, ...(key ? { key: toHex(key) } : {}), body: wireJson(body), error: errorName(() => encodeRaw(type, body, kind, key)) });
  }

  // deterministic CBOR of telemetry payloads (text keys): the encoder's own bytes ([LM-CBOR-1])
  const payloads: VectorTest[] = [];
  const payload = (comment: string, fields: Record<string, unknown>, requirements: string[]) => {
    const toCbor = (v: unknown): CborValue => (Array.isArray(v) ? v.map(toCbor) : v && typeof v === 'object' ? new Map(Object.entries(v).map(([k, x]) => [k, toCbor(x)])) : (v as CborValue));
    let out: { result: 'valid'; payload: string } | { result: 'invalid'; error: string };
    try {
      out = { result: 'valid', payload: toHex(encodeCbor(toCbor(fields))) };
    } catch (e) {
      if (!(e instanceof LmError)) throw e;
      out = { result: 'invalid', error: reasonName(e.code) };
    }
    payloads.push({ tcId: 0, comment, flags: out.result === 'invalid' ? ['Refused'] : [], requirements, fields, ...out });
  };
  payload('keys sorted by their encoding: shorter first, then bytewise', { progress_ppm: 125000, nozzle_mC: 215000, bed_mC: 60000, z: 0, aa: 1, ab: 2, B: 3 }, ['LM-CBOR-1']);
  payload('integers in their shortest form', {
    a: 0, b: 23, c: 24, d: 255, e: 256, f: 65535, g: 65536, h: 4294967295, i: 4294967296, j: 9007199254740991,
    k: -1, l: -24, m: -25, n: -256, o: -257, p: -65537, q: -4294967297, r: -9007199254740991,
  }, ['LM-CBOR-1']);
  payload('text, booleans and null; text lengths in UTF-8 bytes', { state: 'printing', message: 'température ↑ 215 °C', empty: '', door_open: false, fan: true, job: null, long: 'x'.repeat(24) }, ['LM-CBOR-1']);
  payload('nested arrays and maps', { axes: [0, -12, 4096, [1, [2]]], filament: { left_mm: 123456, id: 'PLA', '': 0 } }, ['LM-CBOR-1']);
  payload('an integer beyond 2^53 - 1', { counter: 9007199254740992 }, ['LM-CBOR-2']);
  payload('a float', { temperature: 215.5 }, ['LM-CBOR-2']);
  return file('LIVEMATRIX-ENCODE', {
    Refused: 'an encoder must refuse to build it: a wrong authentication kind, a body outside the schema',
    FrameEncodeTest: 'encode_frame: type, body (wire JSON by key number) and auth (sig: key is the Ed25519 seed; mac: key is the frame key; none) give exactly hex',
    FrameDecodeTest: 'frame: hex verified with macKey or signerPublic gives type, body (wire JSON by key number, only the keys the type defines) and authenticated (false for NONE, advisory)',
    PayloadEncodeTest: 'encode_payload: a telemetry payload given as a JSON object (text keys; integers, text, booleans, null, arrays, objects) gives its deterministic CBOR',
  }, [{ type: 'FrameEncodeTest', tests: enc }, { type: 'FrameDecodeTest', tests: dec }, { type: 'PayloadEncodeTest', tests: payloads }]);
}

// ---- sealed licences (licence.json) -----------------------------------------------------------

function licenceVectors(): VectorFile {
  const { operator, device, other, tx, licence } = txFixture();
  const reSigned = (change: (b: TxBody) => TxBody) => signTx(change({ ...tx.body, lic: { ...tx.body.lic } }), operator.secretKey).bytes;
  const open = (txBytes: Uint8Array, seed: Uint8Array) => {
    const b = decodeTx(txBytes).body;
    return openLicence(b.lic, seed, identityKeyPair(seed).publicKey, b.jd);
  };
  const tests: VectorTest[] = [];
  const dX = edPublicToX25519(device.publicKey);
  const valid = (comment: string, txBytes: Uint8Array, seed: Uint8Array, want: Uint8Array) => {
    const got = open(txBytes, seed);
    if (toHex(got) !== toHex(want)) throw new Error(`licence vector "${comment}" does not open to its licence`);
    const v: VectorTest = {
      tcId: 0, comment, result: 'valid', flags: [], requirements: ['LM-TX-1'], tx: toHex(txBytes), deviceSecret: toHex(seed),
      deviceX25519Secret: toHex(edSecretToX25519(seed)), deviceX25519Public: toHex(edPublicToX25519(identityKeyPair(seed).publicKey)), licence: toHex(got),
    };
    tests.push(v);
    return v;
  };
  const twins = new Map<VectorTest, VectorTest>();
  const invalid = (comment: string, flags: string[], txBytes: Uint8Array, seed: Uint8Array, twin: VectorTest) => {
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements: ['LM-TX-1'], tx: toHex(txBytes), deviceSecret: toHex(seed), error: errorName(() => open(txBytes, seed)) };
    twins.set(v, twin);
    tests.push(v);
  };
  const main = valid('the device opens the licence sealed to its identity key', tx.bytes, device.secretKey, licence);
  // a second device, a second licence: the X25519 form of another identity
  const made = createTx({
    job: 'bracket', plaintext: { digest: sha256(ascii('G1 X1\n')), size: 6 }, device: 'printer-02', devicePublic: other.publicKey, operatorSecret: operator.secretKey, operatorPublic: operator.publicKey,
    notBefore: 1_764_000_000_000, notAfter: 1_764_000_000_000 + 3_600_000, rate: 1000, burst: 4096, prints: 3,
    fixed: { licence: det('licence vectors licence 2'), ephemeral: det('licence vectors ephemeral 2'), nonce: det('licence vectors nonce 2', 16) },
  });
  valid('another device, another licence', made.tx.bytes, other.secretKey, made.licence);
  invalid('opened with another device\'s identity secret', ['WrongDevice'], tx.bytes, other.secretKey, main);
  const ctFlip = (b: TxBody): TxBody => {
    const ct = b.lic.ct.slice();
    ct[0] = (ct[0] as number) ^ 1;
    return { ...b, lic: { epk: b.lic.epk, ct } };
  };
  invalid('sealed licence with one bit of its ciphertext flipped (the operator signed it so)', ['Tampered'], reSigned(ctFlip), device.secretKey, main);
  invalid('sealed under another job digest than the transaction\'s jd (the AAD)', ['WrongJd'], reSigned((b) => ({ ...b, jd: det('another job digest') })), device.secretKey, main);
  invalid('sealed licence with another ephemeral key', ['Tampered'], reSigned((b) => ({ ...b, lic: { epk: x25519KeyPair(det('licence vectors another epk')).publicKey, ct: b.lic.ct } })), device.secretKey, main);
  const f = file('LIVEMATRIX-LICENCE', {
    WrongDevice: 'the licence is sealed to another device', Tampered: 'the sealed licence does not authenticate', WrongJd: 'the AAD is the transaction\'s jd',
    derivation: 'SPEC.md §11.2: x = the clamped first 32 bytes of SHA-512(deviceSecret); dX = the X25519 form of the device\'s Ed25519 public key; s = X25519(x, epk); k = HKDF-Expand(HKDF-Extract(epk || dX, s), "lm1 licence", 32); licence = ChaCha20-Poly1305-open(k, 0^12, ct, aad = jd)',
    twin: 'an invalid test\'s twin is the valid test it differs from in one thing',
  }, [{ type: 'LicenceOpenTest', deviceX25519PublicOfMain: toHex(dX), tests }]);
  for (const [v, twin] of twins) v['twin'] = twin.tcId;
  return f;
}

// ---- revision tables and hints (table.json) ---------------------------------------------------

/** Every hint value of a table with the symbols that have it. */
function tableOf(suite: SuiteId, hk: Uint8Array, w: number, L: number): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (let g = 0; g < 2 ** w; g++) {
    const h = toHex(hint(suite, hk, w, L, g));
    m.set(h, [...(m.get(h) ?? []), g]);
  }
  return m;
}

/** A hint key whose table has an ambiguous value, with that value and an absent one (and for which `fits` holds). */
function ambiguousKey(suite: SuiteId, w: number, L: number, label: string, fits: (hk: Uint8Array) => boolean = () => true): { hk: Uint8Array; table: Map<string, number[]>; ambiguous: string; absent: string } {
  for (let i = 0; ; i++) {
    const hk = det(`${label} ${suite} ${w} ${L} ${i}`);
    const table = tableOf(suite, hk, w, L);
    const ambiguous = [...table].find(([, gs]) => gs.length > 1)?.[0];
    if (!ambiguous || !fits(hk)) continue;
    for (let v = 0; ; v++) {
      const absent = v.toString(16).padStart(2 * L, '0');
      if (!table.has(absent)) return { hk, table, ambiguous, absent };
    }
  }
}

function tableVectors(): VectorFile {
  const lookups: VectorTest[] = [];
  for (const suite of [1, 2, 3] as SuiteId[]) {
    for (const [w, L] of [[8, 2], [12, 3]] as const) {
      const { hk, table, ambiguous, absent } = ambiguousKey(suite, w, L, 'table vectors key');
      const unique = [...table].filter(([, gs]) => gs.length === 1).slice(0, 2).map(([h]) => h);
      const hintsAsked = [unique[0] as string, ambiguous, absent, unique[1] as string, toHex(hint(suite, hk, w, L, 2 ** w - 1))];
      const resolved = scanResolve(suite, hk, w, L, hintsAsked.map((h) => fromHex(h)));
      lookups.push({
        tcId: 0, comment: `w=${w} L=${L}: two unique hints, one two symbols share, one nobody has, the last symbol's`, result: 'valid', flags: ['Ambiguous', 'Absent'],
        requirements: ['LM-HINT-2', 'LM-HINT-3', 'LM-HINT-4'], suite, hk: toHex(hk), w, L, hints: hintsAsked,
        lookup: resolved.map((r) => (r.kind === 'symbol' ? r.symbol : r.kind)), ambiguousSymbols: table.get(ambiguous),
      });
    }
  }
  // the hints of a byte string as a HINTS frame carries them: pack, then hint each symbol
  const sender: VectorTest[] = [];
  for (const [suite, w, bytes] of [[3, 20, det('table vectors ciphertext', 37)], [1, 24, det('table vectors ciphertext 24', 30)], [2, 8, ascii('G1 X0\n')], [3, 12, det('table vectors ciphertext 12', 17)]] as [SuiteId, number, Uint8Array][]) {
    const L = minHintLength(w);
    const hk = det(`table vectors sender key ${suite} ${w}`);
    const symbols = pack(bytes, w);
    sender.push({
      tcId: 0, comment: `${bytes.length} bytes at w=${w}${(8 * bytes.length) % w ? ' (padded)' : ''}, suite ${suite}`, result: 'valid', flags: [], requirements: ['LM-HINT-1', 'LM-PACK-1', 'LM-PACK-2'],
      suite, hk: toHex(hk), w, L, bytes: toHex(bytes), symbols: [...symbols], hints: toHex(hintSymbols(suite, hk, w, L, symbols)),
    });
  }
  return file('LIVEMATRIX-TABLE', {
    Ambiguous: 'a hint value two or more symbols of the revision have: "ambiguous", never one of them',
    Absent: 'a hint value no symbol has: "absent"',
    TableLookupTest: 'table: lookup[i] is the symbol whose hint is hints[i] in the revision table of (suite, hk, w, L), or "ambiguous" or "absent" (SPEC.md §5.1)',
    HintsTest: 'hints: the symbols of bytes (packed at w) hinted one after the other, n·L bytes',
  }, [{ type: 'TableLookupTest', tests: lookups }, { type: 'HintsTest', tests: sender }]);
}

// ---- the revision clock and time sync (clock.json) -------------------------------------------

function clockVectors(): VectorFile {
  const E = 1_764_000_000_000;
  const senders: VectorTest[] = [];
  for (const [P, G, g] of [[1000, 250, E + 250], [1000, 250, E + 1249], [1000, 250, E + 1250], [1000, 0, E + 7_000], [60000, 29999, E + 3 * 60000 + 29998], [60000, 29999, E + 3 * 60000 + 29999], [100, 49, E + 123_456_789]] as const) {
    senders.push({ tcId: 0, comment: `g = E + ${g - E} with P=${P}, G=${G}`, result: 'valid', flags: [], requirements: ['LM-REV-1'], g, epoch: E, period: P, grace: G, revision: senderRevision(g, { epoch: E, period: P, grace: G }) });
  }
  const accepts: VectorTest[] = [];
  for (const [P, d, r] of [[1000, E + 10_000, 10], [1000, E + 10_000, 9], [1000, E + 10_999, 9], [1000, E + 10_000, 8], [1000, E + 9_999, 10], [1000, E + 10_000, 11], [100, E + 1, 0], [60000, E + 60000 * 5 - 1, 3]] as const) {
    const p = { epoch: E, period: P };
    const refused = checkRevision(r, d, p);
    accepts.push({
      tcId: 0, comment: `revision ${r} at d = E + ${d - E} with P=${P}`, result: refused === null ? 'valid' : 'invalid', flags: refused === null ? [] : ['Refused'], requirements: ['LM-REV-2'],
      r, d, epoch: E, period: P, ...(refused === null ? { current: revisionAt(d, E, P), accepted: true } : { error: reasonName(refused) }),
    });
  }
  const syncs: VectorTest[] = [];
  const sync = (comment: string, samples: TimeSample[], grace: number, requirements: string[]) => {
    const best = bestSample(samples);
    let error: string | undefined;
    try {
      checkSkew(best, grace);
    } catch (e) {
      if (!(e instanceof LmError)) throw e;
      error = reasonName(e.code);
    }
    if (samples.length === 1 && JSON.stringify(best) !== JSON.stringify(syncResult(samples[0] as TimeSample))) throw new Error('syncResult');
    syncs.push({ tcId: 0, comment, result: error ? 'invalid' : 'valid', flags: error ? ['Skew'] : [], requirements, samples, grace, ...(error ? { error } : { offset: best.offset, delay: best.delay }) });
  };
  const T = E + 5_000;
  sync('symmetric round trip, clocks equal', [{ t1: T, t2: T + 10, t3: T + 11, t4: T + 21 }], 250, ['LM-TIME-1', 'LM-TIME-2']);
  sync('the gateway 100 ms ahead', [{ t1: T, t2: T + 110, t3: T + 112, t4: T + 22 }], 250, ['LM-TIME-1', 'LM-TIME-2']);
  sync('the gateway 77.5 ms behind, an odd delay', [{ t1: T, t2: T - 70, t3: T - 69, t4: T + 16 }], 250, ['LM-TIME-1', 'LM-TIME-2']);
  sync('|θ| + δ/2 equal to G: accepted', [{ t1: T, t2: T + 250, t3: T + 250, t4: T + 100 }], 250, ['LM-TIME-1', 'LM-TIME-2']);
  sync('|θ| + δ/2 one ms over G: refused', [{ t1: T, t2: T + 251, t3: T + 251, t4: T + 100 }], 250, ['LM-TIME-2']);
  sync('clocks equal but a round trip of 600 ms against G = 250: refused', [{ t1: T, t2: T + 300, t3: T + 300, t4: T + 600 }], 250, ['LM-TIME-2']);
  sync('the gateway 300 ms behind: refused', [{ t1: T, t2: T - 295, t3: T - 294, t4: T + 11 }], 250, ['LM-TIME-2']);
  sync('best of four: the smallest delay decides, and passes', [
    { t1: T, t2: T + 400, t3: T + 401, t4: T + 700 }, { t1: T + 1000, t2: T + 1010, t3: T + 1011, t4: T + 1020 }, { t1: T + 2000, t2: T + 2200, t3: T + 2201, t4: T + 2300 }, { t1: T + 3000, t2: T + 3050, t3: T + 3051, t4: T + 3090 },
  ], 250, ['LM-TIME-1', 'LM-TIME-6']);
  sync('best of three: even the smallest delay is beyond G', [
    { t1: T, t2: T + 400, t3: T + 401, t4: T + 700 }, { t1: T + 1000, t2: T + 1300, t3: T + 1301, t4: T + 1500 }, { t1: T + 2000, t2: T + 2350, t3: T + 2351, t4: T + 2650 },
  ], 250, ['LM-TIME-2', 'LM-TIME-6']);
  return file('LIVEMATRIX-CLOCK', {
    revisionClock: 'rev(t) = floor((t - E) / P) for t >= E (SPEC.md §3)',
    SenderRevisionTest: 'sender_revision: the revision a gateway stamps at its time g, rev(g - G) ([LM-REV-1])',
    AcceptRevisionTest: 'accept_revision: a frame of revision r at device time d is accepted when r is c - 1 or c, c = rev(d); older rev-expired, newer rev-future ([LM-REV-2])',
    TimeSyncTest: 'timesync: offset θ and delay δ of the sample with the smallest δ; refused with skew when |θ| + δ/2 > grace',
    Refused: 'refused with the reason given', Skew: 'the device refuses to stream: skew',
  }, [{ type: 'SenderRevisionTest', tests: senders }, { type: 'AcceptRevisionTest', tests: accepts }, { type: 'TimeSyncTest', tests: syncs }]);
}

// ---- parameter ranges (params.json) ----------------------------------------------------------

function paramVectors(): VectorFile {
  const base: SessionParams = { suite: 3, w: 20, L: 4, period: 1000, epoch: 1_764_000_000_000, grace: 250, r0: 0, chunk: 4096, symbolsPerFrame: 4096, wt: 16 };
  const wire = (p: SessionParams) => ({ 1: p.suite, 2: p.w, 3: p.L, 4: p.period, 5: p.epoch, 6: p.grace, 7: p.r0, 8: p.chunk, 9: p.symbolsPerFrame, 10: p.wt });
  const tests: VectorTest[] = [];
  const cases: [string, Partial<SessionParams>, string[]][] = [
    ['the defaults of a w=20 session', {}, []],
    ['suite 1 keccak-256', { suite: 1 }, []], ['suite 2 sha3-256', { suite: 2 }, []], ['suite 0', { suite: 0 as SuiteId }, []], ['suite 4', { suite: 4 as SuiteId }, []],
    ['w = 8, L = 2', { w: 8, L: 2 }, ['LM-PARAM-2', 'LM-PARAM-3']], ['w = 7', { w: 7, L: 2 }, ['LM-PARAM-2']], ['w = 24, L = 4', { w: 24, L: 4 }, ['LM-PARAM-2', 'LM-PARAM-3']], ['w = 25, L = 5', { w: 25, L: 5 }, ['LM-PARAM-2']],
    ['L = 3 at w = 20 (8L < w + 8)', { L: 3 }, ['LM-PARAM-3']], ['L = 32 (N = 1024)', { L: 32, symbolsPerFrame: 1024 }, ['LM-PARAM-3']], ['L = 33', { L: 33 }, ['LM-PARAM-3']], ['w = 16, L = 3', { w: 16, L: 3 }, ['LM-PARAM-3']], ['w = 17, L = 3', { w: 17, L: 3 }, ['LM-PARAM-3']],
    ['P = 100, G = 49', { period: 100, grace: 49 }, ['LM-PARAM-5']], ['P = 99', { period: 99, grace: 0 }, []], ['P = 60000, G = 29999', { period: 60000, grace: 29999 }, ['LM-PARAM-5']], ['P = 60001', { period: 60001, grace: 0 }, []],
    ['G = 0', { grace: 0 }, ['LM-PARAM-5']], ['G = 499 at P = 1000', { grace: 499 }, ['LM-PARAM-5']], ['G = 500 at P = 1000 (2G = P)', { grace: 500 }, ['LM-PARAM-5']], ['G = 50 at P = 100', { period: 100, grace: 50 }, ['LM-PARAM-5']],
    ['C = 256', { chunk: 256 }, []], ['C = 255', { chunk: 255 }, []], ['C = 65536', { chunk: 65536 }, []], ['C = 65537', { chunk: 65537 }, []],
    ['N = 1', { symbolsPerFrame: 1 }, []], ['N = 0', { symbolsPerFrame: 0 }, []], ['N = 4097', { symbolsPerFrame: 4097 }, []],
    ['wt = 8', { wt: 8 }, []], ['wt = 7', { wt: 7 }, []], ['wt = 17', { wt: 17 }, []],
  ];
  for (const [comment, change, ids] of cases) {
    const p = { ...base, ...change };
    let error: string | undefined;
    try {
      validateParams(p);
    } catch (e) {
      if (!(e instanceof LmError)) throw e;
      error = reasonName(e.code);
    }
    tests.push({ tcId: 0, comment, result: error ? 'invalid' : 'valid', flags: error ? ['OutOfRange'] : [], requirements: ['LM-PARAM-1', ...ids], params: wire(p), ...(error ? { error } : { accepted: true }) });
  }
  return file('LIVEMATRIX-PARAMS', {
    ParamsTest: 'params: the OFFER\'s params map (SPEC.md §7.2, by key number: 1 suite, 2 w, 3 L, 4 P, 5 E, 6 G, 7 r0, 8 C, 9 N, 10 wt) accepted, or refused with params ([LM-PARAM-1])',
    OutOfRange: 'a parameter outside the ranges of SPEC.md §2',
  }, [{ type: 'ParamsTest', tests }]);
}

// ---- telemetry (telemetry.json) ----------------------------------------------------------------

/** The gateway's side of [LM-TEL-1]/[LM-TEL-2]: resolve the hints, unpack, open, decode a map with text keys. */
function openTelemetryHints(suite: SuiteId, hk: Uint8Array, wk: Uint8Array, sid: Uint8Array, seq: number, wt: number, ctlen: number, hints: Uint8Array): { payload: Uint8Array; fields: unknown } {
  const L = minHintLength(wt);
  const list = Array.from({ length: hints.length / L }, (_, i) => hints.subarray(i * L, i * L + L));
  const symbols = scanResolve(suite, hk, wt, L, list).map((r) => {
    if (r.kind === 'ambiguous') throw new LmError(Reason.ambiguous, 'a telemetry hint is ambiguous ([LM-HINT-3])');
    if (r.kind === 'absent') throw new LmError(Reason.unknown, 'a telemetry hint is absent ([LM-HINT-4])');
    return r.symbol;
  });
  const payload = openTelemetry(wk, sid, seq, unpack(symbols, wt, ctlen));
  const v = decodeCbor(payload);
  if (!(v instanceof Map) || [...v.keys()].some((k) => typeof k !== 'string')) throw new LmError(Reason.schema, 'telemetry payload is not a map with text keys ([LM-TEL-1])');
  return { payload, fields: wireJson(v) };
}

function telemetryVectors(): VectorFile {
  const sid = det('telemetry vectors sid', 16);
  const wk = det('telemetry vectors wrap key');
  const seal = (suite: SuiteId, hk: Uint8Array, wt: number, seq: number, payload: Uint8Array) => {
    const ct = sealTelemetry(wk, sid, seq, payload);
    return { ctlen: ct.length, hints: hintSymbols(suite, hk, wt, minHintLength(wt), pack(ct, wt)) };
  };
  const fields = new Map<string, CborValue>([['nozzle_mC', 215000], ['bed_mC', 60000], ['progress_ppm', 125000], ['state', 'printing']]);
  const payload = encodeCbor(fields);
  const sealTests: VectorTest[] = [];
  const openTests: VectorTest[] = [];
  const twins = new Map<VectorTest, VectorTest>();
  // a key under which every symbol of the ciphertext has a hint of its own (at a small wt some
  // ciphertexts meet an ambiguous hint, and a gateway drops that telemetry: the refusals below)
  const opens = (suite: SuiteId, hk: Uint8Array, wt: number, seq: number, p: Uint8Array) => {
    const x = seal(suite, hk, wt, seq, p);
    try {
      openTelemetryHints(suite, hk, wk, sid, seq, wt, x.ctlen, x.hints);
      return true;
    } catch (e) {
      return !(e instanceof LmError && (e.code === Reason.ambiguous || e.code === Reason.unknown));
    }
  };
  for (const [suite, wt, seq] of [[3, 16, 0], [1, 8, 7], [2, 12, 2 ** 32 + 1]] as [SuiteId, number, number][]) {
    let i = 0;
    while (!opens(suite, det(`telemetry vectors hint key ${suite} ${wt} ${i}`), wt, seq, payload)) i++;
    const hk = det(`telemetry vectors hint key ${suite} ${wt} ${i}`);
    const s = seal(suite, hk, wt, seq, payload);
    const common = { suite, hk: toHex(hk), wk: toHex(wk), sid: toHex(sid), seq, wt, L: minHintLength(wt) };
    sealTests.push({ tcId: 0, comment: `suite ${suite}, wt=${wt}, seq ${seq}`, result: 'valid', flags: [], requirements: ['LM-TEL-1'], ...common, payload: toHex(payload), ctlen: s.ctlen, hints: toHex(s.hints) });
    const o = openTelemetryHints(suite, hk, wk, sid, seq, wt, s.ctlen, s.hints);
    const v: VectorTest = { tcId: 0, comment: `suite ${suite}, wt=${wt}, seq ${seq}`, result: 'valid', flags: [], requirements: ['LM-TEL-1', 'LM-TEL-2'], ...common, ctlen: s.ctlen, hints: toHex(s.hints), payload: toHex(o.payload), fields: o.fields };
    openTests.push(v);
  }
  // what a gateway drops: a key whose wt = 8 table has an ambiguous value
  const seq = 5;
  const { hk, table, ambiguous, absent } = ambiguousKey(3, 8, 2, 'telemetry vectors ambiguous key', (k) => opens(3, k, 8, seq, payload) && opens(3, k, 8, seq, encodeCbor(['nozzle_mC', 215000])));
  const s = seal(3, hk, 8, seq, payload);
  const common = { suite: 3, hk: toHex(hk), wk: toHex(wk), sid: toHex(sid), seq, wt: 8, L: 2 };
  const main: VectorTest = { tcId: 0, comment: 'suite 3, wt=8: the twin of the refusals below', result: 'valid', flags: [], requirements: ['LM-TEL-1', 'LM-TEL-2'], ...common, ctlen: s.ctlen, hints: toHex(s.hints), ...(() => { const o = openTelemetryHints(3, hk, wk, sid, seq, 8, s.ctlen, s.hints); return { payload: toHex(o.payload), fields: o.fields }; })() };
  openTests.push(main);
  const invalid = (comment: string, flags: string[], requirements: string[], change: { hints?: Uint8Array; ctlen?: number; seq?: number }) => {
    const h = change.hints ?? s.hints;
    const c = change.ctlen ?? s.ctlen;
    const q = change.seq ?? seq;
    const v: VectorTest = { tcId: 0, comment, result: 'invalid', flags, requirements, ...common, seq: q, ctlen: c, hints: toHex(h), error: errorName(() => openTelemetryHints(3, hk, wk, sid, q, 8, c, h)) };
    twins.set(v, main);
    openTests.push(v);
  };
  const replaced = (i: number, value: string) => {
    const h = s.hints.slice();
    h.set(fromHex(value), i * 2);
    return h;
  };
  invalid('the third hint replaced by a value two symbols share', ['Ambiguous'], ['LM-TEL-2', 'LM-HINT-3'], { hints: replaced(2, ambiguous) });
  invalid('the third hint replaced by a value no symbol has', ['Absent'], ['LM-TEL-2', 'LM-HINT-4'], { hints: replaced(2, absent) });
  invalid('ctlen one byte short of the symbols', ['Padding'], ['LM-TEL-2', 'LM-PACK-3'], { ctlen: s.ctlen - 1 });
  const first = toHex(s.hints.subarray(0, 2));
  const other = [...table].find(([h, gs]) => gs.length === 1 && h !== first)?.[0] as string;
  invalid('the first hint replaced by another symbol\'s', ['Tampered'], ['LM-TEL-1', 'LM-TEL-2'], { hints: replaced(0, other) });
  invalid('opened under another seq (the nonce and AAD)', ['Tampered'], ['LM-TEL-1', 'LM-TEL-2'], { seq: seq + 1 });
  const arr = seal(3, hk, 8, seq, encodeCbor(['nozzle_mC', 215000]));
  invalid('a payload that is a CBOR array, not a map', ['NotAMap'], ['LM-TEL-1'], { hints: arr.hints, ctlen: arr.ctlen });
  const f = file('LIVEMATRIX-TELEMETRY', {
    TelemetrySealTest: 'telemetry_seal: ct = ChaCha20-Poly1305(wk, 0^4 || u64be(seq), payload, "lm1 telemetry" || sid || u64be(seq)), packed at wt, hinted under hk with L = ceil((wt + 8) / 8): ctlen and hints',
    TelemetryOpenTest: 'telemetry_open: the hints resolved in the wt table of hk (the first that fails decides: ambiguous or unknown), unpacked to ctlen bytes (padding), opened (auth), a CBOR map with text keys (schema): payload and its fields',
    Ambiguous: 'a hint two symbols share', Absent: 'a hint no symbol has', Padding: 'ctlen does not fit the symbols', Tampered: 'the ciphertext does not authenticate', NotAMap: 'the payload is not a map',
    twin: 'an invalid test\'s twin is the valid test it differs from in one thing',
  }, [{ type: 'TelemetrySealTest', tests: sealTests }, { type: 'TelemetryOpenTest', tests: openTests }]);
  for (const [v, twin] of twins) v['twin'] = twin.tcId;
  return f;
}

/** The semantic vector files by name. */
export function buildSemanticVectors(): Record<string, VectorFile> {
  return {
    'encode.json': encodeVectors(),
    'licence.json': licenceVectors(),
    'table.json': tableVectors(),
    'clock.json': clockVectors(),
    'params.json': paramVectors(),
    'telemetry.json': telemetryVectors(),
    'ledger-append.json': ledgerAppendVectors(file),
  };
}
