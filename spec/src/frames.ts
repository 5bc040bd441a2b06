/**
 * @module frames
 * Frame codec of SPEC.md §7: the envelope, every frame type's schema (mirrors frames.cddl),
 * authentication (SIG, MAC, NONE). Decoding throws only {@link LmError}.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { createHash, createHmac } from 'node:crypto';
import { ascii, concatBytes, equalBytes } from './bytes.js';
import { type CborValue, decodeCbor, encodeCbor, LIMITS } from './cbor.js';
import { LmError, Reason, errorMessage } from './errors.js';
import { PROTOCOL_VERSION, type SessionParams, type SuiteId, isSuite } from './params.js';

export const FrameType = {
  HELLO: 1,
  OFFER: 2,
  ACCEPT: 3,
  TIME_REQ: 4,
  TIME_RESP: 5,
  HINTS: 6,
  KEY: 7,
  ACK: 8,
  CONTROL: 9,
  TELEMETRY: 10,
  END: 11,
  RECEIPT: 12,
  ALARM: 13,
  ERROR: 14,
  BYE: 15,
} as const;
export type FrameTypeName = keyof typeof FrameType;
export type FrameTypeId = (typeof FrameType)[FrameTypeName];
export const FRAME_TYPE_NAMES = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k])) as Record<FrameTypeId, FrameTypeName>;

/** Largest frame ([LM-FRAME-1]). */
export const MAX_FRAME = LIMITS.maxInput;
export const MAC_LENGTH = 16;
export const SIG_LENGTH = 64;

export type AuthKind = 'sig' | 'mac' | 'none';

/** Authentication kinds per type ([LM-FRAME-2], [LM-FRAME-5]). */
export const AUTH_KINDS: Readonly<Record<FrameTypeId, readonly AuthKind[]>> = {
  1: ['sig'],
  2: ['sig'],
  3: ['sig'],
  4: ['mac'],
  5: ['mac'],
  6: ['mac'],
  7: ['mac'],
  8: ['mac'],
  9: ['mac'],
  10: ['mac'],
  11: ['mac'],
  12: ['sig'],
  13: ['mac', 'none'],
  14: ['mac', 'sig', 'none'], // SIG: a device's refusal of an OFFER ([LM-FRAME-9])
  15: ['mac', 'none'],
};

const AUTH_LEN: Record<AuthKind, number> = { sig: SIG_LENGTH, mac: MAC_LENGTH, none: 0 };

export interface Caps {
  /** [suite, measured hashes per second] */
  suites: [SuiteId, number][];
  /** bytes the device may spend on tables */
  mem: number;
  wmax: number;
  workers: number;
}

export interface HelloBody { device: string; idpk: Uint8Array; caps: Caps; time: number; software: string; online: boolean; boot?: Uint8Array }
export interface OfferBody { sid: Uint8Array; tx: Uint8Array; epk: Uint8Array; params: SessionParams; gwpk: Uint8Array; time: number; resume?: boolean }
export interface AcceptBody { sid: Uint8Array; epk: Uint8Array; oh: Uint8Array; window: number; from?: number }
export interface TimeReqBody { sid: Uint8Array; t1: number }
export interface TimeRespBody { sid: Uint8Array; t1: number; t2: number; t3: number }
export interface HintsBody { sid: Uint8Array; seq: number; rev: number; chunk: number; off: number; ctlen: number; hints: Uint8Array; idx?: number[]; sh?: number }
export interface KeyBody { sid: Uint8Array; chunk: number; rev: number; wrapped: Uint8Array }
export interface AckBody { sid: Uint8Array; cum: number; sack: [number, number][]; nack: [number, number, number[]][]; consumed: number; credit: number }
export interface ControlBody { sid: Uint8Array; op: number; reason: number }
export interface TelemetryBody { sid: Uint8Array; seq: number; rev: number; ctlen: number; hints: Uint8Array }
export interface EndBody { sid: Uint8Array; bytes: number; chunks: number; frames: number; digest: Uint8Array }
export interface ReceiptBody { sid: Uint8Array; jd: Uint8Array; bytes: number; digest: Uint8Array; time: number; device: string; txh: Uint8Array }
export interface AlarmBody { sid?: Uint8Array; code: number; detail: string; time: number; observed?: number; limit?: number }
export interface ErrorBody { sid?: Uint8Array; code: number; detail: string; seq?: number }
export interface ByeBody { sid?: Uint8Array; who: string; reason: number }

