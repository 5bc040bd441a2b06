/**
 * @module cbor-scan
 * A structural check of a frame in place: `scanFrame(bytes)` walks the bytes once and answers
 * whether {@link decodeFrame} would accept them (the CBOR profile of SPEC.md §6, [LM-CBOR-1] to
 * [LM-CBOR-5], and the envelope and body schema of §7, [LM-FRAME-1], [LM-FRAME-3], [LM-FRAME-4],
 * [LM-FRAME-13], [LM-FRAME-14]), and of which type, without building a value, copying a byte or
 * throwing. It is for a party that checks many frames and keeps none, such as a broker
 * ([LM-BRK-3]): it accepts exactly what the decoder accepts, and on a refusal the caller asks the
 * decoder why (reason and message), so verdicts stay the decoder's.
 *
 * The body rules below mirror frame-schemas.ts field by field (keys, optional fields, ranges).
 * A schema change there that this table lacks makes the scan refuse frames the decoder takes
 * (the caller then decodes them: slower, same verdict) or, for a tightened range, take frames the
 * decoder refuses: broker/test/frame-scan.test.ts compares the two on generated and mutated
 * frames of every type and checks the table's keys against `SCHEMAS`.
 *
 * @example
 * const type = scanFrame(payload); // 0: not a frame; decodeFrame(payload) throws the reason
 */
import { LIMITS } from './cbor.js';
import { RECEIPT_MAX, STATUS_TEL_MAX, SVC_MAX, TICKET_MAX } from './frame-schemas.js';
import { AUTH_KINDS, type FrameTypeId, MAC_LENGTH, SIG_LENGTH } from './frames.js';

const MAX_INT = Number.MAX_SAFE_INTEGER;
const MAX_INPUT = LIMITS.maxInput;
const MAX_STRING = LIMITS.maxString;
const MAX_ITEMS = LIMITS.maxItems;
const MAX_DEPTH = LIMITS.maxDepth;

// ---- rules ------------------------------------------------------------------------------------

/** The kinds of value a field's rule describes (`kind` of {@link ScanRule}). */
export const RuleKind = { uint: 0, bool: 1, bstr: 2, tstr: 3, id: 4, array: 5, tuple: 6, increasing: 7, map: 8, textMap: 9 } as const;
const { uint: UINT, bool: BOOL, bstr: BSTR, tstr: TSTR, id: ID, array: ARRAY, tuple: TUPLE, increasing: INCREASING, map: MAP, textMap: TEXT_MAP } = RuleKind;

/**
 * One field's value: `min`..`max` bound an unsigned integer's value, a string's bytes ([LM-FRAME-11])
 * or an array's items; a text map's bytes encoded (`max`). Every rule has every property, so the
 * scan's property reads stay monomorphic.
 */
export interface ScanRule {
  readonly kind: number;
  readonly min: number;
  readonly max: number;
  /** ARRAY: [item]; TUPLE: the items */
  readonly items: readonly ScanRule[];
  /** MAP: the fields, by ascending key */
  readonly fields: readonly FieldRule[];
}

/** A body or nested map's field, as frame-schemas.ts' `Field`. */
export interface FieldRule {
  readonly key: number;
  readonly name: string;
  readonly rule: ScanRule;
  readonly optional: boolean;
}

const rule = (kind: number, min = 0, max = MAX_INT, items: readonly ScanRule[] = [], fields: readonly FieldRule[] = []): ScanRule => ({ kind, min, max, items, fields });
const uint = rule(UINT);
const uintMax = (max: number) => rule(UINT, 0, max);
const uintIn = (min: number, max: number) => rule(UINT, min, max);
const bool = rule(BOOL);
const bstr = (min: number, max: number) => rule(BSTR, min, max);
const tstr = (max: number) => rule(TSTR, 0, max);
const id = rule(ID, 1, 64);
const array = (item: ScanRule, max: number, min = 0) => rule(ARRAY, min, max, [item]);
const tuple = (...items: ScanRule[]) => rule(TUPLE, items.length, items.length, items);
const increasing = (max: number) => rule(INCREASING, 1, max);
const map = (fields: FieldRule[]) => rule(MAP, 0, MAX_INT, [], [...fields].sort((a, b) => a.key - b.key));
/** a map with text keys only, of at most `max` bytes encoded (STATUS `tel`) */
const textMap = (max: number) => rule(TEXT_MAP, 0, max);
const f = (key: number, name: string, r: ScanRule, optional = false): FieldRule => ({ key, name, rule: r, optional });

