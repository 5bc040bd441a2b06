/**
 * @module db/common
 * What both LicenceDb backends share: argument checks, the checks of a RECEIPT before it goes
 * into the ledger ([LM-LEDGER-5]), and the rows they read back as records.
 */
import { LmError, Reason, checkLedgerEntry, toHex, type LedgerEntry } from '@livematrix/spec';
import { SESSION_STATES, type NewSession, type ReceiptAppend, type SessionRecord, type SessionState } from './types.js';

const HEX = /^(?:[0-9a-f]{2})+$/;

/** A lower-case hex string of `bytes` bytes (or of 1..64 bytes); throws LmError `schema`. */
export function hexId(label: string, s: unknown, bytes?: number): string {
  const v = typeof s === 'string' ? s.toLowerCase() : '';
  const ok = HEX.test(v) && (bytes === undefined ? v.length <= 128 : v.length === bytes * 2);
  if (!ok) throw new LmError(Reason.schema, `"${label}" expected ${bytes === undefined ? '1-64' : bytes} bytes as hex, got ${JSON.stringify(s)?.slice(0, 80)}`);
  return v;
}

/** A time or count: a safe unsigned integer; throws LmError `schema`. */
export function uint(label: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new LmError(Reason.schema, `"${label}" expected an unsigned integer, got ${String(n)}`);
  return n;
}

export function sessionState(s: unknown): SessionState {
  const found = SESSION_STATES.find((x) => x === s);
  if (!found) throw new LmError(Reason.schema, `"state" expected one of ${SESSION_STATES.join(', ')}, got ${String(s)}`);
  return found;
}

/** A new session with its ids checked and normalised. */
export function checkNewSession(s: NewSession): NewSession {
  if (typeof s.device !== 'string' || s.device.length === 0 || s.device.length > 64) throw new LmError(Reason.schema, '"device" expected an id of 1-64 characters');
  const out: NewSession = { sid: hexId('sid', s.sid, 16), txh: hexId('txh', s.txh, 32), device: s.device, time: uint('time', s.time) };
  if (s.ticket !== undefined) out.ticket = hexId('ticket', s.ticket);
  return out;
}

/** A session row as both backends read it (integers may come back as strings from PostgreSQL). */
export interface SessionRow {
  sid: string;
  txh: string;
  device: string;
  state: string;
  ticket: string | null;
  counted: number | boolean;
  opened: number | string;
  updated: number | string;
}

export function toSession(r: SessionRow): SessionRecord {
  const s: SessionRecord = {
    sid: r.sid, txh: r.txh, device: r.device, state: sessionState(r.state), counted: r.counted === true || r.counted === 1,
    opened: Number(r.opened), updated: Number(r.updated),
  };
  if (r.ticket !== null) s.ticket = r.ticket;
  return s;
}

/**
 * Checks a RECEIPT before it is appended ([LM-LEDGER-5]): it verifies under the transaction's
 * device key and matches the transaction, the transaction's operator signature verifies, and
 * both belong to the session. Throws an LmError; returns the ledger entry.
 */
export function checkAppend(sid: string, session: SessionRecord, r: ReceiptAppend): LedgerEntry {
  const { tx, receipt } = checkLedgerEntry(r);
  if (toHex(receipt.sid) !== sid) throw new LmError(Reason.digest, `RECEIPT of session ${toHex(receipt.sid)}, not of ${sid} ([LM-LEDGER-4])`);
  if (toHex(tx.hash) !== session.txh) throw new LmError(Reason.digest, `transaction ${toHex(tx.hash)} is not the one session ${sid} was opened with (${session.txh}) ([LM-LEDGER-5])`);
  return { receipt: r.receipt, tx: r.tx, time: uint('time', r.time), gateway: r.gateway };
}

/** The errors of session lookups and state changes, worded once. */
export const noSession = (sid: string): LmError => new LmError(Reason.unknownSession, `no session ${sid} in the licence database`);
export const endedSession = (sid: string, state: SessionState): LmError => new LmError(Reason.replay, `session ${sid} is ${state} already`);
export const ticketUsed = (ticket: string): LmError => new LmError(Reason.replay, `resume ticket ${ticket} opened another session already ([LM-TX-7])`);
export const sessionKnown = (sid: string): LmError => new LmError(Reason.replay, `session ${sid} is known already`);
export const countUsed = (txh: string, used: number, limit: number): LmError => new LmError(Reason.txCount, `print count exhausted: ${used} of ${limit} used for transaction ${txh} ([LM-TX-7])`);

/** Rows a ledger read returns at once (the readers page, so no cursor stays open between awaits). */
export const LEDGER_PAGE = 256;