declare const controlOpBrand: unique symbol;

/**
 * A CONTROL operation ([LM-DLV-9]): one of {@link ControlOp}'s, never a bare number, so that
 * `control(3)` does not compile and `control(ControlOp.abort)` says what it does.
 */
export type ControlOpId = (1 | 2 | 3) & { readonly [controlOpBrand]: true };

/**
 * The CONTROL operations ([LM-DLV-9]) with their wire values.
 *
 * @example
 * await stream.control(ControlOp.pause); await stream.control(ControlOp.resume);
 */
export const ControlOp = { pause: 1, resume: 2, abort: 3 } as { readonly pause: 1 & ControlOpId; readonly resume: 2 & ControlOpId; readonly abort: 3 & ControlOpId };

export interface Bodies {
  1: HelloBody;
  2: OfferBody;
  3: AcceptBody;
  4: TimeReqBody;
  5: TimeRespBody;
  6: HintsBody;
  7: KeyBody;
  8: AckBody;
  9: ControlBody;
  10: TelemetryBody;
  11: EndBody;
  12: ReceiptBody;
  13: AlarmBody;
  14: ErrorBody;
  15: ByeBody;
}

/** A decoded frame. `tba` is the byte string its authentication covers. */
export interface Frame<T extends FrameTypeId = FrameTypeId> {
  v: 1;
  type: T;
  body: Bodies[T];
  auth: Uint8Array;
  authKind: AuthKind;
  tba: Uint8Array;
}
export type AnyFrame = { [K in FrameTypeId]: Frame<K> }[FrameTypeId];

// ---- field parsers -------------------------------------------------------------------------

type Parse<T> = (v: CborValue, path: string) => T;

const bad = (path: string, what: string): never => {
  throw new LmError(Reason.schema, `${path}: expected ${what} ([LM-FRAME-1])`);
};

const uint: Parse<number> = (v, p) => (typeof v === 'number' && v >= 0 ? v : bad(p, 'unsigned integer'));
const uintMax = (max: number): Parse<number> => (v, p) => (typeof v === 'number' && v >= 0 && v <= max ? v : bad(p, `unsigned integer <= ${max}`));
const uintIn = (min: number, max: number): Parse<number> => (v, p) => (typeof v === 'number' && v >= min && v <= max ? v : bad(p, `unsigned integer in ${min}..${max}`));
const bool: Parse<boolean> = (v, p) => (typeof v === 'boolean' ? v : bad(p, 'bool'));
const bstr = (min: number, max: number): Parse<Uint8Array> => (v, p) =>
  v instanceof Uint8Array && v.length >= min && v.length <= max ? v : bad(p, min === max ? `bstr .size ${min}` : `bstr of ${min}..${max} bytes`);
const tstr = (max: number, re?: RegExp): Parse<string> => (v, p) =>
  typeof v === 'string' && v.length <= max && (re === undefined || re.test(v)) ? v : bad(p, `tstr${re ? ' ' + re.source : ''} of at most ${max} characters`);
const array = <T>(item: Parse<T>, max: number, min = 0): Parse<T[]> => (v, p) => {
  if (!Array.isArray(v) || v.length > max || v.length < min) return bad(p, `array of ${min}..${max} items`);
  return (v as CborValue[]).map((x, i) => item(x, `${p}[${i}]`));
};
const tuple = <T extends unknown[]>(...items: { [K in keyof T]: Parse<T[K]> }): Parse<T> => (v, p) => {
  if (!Array.isArray(v) || v.length !== items.length) return bad(p, `array of ${items.length} items`);
  return items.map((it, i) => it((v as CborValue[])[i] as CborValue, `${p}[${i}]`)) as T;
};
const increasing = (max: number): Parse<number[]> => (v, p) => {
  const xs = array(uint, max, 1)(v, p);
  for (let i = 1; i < xs.length; i++) if ((xs[i] as number) <= (xs[i - 1] as number)) bad(p, 'strictly increasing indices');
  return xs;
};

