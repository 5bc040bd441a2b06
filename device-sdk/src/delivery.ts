/**
 * @module delivery
 * From complete chunks to the consumer: chunk keys ([LM-AEAD-2]), decryption ([LM-AEAD-1],
 * [LM-AEAD-4]), delivery in order and the end digest ([LM-DLV-6]) carried across restarts by
 * kept points ([LM-DLV-20]), what the consumer took ([LM-DLV-4]), and the device's own check of
 * the consumer's pace ([LM-ALARM-2]).
 */
import {
  FrameType, type KeyBody, LmError, Reason, type ReasonCode, type RevisionKeys, type SessionParams, type SignedTx,
  equalBytes, keyedJobDigest, openChunk, openProtectedChunk, toLmError, unpack, unwrapChunkKey, wipe,
} from '@livematrix/spec';
import type { AckProgress } from './acks.js';
import type { Clock } from './clock.js';
import type { ChunkState } from './receive.js';
import { type DigestCheckpoints, ResumableSha256 } from './resume.js';
import type { RevisionPolicy } from './revisions.js';

/** A chunk whose symbols and key are known. */
export interface SealedChunk {
  sid: Uint8Array;
  index: number;
  symbols: Uint32Array;
  w: number;
  ctlen: number;
  key: Uint8Array;
}

/** The content layer of SPEC §7.4 as the device uses it. */
export interface ContentLayer {
  /** the chunk key a KEY frame carries ([LM-AEAD-2]); throws LmError `auth` */
  unwrap(wk: Uint8Array, sid: Uint8Array, index: number, wrapped: Uint8Array): Uint8Array;
  /** the chunk's plaintext; throws LmError `padding` or `auth`, and then nothing is delivered */
  open(c: SealedChunk): Uint8Array;
}

/** The spec's content layer. */
export function contentLayer(): ContentLayer {
  return {
    unwrap: (wk, sid, index, wrapped) => unwrapChunkKey(wk, sid, index, wrapped),
    open(c) {
      const ct = unpack(c.symbols, c.w, c.ctlen); // [LM-PACK-3]
      try {
        return openChunk(c.key, c.sid, c.index, ct); // [LM-AEAD-4]
      } finally {
        wipe(ct);
      }
    },
  };
}

/**
 * The content layer of a protected job ([LM-PROT-1], [LM-PROT-2]): the chunk keys came from the
 * keys service under the content chain, and each chunk is the owner's ciphertext, bound to the
 * job's id and the chunk's index (not to the session).
 */
export function protectedContentLayer(jid: Uint8Array): ContentLayer {
  return {
    unwrap: (wk, sid, index, wrapped) => unwrapChunkKey(wk, sid, index, wrapped),
    open(c) {
      const ct = unpack(c.symbols, c.w, c.ctlen); // [LM-PACK-3]
      try {
        return openProtectedChunk(c.key, jid, c.index, ct); // [LM-PROT-1]
      } finally {
        wipe(ct);
      }
    },
  };
}

/** The consumer went faster than the transaction allows ([LM-ALARM-2]). */
export interface RateExcess {
  taken: number;
  allowed: number;
  detail: string;
}

export interface RateAlarm {
  /** t_start: the session's first HINTS frame; later calls change nothing */
  start(now: number): void;
  /** the excess when `taken` bytes at `now` go beyond the transaction's allowance */
  check(taken: number, now: number): RateExcess | undefined;
}

/**
 * [LM-ALARM-2]: the gateway paces keys by the transaction's rate ([LM-AEAD-3]), so a consumer
 * faster than that means keys came early; the device stops on its own (G of slack for the
 * latency between the two sides' clocks of the session start).
 */
export function rateAlarm(limits: { rate: number; burst: number; grace: number }): RateAlarm {
  const { rate, burst, grace } = limits;
  let tStart: number | undefined;
  return {
    start(now) {
      tStart ??= now;
    },
    check(taken, now) {
      if (tStart === undefined) return undefined;
      const allowed = (rate * (now - tStart + grace)) / 1000 + burst; // [LM-ALARM-2]
      if (taken <= allowed) return undefined;
      const detail = `the consumer took ${taken} bytes in ${((now - tStart) / 1000).toFixed(1)} s; the transaction allows ${rate} bytes/s plus a burst of ${burst}`;
      return { taken, allowed, detail };
    },
  };
}

/** What delivery needs of the receive phase. */
export interface ChunkSource {
  has(chunk: number): boolean;
  complete(chunk: number): ChunkState | undefined;
  release(chunk: number): void;
}

export interface DeliveryContext {
  readonly sid: Uint8Array;
  readonly params: SessionParams;
  readonly tx: SignedTx;
  /** the resume point ([LM-DLV-10]): chunks, counters and the digest continue from it */
  readonly from: number;
  /** the job's bytes before `from`, for the end digest (a consumer that read them back: deprecated) */
  readonly prefix?: readonly Uint8Array[] | undefined;
  /**
   * the end digest's state at `from` (its `start`, when the session resumes from a kept point)
   * and the points the digest passes, kept for a later resume ([LM-DLV-20]); without it the
   * digest starts from `prefix`
   */
  readonly checkpoints?: DigestCheckpoints | undefined;
  readonly clock: Clock;
  readonly revisions: RevisionPolicy;
  readonly content: ContentLayer;
  readonly chunks: ChunkSource;
  /** the keys of a revision the pipeline holds */
  keys(rev: number): RevisionKeys | undefined;
  /** hands a piece of plaintext to the consumer's queue */
  push(pt: Uint8Array): void;
  /** a protected job's digest key ([LM-PROT-4]): the end digest and the RECEIPT's are keyed */
  readonly digestKey?: Uint8Array | undefined;
}

