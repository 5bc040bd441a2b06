/**
 * @module frame-schemas
 * Frame bodies of SPEC.md §7: every frame type's body, its schema (mirrors frames.cddl), and the
 * map codec that parses and emits bodies by those schemas. Parsing throws only {@link LmError}.
 */
import { utf8Length } from './bytes.js';
import { type CborValue, encodeCbor } from './cbor.js';
import { LmError, Reason } from './errors.js';
import type { FrameTypeId } from './frames.js';
import { type SessionParams, type SuiteId, isSuite } from './params.js';

export interface Caps {
  /** [suite, measured hashes per second] */
  suites: [SuiteId, number][];
  /** bytes the device may spend on tables */
  mem: number;
  wmax: number;
  workers: number;
  /** the device opens protected jobs (SPEC §16, [LM-PROT-3]) */
  prot?: boolean;
}

/** `bd`: the boot sequence of the connection the HELLO announces, as in its Last Will ([LM-STATE-3]) */
export interface HelloBody { device: string; idpk: Uint8Array; caps: Caps; time: number; software: string; online: boolean; boot?: Uint8Array; bd?: number }
export interface OfferBody { sid: Uint8Array; tx: Uint8Array; epk: Uint8Array; params: SessionParams; gwpk: Uint8Array; time: number; resume?: boolean; tk?: Uint8Array }
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
/** `device`: on a fleet's alarm topic, the device the alarm is about ([LM-ALARM-6]) */
export interface AlarmBody { sid?: Uint8Array; code: number; detail: string; time: number; observed?: number; limit?: number; device?: string }
/** `oh`: in a device's signed refusal, SHA-256 of the OFFER it refuses ([LM-FRAME-9]); `tk`: the device's resume ticket, in a refusal `tx-resume` ([LM-LIC-4]); `rc`: the RECEIPT of the transaction's last session, in a refusal without a ticket ([LM-LIC-6]) */
export interface ErrorBody { sid?: Uint8Array; code: number; detail: string; seq?: number; oh?: Uint8Array; tk?: Uint8Array; rc?: Uint8Array }
/** An operator-signed revocation list ([LM-REVOKE-1]). */
export interface RevokeBody { seq: number; time: number; next: number; txs: Uint8Array[]; devices: string[]; operators: Uint8Array[]; opk: Uint8Array }
/** `bd`: on a device's state topic, the boot sequence of the connection the BYE (its Last Will) ends ([LM-STATE-3]) */
export interface ByeBody { sid?: Uint8Array; who: string; reason: number; bd?: number }
/**
 * A device's signed, retained status on its status topic ([LM-STATE-1]): its state (1 idle,
 * 2 streaming, 3 paused, 4 error, 5 offline, [LM-STATE-2]), `seq` from 0 on each connection, the
 * connection's boot sequence `bd` ([LM-STATE-3]), and the readings its host chose to show, in
 * clear ({@link STATUS_TEL_MAX} bytes encoded at most).
 */
export interface StatusBody { device: string; state: number; seq: number; time: number; bd: number; tel?: Map<string, CborValue>; detail?: string }
/**
 * A request to a service over the broker ([LM-SVC-6]): `args` is the deterministic CBOR of the
 * op's arguments sealed to the service (SPEC §16.1); `from` the requester's id (its inbox), `pk`
 * its Ed25519 key, which signs the frame.
 */
export interface SvcReqBody { id: Uint8Array; op: number; args: Uint8Array; time: number; from: string; pk: Uint8Array }
/** A service's answer to the request `id` ([LM-SVC-6]): code 0 and the sealed result, or a reason code and `detail`. */
export interface SvcRespBody { id: Uint8Array; code: number; result: Uint8Array; detail: string; time: number }

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
  16: RevokeBody;
  17: SvcReqBody;
  18: SvcRespBody;
  19: StatusBody;
}

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
/** A text string of at most `max` bytes of UTF-8 ([LM-FRAME-11]: bytes, as CDDL's `.size`). */
const tstr = (max: number, re?: RegExp): Parse<string> => (v, p) =>
  typeof v === 'string' && utf8Length(v) <= max && (re === undefined || re.test(v)) ? v : bad(p, `tstr${re ? ' ' + re.source : ''} of at most ${max} bytes of UTF-8 ([LM-FRAME-11])`);
const array = <T>(item: Parse<T>, max: number, min = 0): Parse<T[]> => (v, p) => {
  if (!Array.isArray(v) || v.length > max || v.length < min) return bad(p, `array of ${min}..${max} items`);
  return (v as CborValue[]).map((x, i) => item(x, `${p}[${i}]`));
};
const tuple = <T extends unknown[]>(...items: { [K in keyof T]: Parse<T[K]> }): Parse<T> => (v, p) => {
  if (!Array.isArray(v) || v.length !== items.length) return bad(p, `array of ${items.length} items`);
  return items.map((it, i) => it((v as CborValue[])[i] as CborValue, `${p}[${i}]`)) as T;
};
/** `idx` of HINTS: 1 to `max` strictly increasing indices ([LM-FRAME-13]). */
const increasing = (max: number): Parse<number[]> => (v, p) => {
  if (!Array.isArray(v) || v.length < 1 || v.length > max) return bad(p, `array of 1..${max} indices ([LM-FRAME-13])`);
  const xs = array(uint, max, 1)(v, p);
  for (let i = 1; i < xs.length; i++) if ((xs[i] as number) <= (xs[i - 1] as number)) bad(p, 'strictly increasing indices ([LM-FRAME-13])');
  return xs;
};