export const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
const sid = bstr(16, 16);
const key32 = bstr(32, 32);
const id = tstr(64, ID_RE);

interface Field {
  key: number;
  name: string;
  parse: Parse<unknown>;
  optional?: boolean;
  emit?: (x: never) => CborValue;
}

function mapParser<T>(fields: Field[], what: string): Parse<T> {
  return (v, p) => parseMap(fields, v, p, what) as T;
}

function parseMap(fields: Field[], v: CborValue, path: string, what: string): Record<string, unknown> {
  if (!(v instanceof Map)) return bad(path, `${what} map`);
  const out: Record<string, unknown> = {};
  const known = new Set<number>();
  for (const f of fields) {
    known.add(f.key);
    const x = v.get(f.key);
    if (x === undefined) {
      if (!f.optional) bad(`${path}.${f.name}`, `field ${f.key} (${f.name}) present`);
      continue;
    }
    out[f.name] = f.parse(x, `${path}.${f.name}`);
  }
  for (const k of v.keys()) {
    // [LM-FRAME-4]: unknown keys below 16 are refused; 16 and above are extensions, ignored.
    if (typeof k !== 'number') bad(path, `unsigned integer keys, got "${String(k)}"`);
    else if (!known.has(k) && k < 16) bad(path, `no unknown key below 16, got ${k}`);
  }
  return out;
}

function emitMap(fields: Field[], obj: Record<string, unknown>): Map<number, CborValue> {
  const m = new Map<number, CborValue>();
  for (const f of fields) {
    const x = obj[f.name];
    if (x === undefined) {
      if (!f.optional) throw new LmError(Reason.schema, `missing field ${f.name}`);
      continue;
    }
    m.set(f.key, f.emit ? f.emit(x as never) : (x as CborValue));
  }
  return m;
}

const SUITE: Parse<SuiteId> = (v, p) => (typeof v === 'number' && isSuite(v) ? v : bad(p, 'suite 1, 2 or 3'));

const CAPS_FIELDS: Field[] = [
  { key: 1, name: 'suites', parse: array(tuple<[SuiteId, number]>(SUITE, uint), 3, 1) },
  { key: 2, name: 'mem', parse: uint },
  { key: 3, name: 'wmax', parse: uintMax(32) },
  { key: 4, name: 'workers', parse: uintMax(1024) },
];

const PARAM_FIELDS: Field[] = [
  { key: 1, name: 'suite', parse: SUITE },
  { key: 2, name: 'w', parse: uintMax(32) },
  { key: 3, name: 'L', parse: uintMax(32) },
  { key: 4, name: 'period', parse: uint },
  { key: 5, name: 'epoch', parse: uint },
  { key: 6, name: 'grace', parse: uint },
  { key: 7, name: 'r0', parse: uint },
  { key: 8, name: 'chunk', parse: uint },
  { key: 9, name: 'symbolsPerFrame', parse: uint },
  { key: 10, name: 'wt', parse: uintMax(32) },
];

const sidF = (optional = false): Field => ({ key: 0, name: 'sid', parse: sid, optional });
const detail = tstr(256);

