/**
 * @module keys-service/session
 * One device session as the keys service sees it ([LM-PROT-2]): the content chain's ratchet
 * `Ratchet(contentChain(K_lic, th), r0)` (K_lic is erased once the chain is derived), the wrap
 * keys of the last revisions asked for, and the pacing of its releases: chunk j is released only
 * when `(j − j0)·C ≤ rate·(now − t0)/1000 + burst`, t0 the session's first release request and j0
 * its chunk (a resumed session starts at its resume point, as [LM-ALARM-1]'s `from` does).
 */
import { ContentKeys, LmError, Reason, contentChain, equalBytes, toHex } from '@livematrix/spec';
import { ReleaseBusyError } from './errors.js';

export interface SessionTerms {
  sid: Uint8Array;
  txh: Uint8Array;
  th: Uint8Array;
  r0: number;
  jid: Uint8Array;
  /** chunk size of the upload */
  C: number;
  /** plaintext bytes per second and bytes beyond the rate, from the transaction */
  rate: number;
  burst: number;
}

export class ReleaseSession {
  private readonly keys: ContentKeys;
  /** the first chunk asked for: the session's resume point */
  private j0: number | undefined;

  /** Derives the session's ratchet from the licence secret; the caller erases `licence`. */
  constructor(readonly terms: SessionTerms, licence: Uint8Array, readonly t0: number) {
    this.keys = new ContentKeys(contentChain(licence, terms.th), terms.r0); // erases the chain key it is given
  }

  /** The same session: one transaction, transcript and first revision per sid. */
  matches(txh: Uint8Array, th: Uint8Array, r0: number): boolean {
    return equalBytes(txh, this.terms.txh) && equalBytes(th, this.terms.th) && r0 === this.terms.r0;
  }

  /** Throws {@link ReleaseBusyError} unless chunk j is within the allowance at `now` ([LM-PROT-2]). */
  pace(j: number, now: number): void {
    const { C, rate, burst } = this.terms;
    this.j0 ??= j;
    const need = Math.max(0, j - this.j0) * C;
    if (need <= (rate * (now - this.t0)) / 1000 + burst) return;
    const retryAt = this.t0 + Math.ceil(((need - burst) * 1000) / rate);
    throw new ReleaseBusyError(j, retryAt, `chunk ${j} of session ${toHex(this.terms.sid)} is beyond the transaction's allowance (${rate} B/s, burst ${burst}) until ${retryAt} ([LM-PROT-2])`);
  }

  /**
   * W_r, the wrap key of revision r (SPEC §4.2), kept for the last revisions (a KEY of the
   * previous revision may still be asked for); an older one is refused with `rev-expired`, its
   * chain key erased ([LM-KEY-4]).
   */
  wrapKey(r: number): Uint8Array {
    if (r < this.terms.r0) throw new LmError(Reason.revExpired, `revision ${r} precedes the session's first revision ${this.terms.r0}`);
    const k = this.keys.keysFor(r);
    if (!k) throw new LmError(Reason.revExpired, `revision ${r}: its chain key was erased ([LM-KEY-4])`);
    return k.wk;
  }

  /** Erases the session's chain and wrap key ([LM-KEY-5]). */
  destroy(): void {
    this.keys.destroy();
  }
}