export const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
/** largest encoded resume ticket ([LM-LIC-4]) */
export const TICKET_MAX = 256;
/** largest RECEIPT frame a refusal carries back ([LM-LIC-6]) */
export const RECEIPT_MAX = 1024;
/** largest `args` of SVC_REQ and `result` of SVC_RESP, sealed ([LM-SVC-6]) */
export const SVC_MAX = 60_000;
/** largest encoded `tel` of a STATUS: the readings a device shows in clear ([LM-STATE-1]) */
export const STATUS_TEL_MAX = 4096;
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

export function parseMap(fields: Field[], v: CborValue, path: string, what: string): Record<string, unknown> {
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
    // [LM-FRAME-4]: unknown keys below 16 are refused; 16 and above are extensions, ignored, in a
    // body and in the maps nested in it (caps, params) alike.
    if (typeof k !== 'number') bad(path, `unsigned integer keys, got "${String(k)}"`);
    else if (!known.has(k) && k < 16) bad(path, `no unknown key below 16, got ${k}`);
  }
  return out;
}

export function emitMap(fields: Field[], obj: Record<string, unknown>): Map<number, CborValue> {
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
  { key: 5, name: 'prot', parse: bool, optional: true }, // [LM-PROT-3]: opens protected jobs
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
/** STATUS `tel`: a map with text keys, at most {@link STATUS_TEL_MAX} bytes encoded (decoded canonically, so encoding it again gives its size as received) */
const readings: Parse<Map<string, CborValue>> = (v, p) => {
  if (!(v instanceof Map) || ![...v.keys()].every((k) => typeof k === 'string')) return bad(p, 'map with text keys');
  if (encodeCbor(v).length > STATUS_TEL_MAX) return bad(p, `readings of at most ${STATUS_TEL_MAX} bytes encoded`);
  return v as Map<string, CborValue>;
};
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
    { key: 8, name: 'bd', parse: uint, optional: true }, // [LM-STATE-3]
  ],
  2: [
    sidF(),
    { key: 1, name: 'tx', parse: bstr(1, 4096) },
    { key: 2, name: 'epk', parse: key32 },
    { key: 3, name: 'params', parse: mapParser<SessionParams>(PARAM_FIELDS, 'params'), emit: (x: SessionParams) => emitMap(PARAM_FIELDS, x as unknown as Record<string, unknown>) },
    { key: 4, name: 'gwpk', parse: key32 },
    { key: 5, name: 'time', parse: uint },
    { key: 6, name: 'resume', parse: bool, optional: true },
    { key: 7, name: 'tk', parse: bstr(1, TICKET_MAX), optional: true }, // [LM-LIC-4]
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
    { key: 7, name: 'idx', parse: increasing(4096), optional: true }, // [LM-FRAME-13]
    { key: 8, name: 'sh', parse: uintIn(1, 23), optional: true }, // [LM-FRAME-14]
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
    { key: 6, name: 'device', parse: id, optional: true }, // [LM-ALARM-6]
  ],
  14: [sidF(true), { key: 1, name: 'code', parse: uint }, { key: 2, name: 'detail', parse: detail }, { key: 3, name: 'seq', parse: uint, optional: true }, { key: 4, name: 'oh', parse: key32, optional: true }, { key: 5, name: 'tk', parse: bstr(1, TICKET_MAX), optional: true }, { key: 6, name: 'rc', parse: bstr(1, RECEIPT_MAX), optional: true }],
  15: [sidF(true), { key: 1, name: 'who', parse: id }, { key: 2, name: 'reason', parse: uint }, { key: 3, name: 'bd', parse: uint, optional: true }], // bd: [LM-STATE-3]
  16: [
    { key: 1, name: 'seq', parse: uint },
    { key: 2, name: 'time', parse: uint },
    { key: 3, name: 'next', parse: uint },
    { key: 4, name: 'txs', parse: array(key32, 1024) },
    { key: 5, name: 'devices', parse: array(id, 1024) },
    { key: 6, name: 'operators', parse: array(key32, 64) },
    { key: 7, name: 'opk', parse: key32 },
  ],
  17: [
    { key: 1, name: 'id', parse: bstr(16, 16) },
    { key: 2, name: 'op', parse: uint },
    { key: 3, name: 'args', parse: bstr(0, SVC_MAX) },
    { key: 4, name: 'time', parse: uint },
    { key: 5, name: 'from', parse: id },
    { key: 6, name: 'pk', parse: key32 },
  ],
  18: [
    { key: 1, name: 'id', parse: bstr(16, 16) },
    { key: 2, name: 'code', parse: uint },
    { key: 3, name: 'result', parse: bstr(0, SVC_MAX) },
    { key: 4, name: 'detail', parse: detail },
    { key: 5, name: 'time', parse: uint },
  ],
  19: [
    { key: 1, name: 'device', parse: id },
    { key: 2, name: 'state', parse: uintIn(1, 5) }, // [LM-STATE-2]
    { key: 3, name: 'seq', parse: uint },
    { key: 4, name: 'time', parse: uint },
    { key: 5, name: 'bd', parse: uint }, // [LM-STATE-3]
    { key: 6, name: 'tel', parse: readings, optional: true },
    { key: 7, name: 'detail', parse: detail, optional: true },
  ],
};
