#!/usr/bin/env node
/**
 * @module adapter-example
 * An example vectors-profile adapter: reads one JSON request per line on stdin, answers one JSON
 * line on stdout, using @livematrix/spec. A vendor writes the same in their own language
 * around their own implementation (conformance/README.md has the protocol).
 *
 * Every answer is typed: a reason name of SPEC.md §7.6 from the implementation, `bad-request`
 * for a request the adapter cannot read (not JSON, no integer `id`, a missing field, a field of
 * the wrong JSON type, hex that is not hex, a key of the wrong length), `unsupported` for an op
 * it does not know or a size beyond its bounds. `internal` would mean a bug of the adapter.
 */
import { createInterface } from 'node:readline';
import {
  AUTH_KINDS, type AuthKind, type CborValue, type FrameTypeId, LmError, Ratchet, Reason, Revocations, SCHEMAS, type SessionParams, type SuiteId, ascii, checkRevision,
  bestSample, checkSkew, concatBytes, contentChain, decodeCbor, decodeFrame, decodeTx, deriveSessionKeys, ecdh, encodeCbor, errorMessage, frameMac, fromHex, hint, hintSymbols,
  identityKeyPair, isSuite, jobDigestKey, keyedJobDigest, minHintLength, openChunk, openLicence, openProtectedChunk, openTelemetry, pack, reasonName, revisionAt, scanResolve, sealChunk,
  sealProtectedChunk, sealTelemetry, senderRevision, shiftedSymbol, sign, toHex, transcriptHash, unpack, unwrapChunkKey, validateParams, verifyFrame, verifyRevocation,
  verifyTicket, verifyTx, verifyUpload, wrapChunkKey, acceptFault, hintsFault, verifyLedger, checkLedgerEntry, nextRecord, decoyCount, openEnvelope,
  x25519KeyPair, epochKey, nextEpochChain, openOuter, signDelete, verifyDelete, signDeletionReceipt, verifyDeletionReceipt, FrameType,
} from '@livematrix/spec';

/** The request cannot be read: `bad-request`. */
class BadRequest extends Error {
  override name = 'BadRequest';
}
/** An op this adapter does not know, or a size beyond its bounds: `unsupported`. */
class Unsupported extends Error {
  override name = 'Unsupported';
}

type Req = Readonly<Record<string, unknown>>;

const isObject = (v: unknown): v is Req => typeof v === 'object' && v !== null && !Array.isArray(v);

