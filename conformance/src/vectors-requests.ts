/**
 * @module vectors-requests
 * What the vectors profile asks an adapter for each test of spec/vectors/v1: per vector file (and
 * test group), the adapter requests a test makes, how each answer is judged (compared byte for
 * byte when encoding, field by field when decoding, or a typed error), and which of the IDs the
 * vector cites each request exercises.
 */
import { type CborValue, type FrameTypeId, SCHEMAS, decodeCbor, fromHex, toHex } from '@livematrix/spec';

/** One test of a vector file, in the Wycheproof shape. */
export interface VTest {
  tcId: number;
  comment: string;
  result: 'valid' | 'invalid';
  flags: string[];
  requirements: string[];
  error?: string;
  [k: string]: unknown;
}

/** A vector file of spec/vectors/v1. */
export interface VFile {
  testGroups: ({ type: string; suite?: number; tests: VTest[] } & Record<string, unknown>)[];
}

/** session.json names the OFFER's parameters; on the wire they are its params map by key number (SPEC.md §7.2), as for `params`. */
const PARAM_KEYS = ['suite', 'w', 'L', 'period', 'epoch', 'grace', 'r0', 'chunk', 'symbolsPerFrame', 'wt'] as const;
function paramsByKey(p: unknown): Record<string, unknown> {
  const named = p as Record<string, unknown>;
  return Object.fromEntries(PARAM_KEYS.map((k, i) => [String(i + 1), named[k]]));
}

/** A ledger verifier's problems as a sorted set of "seq kind" (a verifier may report one problem of a record once or more). */
function problemSet(v: unknown): string[] | null {
  if (!Array.isArray(v)) return null;
  return [...new Set(v.map((x) => (typeof x === 'object' && x !== null ? `${String((x as Record<string, unknown>)['seq'])} ${String((x as Record<string, unknown>)['kind'])}` : '?')))].sort();
}

/** The wire JSON of a CBOR value (conformance/README.md): byte strings as hex, maps as objects keyed by their map keys. */
export function wireJson(v: CborValue): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return (v as readonly CborValue[]).map(wireJson);
  if (v instanceof Map) return Object.fromEntries([...(v as ReadonlyMap<number | string, CborValue>).entries()].map(([k, x]) => [String(k), wireJson(x)]));
  return v;
}

/** A valid frame's body by key number, the keys its type defines (what the `frame` op answers), and whether it carries extension keys. */
function frameBody(hex: string): { body: unknown; extended: boolean } {
  const [, type, body] = decodeCbor(fromHex(hex)) as [number, FrameTypeId, ReadonlyMap<number, CborValue>];
  const known = new Set(SCHEMAS[type].map((f) => f.key));
  const fields = [...body].filter(([k]) => known.has(k));
  return { body: wireJson(new Map(fields)), extended: fields.length !== body.size };
}

/** One request of a vector: what to send, how to judge the answer, and which of the vector's IDs it exercises (all by default). */
export interface VRequest {
  req: Record<string, unknown>;
  expect: Judge;
  ids?: readonly string[];
}

