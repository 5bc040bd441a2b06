/**
 * @module acks
 * One ACK applied (SPEC.md §9), composed from the phases: frames reported received release
 * their chunk's KEY ([LM-AEAD-3]) and steer the congestion window ([LM-DLV-12]); NACKs are
 * answered with shifted symbols at once ([LM-DLV-11]) or wait for a later revision
 * ([LM-DLV-3]); consumption is checked against the transaction ([LM-ALARM-1]); then the credit
 * opens the window again ([LM-DLV-5]).
 */
import { type AckBody, Reason, type ReasonCode, type SessionParams, senderRevision } from '@livematrix/spec';
import type { Allowance, ChunkKeys } from './keys.js';
import type { Stats } from './report.js';
import { type CongestionWindow, type RetryMap, congestionNack, nackedSymbols } from './retransmit.js';
import { type Sender, planShift } from './sender.js';

/** The session state an ACK acts on. */
export interface AckTarget {
  readonly params: SessionParams;
  readonly sender: Sender;
  readonly keys: ChunkKeys;
  readonly window: CongestionWindow;
  readonly retry: RetryMap;
  readonly allowance: Allowance;
  readonly stats: Stats;
  /** the transaction's rate and burst ([LM-ALARM-1]) */
  readonly limits: { readonly rate: number; readonly burst: number };
  now(): number;
  /** plaintext bytes the device's consumer took ([LM-DLV-4]) */
  consumed: number;
  /** plaintext bytes the device will still buffer beyond `consumed` ([LM-DLV-5]) */
  credit: number;
  /** whether an ACK arrived: HINTS wait for the first (the device sends it once its revision table is ready) */
  firstAck: boolean;
  /** re-sends the NACKed frames whose revision has passed ([LM-DLV-3]) */
  flushRetries(): void;
  alarm(code: ReasonCode, detail: string, observed?: number, limit?: number): void;
  /** the ACK is applied: erase, release and send what it allows */
  acknowledged(): void;
}

/**
 * Applies one ACK.
 *
 * @example
 * applyAck(delivery, frame.body);
 */
export function applyAck(t: AckTarget, b: AckBody): void {
  t.firstAck = true;
  markReceived(t, b);
  applyNacks(t, b.nack);
  t.flushRetries();
  if (!withinRate(t, b.consumed)) return; // [LM-ALARM-1]: the alarm ended the session
  t.credit = b.credit;
  t.acknowledged();
}

/** Marks the frames `cum` and `sack` report received; their latency steers the congestion window. */
function markReceived(t: AckTarget, b: AckBody): void {
  const now = t.now();
  let newly = 0;
  let maxLatency = 0;
  const mark = (seq: number): void => {
    const fr = t.sender.markReceived(seq);
    if (!fr) return;
    newly++;
    maxLatency = Math.max(maxLatency, now - fr.sentAt);
    t.keys.received(fr.chunk); // the last frame of a chunk releases its KEY ([LM-AEAD-3])
  };
  const [from, to] = t.sender.advance(b.cum);
  for (let seq = from; seq < to; seq++) mark(seq);
  for (const [lo, hi] of b.sack) for (let seq = lo; seq <= hi && seq < t.sender.frames.length; seq++) mark(seq);
  // [LM-DLV-12]: hints in flight follow what the device resolves within the latency budget
  // delay-based: grow fast while frames come back well within the target, slowly near it,
  // halve beyond it (and on stale or busy NACKs and timeouts)
  t.window.received(newly, maxLatency);
}

/** Answers NACKs: shifted symbols in the same revision, or a re-send in a later one. */
function applyNacks(t: AckTarget, nack: AckBody['nack']): void {
  const revNow = senderRevision(t.now(), t.params);
  for (const [seq, reason, idx] of nack) {
    const fr = t.sender.frames[seq];
    if (!fr || fr.received) continue;
    // [LM-DLV-11]: an ambiguous symbol NACKed in the revision it failed in goes again at once
    // as the two shifted symbols that straddle it (up to three shifts per frame and revision)
    const shift = planShift(fr, reason, idx, revNow, t.params.w);
    if (shift) {
      t.stats.shiftedResends++;
      t.stats.resends++;
      t.stats.symbolsResent += idx.length;
      t.sender.hints(fr, idx, shift);
      continue;
    }
    // [LM-DLV-3]: re-send the NACKed symbols (or the whole frame) in a revision later than
    // the one they failed in: the same key would give the same ambiguous hints again.
    if (congestionNack(reason)) t.window.congested(); // [LM-DLV-12]
    t.retry.add(seq, nackedSymbols(fr.symbols.length, reason, idx), fr.rev);
  }
}

/**
 * [LM-ALARM-1]: consumption against the transaction's rate, at every ACK. Beyond it, the alarm
 * stops HINTS and withholds every further KEY; returns false then.
 */
function withinRate(t: AckTarget, consumed: number): boolean {
  if (consumed <= t.consumed) return true;
  t.consumed = consumed;
  const now = t.now();
  const allowed = t.allowance.at(now);
  if (t.consumed <= allowed) return true;
  const { rate, burst } = t.limits;
  t.alarm(Reason.rate, `device consumed ${t.consumed - t.allowance.from} bytes in ${t.allowance.seconds(now).toFixed(1)} s; the transaction allows ${rate} bytes/s plus a burst of ${burst}`, t.consumed, Math.floor(allowed));
  return false;
}
