/**
 * @module report
 * The end of a stream (SPEC.md §9): END once every chunk's KEY went out and the job was read and
 * matched ([LM-DLV-6], [LM-TX-6]), re-sent until the RECEIPT comes; the device's signed RECEIPT
 * checked against the job ([LM-DLV-7]); and the report of what the stream cost.
 */
import { LmError, Reason, type ReceiptBody, type SessionParams, equalBytes, toHex } from '@livematrix/spec';
import type { StreamReport } from './types.js';

/** What a stream sent, over all its sessions. */
export class Stats {
  framesSent = 0;
  resends = 0;
  /** re-sends as shifted symbols within the revision ([LM-DLV-11]) */
  shiftedResends = 0;
  /** re-sends of frames not acknowledged within 2 P ([LM-DLV-3]) */
  timeoutResends = 0;
  symbolsResent = 0;
  wireBytes = 0;
  readonly revisions = new Set<number>();
}

/** END of one session: sent once ([LM-DLV-6]), then again each timeout until the RECEIPT comes. */
export class EndSender {
  private sentAt: number | undefined;

  constructor(
    private readonly now: () => number,
    /** queues the END frame */
    private readonly transmit: () => void,
  ) {}

  get sent(): boolean {
    return this.sentAt !== undefined;
  }

  /** Sends END ([LM-DLV-6]). */
  send(): void {
    this.sentAt = this.now();
    this.transmit();
  }

  /** An END lost on the way (QoS 1 does not survive a broker restart) goes again after `timeout` ms. */
  again(timeout: number): void {
    const now = this.now();
    if (this.sentAt === undefined || now - this.sentAt <= timeout) return;
    this.sentAt = now;
    this.transmit();
  }
}

/** What the RECEIPT must match: the session and the job of the transaction. */
export interface ReceiptExpectation {
  sid: Uint8Array;
  /** the transaction's job digest */
  jd: Uint8Array;
  /** the job's size in bytes */
  size: number;
}

/**
 * The failure of a RECEIPT whose signature verified ([LM-DLV-7]) but which does not match the
 * session or the job, or undefined when it does.
 */
export function receiptMismatch(b: ReceiptBody, e: ReceiptExpectation): LmError | undefined {
  if (!equalBytes(b.sid, e.sid) || !equalBytes(b.digest, e.jd) || b.bytes !== e.size) return new LmError(Reason.digest, 'receipt digest or length does not match the job');
  return undefined;
}

/** The report of a delivered stream. */
export function buildReport(o: { device: string; job: string; bytes: number; frames: number; stats: Stats; seconds: number; params: SessionParams; receipt: ReceiptBody }): StreamReport {
  const s = o.stats;
  return {
    device: o.device, job: o.job, bytes: o.bytes, frames: o.frames, framesSent: s.framesSent, resends: s.resends, shiftedResends: s.shiftedResends, timeoutResends: s.timeoutResends,
    symbolsResent: s.symbolsResent, wireBytes: s.wireBytes, revisions: s.revisions.size, seconds: o.seconds,
    params: o.params, alarms: 0, receipt: { digest: toHex(o.receipt.digest), bytes: o.receipt.bytes },
  };
}
