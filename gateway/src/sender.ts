/**
 * @module sender
 * HINTS out (SPEC.md §5, §9): a sealed chunk cut into frames of at most `N` symbols in `seq`
 * order; each frame's hints computed when it goes out, under the current revision's key
 * ([LM-REV-1], [LM-HINT-1]); re-sends of some symbols with `idx` ([LM-DLV-3]) and of shifted
 * symbols within the revision ([LM-DLV-11]).
 */
import type PQueue from 'p-queue';
import { type Bodies, FrameType, type FrameTypeId, Reason, type Ratchet, type RevisionKeys, type SessionParams, pack, senderRevision, shiftedSymbol, wipe } from '@livematrix/spec';
import type { Kernel } from '@livematrix/spec/engine';

/** One HINTS frame of the session. */
export interface OutFrame {
  seq: number;
  chunk: number;
  off: number;
  symbols: Uint32Array;
  ctlen: number;
  /** when it last went out (ms); 0 while it never has */
  sentAt: number;
  received: boolean;
  /** revision of the latest sending */
  rev: number;
  /** revision of the latest shifted re-send ([LM-DLV-11]); -1 if none */
  shiftedRev: number;
  /** shifted re-sends of this frame in that revision (each with another shift) */
  shifts: number;
}

/** A shifted re-send ([LM-DLV-11]): shift `sh` bits, at positions `pos` of the frame. */
export interface Shift {
  sh: number;
  pos: number[];
}

/** A session's MAC-authenticated send. */
export type SendFrame = <T extends FrameTypeId>(type: T, body: Bodies[T], opts?: { expirySeconds?: number }) => Promise<void>;

export interface SenderOptions {
  readonly sid: Uint8Array;
  readonly params: SessionParams;
  /** the g2d ratchet; the sender owns it from now on */
  readonly g2d: Ratchet;
  readonly kernel: Kernel;
  readonly queue: PQueue;
  now(): number;
  /** true once the session stopped sending: an alarm, its end, or a newer session */
  halted(): boolean;
  send: SendFrame;
  /** a revision's keys went into use (the report counts revisions) */
  onRevision(r: number): void;
  /** a HINTS frame went out */
  onSent(seq: number, resend: boolean): void;
  /** a HINTS frame was handed to the link */
  afterSent(): void;
}

/** Shifts of successive shifted re-sends of a frame in one revision, as fractions of w ([LM-DLV-11]). */
const SHIFTS = [1 / 2, 1 / 4, 3 / 4] as const;

/** Most symbols of one NACK answered with a shifted re-send. */
const MAX_SHIFTED = 512;

/**
 * Whether to answer a NACK of `idx` (symbols relative to the frame) with `reason` with a shifted
 * re-send ([LM-DLV-11]), and which: an ambiguous symbol NACKed in the revision it failed in goes
 * again at once as the two shifted symbols that straddle it, with a shift not yet used for this
 * frame in this revision (the same one would fail again), up to three shifts. Updates the
 * frame's shift count; undefined when the NACK waits for a later revision instead ([LM-DLV-3]).
 */
export function planShift(fr: OutFrame, reason: number, idx: readonly number[], revNow: number, w: number): Shift | undefined {
  const n = fr.symbols.length;
  if (fr.shiftedRev !== revNow) fr.shifts = 0;
  const shift = SHIFTS[fr.shifts];
  if (reason !== Reason.ambiguous || idx.length === 0 || idx.length > MAX_SHIFTED || fr.rev !== revNow || shift === undefined || !idx.every((j) => j < n)) return undefined;
  fr.shiftedRev = revNow;
  fr.shifts++;
  const sh = Math.max(1, Math.min(w - 1, Math.floor(w * shift)));
  return { sh, pos: [...new Set(idx.flatMap((j) => [j, j + 1]))].sort((x, y) => x - y) };
}

/** The HINTS frames of one session and how they go out. */
export class Sender {
  readonly frames: OutFrame[] = [];
  /** frames reported received */
  private receivedCount = 0;
  /** every frame below this `seq` was reported received (the device's `cum`) */
  private cumulative = 0;
  private current: RevisionKeys | undefined;

  constructor(private readonly o: SenderOptions) {}

  /** Frames sent and not yet reported received ([LM-DLV-12]). */
  get inFlight(): number {
    return this.frames.length - this.receivedCount;
  }