const sid = bstr(16, 16);
const key32 = bstr(32, 32);
const suite = uintIn(1, 3);
const detail = tstr(256);
const sidF = (optional = false) => f(0, 'sid', sid, optional);

const CAPS = map([f(1, 'suites', array(tuple(suite, uint), 3, 1)), f(2, 'mem', uint), f(3, 'wmax', uintMax(32)), f(4, 'workers', uintMax(1024)), f(5, 'prot', bool, true)]);
const PARAMS = map([
  f(1, 'suite', suite), f(2, 'w', uintMax(32)), f(3, 'L', uintMax(32)), f(4, 'period', uint), f(5, 'epoch', uint),
  f(6, 'grace', uint), f(7, 'r0', uint), f(8, 'chunk', uint), f(9, 'symbolsPerFrame', uint), f(10, 'wt', uintMax(32)),
]);

/** The body of each frame type, as frame-schemas.ts' SCHEMAS (and frames.cddl). */
export const SCAN_SCHEMAS: Readonly<Partial<Record<FrameTypeId, readonly FieldRule[]>>> = {
  1: [f(1, 'device', id), f(2, 'idpk', key32), f(3, 'caps', CAPS), f(4, 'time', uint), f(5, 'software', tstr(64)), f(6, 'online', bool), f(7, 'boot', bstr(8, 8), true), f(8, 'bd', uint, true)],
  2: [sidF(), f(1, 'tx', bstr(1, 4096)), f(2, 'epk', key32), f(3, 'params', PARAMS), f(4, 'gwpk', key32), f(5, 'time', uint), f(6, 'resume', bool, true), f(7, 'tk', bstr(1, TICKET_MAX), true)],
  3: [sidF(), f(1, 'epk', key32), f(2, 'oh', key32), f(3, 'window', uint), f(4, 'from', uint, true)],
  4: [sidF(), f(1, 't1', uint)],
  5: [sidF(), f(1, 't1', uint), f(2, 't2', uint), f(3, 't3', uint)],
  6: [sidF(), f(1, 'seq', uint), f(2, 'rev', uint), f(3, 'chunk', uint), f(4, 'off', uint), f(5, 'ctlen', uintMax(65536 + 16)), f(6, 'hints', bstr(1, 65536)), f(7, 'idx', increasing(4096), true), f(8, 'sh', uintIn(1, 23), true)],
  7: [sidF(), f(1, 'chunk', uint), f(2, 'rev', uint), f(3, 'wrapped', bstr(48, 48))],
  8: [sidF(), f(1, 'cum', uint), f(2, 'sack', array(tuple(uint, uint), 64)), f(3, 'nack', array(tuple(uint, uint, array(uint, 4096)), 64)), f(4, 'consumed', uint), f(5, 'credit', uint)],
  9: [sidF(), f(1, 'op', uintMax(3)), f(2, 'reason', uint)],
  10: [sidF(), f(1, 'seq', uint), f(2, 'rev', uint), f(3, 'ctlen', uintMax(4096 + 16)), f(4, 'hints', bstr(1, 65536))],
  11: [sidF(), f(1, 'bytes', uint), f(2, 'chunks', uint), f(3, 'frames', uint), f(4, 'digest', key32)],
  12: [sidF(), f(1, 'jd', key32), f(2, 'bytes', uint), f(3, 'digest', key32), f(4, 'time', uint), f(5, 'device', id), f(6, 'txh', key32)],
  13: [sidF(true), f(1, 'code', uint), f(2, 'detail', detail), f(3, 'time', uint), f(4, 'observed', uint, true), f(5, 'limit', uint, true), f(6, 'device', id, true)],
  14: [sidF(true), f(1, 'code', uint), f(2, 'detail', detail), f(3, 'seq', uint, true), f(4, 'oh', key32, true), f(5, 'tk', bstr(1, TICKET_MAX), true), f(6, 'rc', bstr(1, RECEIPT_MAX), true)],
  15: [sidF(true), f(1, 'who', id), f(2, 'reason', uint), f(3, 'bd', uint, true)],
  16: [f(1, 'seq', uint), f(2, 'time', uint), f(3, 'next', uint), f(4, 'txs', array(key32, 1024)), f(5, 'devices', array(id, 1024)), f(6, 'operators', array(key32, 64)), f(7, 'opk', key32)],
  17: [f(1, 'id', bstr(16, 16)), f(2, 'op', uint), f(3, 'args', bstr(0, SVC_MAX)), f(4, 'time', uint), f(5, 'from', id), f(6, 'pk', key32)],
  18: [f(1, 'id', bstr(16, 16)), f(2, 'code', uint), f(3, 'result', bstr(0, SVC_MAX)), f(4, 'detail', detail), f(5, 'time', uint)],
  19: [f(1, 'device', id), f(2, 'state', uintIn(1, 5)), f(3, 'seq', uint), f(4, 'time', uint), f(5, 'bd', uint), f(6, 'tel', textMap(STATUS_TEL_MAX), true), f(7, 'detail', detail, true)],
};