function field(r: Req, k: string): unknown {
  if (!Object.hasOwn(r, k) || r[k] === undefined) throw new BadRequest(`missing "${k}"`);
  return r[k];
}
function hexOf(v: unknown, what: string, len?: number): Uint8Array {
  if (typeof v !== 'string' || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) throw new BadRequest(`"${what}" must be a hex string`);
  const b = fromHex(v);
  if (len !== undefined && b.length !== len) throw new BadRequest(`"${what}" must be ${len} bytes, got ${b.length}`);
  return b;
}
const hex = (r: Req, k: string, len?: number): Uint8Array => hexOf(field(r, k), k, len);
function intOf(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new BadRequest(`"${what}" must be an integer`);
  if (v < min || v > max) throw new BadRequest(`"${what}" must be in ${min}..${max}`);
  return v;
}
const int = (r: Req, k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number => intOf(field(r, k), k, min, max);
function list(r: Req, k: string): unknown[] {
  const v = field(r, k);
  if (!Array.isArray(v)) throw new BadRequest(`"${k}" must be an array`);
  return v;
}
function obj(r: Req, k: string): Req {
  const v = field(r, k);
  if (!isObject(v)) throw new BadRequest(`"${k}" must be an object`);
  return v;
}
const hexList = (r: Req, k: string, len?: number): Uint8Array[] => list(r, k).map((x, i) => hexOf(x, `${k}[${i}]`, len));
function str(r: Req, k: string): string {
  const v = field(r, k);
  if (typeof v !== 'string') throw new BadRequest(`"${k}" must be a string`);
  return v;
}
/** A hash suite; a value outside 1..3 is the implementation's `params`. */
function suite(r: Req): SuiteId {
  const s = int(r, 'suite');
  if (!isSuite(s)) throw new LmError(Reason.params, `unknown suite ${s}`);
  return s;
}
/** A width: the adapter's reference tables stop at 2^20 candidates. */
function width(r: Req, k: string, max: number): number {
  const w = int(r, k);
  if (w > max) throw new Unsupported(`${k}=${w}: this adapter bounds ${k} at ${max}`);
  return w;
}
/** Revisions of a chain: the adapter iterates at most 2^20 steps. */
function revisions(r: Req, r0: number): number[] {
  return list(r, 'revisions').map((x, i) => {
    const rev = intOf(x, `revisions[${i}]`);
    if (rev - r0 > 2 ** 20) throw new Unsupported(`revision ${rev}: this adapter steps a chain at most 2^20 revisions`);
    return rev;
  });
}

// ---- the wire JSON of conformance/README.md -----------------------------------------------

/** Keys of each frame type's body that are byte strings (or arrays of them): SPEC.md §7.2. */
const BYTE_KEYS: Readonly<Record<FrameTypeId, readonly number[]>> = {
  1: [2, 7], 2: [0, 1, 2, 4, 7], 3: [0, 1, 2], 4: [0], 5: [0], 6: [0, 6], 7: [0, 3], 8: [0], 9: [0], 10: [0, 4], 11: [0, 4], 12: [0, 1, 3, 6], 13: [0], 14: [0, 4, 5, 6], 15: [0],
  16: [4, 6, 7], 17: [1, 3, 6], 18: [1, 3], 19: [],
};
/** Body keys whose value is a map with text keys (STATUS readings, SPEC.md §10.2): its object keys are names, not key numbers. */
const TEXT_KEY_MAPS: Readonly<Partial<Record<FrameTypeId, readonly number[]>>> = { 19: [6] };

/** A JSON value as CBOR: `bytes` says whether strings are hex byte strings; `numericKeys` whether object keys are map key numbers. */
function cborOf(v: unknown, path: string, bytes: boolean, numericKeys: boolean): CborValue {
  if (typeof v === 'string') return bytes ? hexOf(v, path) : v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return v; // a float or an unsafe integer is the encoder's to refuse ([LM-CBOR-2])
  if (Array.isArray(v)) return v.map((x, i) => cborOf(x, `${path}[${i}]`, bytes, numericKeys));
  if (isObject(v)) {
    return new Map(Object.entries(v).map(([k, x]) => {
      if (numericKeys && !/^(0|[1-9][0-9]{0,15})$/.test(k)) throw new BadRequest(`${path}: map key "${k}" is not a key number`);
      return [numericKeys ? Number(k) : k, cborOf(x, `${path}.${k}`, false, numericKeys)];
    }));
  }
  throw new BadRequest(`${path}: not a JSON value of the wire mapping`);
}

/** The wire JSON of a CBOR value: byte strings as hex, maps as objects. */
function wireJson(v: CborValue): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return (v as readonly CborValue[]).map(wireJson);
  if (v instanceof Map) return Object.fromEntries([...(v as ReadonlyMap<number | string, CborValue>).entries()].map(([k, x]) => [String(k), wireJson(x)]));
  return v;
}

const TBA_PREFIX = concatBytes(ascii('livematrix/1 frame'), Uint8Array.of(0));

