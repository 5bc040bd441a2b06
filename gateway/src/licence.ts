/**
 * @module licence
 * The sender side's record of a stream's licence (SPEC.md §11.4): which session of a
 * transaction made its print, counted once at the counting point ([LM-LIC-1]) in the gateway's
 * database ([LM-LIC-2]); resumes under a device's ticket that count nothing ([LM-LIC-4]); and
 * the signed RECEIPT appended to the receipt ledger ([LM-LEDGER-1]).
 */
import { LmError, Reason, type SignedTicket, type SignedTx, toHex, toLmError } from '@livematrix/spec';
import type { Clock } from './clock.js';
import type { LicenceDb } from './db/types.js';

/** What a stream may start as, given the database's count ([LM-TX-7], [LM-LIC-2]). */
export type StartKind = 'fresh' | 'resume';

/**
 * Whether a recorded session of the transaction carries a print ([LM-LIC-4]): it counted one, or
 * it continued, under the device's ticket, a session that carries one.
 */
export async function carriesPrint(db: LicenceDb, sid: string, txh: string): Promise<boolean> {
  for (let at: string | undefined = sid, hops = 0; at !== undefined && hops < 10_000; hops++) {
    const s = await db.session(at);
    if (!s || s.txh !== txh) return false;
    if (s.counted) return true;
    at = s.ticket; // the cut session it continued
  }
  return false;
}

/**
 * Whether a transaction may be streamed: a fresh print while prints are left, else only the
 * resume of a print this gateway counted and never finished ([LM-LIC-4]); throws `tx-count` otherwise.
 */
export async function startKind(db: LicenceDb, tx: SignedTx): Promise<StartKind> {
  const txh = toHex(tx.hash);
  const used = await db.printsUsed(txh);
  if (used < tx.body.prints) return 'fresh';
  for (const s of await db.unfinished(txh)) if (await carriesPrint(db, s.sid, txh)) return 'resume';
  throw new LmError(Reason.txCount, `print count exhausted: ${used} of ${tx.body.prints} used ([LM-TX-7])`);
}

/** One stream's licence bookkeeping. Its database calls run in order; a failure ends the stream. */
export class StreamLicence {
  private chain: Promise<unknown> = Promise.resolve();
  private sid: string | undefined;
  /** the session continues a print this database counted ([LM-LIC-4]) */
  private resumed = false;
  private counted = false;
  /** the gateway's counting point of the session, once reached ([LM-LIC-1]) */
  private gate: Promise<boolean> | undefined;
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

  /**
   * The device accepted an OFFER: the session is recorded. Under a ticket it continues the cut
   * session's print only when that session carries a print in this database; otherwise it is a
   * new print and counts at its counting point like any other ([LM-LIC-4]).
   */
  accepted(sid: Uint8Array, ticket: SignedTicket | undefined): void {
    const id = toHex(sid);
    const txh = toHex(this.tx.hash);
    this.sid = id;
    this.resumed = false;
    this.counted = false;
    this.gate = undefined;
    this.run(async () => {
      const cut = ticket ? toHex(ticket.body.sid) : undefined;
      const continues = cut !== undefined && (await carriesPrint(this.db, cut, txh));
      await this.db.openSession({ sid: id, txh, device: this.device, time: this.clock.now(), ...(continues ? { ticket: cut } : {}) });
      if (continues) {
        this.resumed = true;
        await this.db.setState(cut, 'resumed', this.clock.now());
      }
    });
  }

  /**
   * The gateway's counting point ([LM-LIC-1]): before the session's first chunk key goes out,
   * the print is counted and committed, unless the session continues one. False (and the stream
   * fails) when no print is left.
   */
  beforeKeys(): Promise<boolean> {
    const sid = this.sid;
    if (!sid) return Promise.resolve(false);
    this.gate ??= (async () => {
      await this.chain;
      if (this.broken) return false;
      if (this.resumed || this.counted) return true;
      try {
        await this.db.countPrint(sid, this.tx.body.prints, this.clock.now());
        this.counted = true;
        return true;
      } catch (e) {
        this.broken = toLmError(e, 'licence database');
        this.fail(this.broken);
        return false;
      }
    })();
    return this.gate;
  }

  /**
   * The session ended without a receipt: interrupted (it may resume) or failed. A continuation
   * that fails before its counting point still holds its print: it is interrupted.
   */
  ended(state: 'interrupted' | 'failed'): void {
    const sid = this.sid;
    if (!sid) return;
    this.sid = undefined;
    const final = state === 'failed' && this.resumed && this.gate === undefined ? 'interrupted' : state;
    this.run(() => this.db.setState(sid, final, this.clock.now()));
  }

  /**
   * A verified RECEIPT: counted if it was not yet (an empty job has no key), then appended to the
   * ledger in the same transaction that completes the session ([LM-LEDGER-1]). Resolves with the record.
   */
  async receipt(raw: Uint8Array): Promise<{ seq: number; hash: Uint8Array }> {
    const sid = this.sid;
    if (!sid) throw new LmError(Reason.internal, 'a receipt before any session was accepted');
    if (!(await this.beforeKeys())) throw this.broken ?? new LmError(Reason.txCount, 'the print was not counted');
    await this.chain;
    if (this.broken) throw this.broken;
    return this.db.appendReceipt(sid, { receipt: raw, tx: this.tx.bytes, time: this.clock.now(), gateway: this.gateway });
  }

  /**
   * [LM-LIC-6]: a RECEIPT (already verified) of an earlier session of this transaction that this
   * database holds unfinished, appended for that session; undefined when it holds no such session.
   * Counts nothing: the print was counted when that session started.
   */
  async recovered(sid: string, raw: Uint8Array): Promise<{ seq: number; hash: Uint8Array } | undefined> {
    await this.chain;
    const open = await this.db.unfinished(toHex(this.tx.hash));
    // a session that carried the print: counted, or continuing one under a ticket (keys go only after that)
    if (!open.some((s) => s.sid === sid && (s.counted || s.ticket !== undefined))) return undefined;
    return this.db.appendReceipt(sid, { receipt: raw, tx: this.tx.bytes, time: this.clock.now(), gateway: this.gateway });
  }

  /** Waits for every write so far. */
  async settled(): Promise<void> {
    await this.chain;
    await this.gate;
  }

  private run(op: () => Promise<unknown>): void {
    this.chain = this.chain.then(() => (this.broken ? undefined : op())).catch((e: unknown) => {
      this.broken = toLmError(e, 'licence database');
      this.fail(this.broken);
    });
  }
}
