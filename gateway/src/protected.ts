/**
 * @module protected
 * The gateway as a distribution node only (SPEC.md §16): a protected job's ciphertext comes from
 * the store, segment by segment in the order the keys service's playbook gives; its chunk keys
 * come from the keys service already wrapped for the device's session, which the gateway relays
 * in KEY frames and cannot open ([LM-PROT-2]). The gateway never holds the plaintext, a chunk key
 * or the licence secret. The two services are reached through the small interfaces below: the
 * library objects in one process, or clients of the services' own processes.
 */
import { LmError, Reason, type SignedTx, equalBytes, toHex } from '@livematrix/spec';
import type { JobSource } from './source.js';

/** What the keys service tells a gateway about a protected job: where its segments are, not its keys ([LM-SVC-2]). */
export interface PlaybookView {
  jid: Uint8Array;
  C: number;
  n: number;
  size: number;
  jd: Uint8Array;
  uh: Uint8Array;
  /** ids of the real segments, in chunk order */
  order: Uint8Array[];
  /** ciphertext bytes of the last chunk */
  last: number;
}

/** A request for chunk j's key, wrapped for one device session ([LM-PROT-2]). */
export interface ReleaseRequest {
  /** the streaming transaction's hash (the keys service holds its licence secret) */
  txh: Uint8Array;
  sid: Uint8Array;
  /** the session's transcript hash (SHA-256 of OFFER ‖ ACCEPT) */
  th: Uint8Array;
  r0: number;
  j: number;
  /** the revision the KEY frame is sent in */
  r: number;
  now: number;
}

/** The keys service, as a gateway uses it. */
export interface KeyRelease {
  playbook(jid: Uint8Array): PlaybookView | Promise<PlaybookView>;
  /** the 48-byte wrap; throws LmError `busy` (with `retryAt`) while pacing holds it back, `rate` after an alarm */
  release(req: ReleaseRequest): Uint8Array | Promise<Uint8Array>;
  /** the session ended: the service forgets its content chain */
  endSession?(sid: Uint8Array): void | Promise<void>;
  /** an alarm on the transaction: the service withholds its keys ([LM-ALARM-1]) */
  alarm?(txh: Uint8Array): void | Promise<void>;
}

/** The store, as a gateway uses it: segments by id, outer layer removed ([LM-SVC-3]). */
export interface SegmentSource {
  get(ids: Uint8Array[]): Promise<Uint8Array[]>;
}

/** Where a gateway's protected jobs come from. */
export interface ProtectedServices {
  keys: KeyRelease;
  store: SegmentSource;
}

/** Chunks fetched ahead of the sender, at most. */
const AHEAD = 64;
/** A store that fails a fetch is asked again this often, this many times in a row (30 s). */
const STORE_RETRY_MS = 500;
const STORE_TRIES = 60;

/**
 * A protected job's ciphertext as the sender reads it: chunk j is the owner's ct_j (the
 * stored segment trimmed to its real length), fetched from the store ahead of the sender.
 */
export class ProtectedSource implements JobSource {
  readonly verified = true; // the device checks the digest end to end ([LM-DLV-6])
  failure: LmError | undefined;
  private readonly held = new Map<number, Uint8Array>();
  private readonly fetching = new Set<number>();
  private readers: (() => void)[] = [];
  private want = 0;
  private closed = false;
  /** failed fetches in a row */
  private failures = 0;

  constructor(private readonly book: PlaybookView, private readonly store: SegmentSource, private readonly retry: (f: () => void) => void = (f) => void setTimeout(f, STORE_RETRY_MS)) {}

  /** Checks the playbook against the transaction ([LM-PROT-2]): the same upload, size and digest. */
  static async open(tx: SignedTx, services: ProtectedServices, retry?: (f: () => void) => void): Promise<ProtectedSource> {
    const b = tx.body;
    if (!b.jid || !b.uh) throw new LmError(Reason.txSchema, 'not a protected job\'s transaction (no jid)');
    const book = await services.keys.playbook(b.jid);
    // the transaction's digest is keyed by the licence, which this gateway does not hold ([LM-PROT-4]):
    // the keys service checked it against the upload when the operator granted the licence
    if (!equalBytes(book.uh, b.uh) || book.size !== b.size) {
      throw new LmError(Reason.digest, `the keys service's playbook of job ${toHex(b.jid)} does not match the transaction (upload or size) ([LM-PROT-2])`);
    }
    return new ProtectedSource(book, services.store, retry);
  }

  get size(): number {
    return this.book.size;
  }

  get chunkSize(): number {
    return this.book.C;
  }

  /** Plaintext is never here. */
  take(): Uint8Array | undefined {
    throw new LmError(Reason.internal, 'a protected job has no plaintext at the gateway ([LM-PROT-2])');
  }

  /** ct_j if it is at hand; starts fetching it and the next ones otherwise. */
  cipher(j: number): Uint8Array | undefined {
    this.want = Math.max(this.want, j);
    const ct = this.held.get(j);
    this.prefetch(j);
    return ct;
  }

  release(offset: number): void {
    const below = Math.floor(offset / this.book.C);
    for (const j of this.held.keys()) if (j < below) this.held.delete(j);
  }

  seek(offset: number): void {
    this.want = Math.floor(offset / this.book.C);
  }

  onReadable(f: () => void): void {
    this.readers.push(f);
  }

  close(): void {
    this.closed = true;
    this.held.clear();
    this.readers = [];
  }

  private prefetch(from: number): void {
    if (this.closed || this.failure) return;
    const ids: Uint8Array[] = [];
    const js: number[] = [];
    for (let j = from; j < Math.min(this.book.n, from + AHEAD); j++) {
      if (this.held.has(j) || this.fetching.has(j)) continue;
      js.push(j);
      ids.push(this.book.order[j] as Uint8Array);
    }
    if (js.length === 0) return;
    for (const j of js) this.fetching.add(j);
    this.store.get(ids).then((segs) => {
      this.failures = 0;
      js.forEach((j, i) => {
        this.fetching.delete(j);
        const seg = segs[i] as Uint8Array;
        // every segment is C + 16 bytes; the last chunk's ciphertext is shorter ([LM-SVC-1])
        if (!this.closed) this.held.set(j, j === this.book.n - 1 ? seg.subarray(0, this.book.last) : seg);
      });
      this.notify();
    }, (e: unknown) => {
      for (const j of js) this.fetching.delete(j);
      const err = e instanceof LmError ? e : new LmError(Reason.internal, `store: ${(e as Error).message}`);
      // a segment the store does not have fails the stream; anything else (the store restarting,
      // unreachable for a while) is tried again, for a while
      if (err.code === Reason.unknown || ++this.failures > STORE_TRIES) {
        this.failure = new LmError(err.code, `store: ${err.message}`);
        this.notify();
        return;
      }
      this.retry(() => this.prefetch(Math.max(from, this.want)));
    });
  }

  private notify(): void {
    for (const f of this.readers) f();
  }
}