/** encode_frame: the body by key number, authenticated as asked ([LM-CBOR-1], [LM-FRAME-2], [LM-FRAME-21]). */
function encodeFrameOp(r: Req): Record<string, unknown> {
  const type = int(r, 'type');
  if (!(type in SCHEMAS)) throw new LmError(Reason.unknownType, `unknown frame type ${type}`);
  const t = type as FrameTypeId;
  const kind = str(r, 'auth');
  if (kind !== 'sig' && kind !== 'mac' && kind !== 'none') throw new BadRequest('"auth" must be sig, mac or none');
  const body = obj(r, 'body');
  const map = new Map<number, CborValue>();
  for (const [k, v] of Object.entries(body)) {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(k)) throw new BadRequest(`body: key "${k}" is not a key number`);
    map.set(Number(k), cborOf(v, `body.${k}`, BYTE_KEYS[t].includes(Number(k)), !TEXT_KEY_MAPS[t]?.includes(Number(k))));
  }
  const key = kind === 'none' ? undefined : hex(r, 'key', 32);
  if (!AUTH_KINDS[t].includes(kind as AuthKind)) throw new LmError(Reason.schema, `frame type ${t} cannot use authentication "${kind}" ([LM-FRAME-21])`);
  const tba = concatBytes(TBA_PREFIX, encodeCbor([1, t, map]));
  const auth = kind === 'sig' ? sign(key as Uint8Array, tba) : kind === 'mac' ? frameMac(key as Uint8Array, tba) : new Uint8Array(0);
  const bytes = encodeCbor([1, t, map, auth]);
  decodeFrame(bytes); // what it built must satisfy the type's schema ([LM-FRAME-1])
  return { hex: toHex(bytes) };
}

/** frame: decoded, verified, and its body by key number (the keys its type defines). */
function frameOp(r: Req): Record<string, unknown> {
  const bytes = hex(r, 'hex');
  const f = decodeFrame(bytes);
  const authenticated = verifyFrame(f, { ...(r['macKey'] !== undefined ? { mac: hex(r, 'macKey') } : {}), ...(r['signerPublic'] !== undefined ? { signer: hex(r, 'signerPublic', 32) } : {}) });
  const raw = (decodeCbor(bytes) as CborValue[])[2] as ReadonlyMap<number, CborValue>;
  const known = new Set(SCHEMAS[f.type].map((x) => x.key));
  return { type: f.type, body: wireJson(new Map([...raw].filter(([k]) => known.has(k)))), authenticated };
}

const PARAM_NAMES: readonly (keyof SessionParams)[] = ['suite', 'w', 'L', 'period', 'epoch', 'grace', 'r0', 'chunk', 'symbolsPerFrame', 'wt'];

/** An OFFER's params map by key number (1 suite .. 10 wt), as integers; the ranges are the caller's to check. */
function sessionParams(r: Req): SessionParams {
  const m = obj(r, 'params');
  return Object.fromEntries(PARAM_NAMES.map((name, i) => [name, intOf(field(m, String(i + 1)), `params.${i + 1}`)])) as unknown as SessionParams;
}

/** session_frame: a verified frame checked against its session's parameters and the job's size ([LM-FRAME-15] .. [LM-FRAME-19]). */
function sessionFrameOp(r: Req): Record<string, unknown> {
  const p = sessionParams(r);
  const size = int(r, 'size');
  const f = decodeFrame(hex(r, 'hex'));
  const keys = { ...(r['macKey'] !== undefined ? { mac: hex(r, 'macKey', 32) } : {}), ...(r['signerPublic'] !== undefined ? { signer: hex(r, 'signerPublic', 32) } : {}) };
  verifyFrame(f, keys); // [LM-FRAME-10]: decoded and authenticated before the session's checks
  const e = f.type === FrameType.HINTS ? hintsFault(f.body, p) : f.type === FrameType.ACCEPT ? acceptFault(f.body, p, size) : undefined;
  if (e) throw e;
  return { accepted: true };
}

/** A number of JSON (a density may be a fraction). */
function num(r: Req, k: string): number {
  const v = field(r, k);
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequest(`"${k}" must be a number`);
  return v;
}

/** ledger_verify: a ledger checked offline ([LM-LEDGER-6]); every problem with its record's seq, and the head ([LM-LEDGER-7]). */
async function ledgerVerifyOp(r: Req): Promise<Record<string, unknown>> {
  const records = hexList(r, 'records');
  const v = await verifyLedger(records, r['trustedOperators'] !== undefined ? { trustedOperators: hexList(r, 'trustedOperators', 32) } : {});
  return { valid: v.ok, count: v.count, head: v.head, problems: v.problems.map((x) => ({ seq: x.seq, kind: x.kind })) };
}

