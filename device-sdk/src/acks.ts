/**
 * @module acks
 * The ACK/NACK builder ([LM-DLV-2]): which frames were received (`cum` and `sack`), which
 * symbols failed and why (`nack`), what the consumer took (`consumed`, [LM-DLV-4]) and what the
 * device still buffers (`credit`, [LM-DLV-5]); paced on injected timers.
 */
import type { AckBody, ReasonCode } from '@livematrix/spec';
import type { Cancel, Timers } from './clock.js';
import type { ReceiptLedger } from './receive.js';

/** ranges and NACKs per ACK ([LM-DLV-2]) */
export const ACK_LIST_MAX = 64;
/** NACK entries kept between two ACKs; a flood beyond is dropped (the 2 P timeout re-sends) */
const NACKS_HELD = 4096;
/** a NACK listing more symbols means the whole frame (an empty list), so that an ACK stays small */
const NACK_IDX_MAX = 256;
/** ms an ACK waits for more news before it goes; a NACK goes at once ([LM-DLV-2]) */
const ACK_DELAY_MS = 5;

export type Nack = [seq: number, reason: number, idx: number[]];

/** Where the session's bytes stand, as an ACK reports them. */
export interface AckProgress {
  /** the resume point ([LM-DLV-10]) */
  from: number;
  /** plaintext decrypted and handed to the consumer's queue */
  delivered: number;
  /** plaintext the consumer took ([LM-DLV-4]) */
  consumed: number;
}

export interface AckContext {
  readonly sid: Uint8Array;
  readonly timers: Timers;
  /** plaintext bytes the device buffers beyond `consumed` ([LM-DLV-5]) */
  readonly credit: number;
  progress(): AckProgress;
  send(body: AckBody): void;
}

/**
 * ACK bodies for a state: every range of `received` above `cum` and every NACK, at most 64 of
 * each per ACK ([LM-DLV-2]); more go in further ACKs at once, so that nothing received or failed
 * waits for the gateway's 2 P timeout. Always at least one ACK.
 */
export function ackBodies(sid: Uint8Array, cum: number, received: Iterable<number>, nacks: readonly Nack[], consumed: number, credit: number): AckBody[] {
  const sack: [number, number][] = [];
  for (const s of [...received].sort((a, b) => a - b)) {
    const last = sack[sack.length - 1];
    if (last && last[1] === s - 1) last[1] = s;
    else sack.push([s, s]);
  }
  const bodies: AckBody[] = [];
  let i = 0;
  do {
    bodies.push({ sid, cum, sack: sack.slice(i, i + ACK_LIST_MAX), nack: nacks.slice(i, i + ACK_LIST_MAX), consumed, credit });
    i += ACK_LIST_MAX;
  } while (i < sack.length || i < nacks.length);
  return bodies;
}

/** The session's record of received frames and failed symbols, and the timer that sends ACKs. */
export class AckLedger implements ReceiptLedger {
  private cumulative = 0;
  /** received frames above `cum` */
  private readonly above = new Set<number>();
  private nacks: Nack[] = [];
  private cancel: Cancel | undefined;
  private stopped = false;

  constructor(private readonly ctx: AckContext) {}

  /** every frame below it is received */
  get cum(): number {
    return this.cumulative;
  }

  received(seq: number): void {
    if (seq < this.cumulative) return;
    this.above.add(seq);
    while (this.above.has(this.cumulative)) this.above.delete(this.cumulative++);
  }

  isReceived(seq: number): boolean {
    return seq < this.cumulative || this.above.has(seq);
  }

  /** Symbols of frame `seq` failed: NACKed in an ACK that goes at once ([LM-DLV-2]). */
  nack(seq: number, reason: ReasonCode, idx: number[]): void {
    if (this.nacks.length < NACKS_HELD) this.nacks.push([seq, reason, idx.length > NACK_IDX_MAX ? [] : idx]);
    this.soon(0);
  }

  /** An ACK within `delay` ms; an earlier one already due stands unless `delay` is 0. */
  soon(delay = ACK_DELAY_MS): void {
    if (this.stopped) return;
    if (this.cancel) {
      if (delay > 0) return;
      this.cancel();
    }
    this.cancel = this.ctx.timers.after(delay, () => this.flush());
  }

  /** Sends the ACKs of the current state now. */
  flush(): void {
    this.cancel?.();
    this.cancel = undefined;
    if (this.stopped) return;
    const nacks = this.nacks;
    this.nacks = [];
    const { consumed } = this.ctx.progress();
    for (const body of ackBodies(this.ctx.sid, this.cumulative, this.above, nacks, consumed, this.ctx.credit)) this.ctx.send(body);
  }

  /** No ACK after this (the session ended). */
  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
  }
}
