/**
 * @module ticket
 * Resume tickets (SPEC.md §11.4, [LM-LIC-3], [LM-LIC-4]): a device's signed statement that its
 * session of a transaction was cut off at an offset, spent by the one OFFER that resumes it.
 * Decoding throws only {@link LmError}.
 */
import { ascii, concatBytes, equalBytes, toHex } from './bytes.js';
import { type CborValue, decodeCbor, encodeCbor } from './cbor.js';
import { LmError, Reason, errorMessage } from './errors.js';
import { ID_RE, TICKET_MAX } from './frame-schemas.js';
import { verify } from './identity.js';
import { type SigningKey, signWith } from './keystore.js';

/** What a resume ticket says ([LM-LIC-3]). */
export interface TicketBody {
  v: 1;
  /** random, 16 bytes: the ticket's identity, spent once */
  id: Uint8Array;
  /** SHA-256 of the transaction */
  txh: Uint8Array;
  /** the session that was cut off */
  sid: Uint8Array;
  /** plaintext bytes the device had handed to its consumer when it last recorded the session */
  off: number;
  /** time after which the ticket resumes nothing (ms since the Unix epoch) */
  exp: number;
  /** the device's id */
  device: string;
}

export interface SignedTicket {
  body: TicketBody;
  sig: Uint8Array;
  /** enc([body, sig]) */
  bytes: Uint8Array;
}

const TICKET_PREFIX = concatBytes(ascii('livematrix/1 ticket'), Uint8Array.of(0));

function bodyToCbor(b: TicketBody): Map<number, CborValue> {
  return new Map<number, CborValue>([[1, b.v], [2, b.id], [3, b.txh], [4, b.sid], [5, b.off], [6, b.exp], [7, b.device]]);
}

const bad = (msg: string): never => {
  throw new LmError(Reason.txResume, `resume ticket: ${msg} ([LM-LIC-3])`);
};

/** Signs a ticket with the device's Ed25519 seed or key store. */
export function signTicket(body: TicketBody, deviceKey: SigningKey): SignedTicket {
  const enc = encodeCbor(bodyToCbor(body));
  const sig = signWith(deviceKey, concatBytes(TICKET_PREFIX, enc));
  return { body, sig, bytes: encodeCbor([bodyToCbor(body), sig]) };
}

/** Decodes a ticket without judging it (structure only); throws LmError `tx-resume`. */
export function decodeTicket(bytes: Uint8Array): SignedTicket {
  if (bytes.length > TICKET_MAX) bad(`${bytes.length} bytes, at most ${TICKET_MAX}`);
  let v: CborValue;
  try {
    v = decodeCbor(bytes, TICKET_MAX);
  } catch (e) {
    return bad(`not valid CBOR: ${errorMessage(e)}`);
  }
  if (!Array.isArray(v) || v.length !== 2) return bad('not a [body, sig] array');
  const [m, sig] = v as [CborValue, CborValue];
  if (!(m instanceof Map)) return bad('body is not a map');
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return bad('no 64-byte signature');
  for (const k of m.keys()) if (typeof k !== 'number' || k < 1 || k > 7) bad(`unexpected key ${String(k)}`);
  const b = (k: number, n: number): Uint8Array => {
    const x = m.get(k);
    return x instanceof Uint8Array && x.length === n ? x : bad(`field ${k}: expected bstr .size ${n}`);
  };
  const u = (k: number): number => {
    const x = m.get(k);
    return typeof x === 'number' && x >= 0 ? x : bad(`field ${k}: expected unsigned integer`);
  };
  if (u(1) !== 1) bad(`version ${String(m.get(1))} is not 1`);
  const device = m.get(7);
  if (typeof device !== 'string' || !ID_RE.test(device)) return bad('field 7: expected a device id');
  const body: TicketBody = { v: 1, id: b(2, 16), txh: b(3, 32), sid: b(4, 16), off: u(5), exp: u(6), device };
  const t: SignedTicket = { body, sig, bytes: bytes.slice() };
  if (!equalBytes(encodeCbor([bodyToCbor(body), sig]), bytes)) bad('not canonically encoded');
  return t;
}

/** What a device checks a ticket against ([LM-LIC-4]). */
export interface TicketContext {
  device: string;
  devicePublic: Uint8Array;
  /** SHA-256 of the OFFER's transaction */
  txh: Uint8Array;
  now: number;
}

/**
 * Verifies a ticket: signed by this device, for this device and transaction, not expired
 * ([LM-LIC-4]). Whether it is still unspent is the device's store to say. Throws LmError `tx-resume`.
 */
export function verifyTicket(bytes: Uint8Array, ctx: TicketContext): SignedTicket {
  const t = decodeTicket(bytes);
  if (!verify(ctx.devicePublic, concatBytes(TICKET_PREFIX, encodeCbor(bodyToCbor(t.body))), t.sig)) bad('signature does not verify under this device\'s key');
  if (t.body.device !== ctx.device) bad(`issued by "${t.body.device}", not "${ctx.device}"`);
  if (!equalBytes(t.body.txh, ctx.txh)) bad('issued for another transaction');
  if (ctx.now > t.body.exp) bad(`expired at ${new Date(t.body.exp).toISOString()}`);
  return t;
}

/** The id of a ticket as stores key it (hex). */
export function ticketId(t: SignedTicket): string {
  return toHex(t.body.id);
}
