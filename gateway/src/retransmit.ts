/**
 * @module retransmit
 * Lossless delivery's sender side (SPEC.md §9): the congestion window of HINTS frames in flight
 * ([LM-DLV-12]), the NACKed frames that wait for a later revision ([LM-DLV-3]), and the frames
 * not reported received within `2·P` ([LM-DLV-3]). Plain state on an injected clock; the
 * session sends what they decide.
 */
import { Reason, type SessionParams } from '@livematrix/spec';

export const INITIAL_CWND = 4;
export const MIN_CWND = 2;
export const MAX_CWND = 4096;

/** How late a frame may be resolved before the gateway sends less: a quarter of `P − 2·G`, at least 20 ms ([LM-DLV-12]). */
export function latencyTarget(p: Pick<SessionParams, 'period' | 'grace'>): number {
  return Math.max(20, (p.period - 2 * p.grace) / 4);
}

/**
 * The congestion window in HINTS frames ([LM-DLV-12]), delay-based: it grows fast while frames
 * come back well within the latency target, slowly near it, and halves beyond it (and on stale
 * or busy NACKs and timeouts), at most once per two latency targets.
 *
 * @example
 * const cw = new CongestionWindow(() => Date.now(), latencyTarget(params));
 * if (cw.allows(inFlight)) send(); cw.received(newly, maxLatency);
 */
export class CongestionWindow {
  private cwnd = INITIAL_CWND;
  private ssthresh = Infinity;
  /** when the window was last halved; -Infinity: never, so the first cut always counts */
  private lastCut = -Infinity;

  constructor(
    private readonly now: () => number,
    /** the latency target in ms, see {@link latencyTarget} */
    readonly target: number,
  ) {}

  /** The window in frames (fractional while it grows slowly). */
  get size(): number {
    return this.cwnd;
  }

  /** Whether one more frame may go out with `inFlight` sent and not yet reported received. */
  allows(inFlight: number): boolean {
    return inFlight < this.cwnd;
  }

  /** An ACK reported `newly` frames received, the latest of them `maxLatency` ms after its sending. */
  received(newly: number, maxLatency: number): void {
    if (maxLatency > this.target) this.congested();
    else if (newly) this.cwnd = Math.min(MAX_CWND, this.cwnd < this.ssthresh || maxLatency < this.target / 2 ? this.cwnd + newly : this.cwnd + newly / this.cwnd);
  }

  /** Halves the window, at most once per two latency targets ([LM-DLV-12]). */
  congested(): void {
    const now = this.now();
    if (now - this.lastCut < 2 * this.target) return;
    this.lastCut = now;
    this.ssthresh = Math.max(MIN_CWND, this.cwnd / 2);
    this.cwnd = this.ssthresh;
  }
}

/** A frame waiting for a later revision: the symbols to re-send (all when `idx` is undefined). */
export interface Retry {
  seq: number;
  idx: number[] | undefined;
}

/**
 * NACKed frames waiting for a revision later than the one they failed in ([LM-DLV-3]): under
 * the same key the same symbols would give the same ambiguous hints again.
 *
 * @example
 * retry.add(7, [2, 5], rev); retry.add(7, [3], rev); retry.due(rev + 1); // [{ seq: 7, idx: [2, 3, 5] }]
 */
export class RetryMap {
  private readonly waiting = new Map<number, { idx: number[] | undefined; after: number }>();

  get size(): number {
    return this.waiting.size;
  }

  has(seq: number): boolean {
    return this.waiting.has(seq);
  }

  /**
   * Frame `seq` is to be re-sent after revision `after`: the symbols `idx`, or the whole frame
   * when `idx` is undefined. Symbols of an earlier NACK still waiting are kept; a whole frame
   * absorbs any list. The latest NACK's revision counts.
   */
  add(seq: number, idx: number[] | undefined, after: number): void {
    const prev = this.waiting.get(seq);
    let merged: number[] | undefined;
    if (prev === undefined) merged = idx;
    else if (idx === undefined || prev.idx === undefined) merged = undefined;
    else merged = [...new Set([...prev.idx, ...idx])].sort((x, y) => x - y);
    this.waiting.set(seq, { idx: merged, after });
  }

  /** Takes out, in the order they were first NACKed, the frames whose wait ended at revision `rev`. */
  due(rev: number): Retry[] {
    const out: Retry[] = [];
    for (const [seq, r] of this.waiting) {
      if (rev <= r.after) continue;
      this.waiting.delete(seq);
      out.push({ seq, idx: r.idx });
    }
    return out;
  }

  clear(): void {
    this.waiting.clear();
  }
}

/**
 * The symbols of a frame of `n` symbols to re-send for a NACK of `idx` with `reason`
 * ([LM-DLV-3]): those listed when they are some of the frame's; the whole frame (undefined)
 * when all are listed, none is, or the whole frame came too late, too early or to a busy device.
 */
export function nackedSymbols(n: number, reason: number, idx: readonly number[]): number[] | undefined {
  const whole = reason === Reason.revExpired || reason === Reason.revFuture || reason === Reason.busy;
  return idx.length && idx.length < n && !whole ? idx.filter((i) => i < n) : undefined;
}

/** Whether a NACK says the path or the device is congested ([LM-DLV-12]). */
export function congestionNack(reason: number): boolean {
  return reason === Reason.revExpired || reason === Reason.busy;
}

/** A frame as the timeout scan sees it. */
export interface SentFrame {
  received: boolean;
  /** when it last went out (ms); 0 while it never has */
  sentAt: number;
}

/**
 * Frames from index `from` on that were sent, are not reported received, went out more than
 * `timeout` ms before `now` (`2·P`, [LM-DLV-3]) and are not already waiting in `retry`.
 */
export function overdue<F extends SentFrame>(frames: readonly F[], from: number, now: number, timeout: number, retry: RetryMap): F[] {
  const out: F[] = [];
  for (let s = from; s < frames.length; s++) {
    const fr = frames[s];
    if (fr && !fr.received && fr.sentAt > 0 && now - fr.sentAt > timeout && !retry.has(s)) out.push(fr);
  }
  return out;
}
