/**
 * @module source
 * Where a job's bytes come from: a byte array, or a stream (a pipe, a download, a file too big
 * to hold) read as the device's window allows. A stream source checks the transaction's size
 * and digest as the bytes pass ([LM-TX-6]): a mismatch fails the stream before END, so the
 * device never sees a wrong job as complete ([LM-DLV-6]).
 */
import { createHash } from 'node:crypto';
import { LmError, Reason, equalBytes } from '@livematrix/spec';

/** A job's plaintext, read chunk by chunk in order. */
export interface JobSource {
  /** total bytes, from the transaction */
  readonly size: number;
  /** whether every byte was read and matched the transaction's size and digest */
  readonly verified: boolean;
  /** the plaintext of [start, end) if it is at hand; undefined while it is still being read */
  take(start: number, end: number): Uint8Array | undefined;
  /** the bytes below `offset` are no longer needed (the consumer took them) */
  release(offset: number): void;
  /**
   * Prepares to serve from `offset` again (a device that resumes, [LM-DLV-10]): reads the job
   * again from its start when the bytes before were released and the source can be reopened.
   * Throws LmError `aborted`, saying why, when it cannot serve them.
   */
  seek(offset: number): void;
  /** called when more bytes arrived or the source failed */
  onReadable(f: () => void): void;
  /** the reason the source failed, if it did */
  readonly failure: LmError | undefined;
  /** stops reading */
  close(): void;
  /**
   * A protected job's chunk j as the owner sealed it, if it is at hand ([LM-PROT-2]): then the
   * gateway sends it as it is and its key comes wrapped from the keys service; `take` is unused.
   */
  cipher?(j: number): Uint8Array | undefined;
}

/** A job held in memory; its digest was checked before the stream started. */
export class BytesSource implements JobSource {
  readonly verified = true;
  readonly failure = undefined;
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  take(start: number, end: number): Uint8Array {
    return this.bytes.subarray(start, Math.min(end, this.bytes.length));
  }
  release(): void {}
  seek(): void {}
  onReadable(): void {}
  close(): void {}
}

export interface StreamSourceOptions {
  /** bytes read ahead of what the gateway asked for; default 8 MiB */
  readAhead?: number;
}

/** A job's bytes as a stream, or a way to open it (again) from its start, e.g. `() => fs.createReadStream(file)`. */
export type JobStream = AsyncIterable<Uint8Array> | (() => AsyncIterable<Uint8Array>);

/**
 * A job read from an async iterable of byte pieces (a Node Readable is one). Holds only the
 * bytes between the consumer's position and the read-ahead limit; a device that resumes
 * ([LM-DLV-10]) does so at or after the consumer's position, which is still held.
 */
export class StreamSource implements JobSource {
  private pieces: Uint8Array[] = [];
  /** offset of pieces[0] in the job */
  private base = 0;
  /** bytes read so far */
  private read = 0;
  private wanted = 0;
  private ended = false;
  private reading = false;
  private closed = false;
  private hash = createHash('sha256');
  private listener: (() => void) | undefined;
  verified = false;
  failure: LmError | undefined;
  private iterator: AsyncIterator<Uint8Array>;
  private readonly readAhead: number;
  private readonly open: (() => AsyncIterable<Uint8Array>) | undefined;
  /** bumped on each reopening: reads of an earlier iterator are dropped */
  private generation = 0;

  constructor(input: JobStream, readonly size: number, private readonly digest: Uint8Array, o: StreamSourceOptions = {}) {
    this.open = typeof input === 'function' ? input : undefined;
    this.iterator = (typeof input === 'function' ? input() : input)[Symbol.asyncIterator]();
    this.readAhead = o.readAhead ?? 8 * 2 ** 20;
    // start at once: reading ahead, and a Node stream's errors have a listener from now on
    this.pump();
  }

  onReadable(f: () => void): void {
    this.listener = f;
  }