/** ledger_append: the record an appender writes after `after` (none: the first), once the entry passes [LM-LEDGER-5]. */
function ledgerAppendOp(r: Req): Record<string, unknown> {
  let prev: { seq: number; hash: Uint8Array } | undefined;
  if (r['after'] !== undefined) {
    const a = obj(r, 'after');
    prev = { seq: int(a, 'seq', 1), hash: hex(a, 'hash', 32) };
  }
  const entry = { time: int(r, 'time'), receipt: hex(r, 'receipt'), tx: hex(r, 'tx'), gateway: str(r, 'gateway') };
  checkLedgerEntry(entry); // [LM-LEDGER-5]
  const rec = nextRecord(prev, entry); // [LM-LEDGER-1], [LM-LEDGER-2]
  return { record: toHex(rec.bytes), hash: toHex(rec.hash) };
}

/** The protected-job services' computations and formats (SPEC.md §16): [LM-SVC-1], [LM-SVC-2], [LM-SVC-3], [LM-SVC-5]. */
function serviceOp(r: Req, op: string): Record<string, unknown> | undefined {
  switch (op) {
    case 'segments': {
      const n = int(r, 'chunks');
      const C = int(r, 'C');
      const decoys = decoyCount(n, num(r, 'density'));
      return { decoys, segments: n + decoys, segmentSize: C + 16 };
    }
    case 'envelope_open': {
      const p = openEnvelope(hex(r, 'envelope'), x25519KeyPair(hex(r, 'keysServiceSecret', 32)), verifyUpload(hex(r, 'upload')));
      return { jid: toHex(p.jid), keys: p.keys.map(toHex), order: p.order.map(toHex), last: p.last, decoys: p.decoys.map(toHex) };
    }
    case 'epoch_keys': {
      const e0 = int(r, 'epoch');
      const count = int(r, 'count');
      if (count > 65536) throw new Unsupported(`count ${count}: this adapter steps an epoch chain at most 65536 times`);
      let c = hex(r, 'chain', 32);
      const epochs: { epoch: number; chain: string; key: string }[] = [];
      for (let e = e0; e < e0 + count; e++) {
        epochs.push({ epoch: e, chain: toHex(c), key: toHex(epochKey(c)) });
        c = nextEpochChain(c);
      }
      return { epochs };
    }
    case 'epoch_open':
      return { segment: toHex(openOuter(hex(r, 'key', 32), int(r, 'epoch'), hex(r, 'segmentId', 16), hex(r, 'stored'))) };
    case 'delete_sign':
      return { delete: toHex(signDelete(hex(r, 'jid', 16), identityKeyPair(hex(r, 'ownerSecret', 32)), int(r, 'time'))) };
    case 'delete_verify': {
      const d = verifyDelete(hex(r, 'delete'));
      if (toHex(d.okp) !== toHex(hex(r, 'ownerPublic', 32))) throw new LmError(Reason.auth, 'the delete is not signed by the upload\'s owner key ([LM-SVC-5])');
      return { jid: toHex(d.jid), okp: toHex(d.okp), time: d.time, dh: toHex(d.hash) };
    }
    case 'deletion_receipt_sign':
      return { receipt: toHex(signDeletionReceipt({ jid: hex(r, 'jid', 16), service: str(r, 'service'), removed: int(r, 'removed'), time: int(r, 'time'), dh: hex(r, 'dh', 32) }, identityKeyPair(hex(r, 'serviceSecret', 32)))) };
    case 'deletion_receipt': {
      const d = verifyDeletionReceipt(hex(r, 'receipt'), hex(r, 'servicePublic', 32));
      return { jid: toHex(d.jid), service: d.service, removed: d.removed, time: d.time, dh: toHex(d.dh) };
    }
    default:
      return undefined;
  }
}