/** Body schemas; the same as spec/frames.cddl. */
export const SCHEMAS: Readonly<Record<FrameTypeId, Field[]>> = {
  1: [
    { key: 1, name: 'device', parse: id },
    { key: 2, name: 'idpk', parse: key32 },
    { key: 3, name: 'caps', parse: mapParser<Caps>(CAPS_FIELDS, 'caps'), emit: (c: Caps) => emitMap(CAPS_FIELDS, c as unknown as Record<string, unknown>) },
    { key: 4, name: 'time', parse: uint },
    { key: 5, name: 'software', parse: tstr(64) },
    { key: 6, name: 'online', parse: bool },
    { key: 7, name: 'boot', parse: bstr(8, 8), optional: true },
  ],
  2: [
    sidF(),
    { key: 1, name: 'tx', parse: bstr(1, 4096) },
    { key: 2, name: 'epk', parse: key32 },
    { key: 3, name: 'params', parse: mapParser<SessionParams>(PARAM_FIELDS, 'params'), emit: (x: SessionParams) => emitMap(PARAM_FIELDS, x as unknown as Record<string, unknown>) },
    { key: 4, name: 'gwpk', parse: key32 },
    { key: 5, name: 'time', parse: uint },
    { key: 6, name: 'resume', parse: bool, optional: true },
  ],
  3: [sidF(), { key: 1, name: 'epk', parse: key32 }, { key: 2, name: 'oh', parse: key32 }, { key: 3, name: 'window', parse: uint }, { key: 4, name: 'from', parse: uint, optional: true }],
  4: [sidF(), { key: 1, name: 't1', parse: uint }],
  5: [sidF(), { key: 1, name: 't1', parse: uint }, { key: 2, name: 't2', parse: uint }, { key: 3, name: 't3', parse: uint }],
  6: [
    sidF(),
    { key: 1, name: 'seq', parse: uint },
    { key: 2, name: 'rev', parse: uint },
    { key: 3, name: 'chunk', parse: uint },
    { key: 4, name: 'off', parse: uint },
    { key: 5, name: 'ctlen', parse: uintMax(65536 + 16) },
    { key: 6, name: 'hints', parse: bstr(1, 65536) },
    { key: 7, name: 'idx', parse: increasing(4097), optional: true },
    { key: 8, name: 'sh', parse: uintIn(1, 23), optional: true },
  ],
  7: [sidF(), { key: 1, name: 'chunk', parse: uint }, { key: 2, name: 'rev', parse: uint }, { key: 3, name: 'wrapped', parse: bstr(48, 48) }],
  8: [
    sidF(),
    { key: 1, name: 'cum', parse: uint },
    { key: 2, name: 'sack', parse: array(tuple<[number, number]>(uint, uint), 64) },
    { key: 3, name: 'nack', parse: array(tuple<[number, number, number[]]>(uint, uint, array(uint, 4096)), 64) },
    { key: 4, name: 'consumed', parse: uint },
    { key: 5, name: 'credit', parse: uint },
  ],
  9: [sidF(), { key: 1, name: 'op', parse: uintMax(3) }, { key: 2, name: 'reason', parse: uint }],
  10: [
    sidF(),
    { key: 1, name: 'seq', parse: uint },
    { key: 2, name: 'rev', parse: uint },
    { key: 3, name: 'ctlen', parse: uintMax(4096 + 16) },
    { key: 4, name: 'hints', parse: bstr(1, 65536) },
  ],
  11: [sidF(), { key: 1, name: 'bytes', parse: uint }, { key: 2, name: 'chunks', parse: uint }, { key: 3, name: 'frames', parse: uint }, { key: 4, name: 'digest', parse: key32 }],
  12: [
    sidF(),
    { key: 1, name: 'jd', parse: key32 },
    { key: 2, name: 'bytes', parse: uint },
    { key: 3, name: 'digest', parse: key32 },
    { key: 4, name: 'time', parse: uint },
    { key: 5, name: 'device', parse: id },
    { key: 6, name: 'txh', parse: key32 },
  ],
  13: [
    sidF(true),
    { key: 1, name: 'code', parse: uint },
    { key: 2, name: 'detail', parse: detail },
    { key: 3, name: 'time', parse: uint },
    { key: 4, name: 'observed', parse: uint, optional: true },
    { key: 5, name: 'limit', parse: uint, optional: true },
  ],
  14: [sidF(true), { key: 1, name: 'code', parse: uint }, { key: 2, name: 'detail', parse: detail }, { key: 3, name: 'seq', parse: uint, optional: true }],
  15: [sidF(true), { key: 1, name: 'who', parse: id }, { key: 2, name: 'reason', parse: uint }],
};