/** Bodies by type number, sorted by key; undefined for a type the table lacks. */
const BODIES: (readonly FieldRule[] | undefined)[] = [];
/** Authentication lengths a type allows ([LM-FRAME-3]): bit 0 for none (0 bytes), 1 for a MAC, 2 for a signature. */
const AUTH_BITS: number[] = [];
for (const [t, fields] of Object.entries(SCAN_SCHEMAS)) {
  const type = Number(t) as FrameTypeId;
  BODIES[type] = [...(fields ?? [])].sort((a, b) => a.key - b.key);
  AUTH_BITS[type] = (AUTH_KINDS[type] ?? []).reduce((m, k) => m | (k === 'none' ? 1 : k === 'mac' ? 2 : 4), 0);
}
const authBit = (len: number): number => (len === 0 ? 1 : len === MAC_LENGTH ? 2 : len === SIG_LENGTH ? 4 : 0);

/** Bytes of an id ([A-Za-z0-9._-], SPEC.md §10). */
const ID_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-') ID_BYTE[c.charCodeAt(0)] = 1;

// ---- the scan ---------------------------------------------------------------------------------
// One scan at a time (it never yields): the input and position are module state, so that no
// call allocates. Every function answers false (or -1) for anything the decoder would refuse.

const EMPTY = new Uint8Array(0);
let buf: Uint8Array = EMPTY;
let pos = 0;
let end = 0;
/** the argument of the last head read (for major type 7: its initial byte) */
let arg = 0;

/**
 * Reads one head ([LM-CBOR-3] shortest form; no indefinite lengths, tags, floats or simple values
 * but false, true and null, [LM-CBOR-2]); returns its major type, or -1. An argument of 2^53 or
 * more is refused here: no major type of the profile takes one.
 */
function head(): number {
  if (pos >= end) return -1;
  const ib = buf[pos++] as number;
  const major = ib >> 5;
  const ai = ib & 0x1f;
  if (major === 7) {
    arg = ib;
    return ib === 0xf4 || ib === 0xf5 || ib === 0xf6 ? 7 : -1;
  }
  if (major === 6) return -1;
  if (ai < 24) {
    arg = ai;
    return major;
  }
  if (ai === 24) {
    if (pos >= end) return -1;
    arg = buf[pos++] as number;
    return arg < 24 ? -1 : major;
  }
  if (ai === 25) {
    if (end - pos < 2) return -1;
    arg = ((buf[pos] as number) << 8) | (buf[pos + 1] as number);
    pos += 2;
    return arg < 0x100 ? -1 : major;
  }
  if (ai === 26) {
    if (end - pos < 4) return -1;
    arg = (buf[pos] as number) * 0x1000000 + (((buf[pos + 1] as number) << 16) | ((buf[pos + 2] as number) << 8) | (buf[pos + 3] as number));
    pos += 4;
    return arg < 0x10000 ? -1 : major;
  }
  if (ai === 27) {
    if (end - pos < 8) return -1;
    const hi = (buf[pos] as number) * 0x1000000 + (((buf[pos + 1] as number) << 16) | ((buf[pos + 2] as number) << 8) | (buf[pos + 3] as number));
    const lo = (buf[pos + 4] as number) * 0x1000000 + (((buf[pos + 5] as number) << 16) | ((buf[pos + 6] as number) << 8) | (buf[pos + 7] as number));
    pos += 8;
    if (hi === 0 || hi >= 0x200000) return -1; // not shortest, or 2^53 and above
    arg = hi * 0x100000000 + lo;
    return major;
  }
  return -1; // 28-30 reserved, 31 indefinite or break
}