  /** The first `seq` not covered by the device's cumulative ACK. */
  get ackedUpTo(): number {
    return this.cumulative;
  }

  /** The revision of the keys last used, 0 before any. */
  get revision(): number {
    return this.current?.revision ?? 0;
  }

  /** The current revision's g2d keys ([LM-REV-1]), derived once per revision. */
  revisionKeys(): RevisionKeys {
    const rev = senderRevision(this.o.now(), this.o.params); // [LM-REV-1]
    if (this.current?.revision === rev) return this.current;
    if (this.current) {
      wipe(this.current.hk, this.current.wk);
      this.o.kernel.wipe(); // the kernel held this revision's hint key ([LM-KEY-5])
    }
    this.current = this.o.g2d.keysFor(Math.max(rev, this.o.g2d.position));
    this.o.onRevision(this.current.revision);
    return this.current;
  }

  /** Cuts chunk `chunk`'s ciphertext into HINTS frames and sends them; returns how many. */
  cut(chunk: number, ct: Uint8Array): number {
    const p = this.o.params;
    const syms = pack(ct, p.w);
    const first = this.frames.length;
    for (let off = 0; off < syms.length; off += p.symbolsPerFrame) {
      const symbols = syms.subarray(off, Math.min(syms.length, off + p.symbolsPerFrame));
      const fr: OutFrame = { seq: this.frames.length, chunk, off, symbols, ctlen: ct.length, sentAt: 0, received: false, rev: -1, shiftedRev: -1, shifts: 0 };
      this.frames.push(fr);
      this.hints(fr);
    }
    return this.frames.length - first;
  }

  /**
   * Moves the cumulative point to the device's `cum`; returns the `seq` range [from, to) it
   * newly covers, for the caller to mark.
   */
  advance(cum: number): [number, number] {
    const from = this.cumulative;
    const to = Math.min(cum, this.frames.length);
    this.cumulative = Math.max(from, to);
    return [from, to];
  }

  /** Marks frame `seq` received; returns it when it was not already, undefined otherwise. */
  markReceived(seq: number): OutFrame | undefined {
    const fr = this.frames[seq];
    if (!fr || fr.received) return undefined;
    fr.received = true;
    this.receivedCount++;
    fr.symbols = new Uint32Array(0);
    return fr;
  }

  /** Queues a frame's hints: all, those listed in `idx`, or shifted ones ([LM-DLV-11]). */
  hints(fr: OutFrame, idx?: number[], shifted?: Shift): void {
    void this.o.queue.add(async () => {
      if (this.o.halted() || fr.received) return;
      const k = this.revisionKeys();
      // the revision turned while this waited: a plain re-send under the new key does
      if (shifted && k.revision !== fr.shiftedRev) return this.hints(fr, idx);
      await this.emit(fr, k, shifted ? shifted.pos : idx, shifted?.sh);
    });
  }

  private async emit(fr: OutFrame, k: RevisionKeys, idx: number[] | undefined, sh: number | undefined): Promise<void> {
    const p = this.o.params;
    const syms = idx ? idx.map((i) => (sh !== undefined ? shiftedSymbol(fr.symbols, p.w, sh, i) : (fr.symbols[i] ?? 0))) : fr.symbols;
    // the key stays in the kernel until its revision ends (as in `current`): a wipe per frame
    // would zero the kernel's 256 KiB scratch area each time
    this.o.kernel.setKey(k.hk);
    const hints = this.o.kernel.hintList(p.suite, p.w, p.L, syms); // [LM-HINT-1]
    this.o.onSent(fr.seq, fr.sentAt > 0);
    fr.sentAt = this.o.now();
    fr.rev = k.revision;
    const body = { sid: this.o.sid, seq: fr.seq, rev: k.revision, chunk: fr.chunk, off: fr.off, ctlen: fr.ctlen, hints, ...(idx ? { idx } : {}), ...(sh !== undefined ? { sh } : {}) };
    await this.o.send(FrameType.HINTS, body, { expirySeconds: Math.ceil((2 * p.period) / 1000) });
    this.o.afterSent();
  }

  /** Erases the revision keys and the g2d chain ([LM-KEY-5]). */
  wipe(): void {
    if (this.current) wipe(this.current.hk, this.current.wk);
    this.o.kernel.wipe();
    this.o.g2d.destroy();
  }
}
