/**
 * @module frames
 * Frame codec of SPEC.md §7: frame types, the envelope, authentication (SIG, MAC, NONE). Each
 * type's body and schema (mirrors frames.cddl) are in frame-schemas.ts. Decoding throws only
 * {@link LmError}.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { createHash, createHmac } from 'node:crypto';
import { ascii, concatBytes, equalBytes } from './bytes.js';
import { type CborValue, decodeCbor, encodeCbor, LIMITS } from './cbor.js';
import { LmError, Reason, errorMessage } from './errors.js';
import { type Bodies, type HintsBody, SCHEMAS, emitMap, parseMap } from './frame-schemas.js';
import { type IdentitySigner, signWith } from './keystore.js';
import { PROTOCOL_VERSION } from './params.js';

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
  REVOKE: 16,
  SVC_REQ: 17,
  SVC_RESP: 18,
  STATUS: 19,
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
  16: ['sig'], // the operator's key ([LM-REVOKE-1])
  17: ['sig'], // the requester's identity key ([LM-SVC-6])
  18: ['sig'], // the service's identity key ([LM-SVC-6])
  19: ['sig'], // the device's identity key, as HELLO ([LM-STATE-1])
};

const AUTH_LEN: Record<AuthKind, number> = { sig: SIG_LENGTH, mac: MAC_LENGTH, none: 0 };

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

// ---- envelope --------------------------------------------------------------------------------

const TBA_PREFIX = concatBytes(ascii('livematrix/1 frame'), Uint8Array.of(0));

/** How a sender authenticates a frame: an Ed25519 signature by a seed or by a key store's signer (keystore.ts), a MAC, or nothing. */
export type Signer =
  | { kind: 'sig'; secretKey: Uint8Array }
  | { kind: 'sig'; key: IdentitySigner }
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
  if (type === FrameType.HINTS && signer.kind === 'mac') {
    const bytes = encodeHintsMac(body as HintsBody, signer.key);
    if (bytes) return bytes;
  }
  const bodyMap = emitMap(SCHEMAS[type], body as unknown as Record<string, unknown>);
  // Validate what we emit with the same parser a receiver uses.
  parseMap(SCHEMAS[type], bodyMap, FRAME_TYPE_NAMES[type], FRAME_TYPE_NAMES[type]);
  const inner = encodeCbor([PROTOCOL_VERSION, type, bodyMap]);
  const tba = concatBytes(TBA_PREFIX, inner);
  let auth: Uint8Array;
  if (signer.kind === 'sig') auth = 'key' in signer ? signWith(signer.key, tba) : ed25519.sign(tba, signer.secretKey);
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

// ---- HINTS under a MAC: most of a stream's frames, written in one pass ------------------------

/** Length of the CBOR head of an unsigned argument in shortest form ([LM-CBOR-1]). */
function uintLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