/** Skips the bytes of a string whose head was just read ([LM-CBOR-5]: its length, checked against the input). */
function skipBytes(): boolean {
  if (arg > MAX_STRING || arg > end - pos) return false;
  pos += arg;
  return true;
}

/** Skips a text string whose head was just read; its bytes must be UTF-8 ([LM-CBOR-3]), as a fatal TextDecoder checks. */
function skipText(): boolean {
  if (arg > MAX_STRING || arg > end - pos) return false;
  const e = pos + arg;
  let i = pos;
  while (i < e) {
    const c = buf[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c < 0xc2 || c > 0xf4) return false;
    const c1 = i + 1 < e ? (buf[i + 1] as number) : -1;
    if (c < 0xe0) {
      if ((c1 & 0xc0) !== 0x80) return false;
      i += 2;
    } else if (c < 0xf0) {
      if (i + 2 >= e || (c === 0xe0 ? c1 < 0xa0 || c1 > 0xbf : c === 0xed ? c1 < 0x80 || c1 > 0x9f : (c1 & 0xc0) !== 0x80) || ((buf[i + 2] as number) & 0xc0) !== 0x80) return false;
      i += 3;
    } else {
      if (i + 3 >= e || (c === 0xf0 ? c1 < 0x90 || c1 > 0xbf : c === 0xf4 ? c1 < 0x80 || c1 > 0x8f : (c1 & 0xc0) !== 0x80)) return false;
      if (((buf[i + 2] as number) & 0xc0) !== 0x80 || ((buf[i + 3] as number) & 0xc0) !== 0x80) return false;
      i += 4;
    }
  }
  pos = e;
  return true;
}

/** Compares the encoded keys [a, ae) and [b, be) as RFC 8949 §4.2.1 orders them (bytewise, shorter first). */
function compareRanges(a: number, ae: number, b: number, be: number): number {
  const n = Math.min(ae - a, be - b);
  for (let i = 0; i < n; i++) {
    const d = (buf[a + i] as number) - (buf[b + i] as number);
    if (d !== 0) return d;
  }
  return ae - a - (be - b);
}

/** Any one data item of the profile at `depth` containers below the top (an extension key's value). */
function item(depth: number): boolean {
  switch (head()) {
    case 0:
    case 7:
      return true;
    case 1:
      return arg < MAX_INT;
    case 2:
      return skipBytes();
    case 3:
      return skipText();
    case 4: {
      if (depth >= MAX_DEPTH || arg > MAX_ITEMS) return false;
      for (let n = arg; n > 0; n--) if (!item(depth + 1)) return false;
      return true;
    }
    case 5:
      return anyMap(depth, false);
    default:
      return false;
  }
}

/** A map whose head was just read: keys unsigned integers or text (`textOnly`: text), in canonical order, no duplicates. */
function anyMap(depth: number, textOnly: boolean): boolean {
  if (depth >= MAX_DEPTH || arg > MAX_ITEMS) return false;
  let prev = -1;
  let prevEnd = -1;
  for (let n = arg; n > 0; n--) {
    const k = pos;
    const m = head();
    if (m === 3) {
      if (!skipText()) return false;
    } else if (m !== 0 || textOnly) return false;
    if (prev >= 0 && compareRanges(prev, prevEnd, k, pos) >= 0) return false;
    prev = k;
    prevEnd = pos;
    if (!item(depth + 1)) return false;
  }
  return true;
}

