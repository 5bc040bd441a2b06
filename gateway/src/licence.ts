/**
 * @module licence
 * The sender side's record of a stream's licence (SPEC.md §11.4): which session of a
 * transaction made its print, counted once at the counting point ([LM-LIC-1]) in the gateway's
 * database ([LM-LIC-2]); resumes under a device's ticket that count nothing ([LM-LIC-4]); and
 * the signed RECEIPT appended to the receipt ledger ([LM-LEDGER-1]).
 */
import { LmError, Reason, type SignedTicket, type SignedTx, ticketId, toHex, toLmError } from '@livematrix/spec';
import type { Clock } from './clock.js';
import type { LicenceDb } from './db/types.js';

/** What a stream may start as, given the database's count ([LM-TX-7], [LM-LIC-2]). */
export type StartKind = 'fresh' | 'resume';

/**
 * Whether a transaction may be streamed: a fresh print while prints are left, else only the
 * resume of a print it started and never finished ([LM-LIC-4]); throws `tx-count` otherwise.
 */
export async function startKind(db: LicenceDb, tx: SignedTx): Promise<StartKind> {
  const txh = toHex(tx.hash);
  const used = await db.printsUsed(txh);
  if (used < tx.body.prints) return 'fresh';
  const open = await db.unfinished(txh);
  if (open.length > 0) return 'resume';
  throw new LmError(Reason.txCount, `print count exhausted: ${used} of ${tx.body.prints} used ([LM-TX-7])`);
}

/** One stream's licence bookkeeping. Its database calls run in order; a failure ends the stream. */
export class StreamLicence {
  private chain: Promise<unknown> = Promise.resolve();
  private sid: string | undefined;
  private from = 0;
  private resumed = false;
  private counted = false;
  /** the first write that failed: nothing is recorded after it */
  private broken: LmError | undefined;

  constructor(
    private readonly db: LicenceDb,
    private readonly tx: SignedTx,
    private readonly device: string,
    private readonly gateway: string,
    private readonly clock: Clock,
    private readonly fail: (e: LmError) => void,
  ) {}

  /** A session of this stream passed the counting point, so that a device restart resumes it. */
  get started(): boolean {
    return this.counted || this.resumed;
  }

  /** The device accepted an OFFER: the session is recorded, with the ticket that resumes ([LM-LIC-4]). */
  accepted(sid: Uint8Array, from: number, ticket: SignedTicket | undefined): void {
    this.sid = toHex(sid);
    this.from = from;
    this.resumed = ticket !== undefined;
    this.counted = false;
    const rec = { sid: this.sid, txh: toHex(this.tx.hash), device: this.device, time: this.clock.now(), ...(ticket ? { ticket: ticketId(ticket) } : {}) };
    this.run(() => this.db.openSession(rec));
    if (ticket) {
      // the cut-off session's print goes on in this one; a session another gateway ran is not in this database
      const cut = toHex(ticket.body.sid);
      this.run(() => this.db.setState(cut, 'resumed', this.clock.now()).catch((e: unknown) => {
        if (!(e instanceof LmError && e.code === Reason.unknownSession)) throw e;
      }));
    }
  }

  /** The device's consumer took bytes: the first beyond the resume point is the counting point ([LM-LIC-1]). */
  consumed(consumed: number): void {
    if (this.counted || this.resumed || consumed <= this.from || !this.sid) return;
    this.counted = true;
    const sid = this.sid;
    this.run(() => this.db.countPrint(sid, this.tx.body.prints, this.clock.now()));
  }

  /** The session ended without a receipt: interrupted (it may resume) or failed. */
  ended(state: 'interrupted' | 'failed'): void {
    const sid = this.sid;
    if (!sid) return;
    this.run(() => this.db.setState(sid, state, this.clock.now()));
  }

  /**
   * A verified RECEIPT: counted if it was not yet (an empty job), then appended to the ledger in
   * the same transaction that completes the session ([LM-LEDGER-1]). Resolves with the record.
   */
  async receipt(raw: Uint8Array): Promise<{ seq: number; hash: Uint8Array }> {
    const sid = this.sid;
    if (!sid) throw new LmError(Reason.internal, 'a receipt before any session was accepted');
    if (!this.counted && !this.resumed) {
      this.counted = true;
      this.run(() => this.db.countPrint(sid, this.tx.body.prints, this.clock.now()));
    }
    await this.chain;
    if (this.broken) throw this.broken;
    return this.db.appendReceipt(sid, { receipt: raw, tx: this.tx.bytes, time: this.clock.now(), gateway: this.gateway });
  }

  /** Waits for every write so far. */
  async settled(): Promise<void> {
    await this.chain;
  }

  private run(op: () => Promise<unknown>): void {
    this.chain = this.chain.then(() => (this.broken ? undefined : op())).catch((e: unknown) => {
      this.broken = toLmError(e, 'licence database');
      this.fail(this.broken);
    });
  }
}