/** Writes the head of major type `major` with argument `n` at `at`; returns the next offset. */
function putHead(out: Uint8Array, at: number, major: number, n: number): number {
  const len = uintLength(n);
  out[at] = (major << 5) | (len === 1 ? n : len === 2 ? 24 : len === 3 ? 25 : len === 5 ? 26 : 27);
  if (len === 9) {
    const hi = Math.floor(n / 0x100000000);
    for (let i = 0; i < 4; i++) out[at + 1 + i] = (hi >>> (24 - 8 * i)) & 0xff;
  }
  for (let i = 1; i < len && i <= 4; i++) out[at + len - i] = (n >>> (8 * (i - 1))) & 0xff;
  return at + len;
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** enc([v, type, body]) starts with this head; the frame's own array has one item more (auth) */
const ARRAY3 = Uint8Array.of(0x83);

/**
 * The bytes {@link encodeFrame} gives a HINTS body under a MAC, without building the body's map
 * and copying the hints several times: one allocation, the fields in their canonical order (keys
 * 0 to 8), the MAC over the tba computed in place ([LM-FRAME-2]). Undefined when the body is not
 * one the HINTS schema accepts; the generic path then refuses it with its own message.
 */
function encodeHintsMac(b: HintsBody, key: Uint8Array): Uint8Array | undefined {
  const { sid, seq, rev, chunk, off, ctlen, hints, idx, sh } = b;
  if (!(sid instanceof Uint8Array) || sid.length !== 16 || !isUint(seq) || !isUint(rev) || !isUint(chunk) || !isUint(off) || !isUint(ctlen) || ctlen > 65536 + 16) return undefined;
  if (!(hints instanceof Uint8Array) || hints.length < 1 || hints.length > 65536) return undefined;
  if (sh !== undefined && !(isUint(sh) && sh >= 1 && sh <= 23)) return undefined; // [LM-FRAME-14]
  let idxBytes = 0;
  if (idx !== undefined) {
    if (!Array.isArray(idx) || idx.length < 1 || idx.length > 4096) return undefined;
    idxBytes = 1 + uintLength(idx.length);
    for (let i = 0; i < idx.length; i++) {
      const x = idx[i];
      if (!isUint(x) || (i > 0 && x <= (idx[i - 1] as number))) return undefined; // [LM-FRAME-13]
      idxBytes += uintLength(x);
    }
  }
  const fields = 7 + (idx !== undefined ? 1 : 0) + (sh !== undefined ? 1 : 0);
  const size = 4 + 18 + 1 + uintLength(seq) + 1 + uintLength(rev) + 1 + uintLength(chunk) + 1 + uintLength(off) + 1 + uintLength(ctlen)
    + 1 + uintLength(hints.length) + hints.length + idxBytes + (sh !== undefined ? 1 + uintLength(sh) : 0) + 1 + MAC_LENGTH;
  if (size > MAX_FRAME) return undefined;
  const out = new Uint8Array(size);
  out[0] = 0x84;
  out[1] = PROTOCOL_VERSION;
  out[2] = FrameType.HINTS;
  out[3] = 0xa0 | fields;
  out[4] = 0;
  out[5] = 0x50;
  out.set(sid, 6);
  let p = 22;
  out[p++] = 1;
  p = putHead(out, p, 0, seq);
  out[p++] = 2;
  p = putHead(out, p, 0, rev);
  out[p++] = 3;
  p = putHead(out, p, 0, chunk);
  out[p++] = 4;
  p = putHead(out, p, 0, off);
  out[p++] = 5;
  p = putHead(out, p, 0, ctlen);
  out[p++] = 6;
  p = putHead(out, p, 2, hints.length);
  out.set(hints, p);
  p += hints.length;
  if (idx !== undefined) {
    out[p++] = 7;
    p = putHead(out, p, 4, idx.length);
    for (const x of idx) p = putHead(out, p, 0, x);
  }
  if (sh !== undefined) {
    out[p++] = 8;
    p = putHead(out, p, 0, sh);
  }
  const mac = createHmac('sha256', key).update(TBA_PREFIX).update(ARRAY3).update(out.subarray(1, p)).digest();
  out[p++] = 0x40 | MAC_LENGTH;
  out.set(mac.subarray(0, MAC_LENGTH), p);
  return out;
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
  // [LM-FRAME-10]: size (above), the whole input as CBOR, the envelope, version, shape, type,
  // auth length, body; authentication last (verifyFrame)
  const v = decodeCbor(bytes);
  if (!Array.isArray(v)) throw new LmError(Reason.schema, 'frame is not an array ([LM-FRAME-1])');
  const arr = v as CborValue[];
  const version = arr[0];
  if (typeof version !== 'number' || version < 0) throw new LmError(Reason.schema, 'the frame\'s first element (version) is not an unsigned integer ([LM-FRAME-10])');
  if (version !== PROTOCOL_VERSION) throw new LmError(Reason.version, `version ${version} is not supported; this implementation speaks ${PROTOCOL_VERSION} ([LM-ROLE-2])`);
  if (arr.length !== 4) throw new LmError(Reason.schema, `frame array has ${arr.length} items, expected 4 ([LM-FRAME-1])`);
  const [, type, body, auth] = arr as [CborValue, CborValue, CborValue, CborValue];
  if (typeof type !== 'number' || type < 0) throw new LmError(Reason.schema, 'type is not an unsigned integer ([LM-FRAME-10])');
  const schema = SCHEMAS[type as FrameTypeId];
  if (!schema) throw new LmError(Reason.unknownType, `unknown frame type ${type} ([LM-FRAME-1])`);
  const t = type as FrameTypeId;
  const name = FRAME_TYPE_NAMES[t];
  if (!(auth instanceof Uint8Array)) throw new LmError(Reason.schema, `${name}: auth is not a byte string`);
  const authKind = AUTH_KINDS[t].find((k) => AUTH_LEN[k] === auth.length);
  if (!authKind) throw new LmError(Reason.schema, `${name}: auth of ${auth.length} bytes fits none of ${AUTH_KINDS[t].join(', ')} ([LM-FRAME-3])`);
  const parsed = parseMap(schema, body, name, name);
  if (t === FrameType.HINTS && parsed['sh'] !== undefined && parsed['idx'] === undefined) throw new LmError(Reason.schema, 'HINTS: sh without idx ([LM-FRAME-14])');
  // tba = prefix ‖ 0x83 ‖ the encoded version, type and body, which the input holds verbatim:
  // the items as received, extension keys included, never re-encoded ([LM-FRAME-12]).
  const authStart = bytes.length - auth.length - headLength(auth.length);
  const tba = new Uint8Array(TBA_PREFIX.length + authStart);
  tba.set(TBA_PREFIX);
  tba[TBA_PREFIX.length] = 0x83;
  tba.set(bytes.subarray(1, authStart), TBA_PREFIX.length + 1);
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