/** The requests for a vector test, and how to judge each answer. */
export function requests(file: string, g: VFile['testGroups'][number], t: VTest): VRequest[] {
  const eq = (k: string, want: unknown) => (a: Record<string, unknown>) => (JSON.stringify(a[k]) === JSON.stringify(want) ? null : `${k}: got ${JSON.stringify(a[k])}, want ${JSON.stringify(want)}`);
  const err = (a: Record<string, unknown>) => (a['ok'] === false && a['error'] === t.error ? null : `want error ${t.error}, got ${JSON.stringify(a)}`);
  /** the answer's fields `ks` equal the vector's fields of the same names */
  const same = (...ks: string[]): Judge => (a) => ks.map((k) => eq(k, t[k])(a)).find((x) => x) ?? null;
  const valid = t.result === 'valid';
  const pick = (...ks: string[]) => Object.fromEntries(ks.filter((k) => t[k] !== undefined).map((k) => [k, t[k]]));
  switch (file) {
    case 'hint.json':
      if (g.type === 'TableTest') {
        // every 1-byte value of a w = 8, L = 1 table ([LM-HINT-2] .. [LM-HINT-4])
        return [{ req: { op: 'table', suite: g.suite, hk: t['hk'], w: t['w'], L: t['L'], hints: Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0')) }, expect: eq('lookup', t['lookup']) }];
      }
      if (g.type !== 'HintTest') return [];
      return [{ req: { op: 'hint', suite: g.suite, hk: t['hk'], w: t['w'], L: t['L'], g: t['g'] }, expect: valid ? eq('hint', t['hint']) : err }];
    case 'pack.json':
      if (g.type === 'ShiftTest') return [{ req: { op: 'shift', w: t['w'], sh: t['sh'], symbols: t['symbols'] }, expect: eq('shifted', t['shifted']) }];
      return t.result === 'valid'
        ? [{ req: { op: 'pack', w: t['w'], bytes: t['bytes'] }, expect: eq('symbols', t['symbols']) }, { req: { op: 'unpack', w: t['w'], n: t['n'], symbols: t['symbols'] }, expect: eq('bytes', t['bytes']) }]
        : [{ req: { op: 'unpack', w: t['w'], n: t['n'], symbols: t['symbols'] }, expect: err }];
    case 'keys.json':
      if (t['z']) {
        return [{
          req: { op: 'keys', secret: t['gatewayEphemeralSecret'], peerPublic: t['deviceEphemeralPublic'], licence: t['licence'], offer: t['offer'], accept: t['accept'], r0: t['r0'], revisions: (t['g2d'] as { revision: number }[]).map((x) => x.revision) },
          expect: (a) => ['ckG2d0', 'ckD2g0', 'fkG2d', 'fkD2g', 'g2d', 'd2g'].map((k) => eq(k, t[k])(a)).find((x) => x) ?? null,
        }];
      }
      if (t['peerPublic']) return [{ req: { op: 'ecdh', secret: t['secret'], peerPublic: t['peerPublic'] }, expect: err }];
      // a revision below r0 has no keys ([LM-KEY-7])
      if (t['asked'] !== undefined) return [{ req: { op: 'ratchet', chainKey: t['ckG2d0'], r0: t['r0'], revisions: [t['asked']] }, expect: err }];
      return [];
    case 'aead.json':
      if (t['kind'] === 'chunk') {
        return t.result === 'valid'
          ? [{ req: { op: 'chunk_seal', key: t['key'], sid: t['sid'], index: t['index'], plaintext: t['plaintext'] }, expect: eq('ciphertext', t['ciphertext']) }]
          : [{ req: { op: 'chunk_open', key: t['key'], sid: t['sid'], index: t['index'], ciphertext: t['ciphertext'] }, expect: err }];
      }
      if (t['kind'] === 'wrap') return [{ req: { op: 'wrap', wrapKey: t['wrapKey'], sid: t['sid'], index: t['index'], chunkKey: t['chunkKey'] }, expect: eq('wrapped', t['wrapped']) }];
      if (t['kind'] === 'telemetry') {
        // the telemetry AEAD through the hints that carry it ([LM-TEL-1]): sealed, and opened again
        const tel = { suite: t['suite'], hk: t['hk'], wk: t['wrapKey'], sid: t['sid'], seq: t['seq'], wt: t['wt'] };
        return [
          { req: { op: 'telemetry_seal', ...tel, payload: t['plaintext'] }, expect: same('ctlen', 'hints') },
          { req: { op: 'telemetry_open', ...tel, ctlen: t['ctlen'], hints: t['hints'] }, expect: eq('payload', t['plaintext']) },
        ];
      }
      return [];
    case 'frames.json': {
      const keys = pick('macKey', 'signerPublic');
      if (!valid) return [{ req: { op: 'frame', hex: t['hex'], ...keys }, expect: err }];
      const { body, extended } = frameBody(t['hex'] as string);
      // decoding exercises every ID the vector cites but the encoder's [LM-CBOR-1]
      const decode: VRequest = { req: { op: 'frame', hex: t['hex'], ...keys }, expect: (a) => eq('type', t['type'])(a) ?? eq('body', body)(a) ?? eq('authenticated', t['authKind'] !== 'none')(a), ids: t.requirements.filter((id) => id !== 'LM-CBOR-1') };
      // a MAC or NONE frame is encoded again from its fields (a SIG frame's vector has no secret key); extension keys are not the encoder's.
      // Encoding checks the deterministic encoding, the schema and the MAC, and nothing else the vector cites
      if (t['authKind'] === 'sig' || extended) return [decode];
      const encodes = t.requirements.filter((id) => ['LM-CBOR-1', 'LM-FRAME-1', 'LM-FRAME-2'].includes(id));
      return [decode, { req: { op: 'encode_frame', type: t['type'], body, auth: t['authKind'], ...(t['macKey'] ? { key: t['macKey'] } : {}) }, expect: eq('hex', t['hex']), ids: encodes }];
    }
    case 'tx.json':
      // with the device's secret, the adapter opens the sealed licence too ([LM-TX-1])
      if (valid && t['deviceSecret'] && t.requirements.includes('LM-TX-1')) return [{ req: { op: 'tx', tx: t['tx'], context: t['context'], deviceSecret: t['deviceSecret'] }, expect: same('txh', 'licence') }];
      // without it, verifying a transaction opens no licence: not [LM-TX-1]
      return [{ req: { op: 'tx', tx: t['tx'], context: t['context'] }, expect: valid ? eq('txh', t['txh']) : err, ids: t.requirements.filter((id) => id !== 'LM-TX-1') }];
    case 'ticket.json':
      return [{ req: { op: 'ticket', ticket: t['ticket'], context: t['context'] }, expect: t.result === 'valid' ? eq('ticketId', t['id']) : err }];
    case 'revocation.json':
      switch (g.type) {
        case 'RevocationListTest':
          return [{ req: { op: 'revocation', list: t['list'], trustedOperators: t['trustedOperators'] }, expect: t.result === 'valid' ? eq('seq', (t['decoded'] as { seq: number }).seq) : err }];
        case 'RevocationRefusalTest':
          return [{ req: { op: 'revocation_refusal', list: t['list'], trustedOperators: t['trustedOperators'], tx: t['tx'], now: t['now'] }, expect: t.result === 'valid' ? eq('refused', false) : err }];
        case 'RevocationSequenceTest':
          // a rollback is no error: the adapter says which list it holds after each offer ([LM-REVOKE-2])
          return [{ req: { op: 'revocation_sequence', lists: t['lists'], trustedOperators: t['trustedOperators'] }, expect: eq('held', t['held']) }];
        default:
          return [];
      }
    case 'protected.json':
      return protectedRequests(g.type, t, eq, err);
    case 'encode.json':
      switch (g.type) {
        case 'FrameEncodeTest':
          return [{ req: { op: 'encode_frame', ...pick('type', 'body', 'auth', 'key') }, expect: valid ? eq('hex', t['hex']) : err }];
        case 'FrameDecodeTest':
          return [{ req: { op: 'frame', ...pick('hex', 'macKey', 'signerPublic') }, expect: same('type', 'body', 'authenticated') }];
        case 'PayloadEncodeTest':
          return [{ req: { op: 'encode_payload', fields: t['fields'] }, expect: valid ? eq('payload', t['payload']) : err }];
        default:
          return [];
      }
    case 'licence.json':
      return [{ req: { op: 'licence', ...pick('tx', 'deviceSecret') }, expect: valid ? eq('licence', t['licence']) : err }];
    case 'table.json':
      if (g.type === 'TableLookupTest') return [{ req: { op: 'table', ...pick('suite', 'hk', 'w', 'L', 'hints') }, expect: eq('lookup', t['lookup']) }];
      if (g.type === 'HintsTest') return [{ req: { op: 'hints', ...pick('suite', 'hk', 'w', 'L', 'bytes') }, expect: same('symbols', 'hints') }];
      return [];
    case 'clock.json':
      switch (g.type) {
        case 'SenderRevisionTest':
          return [{ req: { op: 'sender_revision', ...pick('g', 'epoch', 'period', 'grace') }, expect: eq('revision', t['revision']) }];
        case 'AcceptRevisionTest':
          return [{ req: { op: 'accept_revision', ...pick('r', 'd', 'epoch', 'period') }, expect: valid ? same('current', 'accepted') : err }];
        case 'TimeSyncTest':
          return [{ req: { op: 'timesync', ...pick('samples', 'grace') }, expect: valid ? same('offset', 'delay') : err }];
        default:
          return [];
      }
    case 'params.json':
      return [{ req: { op: 'params', params: t['params'] }, expect: valid ? eq('accepted', true) : err }];
    case 'session.json':
      if (g.type === 'SessionFrameTest') return [{ req: { op: 'session_frame', ...pick('hex', 'macKey', 'signerPublic', 'size'), params: paramsByKey(t['params']) }, expect: valid ? eq('accepted', true) : err }];
      // the one `params` op: the v1 ranges a device checks an OFFER against ([LM-PARAM-1]); what a gateway offers ([LM-PARAM-7]) is the gateway profile's
      if (g.type === 'OfferParamsTest') return [{ req: { op: 'params', params: paramsByKey(t['params']) }, expect: valid ? eq('accepted', true) : err }];
      return [];
    case 'ledger.json': {
      // a verdict, not a refusal: ok with valid, every problem with its record's seq ([LM-LEDGER-6]) and the head ([LM-LEDGER-7])
      const want = problemSet(t['problems'] ?? []);
      const verdict: Judge = (a) => {
        if (a['ok'] !== true) return `want a verdict (ok: true), got ${JSON.stringify(a)}`;
        const got = problemSet(a['problems']);
        return eq('valid', valid)(a) ?? (JSON.stringify(got) === JSON.stringify(want) ? null : `problems (seq kind): got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`) ?? (valid ? eq('head', t['head'])(a) ?? eq('count', (t['records'] as unknown[]).length)(a) : null);
      };
      return [{ req: { op: 'ledger_verify', ...pick('records', 'trustedOperators') }, expect: verdict }];
    }
    case 'ledger-append.json':
      return [{ req: { op: 'ledger_append', ...pick('after', 'time', 'receipt', 'tx', 'gateway') }, expect: valid ? same('record', 'hash') : err }];
    case 'telemetry.json':
      if (g.type === 'TelemetrySealTest') return [{ req: { op: 'telemetry_seal', ...pick('suite', 'hk', 'wk', 'sid', 'seq', 'wt', 'payload') }, expect: same('ctlen', 'hints') }];
      if (g.type === 'TelemetryOpenTest') return [{ req: { op: 'telemetry_open', ...pick('suite', 'hk', 'wk', 'sid', 'seq', 'wt', 'ctlen', 'hints') }, expect: valid ? same('payload', 'fields') : err }];
      return [];
    default:
      return [];
  }
}

/** Judges an adapter's answer: null when it is right, otherwise what is wrong. */
export type Judge = (a: Record<string, unknown>) => string | null;

/** Protected jobs (SPEC.md §16): the owner's chunks and upload ([LM-PROT-1]), the distribution's keys ([LM-PROT-2]). */
function protectedRequests(type: string, t: VTest, eq: (k: string, want: unknown) => Judge, err: Judge): VRequest[] {
  const valid = t.result === 'valid';
  switch (type) {
    case 'ProtectedChunkTest': {
      const open = { req: { op: 'protected_open', key: t['key'], jid: t['jid'], index: t['index'], ciphertext: t['ciphertext'] }, expect: valid ? eq('plaintext', t['plaintext']) : err };
      return valid ? [{ req: { op: 'protected_seal', key: t['key'], jid: t['jid'], index: t['index'], plaintext: t['plaintext'] }, expect: eq('ciphertext', t['ciphertext']) }, open] : [open];
    }
    case 'UploadTest':
      return [{ req: { op: 'upload', upload: t['upload'], trustedOwners: t['trustedOwners'] }, expect: valid ? eq('uh', t['uh']) : err }];
    case 'HintLayerTest':
      // the key schedule of keys.json with 32 zero bytes for K_lic
      return [{
        req: { op: 'keys', secret: t['gatewayEphemeralSecret'], peerPublic: t['deviceEphemeralPublic'], licence: t['licence'], offer: t['offer'], accept: t['accept'], r0: t['r0'], revisions: (t['g2d'] as { revision: number }[]).map((x) => x.revision) },
        expect: (a) => ['ckG2d0', 'ckD2g0', 'fkG2d', 'fkD2g', 'g2d', 'd2g'].map((k) => eq(k, t[k])(a)).find((x) => x) ?? null,
      }];
    case 'ContentChainTest':
      return [{
        req: { op: 'content_keys', licence: t['licence'], th: t['th'], r0: t['r0'], revisions: (t['wrapKeys'] as { revision: number }[]).map((x) => x.revision) },
        expect: (a) => eq('ckc', t['ckc'])(a) ?? eq('wrapKeys', t['wrapKeys'])(a),
      }];
    case 'ContentWrapTest': {
      const unwrap = { req: { op: 'content_unwrap', licence: t['licence'], th: t['th'], r0: t['r0'], revision: t['revision'], sid: t['sid'], index: t['index'], wrapped: t['wrapped'] }, expect: valid ? eq('chunkKey', t['chunkKey']) : err };
      return valid ? [{ req: { op: 'wrap', wrapKey: t['wrapKey'], sid: t['sid'], index: t['index'], chunkKey: t['chunkKey'] }, expect: eq('wrapped', t['wrapped']) }, unwrap] : [unwrap];
    }
    case 'ProtectedTxTest': {
      const verify: VRequest = { req: { op: 'tx', tx: t['tx'], context: t['context'] }, expect: valid ? eq('txh', t['txh']) : err, ids: t.requirements.filter((id) => id !== 'LM-PROT-4') };
      if (!t.requirements.includes('LM-PROT-4')) return [verify];
      // the keyed digest of the plaintext under K_lic, which the transaction carries in jd ([LM-PROT-4])
      return [verify, { req: { op: 'job_digest', licence: t['licence'], digest: t['plaintextDigest'] }, expect: eq('jd', t['jd']), ids: ['LM-PROT-4'] }];
    }
    // the services' computations and formats ([LM-SVC-1], [LM-SVC-2], [LM-SVC-3], [LM-SVC-5])
    case 'SegmentTest':
      return [{ req: { op: 'segments', chunks: t['chunks'], density: t['density'], C: t['C'] }, expect: valid ? (a) => ['decoys', 'segments', 'segmentSize'].map((k) => eq(k, t[k])(a)).find((x) => x) ?? null : err }];
    case 'EnvelopeTest':
      return [{ req: { op: 'envelope_open', envelope: t['envelope'], keysServiceSecret: t['keysServiceSecret'], upload: t['upload'] }, expect: valid ? (a) => ['jid', 'keys', 'order', 'last', 'decoys'].map((k) => eq(k, t[k])(a)).find((x) => x) ?? null : err }];
    case 'EpochChainTest':
      return [{ req: { op: 'epoch_keys', chain: t['chain'], epoch: t['epoch'], count: t['count'] }, expect: eq('epochs', t['epochs']) }];
    case 'EpochSegmentTest':
      return [{ req: { op: 'epoch_open', key: t['key'], epoch: t['epoch'], segmentId: t['segmentId'], stored: t['stored'] }, expect: valid ? eq('segment', t['segment']) : err }];
    case 'DeleteTest': {
      const verify = { req: { op: 'delete_verify', delete: t['delete'], ownerPublic: t['ownerPublic'] }, expect: valid ? (a: Record<string, unknown>) => eq('jid', t['jid'])(a) ?? eq('time', t['time'])(a) ?? eq('dh', t['dh'])(a) : err };
      return valid ? [{ req: { op: 'delete_sign', jid: t['jid'], ownerSecret: t['ownerSecret'], time: t['time'] }, expect: eq('delete', t['delete']) }, verify] : [verify];
    }
    case 'DeletionReceiptTest': {
      const d = (t['decoded'] ?? {}) as Record<string, unknown>;
      const verify = { req: { op: 'deletion_receipt', receipt: t['receipt'], servicePublic: t['servicePublic'] }, expect: valid ? (a: Record<string, unknown>) => Object.keys(d).map((k) => eq(k, d[k])(a)).find((x) => x) ?? null : err };
      return valid ? [{ req: { op: 'deletion_receipt_sign', ...d, serviceSecret: t['serviceSecret'] }, expect: eq('receipt', t['receipt']) }, verify] : [verify];
    }
    default:
      return [];
  }
}
