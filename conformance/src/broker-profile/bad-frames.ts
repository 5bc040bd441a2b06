/**
 * @module broker-profile/bad-frames
 * Payloads a broker's frame check must drop on a device's `out` topic ([LM-BRK-3], [LM-MQTT-4]),
 * each built by hand around a BYE (authentication NONE, allowed on `out`) so that exactly one
 * rule is broken, each with the requirement it breaks, and each carrying a `sid` of its own so
 * that a leaked one is recognised even when it is no frame.
 */
import { type CborValue, FrameType, Reason, encodeCbor, encodeFrame, randomBytes, signRevocation, toHex, type IdentityKeyPair } from '@livematrix/spec';
import { R, type RequirementId } from '../generated/requirements.js';

export interface BadPayload {
  /** the requirement the payload breaks */
  id: RequirementId;
  what: string;
  /** the 16-byte marker inside, hex */
  sid: string;
  bytes: Uint8Array;
}

const cat = (...parts: (Uint8Array | number[])[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
};
const enc = (v: CborValue) => encodeCbor(v);
/** a map head of n entries (n < 24) */
const mapHead = (n: number) => [0xa0 + n];
const NONE = enc(new Uint8Array(0));

/**
 * The payloads. `who` is the publishing device's id; `operator` a throw-away key for a REVOKE
 * frame, which is valid but allowed on the revocation topic only ([LM-REVOKE-4]).
 */
export function badPayloads(who: string, operator: IdentityKeyPair): BadPayload[] {
  const out: BadPayload[] = [];
  const add = (id: RequirementId, what: string, build: (sidField: Uint8Array, sid: Uint8Array) => Uint8Array) => {
    const sid = randomBytes(16);
    // key 0 (sid) first in every body: the keys of a canonical map are sorted
    out.push({ id, what, sid: toHex(sid), bytes: build(cat(enc(0), enc(sid)), sid) });
  };
  const W = cat(enc(1), enc(who));
  const REASON = cat(enc(2), enc(Reason.offline));
  /** enc([v, type, body, auth]) from encoded parts */
  const frame = (body: Uint8Array, o: { v?: number; type?: number; auth?: Uint8Array } = {}) => cat([0x84], enc(o.v ?? 1), enc(o.type ?? 15), body, o.auth ?? NONE);
  const good = (sidF: Uint8Array) => frame(cat(mapHead(3), sidF, W, REASON));

  // [LM-CBOR-2] not well-formed: malformed; a float, a tag, an indefinite length: schema
  add(R.LM_CBOR_2, 'a break byte where an item must start (not well-formed CBOR)', (s) => cat(good(s).subarray(0, 3), [0xff], s));
  add(R.LM_CBOR_2, 'a floating-point reason (half float 1.0)', (s) => frame(cat(mapHead(3), s, W, enc(2), [0xf9, 0x3c, 0x00])));
  add(R.LM_CBOR_2, 'a tagged reason (tag 1)', (s) => frame(cat(mapHead(3), s, W, enc(2), [0xc1], enc(Reason.offline))));
  add(R.LM_CBOR_2, 'a body map of indefinite length', (s) => frame(cat([0xbf], s, W, REASON, [0xff])));
  add(R.LM_CBOR_2, 'the simple value undefined as the reason', (s) => frame(cat(mapHead(3), s, W, enc(2), [0xf7])));
  // [LM-CBOR-3] well-formed but not deterministic
  add(R.LM_CBOR_3, 'a reason in a longer form than needed (0x19 0x00 0x51)', (s) => frame(cat(mapHead(3), s, W, enc(2), [0x19, 0x00, Reason.offline])));
  add(R.LM_CBOR_3, 'body keys out of order', (s) => frame(cat(mapHead(3), s, REASON, W)));
  add(R.LM_CBOR_3, 'a duplicate body key', (s) => frame(cat(mapHead(4), s, W, W, REASON)));
  add(R.LM_CBOR_3, 'a text string that is not UTF-8', (s) => frame(cat(mapHead(3), s, enc(1), [0x62, 0xc3, 0x28], REASON)));
  // [LM-CBOR-4] trailing bytes
  add(R.LM_CBOR_4, 'a byte after the frame', (s) => cat(good(s), [0x00]));
  // [LM-CBOR-5] truncated, lengths beyond the input, too large, too deep
  add(R.LM_CBOR_5, 'a truncated frame', (s) => good(s).subarray(0, good(s).length - 1));
  add(R.LM_CBOR_5, 'a byte string declaring 2^31 bytes that are not there', (s) => frame(cat(mapHead(4), s, W, REASON, enc(16), [0x5a, 0x7f, 0xff, 0xff, 0xff])));
  add(R.LM_CBOR_5, 'a frame of more than 65536 bytes', (s) => frame(cat(mapHead(4), s, W, REASON, enc(16), enc(new Uint8Array(66_000)))));
  add(R.LM_CBOR_5, 'an array of 4097 entries', (s) => frame(cat(mapHead(4), s, W, REASON, enc(16), [0x99, 0x10, 0x01], new Uint8Array(4097))));
  add(R.LM_CBOR_5, 'arrays nested 10 deep', (s) => frame(cat(mapHead(4), s, W, REASON, enc(16), new Array<number>(9).fill(0x81), [0x80])));
  // [LM-ROLE-2] a version it does not implement
  add(R.LM_ROLE_2, 'version 2', (s) => frame(cat(mapHead(3), s, W, REASON), { v: 2 }));
  // [LM-FRAME-1] not the envelope, an unknown type, a body off its schema
  add(R.LM_FRAME_1, 'an envelope of 3 items', (s) => cat([0x83], enc(1), enc(15), cat(mapHead(3), s, W, REASON)));
  add(R.LM_FRAME_1, 'frame type 99 (unknown)', (s) => frame(cat(mapHead(3), s, W, REASON), { type: 99 }));
  add(R.LM_FRAME_1, 'a BYE without its `who`', (s) => frame(cat(mapHead(2), s, REASON)));
  add(R.LM_FRAME_1, 'a BYE whose `who` is a number', (s) => frame(cat(mapHead(3), s, enc(1), enc(7), REASON)));
  // [LM-FRAME-3] an auth length no kind of the type has
  add(R.LM_FRAME_3, 'a BYE with a 5-byte auth', (s) => frame(cat(mapHead(3), s, W, REASON), { auth: enc(new Uint8Array(5)) }));
  // [LM-FRAME-4] an unknown key below 16
  add(R.LM_FRAME_4, 'a BYE with the unknown key 5', (s) => frame(cat(mapHead(4), s, W, REASON, enc(5), enc(0))));
  // [LM-MQTT-4] a valid frame of a type not allowed on `out`; [LM-REVOKE-4] REVOKE frames on the revocation topic only
  {
    const sid = randomBytes(16);
    const end = encodeFrame(FrameType.END, { sid, bytes: 0, chunks: 0, frames: 0, digest: new Uint8Array(32) }, { kind: 'mac', key: randomBytes(32) });
    out.push({ id: R.LM_MQTT_4, what: 'a valid END frame, a type allowed on `in` and not on `out`', sid: toHex(sid), bytes: end });
  }
  const rev = signRevocation({ seq: 1, time: Date.now(), next: Date.now() + 3_600_000, operatorSecret: operator.secretKey, operatorPublic: operator.publicKey });
  out.push({ id: R.LM_REVOKE_4, what: 'a valid REVOKE frame (allowed on the revocation topic only)', sid: toHex(rev.subarray(rev.length - 16)), bytes: rev });
  return out;
}

/** A BYE with the extension key 16, which a receiver must ignore ([LM-FRAME-4]): it must pass. */
export function extensionFrame(who: string): { sid: string; bytes: Uint8Array } {
  const sid = randomBytes(16);
  const bytes = cat([0x84], enc(1), enc(15), cat(mapHead(4), enc(0), enc(sid), enc(1), enc(who), enc(2), enc(Reason.offline), enc(16), enc('extension')), NONE);
  return { sid: toHex(sid), bytes };
}