  take(start: number, end: number): Uint8Array | undefined {
    end = Math.min(end, this.size);
    if (start < this.base) throw new LmError(Reason.internal, `bytes from ${start} were already released (held from ${this.base})`);
    this.wanted = Math.max(this.wanted, end);
    if (this.read < end) {
      this.pump();
      return undefined;
    }
    // copy out [start, end) from the pieces
    const out = new Uint8Array(end - start);
    let at = this.base;
    let o = 0;
    for (const p of this.pieces) {
      const pEnd = at + p.length;
      if (pEnd > start && at < end) {
        const a = Math.max(start, at) - at;
        const b = Math.min(end, pEnd) - at;
        out.set(p.subarray(a, b), o);
        o += b - a;
      }
      at = pEnd;
      if (at >= end) break;
    }
    this.pump();
    return out;
  }

  release(offset: number): void {
    while (this.pieces.length && this.base + (this.pieces[0] as Uint8Array).length <= offset) {
      const p = this.pieces.shift() as Uint8Array;
      this.base += p.length;
      p.fill(0);
    }
    this.pump();
  }

  seek(offset: number): void {
    if (offset >= this.base) return;
    if (!this.open) {
      throw new LmError(Reason.aborted, `the device resumes at byte ${offset}, but this job is read from a one-way stream (a pipe or standard input) that has passed byte ${this.base}; stream the job again from its start ([LM-DLV-10])`);
    }
    // read the job again from its start; the digest is checked again on the way
    void this.iterator.return?.().catch(() => undefined);
    for (const p of this.pieces) p.fill(0);
    this.pieces = [];
    this.base = 0;
    this.read = 0;
    this.wanted = 0;
    this.ended = false;
    this.verified = false;
    this.reading = false;
    this.hash = createHash('sha256');
    this.generation++;
    this.iterator = this.open()[Symbol.asyncIterator]();
    this.pump();
  }

  close(): void {
    this.closed = true;
    for (const p of this.pieces) p.fill(0);
    this.pieces = [];
    void this.iterator.return?.().catch(() => undefined);
  }

  private pump(): void {
    if (this.reading || this.ended || this.closed || this.failure) return;
    if (this.read >= this.wanted + this.readAhead) return;
    this.reading = true;
    const generation = this.generation;
    void this.iterator.next().then(
      (r) => {
        if (generation !== this.generation) return; // read by an iterator replaced by seek()
        this.reading = false;
        if (this.closed) return;
        if (r.done) return this.finish();
        const v: unknown = r.value;
        if (!(v instanceof Uint8Array)) return this.fail(new LmError(Reason.internal, `the job's stream yielded ${typeof v === 'string' ? 'text' : typeof v}, not bytes (open it without an encoding)`));
        const piece = v;
        if (this.read + piece.length > this.size) return this.fail(new LmError(Reason.digest, `the job's stream is longer than the transaction's ${this.size} bytes ([LM-TX-6])`));
        this.hash.update(piece);
        this.pieces.push(piece);
        this.read += piece.length;
        this.listener?.();
        this.pump();
      },
      (e: unknown) => {
        if (generation !== this.generation) return;
        this.reading = false;
        this.fail(new LmError(Reason.internal, `reading the job failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
      },
    );
  }

  private finish(): void {
    this.ended = true;
    if (this.read !== this.size) return this.fail(new LmError(Reason.digest, `the job's stream ended after ${this.read} bytes; the transaction says ${this.size} ([LM-TX-6])`));
    this.check();
    this.listener?.();
  }

  private check(): void {
    if (this.verified || this.failure) return;
    const d = new Uint8Array(this.hash.digest());
    if (!equalBytes(d, this.digest)) return this.fail(new LmError(Reason.digest, 'the job\'s stream does not match the transaction\'s digest ([LM-TX-6])'));
    this.verified = true;
  }

  private fail(e: LmError): void {
    if (this.failure) return;
    this.failure = e;
    this.listener?.();
  }
}