function telemetryOpen(r: Req): Record<string, unknown> {
  const s = suite(r);
  const wt = width(r, 'wt', 20);
  const L = minHintLength(wt);
  const hints = hex(r, 'hints');
  if (hints.length % L !== 0) throw new LmError(Reason.padding, `${hints.length} bytes of hints are not a multiple of L = ${L}`);
  const symbols = scanResolve(s, hex(r, 'hk', 32), wt, L, Array.from({ length: hints.length / L }, (_, i) => hints.subarray(i * L, i * L + L))).map((x) => {
    if (x.kind === 'ambiguous') throw new LmError(Reason.ambiguous, 'a telemetry hint is ambiguous ([LM-HINT-3])');
    if (x.kind === 'absent') throw new LmError(Reason.unknown, 'a telemetry hint is absent ([LM-HINT-4])');
    return x.symbol;
  });
  const payload = openTelemetry(hex(r, 'wk', 32), hex(r, 'sid', 16), int(r, 'seq'), unpack(symbols, wt, int(r, 'ctlen')));
  const v = decodeCbor(payload);
  if (!(v instanceof Map) || [...v.keys()].some((k) => typeof k !== 'string')) throw new LmError(Reason.schema, 'telemetry payload is not a map with text keys ([LM-TEL-1])');
  return { payload: toHex(payload), fields: wireJson(v) };
}