/** One field's value by its rule, at `depth`. */
function value(r: ScanRule, depth: number): boolean {
  const start = pos;
  const m = head();
  switch (r.kind) {
    case UINT:
      return m === 0 && arg >= r.min && arg <= r.max;
    case BOOL:
      return m === 7 && arg !== 0xf6;
    case BSTR:
      return m === 2 && arg >= r.min && arg <= r.max && skipBytes();
    case TSTR:
      return m === 3 && arg <= r.max && skipText();
    case ID: {
      if (m !== 3 || arg < 1 || arg > 64 || arg > end - pos) return false;
      for (let i = pos + arg - 1; i >= pos; i--) if (ID_BYTE[buf[i] as number] === 0) return false;
      pos += arg;
      return true;
    }
    case ARRAY: {
      if (m !== 4 || depth >= MAX_DEPTH || arg > MAX_ITEMS || arg < r.min || arg > r.max) return false;
      const it = r.items[0] as ScanRule;
      for (let n = arg; n > 0; n--) if (!value(it, depth + 1)) return false;
      return true;
    }
    case TUPLE: {
      if (m !== 4 || depth >= MAX_DEPTH || arg !== r.items.length) return false;
      for (const it of r.items) if (!value(it, depth + 1)) return false;
      return true;
    }
    case INCREASING: {
      // [LM-FRAME-13] 1 to max strictly increasing unsigned integers
      if (m !== 4 || depth >= MAX_DEPTH || arg > MAX_ITEMS || arg < r.min || arg > r.max) return false;
      let prev = -1;
      for (let n = arg; n > 0; n--) {
        if (head() !== 0 || arg <= prev) return false;
        prev = arg;
      }
      return true;
    }
    case MAP:
      return m === 5 && fieldsOf(r.fields, depth) >= 0;
    case TEXT_MAP:
      return m === 5 && anyMap(depth, true) && pos - start <= r.max;
    default:
      return false;
  }
}

/**
 * A body (or caps, params) map whose head was just read, by its fields ([LM-FRAME-1]; [LM-FRAME-4]:
 * unknown keys below 16 refused, 16 and above skipped whatever they hold); returns a bit per key
 * present, or -1.
 */
function fieldsOf(fields: readonly FieldRule[], depth: number): number {
  if (depth >= MAX_DEPTH || arg > MAX_ITEMS) return -1;
  let fi = 0;
  let prev = -1;
  let seen = 0;
  for (let n = arg; n > 0; n--) {
    if (head() !== 0) return -1; // text keys: the schemas have none
    const k = arg;
    if (k <= prev) return -1; // shortest-form unsigned keys sort as their values
    prev = k;
    while (fi < fields.length && (fields[fi] as FieldRule).key < k) {
      if (!(fields[fi] as FieldRule).optional) return -1;
      fi++;
    }
    const fr = fields[fi];
    if (fr !== undefined && fr.key === k) {
      if (!value(fr.rule, depth + 1)) return -1;
      seen |= 1 << k;
      fi++;
    } else if (k < 16 || !item(depth + 1)) return -1;
  }
  for (; fi < fields.length; fi++) if (!(fields[fi] as FieldRule).optional) return -1;
  return seen;
}

/**
 * The type of the frame `bytes` holds when {@link decodeFrame} would accept it (it does not
 * verify authentication), or 0. Never throws and allocates nothing.
 * @example
 * scanFrame(encodeFrame(FrameType.BYE, { who: 'd1', reason: 81 }, { kind: 'none' })) // 15
 */
export function scanFrame(bytes: Uint8Array): FrameTypeId | 0 {
  const n = bytes.length;
  // [LM-FRAME-1] an array of four whose first item is version 1 ([LM-ROLE-2])
  if (n > MAX_INPUT || bytes[0] !== 0x84 || bytes[1] !== 0x01) return 0;
  buf = bytes;
  pos = 2;
  end = n;
  const type = scanEnvelope();
  buf = EMPTY;
  return type;
}

function scanEnvelope(): FrameTypeId | 0 {
  if (head() !== 0) return 0;
  const type = arg;
  const body = BODIES[type];
  if (body === undefined) return 0;
  if (head() !== 5) return 0;
  const seen = fieldsOf(body, 1);
  if (seen < 0) return 0;
  if (type === 6 && (seen & (1 << 8)) !== 0 && (seen & (1 << 7)) === 0) return 0; // [LM-FRAME-14] sh without idx
  if (head() !== 2 || (authBit(arg) & (AUTH_BITS[type] as number)) === 0 || arg > end - pos) return 0;
  pos += arg;
  return pos === end ? (type as FrameTypeId) : 0; // [LM-CBOR-4] nothing after the item
}

/**
 * True when `bytes` is one data item of the CBOR profile that {@link decodeCbor} would accept
 * (any shape, no schema). Never throws and allocates nothing.
 */
export function scanCbor(bytes: Uint8Array): boolean {
  if (bytes.length === 0 || bytes.length > MAX_INPUT) return false;
  buf = bytes;
  pos = 0;
  end = bytes.length;
  const ok = item(0) && pos === end;
  buf = EMPTY;
  return ok;
}
