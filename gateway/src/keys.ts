/**
 * @module keys
 * Chunk keys (SPEC.md §7.4): one fresh key per chunk ([LM-AEAD-5]), released only once the
 * device reported every HINTS frame of the chunk and the transaction's allowance covers the
 * chunk's last byte, and never after an alarm ([LM-AEAD-3], [LM-ALARM-1]); re-sent with a
 * doubling back-off while the consumer does not take the chunk ([LM-DLV-13]); erased once the
 * consumer is past it. The session wraps and sends a released key ([LM-AEAD-2]).
 */
import { wipe } from '@livematrix/spec';

/**
 * The transaction's allowance of one session ([LM-ALARM-1]): `from + rate · (t − t_start) /
 * 1000 + burst`, `t_start` the session's first HINTS and `from` its resume point. Per session:
 * a device cannot bank allowance while it is down and spend it in a burst afterwards.
 */
export class Allowance {
  private started: number | undefined;

  constructor(
    /** the session's resume point in plaintext bytes ([LM-DLV-10]) */
    readonly from: number,
    /** plaintext bytes per second */
    private readonly rate: number,
    /** plaintext bytes the consumer may take beyond the rate */
    private readonly burst: number,
  ) {}

  /** The session's first HINTS went out at `t` (later calls change nothing). */
  start(t: number): void {
    this.started ??= t;
  }

  /** Plaintext bytes the device may have taken by time `t`. */
  at(t: number): number {
    return this.from + (this.rate * (t - (this.started ?? t))) / 1000 + this.burst;
  }

  /** Seconds since the session's first HINTS (for messages). */
  seconds(t: number): number {
    return (t - (this.started ?? 0)) / 1000;
  }
}

/** One chunk as the key release sees it. */
export interface OutChunk {
  readonly key: Uint8Array;
  /** its HINTS frames not yet reported received */
  pending: number;
  /** plaintext offset of its first byte */
  readonly start: number;
  /** plaintext offset after its last byte */
  readonly end: number;
  keySent: boolean;
  /** when the KEY last went out (ms) */
  keyAt: number;
  /** KEY re-sends so far: each waits twice as long as the one before */
  keyTries: number;
}

export interface ChunkKeysOptions {
  now(): number;
  allowance: Allowance;
  /** true once the session has an alarm or ended: every further KEY is withheld */
  withheld(): boolean;
  /** wraps and sends the KEY of chunk `j` (queued; it checks again before it goes out) */
  transmit(j: number, chunk: OutChunk): void;
}

/** Longest back-off of a KEY re-send, as a power of two of the timeout. */
const MAX_BACKOFF = 5;

/**
 * The chunk keys of one session, by chunk index (sparse after a resume).
 *
 * @example
 * const keys = new ChunkKeys({ now, allowance, withheld: () => false, transmit }, 0);
 * keys.add(0, { key, pending: 3, start: 0, end: 4096 }); keys.received(0); // x3, then KEY 0 goes out
 */
export class ChunkKeys {
  private readonly chunks: OutChunk[] = [];
  /** chunks below this index have had their key erased */
  private wiped: number;

  constructor(
    private readonly o: ChunkKeysOptions,
    /** the session's first chunk (its resume point, [LM-DLV-10]) */
    first: number,
  ) {
    this.wiped = first;
  }

  /** Chunks of the job up to the last one cut (END's `chunks`). */
  get count(): number {
    return this.chunks.length;
  }

  get(j: number): OutChunk | undefined {
    return this.chunks[j];
  }

  add(j: number, c: { key: Uint8Array; pending: number; start: number; end: number }): void {
    this.chunks[j] = { ...c, keySent: false, keyAt: 0, keyTries: 0 };
  }

  /** One more HINTS frame of chunk `j` was reported received; the last one releases its KEY. */
  received(j: number): void {
    const ch = this.chunks[j];
    if (ch && --ch.pending === 0) this.send(j);
  }

  /** Sends chunk `j`'s KEY when [LM-AEAD-3] allows it; `again` re-sends one that went out. */
  send(j: number, again = false): void {
    const ch = this.chunks[j];
    if (!ch || (ch.keySent && !again) || this.o.withheld()) return; // [LM-AEAD-3]: withheld on alarm
    if (!ch.keySent && ch.end > this.o.allowance.at(this.o.now())) return; // [LM-AEAD-3]: paced by the transaction; the timer releases it
    if (again) ch.keyTries++;
    ch.keySent = true;
    ch.keyAt = this.o.now();
    this.o.transmit(j, ch);
  }

  /** KEYs of received chunks that the transaction's allowance now covers. */
  release(): void {
    for (let j = this.wiped; j < this.chunks.length; j++) {
      const ch = this.chunks[j];
      if (ch && ch.pending === 0 && !ch.keySent) this.send(j);
    }
  }

  /**
   * KEYs sent and not consumed within `timeout · 2^tries` go again: a KEY lost on the way (QoS 1
   * does not survive a broker restart) is recovered, and a vanished device costs a bounded
   * number of frames, since each re-send of a chunk's KEY waits twice as long ([LM-DLV-13]).
   */
  resend(consumed: number, timeout: number): void {
    const now = this.o.now();
    for (let j = this.wiped; j < this.chunks.length; j++) {
      const ch = this.chunks[j];
      if (ch && ch.keySent && ch.end > consumed && now - ch.keyAt > timeout * 2 ** Math.min(ch.keyTries, MAX_BACKOFF)) this.send(j, true);
    }
  }

  /** Chunk keys are erased once the consumer is past their chunk. */
  wipeConsumed(consumed: number): void {
    while (this.wiped < this.chunks.length) {
      const ch = this.chunks[this.wiped];
      if (!ch || ch.end > consumed) return;
      wipe(ch.key);
      this.wiped++;
    }
  }

  /** Whether the KEY of every chunk cut so far went out (END waits for it, [LM-DLV-6]). */
  allSent(): boolean {
    return this.chunks.every((c) => c.keySent); // skips the holes below a resume point
  }

  /** Erases every chunk key ([LM-KEY-5]). */
  wipeAll(): void {
    for (const c of this.chunks) if (c) wipe(c.key); // sparse after a resume
  }
}