function handle(r: Req, op: string): Record<string, unknown> {
  switch (op) {
    case 'hint':
      return { hint: toHex(hint(suite(r), hex(r, 'hk', 32), int(r, 'w'), int(r, 'L'), int(r, 'g'))) };
    case 'hints': {
      const w = int(r, 'w');
      const symbols = pack(hex(r, 'bytes'), w);
      return { symbols: [...symbols], hints: toHex(hintSymbols(suite(r), hex(r, 'hk', 32), w, int(r, 'L'), symbols)) };
    }
    case 'table': {
      const found = scanResolve(suite(r), hex(r, 'hk', 32), width(r, 'w', 20), int(r, 'L', 1, 32), hexList(r, 'hints'));
      return { lookup: found.map((x) => (x.kind === 'symbol' ? x.symbol : x.kind)) };
    }
    case 'pack':
      return { symbols: [...pack(hex(r, 'bytes'), int(r, 'w'))] };
    case 'shift': {
      const syms = list(r, 'symbols').map((x, i) => intOf(x, `symbols[${i}]`));
      const w = int(r, 'w');
      const sh = int(r, 'sh');
      return { shifted: syms.map((_, j) => j).concat(syms.length).map((j) => shiftedSymbol(syms, w, sh, j)) };
    }
    case 'unpack':
      return { bytes: toHex(unpack(list(r, 'symbols').map((x, i) => intOf(x, `symbols[${i}]`)), int(r, 'w'), int(r, 'n'))) };
    case 'ecdh':
      return { z: toHex(ecdh(hex(r, 'secret', 32), hex(r, 'peerPublic', 32))) };
    case 'keys': {
      const r0 = int(r, 'r0');
      const revs = revisions(r, r0);
      const z = ecdh(hex(r, 'secret', 32), hex(r, 'peerPublic', 32));
      const k = deriveSessionKeys(z, hex(r, 'licence', 32), transcriptHash(hex(r, 'offer'), hex(r, 'accept')));
      const chain = (ck: Uint8Array) => {
        const rc = new Ratchet(ck, r0);
        return revs.map((rev) => {
          const x = rc.keysFor(rev);
          return { revision: rev, hk: toHex(x.hk), wk: toHex(x.wk) };
        });
      };
      return { ckG2d0: toHex(k.ckG2d), ckD2g0: toHex(k.ckD2g), fkG2d: toHex(k.fkG2d), fkD2g: toHex(k.fkD2g), g2d: chain(k.ckG2d), d2g: chain(k.ckD2g) };
    }
    case 'ratchet': {
      // keys of the revisions in the order asked ([LM-KEY-3]); none below r0 ([LM-KEY-7]); the reference's chain also refuses one at or below one already derived
      const r0 = int(r, 'r0');
      const rc = new Ratchet(hex(r, 'chainKey', 32), r0);
      return { keys: revisions(r, r0).map((rev) => ({ revision: rev, ...(({ hk, wk }) => ({ hk: toHex(hk), wk: toHex(wk) }))(rc.keysFor(rev)) })) };
    }
    case 'chunk_seal':
      return { ciphertext: toHex(sealChunk(hex(r, 'key', 32), hex(r, 'sid', 16), int(r, 'index'), hex(r, 'plaintext'))) };
    case 'chunk_open':
      return { plaintext: toHex(openChunk(hex(r, 'key', 32), hex(r, 'sid', 16), int(r, 'index'), hex(r, 'ciphertext'))) };
    case 'wrap':
      return { wrapped: toHex(wrapChunkKey(hex(r, 'wrapKey', 32), hex(r, 'sid', 16), int(r, 'index'), hex(r, 'chunkKey', 32))) };
    case 'encode_frame':
      return encodeFrameOp(r);
    case 'frame':
      return frameOp(r);
    case 'encode_payload':
      return { payload: toHex(encodeCbor(cborOf(obj(r, 'fields'), 'fields', false, false))) };
    case 'tx': {
      const c = obj(r, 'context');
      const dev = obj(c, 'device');
      const tx = verifyTx(hex(r, 'tx'), {
        now: int(c, 'now'), trustedOperators: hexList(c, 'trustedOperators', 32), device: { id: str(dev, 'id'), publicKey: hex(dev, 'publicKey', 32) }, gatewayPublic: hex(c, 'gatewayPublic', 32), printsUsed: int(c, 'printsUsed'),
      });
      if (r['deviceSecret'] === undefined) return { txh: toHex(tx.hash) };
      // the device opens the sealed licence with its own identity secret ([LM-TX-1])
      const seed = hex(r, 'deviceSecret', 32);
      return { txh: toHex(tx.hash), licence: toHex(openLicence(tx.body.lic, seed, identityKeyPair(seed).publicKey, tx.body.jd)) };
    }
    case 'licence': {
      const seed = hex(r, 'deviceSecret', 32);
      const b = decodeTx(hex(r, 'tx')).body;
      return { licence: toHex(openLicence(b.lic, seed, identityKeyPair(seed).publicKey, b.jd)) };
    }
    case 'ticket': {
      const c = obj(r, 'context');
      const t = verifyTicket(hex(r, 'ticket'), { device: str(c, 'device'), devicePublic: hex(c, 'devicePublic', 32), txh: hex(c, 'txh', 32), now: int(c, 'now') });
      return { ticketId: toHex(t.body.id) }; // not `id`: that is the request's
    }
    case 'revocation':
      return { seq: verifyRevocation(hex(r, 'list'), hexList(r, 'trustedOperators', 32)).seq };
    case 'revocation_refusal': {
      const held = new Revocations();
      held.offer(hex(r, 'list'), hexList(r, 'trustedOperators', 32));
      const tx = decodeTx(hex(r, 'tx'));
      const e = held.refusal(tx.body, tx.hash, int(r, 'now'));
      if (e) throw e;
      return { refused: false };
    }
    case 'revocation_sequence': {
      const lists = hexList(r, 'lists').map(toHex);
      const trusted = hexList(r, 'trustedOperators', 32);
      const held = new Revocations();
      return {
        held: lists.map((x) => {
          held.offer(fromHex(x), trusted);
          return held.current ? lists.indexOf(toHex(held.current)) : -1;
        }),
      };
    }
    case 'protected_seal':
      return { ciphertext: toHex(sealProtectedChunk(hex(r, 'key', 32), hex(r, 'jid', 16), int(r, 'index'), hex(r, 'plaintext'))) };
    case 'protected_open':
      return { plaintext: toHex(openProtectedChunk(hex(r, 'key', 32), hex(r, 'jid', 16), int(r, 'index'), hex(r, 'ciphertext'))) };
    case 'job_digest':
      // a protected job's jd: HMAC-SHA-256(kd, "lm2 jd" || SHA-256(plaintext)), kd from K_lic ([LM-PROT-4])
      return { jd: toHex(keyedJobDigest(jobDigestKey(hex(r, 'licence', 32)), hex(r, 'digest', 32))) };
    case 'upload':
      return { uh: toHex(verifyUpload(hex(r, 'upload'), hexList(r, 'trustedOwners', 32)).hash) };
    case 'content_keys': {
      const r0 = int(r, 'r0');
      const revs = revisions(r, r0);
      const ckc = contentChain(hex(r, 'licence', 32), hex(r, 'th', 32));
      const rc = new Ratchet(ckc, r0);
      return { ckc: toHex(ckc), wrapKeys: revs.map((rev) => ({ revision: rev, wk: toHex(rc.keysFor(rev).wk) })) };
    }
    case 'content_unwrap': {
      const r0 = int(r, 'r0');
      const rev = int(r, 'revision');
      if (rev - r0 > 2 ** 20) throw new Unsupported(`revision ${rev}: this adapter steps a chain at most 2^20 revisions`);
      const wk = new Ratchet(contentChain(hex(r, 'licence', 32), hex(r, 'th', 32)), r0).keysFor(rev).wk;
      return { chunkKey: toHex(unwrapChunkKey(wk, hex(r, 'sid', 16), int(r, 'index'), hex(r, 'wrapped', 48))) };
    }
    case 'sender_revision':
      return { revision: senderRevision(int(r, 'g'), { epoch: int(r, 'epoch'), period: int(r, 'period', 1), grace: int(r, 'grace') }) };
    case 'accept_revision': {
      const d = int(r, 'd');
      const p = { epoch: int(r, 'epoch'), period: int(r, 'period', 1) };
      const refused = checkRevision(int(r, 'r'), d, p); // [LM-REV-2]
      if (refused !== null) throw new LmError(refused, 'revision outside {c - 1, c}');
      return { current: revisionAt(d, p.epoch, p.period), accepted: true };
    }
    case 'timesync': {
      const samples = list(r, 'samples').map((x, i) => {
        if (!isObject(x)) throw new BadRequest(`samples[${i}] must be an object`);
        return { t1: int(x, 't1'), t2: int(x, 't2'), t3: int(x, 't3'), t4: int(x, 't4') };
      });
      const best = bestSample(samples); // [LM-TIME-1], [LM-TIME-6]
      checkSkew(best, int(r, 'grace')); // [LM-TIME-2]
      return { offset: best.offset, delay: best.delay };
    }
    case 'params':
      // the v1 ranges a device checks an OFFER against ([LM-PARAM-1]) (and a gateway its own offer, [LM-PARAM-7])
      validateParams(sessionParams(r));
      return { accepted: true };
    case 'session_frame':
      return sessionFrameOp(r);
    case 'ledger_append':
      return ledgerAppendOp(r);
    case 'telemetry_seal': {
      const wt = int(r, 'wt');
      const ct = sealTelemetry(hex(r, 'wk', 32), hex(r, 'sid', 16), int(r, 'seq'), hex(r, 'payload'));
      return { ctlen: ct.length, hints: toHex(hintSymbols(suite(r), hex(r, 'hk', 32), wt, minHintLength(wt), pack(ct, wt))) };
    }
    case 'telemetry_open':
      return telemetryOpen(r);
    default: {
      const a = serviceOp(r, op);
      if (a) return a;
      throw new Unsupported(`unknown op "${op}"`);
    }
  }
}

/** One answer line for one request line (async: a ledger is verified as a stream). */
export async function answer(line: string): Promise<Record<string, unknown>> {
  let id: number | null = null;
  try {
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      throw new BadRequest('not JSON');
    }
    if (!isObject(r)) throw new BadRequest('a request is a JSON object');
    if (typeof r['id'] !== 'number' || !Number.isSafeInteger(r['id'])) throw new BadRequest('"id" must be an integer');
    id = r['id'];
    const op = r['op'];
    if (typeof op !== 'string') throw new BadRequest('"op" must be a string');
    return { id, ok: true, ...(op === 'ledger_verify' ? await ledgerVerifyOp(r) : handle(r, op)) };
  } catch (e) {
    const error = e instanceof LmError ? reasonName(e.code) : e instanceof BadRequest ? 'bad-request' : e instanceof Unsupported ? 'unsupported' : 'internal';
    return { id, ok: false, error, detail: errorMessage(e) };
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const rl = createInterface({ input: process.stdin });
  let last: Promise<void> = Promise.resolve();
  rl.on('line', (line) => {
    // answers in the order of the lines (an answer with "id": null is matched by order)
    last = last.then(async () => void process.stdout.write(JSON.stringify(await answer(line)) + '\n'));
  });
}