// ---- envelope --------------------------------------------------------------------------------

const TBA_PREFIX = concatBytes(ascii('livematrix/1 frame'), Uint8Array.of(0));

/** How a sender authenticates a frame. */
export type Signer =
  | { kind: 'sig'; secretKey: Uint8Array }
  | { kind: 'mac'; key: Uint8Array }
  | { kind: 'none' };

/** Bytes covered by the authentication: prefix ‖ enc([v, type, body]) ([LM-FRAME-2]). */
export function toBeAuthenticated<T extends FrameTypeId>(type: T, body: Bodies[T]): Uint8Array {
  return concatBytes(TBA_PREFIX, encodeCbor([PROTOCOL_VERSION, type, emitMap(SCHEMAS[type], body as unknown as Record<string, unknown>)]));
}

/** HMAC-SHA-256 of the tba, truncated ([LM-FRAME-2]); OpenSSL's, which hashes a 16 KiB frame several times faster than a JS one. */
export function frameMac(key: Uint8Array, tba: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(tba).digest().subarray(0, MAC_LENGTH));
}

/**
 * Encodes and authenticates a frame.
 * @example encodeFrame(FrameType.TIME_REQ, { sid, t1: Date.now() }, { kind: 'mac', key: fkD2g })
 */
export function encodeFrame<T extends FrameTypeId>(type: T, body: Bodies[T], signer: Signer): Uint8Array {
  if (!AUTH_KINDS[type]?.includes(signer.kind)) throw new LmError(Reason.schema, `frame type ${type} cannot use authentication "${signer.kind}" ([LM-FRAME-5])`);
  const bodyMap = emitMap(SCHEMAS[type], body as unknown as Record<string, unknown>);
  // Validate what we emit with the same parser a receiver uses.
  parseMap(SCHEMAS[type], bodyMap, FRAME_TYPE_NAMES[type], FRAME_TYPE_NAMES[type]);
  const inner = encodeCbor([PROTOCOL_VERSION, type, bodyMap]);
  const tba = concatBytes(TBA_PREFIX, inner);
  let auth: Uint8Array;
  if (signer.kind === 'sig') auth = ed25519.sign(tba, signer.secretKey);
  else if (signer.kind === 'mac') auth = frameMac(signer.key, tba);
  else auth = new Uint8Array(0);
  // enc([v, type, body, auth]) is enc([v, type, body]) with the array head 0x83 -> 0x84 and the
  // encoded auth appended: no second encoding of the body
  const authEnc = encodeCbor(auth);
  const bytes = new Uint8Array(inner.length + authEnc.length);
  bytes.set(inner);
  bytes[0] = 0x84;
  bytes.set(authEnc, inner.length);
  if (bytes.length > MAX_FRAME) throw new LmError(Reason.tooLarge, `frame of ${bytes.length} bytes exceeds ${MAX_FRAME} ([LM-FRAME-1])`);
  return bytes;
}

function headLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/**
 * Decodes a frame and checks its schema ([LM-FRAME-1], [LM-FRAME-3], [LM-FRAME-4]) without
 * verifying its authentication (see {@link verifyFrame}). Throws only {@link LmError}.
 */
export function decodeFrame(bytes: Uint8Array): AnyFrame {
  try {
    return decodeFrameUnsafe(bytes);
  } catch (e) {
    if (e instanceof LmError) throw e;
    throw new LmError(Reason.internal, `frame decoder fault: ${errorMessage(e)}`);
  }
}