export type KeyOutcome =
  | { kind: 'taken' }
  | { kind: 'ignored' }
  | { kind: 'refused'; code: ReasonCode; detail: string }
  | { kind: 'tampered'; error: LmError };

/** Keys, decryption and the consumer's bytes of one session. */
export class Delivery {
  private next: number;
  private delivered: number;
  private consumed: number;
  private readonly hash: ResumableSha256;
  private readonly keyring = new Map<number, Uint8Array>();
  private end: { bytes: number; digest: Uint8Array } | undefined;

  constructor(private readonly ctx: DeliveryContext) {
    // a resumed job ([LM-DLV-10]): chunks, counters and the digest continue from `from`
    this.next = ctx.from / ctx.params.chunk;
    this.delivered = ctx.from;
    this.consumed = ctx.from;
    const start = ctx.checkpoints?.start;
    if (start && start.n !== ctx.from) throw new RangeError(`the digest's kept point is at byte ${start.n}, the session starts at ${ctx.from}`);
    // [LM-DLV-20]: the digest of the job's first `from` bytes, from the point kept for them
    this.hash = start ? ResumableSha256.at(start) : new ResumableSha256();
    if (!start) for (const p of ctx.prefix ?? []) this.hash.update(p);
  }

  /** the next chunk the consumer gets */
  get nextChunk(): number {
    return this.next;
  }

  progress(): AckProgress {
    return { from: this.ctx.from, delivered: this.delivered, consumed: this.consumed };
  }

  /** A KEY frame ([LM-AEAD-2]): its revision ([LM-REV-2]), then its wrap. */
  onKey(b: KeyBody): KeyOutcome {
    const rc = this.ctx.revisions.admit(FrameType.KEY, b.rev, this.ctx.clock(), this.ctx.params); // [LM-REV-2], [LM-REV-3]
    if (rc !== null) return { kind: 'refused', code: rc, detail: `KEY of chunk ${b.chunk}, revision ${b.rev}` };
    const keys = this.ctx.keys(b.rev);
    if (!keys) return { kind: 'refused', code: Reason.busy, detail: `no keys for revision ${b.rev}` };
    if (b.chunk < this.next) return { kind: 'ignored' };
    let k: Uint8Array;
    try {
      k = this.ctx.content.unwrap(keys.wk, this.ctx.sid, b.chunk, b.wrapped);
    } catch (e) {
      return { kind: 'tampered', error: toLmError(e) };
    }
    if (!this.ctx.chunks.has(b.chunk)) {
      wipe(k);
      return { kind: 'ignored' };
    }
    const old = this.keyring.get(b.chunk);
    if (old) wipe(old);
    this.keyring.set(b.chunk, k);
    return { kind: 'taken' };
  }

  /** Decrypts and hands over complete chunks, in order ([LM-DLV-6]); throws LmError when one fails. */
  deliver(): void {
    for (;;) {
      const ch = this.ctx.chunks.complete(this.next);
      const key = this.keyring.get(this.next);
      if (!ch || !key) return;
      const pt = this.ctx.content.open({ sid: this.ctx.sid, index: this.next, symbols: ch.symbols, w: this.ctx.params.w, ctlen: ch.ctlen, key });
      wipe(key);
      this.keyring.delete(this.next);
      this.ctx.chunks.release(this.next);
      this.next++;
      this.delivered += pt.length;
      this.ctx.push(pt);
    }
  }

  /** The consumer took `b` ([LM-DLV-4]); returns the bytes it took in this session. */
  consume(b: Uint8Array): number {
    const before = this.consumed;
    this.consumed += b.length;
    const cp = this.ctx.checkpoints;
    // [LM-DLV-20]: the digest's state where it passes a multiple of lcm(C, 64), kept for a resume
    const at = cp ? Math.floor(this.consumed / cp.step) * cp.step : 0;
    if (cp && at > before) {
      this.hash.update(b.subarray(0, at - before));
      const p = this.hash.point();
      if (p) cp.passed(p);
      this.hash.update(b.subarray(at - before));
    } else {
      this.hash.update(b);
    }
    b.fill(0); // consumed plaintext is not retained by the SDK
    return this.consumed - this.ctx.from;
  }

  get consumedBytes(): number {
    return this.consumed;
  }

  onEnd(b: { bytes: number; digest: Uint8Array }): void {
    this.end = { bytes: b.bytes, digest: b.digest };
  }

  /**
   * The digest of the whole job once END came and the consumer took every byte; undefined
   * before. Throws LmError `digest` when the digest or the count differs ([LM-DLV-6]).
   */
  finish(): Uint8Array | undefined {
    const end = this.end;
    if (!end || this.consumed < end.bytes || this.consumed !== this.delivered) return undefined;
    this.end = undefined; // a hash gives its digest once
    const plain = this.hash.digest();
    // a protected job's digest is keyed by its licence ([LM-PROT-4])
    const d = this.ctx.digestKey ? keyedJobDigest(this.ctx.digestKey, plain) : plain;
    // [LM-DLV-6]: digest of what the consumer took equals END's and the transaction's
    if (this.consumed !== end.bytes || !equalBytes(d, end.digest) || !equalBytes(d, this.ctx.tx.body.jd)) {
      throw new LmError(Reason.digest, `end digest mismatch after ${this.consumed} bytes: the stream is not complete ([LM-DLV-6])`);
    }
    return d;
  }

  /** Erases every key ([LM-KEY-5]). */
  wipe(): void {
    for (const k of this.keyring.values()) wipe(k);
    this.keyring.clear();
    if (this.ctx.digestKey) wipe(this.ctx.digestKey);
    this.ctx.checkpoints?.destroy();
    this.hash.destroy(); // the digest's state of a session that did not finish
  }
}
