/**
 * @module db/types
 * The gateway's durable licence state behind one contract ([LM-TX-7], [LM-LEDGER-3],
 * [LM-LEDGER-4]): print counts per transaction, sessions and their states, resume tickets used,
 * the receipt ledger (SPEC §11.6) and the revocation list. Two backends implement it: SQLite
 * (one gateway, or several on one machine) and PostgreSQL (gateways sharing a database); both
 * pass the same suite (gateway/test/licence-db-suite.ts). Every method is async so both fit.
 */

/**
 * Where a session stands. `completed` is final: its RECEIPT is in the ledger. `resumed`: it was
 * cut off and its print goes on in a session opened with its ticket ([LM-LIC-4]).
 */
export type SessionState = 'offered' | 'streaming' | 'interrupted' | 'resumed' | 'failed' | 'completed';

export const SESSION_STATES: readonly SessionState[] = ['offered', 'streaming', 'interrupted', 'resumed', 'failed', 'completed'];

/** States of a session that has not ended: a resume may continue it. */
export const UNFINISHED_STATES: readonly SessionState[] = ['offered', 'streaming', 'interrupted'];

/** A session as the database holds it. Ids and hashes are lower-case hex. */
export interface SessionRecord {
  sid: string;
  txh: string;
  device: string;
  state: SessionState;
  /** id of the resume ticket the session was opened with; such a session counts no print */
  ticket?: string;
  /** whether the session counted a print ([LM-TX-7]) */
  counted: boolean;
  /** when it was opened (ms since the epoch, the caller's clock) */
  opened: number;
  /** when its state last changed */
  updated: number;
}

/** A session to open: state `offered`. */
export interface NewSession {
  sid: string;
  txh: string;
  device: string;
  time: number;
  /** hex id of the resume ticket the OFFER carries; one ticket opens one session only */
  ticket?: string;
}

/** What appendReceipt records ([LM-LEDGER-4]). */
export interface ReceiptAppend {
  /** the RECEIPT frame exactly as received, signed by the device */
  receipt: Uint8Array;
  /** the signed transaction's bytes */
  tx: Uint8Array;
  /** ms since the epoch, the gateway's clock */
  time: number;
  /** the appending gateway's id */
  gateway: string;
}

/**
 * Durable licence state of a gateway. Open one with `openLicenceDb(location)`.
 *
 * @example
 * const db = await openLicenceDb('.livematrix/gateway.db');
 * await db.openSession({ sid, txh, device: 'printer-1', time: Date.now() });
 * await db.countPrint(sid, tx.body.prints, Date.now()); // throws tx-count when used up
 * await db.appendReceipt(sid, { receipt, tx: tx.bytes, time: Date.now(), gateway: 'gw-1' });
 */
export interface LicenceDb {
  /** Prints counted for a transaction (by SHA-256 of its bytes, hex) ([LM-TX-7]). */
  printsUsed(txh: string): Promise<number>;
  /**
   * Records a new session in state `offered`. Throws LmError `replay` when the sid is known
   * already or the ticket opened another session.
   */
  openSession(s: NewSession): Promise<void>;
  /**
   * Counts the session's print, once, in one database transaction with its move to `streaming`
   * ([LM-TX-7], [LM-LEDGER-3]); returns the transaction's prints used after the call. A second
   * call for the sid counts nothing; a session opened with a ticket counts nothing (it moves to
   * `streaming` only). Throws LmError `tx-count` and changes nothing when `limit` prints are
   * used, `unknown-session` for an unknown sid, `replay` for an ended one.
   */
  countPrint(sid: string, limit: number, time: number): Promise<number>;
  /** Sets a session's state. Throws LmError `unknown-session` for an unknown sid, `replay` for a completed one. */
  setState(sid: string, state: SessionState, time: number): Promise<void>;
  session(sid: string): Promise<SessionRecord | undefined>;
  /** Sessions of a transaction in `offered`, `streaming` or `interrupted`, oldest first. */
  unfinished(txh: string): Promise<SessionRecord[]>;
  /**
   * Appends the ledger record of a verified RECEIPT, chained to the head, and marks the session
   * `completed`, in one serialised database transaction ([LM-LEDGER-3], [LM-LEDGER-4]). Checks
   * the RECEIPT and transaction first ([LM-LEDGER-5]): the RECEIPT must be of this session and
   * its transaction. A second call for the sid appends nothing and returns the first record.
   */
  appendReceipt(sid: string, r: ReceiptAppend): Promise<{ seq: number; hash: Uint8Array }>;
  /** The ledger's records in seq order, from `fromSeq` (default 1). */
  ledger(fromSeq?: number): AsyncIterable<Uint8Array>;
  /** The revocation list held (opaque bytes), if any. */
  revocation(): Promise<Uint8Array | undefined>;
  /** Stores a revocation list only when `seq` is greater than the stored one's; returns whether it stored. */
  saveRevocation(bytes: Uint8Array, seq: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Version of the schema the backends create; a database of a newer version is refused. */
export const SCHEMA_VERSION = 1;