function decodeFrameUnsafe(bytes: Uint8Array): AnyFrame {
  if (!(bytes instanceof Uint8Array)) throw new LmError(Reason.malformed, 'frame is not a byte string');
  if (bytes.length > MAX_FRAME) throw new LmError(Reason.tooLarge, `frame of ${bytes.length} bytes exceeds ${MAX_FRAME} ([LM-FRAME-1])`);
  const v = decodeCbor(bytes);
  if (!Array.isArray(v)) throw new LmError(Reason.schema, 'frame is not an array ([LM-FRAME-1])');
  const arr = v as CborValue[];
  if (arr.length !== 4) throw new LmError(Reason.schema, `frame array has ${arr.length} items, expected 4 ([LM-FRAME-1])`);
  const [version, type, body, auth] = arr as [CborValue, CborValue, CborValue, CborValue];
  if (typeof version !== 'number') throw new LmError(Reason.schema, 'version is not an unsigned integer');
  if (version !== PROTOCOL_VERSION) throw new LmError(Reason.version, `version ${version} is not supported; this implementation speaks ${PROTOCOL_VERSION} ([LM-ROLE-2])`);
  if (typeof type !== 'number') throw new LmError(Reason.schema, 'type is not an unsigned integer');
  const schema = SCHEMAS[type as FrameTypeId];
  if (!schema) throw new LmError(Reason.unknownType, `unknown frame type ${type} ([LM-FRAME-1])`);
  const t = type as FrameTypeId;
  const name = FRAME_TYPE_NAMES[t];
  if (!(auth instanceof Uint8Array)) throw new LmError(Reason.schema, `${name}: auth is not a byte string`);
  const authKind = AUTH_KINDS[t].find((k) => AUTH_LEN[k] === auth.length);
  if (!authKind) throw new LmError(Reason.schema, `${name}: auth of ${auth.length} bytes fits none of ${AUTH_KINDS[t].join(', ')} ([LM-FRAME-3])`);
  const parsed = parseMap(schema, body, name, name);
  if (t === FrameType.HINTS && parsed['sh'] !== undefined && parsed['idx'] === undefined) throw new LmError(Reason.schema, 'HINTS: sh without idx ([LM-DLV-11])');
  // tba = prefix ‖ 0x83 ‖ the encoded version, type and body, which the input holds verbatim.
  const authStart = bytes.length - auth.length - headLength(auth.length);
  const tba = concatBytes(TBA_PREFIX, Uint8Array.of(0x83), bytes.subarray(1, authStart));
  return { v: 1, type: t, body: parsed, auth, authKind, tba } as unknown as AnyFrame;
}

/** Key material a receiver verifies a frame with. */
export interface VerifyKeys {
  /** Ed25519 public key of the sender, for SIG frames */
  signer?: Uint8Array;
  /** frame key of the sender's direction, for MAC frames */
  mac?: Uint8Array;
}

/**
 * Verifies a decoded frame's authentication ([LM-FRAME-2], [LM-SEC-2]); returns false for a
 * NONE frame (advisory, [LM-FRAME-5]) and throws `auth` on a failure.
 */
export function verifyFrame(frame: AnyFrame, keys: VerifyKeys): boolean {
  if (frame.authKind === 'none') return false;
  if (frame.authKind === 'mac') {
    if (!keys.mac) throw new LmError(Reason.auth, `${FRAME_TYPE_NAMES[frame.type]}: no frame key to verify the MAC`);
    if (!equalBytes(frameMac(keys.mac, frame.tba), frame.auth)) throw new LmError(Reason.auth, `${FRAME_TYPE_NAMES[frame.type]}: MAC does not verify ([LM-FRAME-2])`);
    return true;
  }
  if (!keys.signer) throw new LmError(Reason.auth, `${FRAME_TYPE_NAMES[frame.type]}: no public key to verify the signature`);
  let ok = false;
  try {
    ok = ed25519.verify(frame.auth, frame.tba, keys.signer, { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) throw new LmError(Reason.auth, `${FRAME_TYPE_NAMES[frame.type]}: signature does not verify ([LM-FRAME-2])`);
  return true;
}

/** SHA-256 of bytes; used for `oh`, `txh`, digests. */
export function digest(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}
