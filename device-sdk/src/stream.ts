/**
 * @module stream
 * The consumer's side of a session: an accepted stream, read in order with `bytes()` or
 * `lines()`, with pause, resume and abort ([LM-DLV-9]).
 */
import { EventEmitter } from 'node:events';
import { type FrameTypeId, type LmError, type ReasonCode, type SessionParams, type SignedTx, toHex } from '@livematrix/spec';
import { StreamReadError } from './errors.js';
import { Control, type ControlOpId } from './frames.js';

export interface ProgressEvent {
  bytes: number;
  total: number;
  revision: number;
}
export interface RejectEvent {
  code: ReasonCode;
  reason: string;
  type: FrameTypeId;
  detail: string;
}
export interface StreamEvents {
  progress: [ProgressEvent];
  alarm: [{ code: number; detail: string }];
  error: [LmError];
  reject: [RejectEvent];
  end: [{ bytes: number; digest: Uint8Array }];
}

/** What a stream needs of its session. @internal */
export interface StreamSession {
  readonly sid: Uint8Array;
  readonly params: SessionParams;
  readonly tx: SignedTx;
  /** the resume point ([LM-DLV-10]) */
  readonly from: number;
  /** the session resumes a print cut off before, under the device's ticket ([LM-LIC-4]) */
  readonly resumed: boolean;
  /** the consumer took a piece ([LM-DLV-4]) */
  consumed(b: Uint8Array): void;
  control(op: ControlOpId): Promise<void>;
}

/** A stream the device accepted: read it with `lines()` or `bytes()`. */
export class IncomingStream extends EventEmitter<StreamEvents> {
  readonly job: string;
  readonly size: number;
  /** where this stream starts in the job: 0, or the resume point of a restarted device ([LM-DLV-10]) */
  readonly offset: number;
  /** hash of the transaction, the key a consumer keeps its progress under */
  readonly txh: string;
  /**
   * This stream continues a print that was cut off (under the device's resume ticket,
   * [LM-LIC-4]), from `offset`; a consumer that kept nothing of it gets the job again from 0,
   * and should know that the machine already made part of it.
   */
  readonly resumed: boolean;
  private readonly queue: Uint8Array[] = [];
  private waiter: (() => void) | undefined;
  private failure: LmError | undefined;
  private finished = false;
  private reading = false;
  /** @internal */
  constructor(private readonly s: StreamSession) {
    super();
    this.job = s.tx.body.job;
    this.size = s.tx.body.size;
    this.offset = s.from;
    this.txh = toHex(s.tx.hash);
    this.resumed = s.resumed;
  }
  get params(): SessionParams {
    return this.s.params;
  }
  get sid(): Uint8Array {
    return this.s.sid;
  }
  /** @internal */
  push(b: Uint8Array): void {
    this.queue.push(b);
    this.wake();
  }
  /** @internal */
  fail(e: LmError): void {
    if (this.finished || this.failure) return;
    this.failure = e;
    if (this.listenerCount('error') > 0) this.emit('error', e); // the reader gets it from bytes() too
    this.wake();
  }
  /** @internal */
  finish(): void {
    this.finished = true;
    this.wake();
  }
  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
  /**
   * The plaintext in order, piece by piece. A piece counts as consumed (and is acknowledged,
   * [LM-DLV-4]) when the loop asks for the next one, and is then overwritten with zeros (the SDK
   * keeps no plaintext): copy what must outlive the iteration, for example a piece handed to a
   * write stream. Throws LmError if the stream fails; ends only after the end digest verified
   * ([LM-DLV-6]). A second call throws StreamReadError.
   */
  async *bytes(): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.reading) throw new StreamReadError('a stream can be read once');
    this.reading = true;
    for (;;) {
      if (this.failure) throw this.failure;
      const b = this.queue.shift();
      if (b) {
        yield b;
        this.s.consumed(b);
        continue;
      }
      if (this.finished) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
  /** The plaintext as lines (without their '\n'), in order, with the same guarantees. */
  async *lines(): AsyncGenerator<string, void, undefined> {
    const td = new TextDecoder();
    let rest = '';
    for await (const b of this.bytes()) {
      const text = rest + td.decode(b, { stream: true });
      const parts = text.split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) yield p;
    }
    rest += td.decode();
    if (rest) yield rest;
  }
  /** Asks the gateway to stop sending until resume() ([LM-DLV-9]). */
  pause(): Promise<void> {
    return this.s.control(Control.pause);
  }
  resume(): Promise<void> {
    return this.s.control(Control.resume);
  }
  /** Ends the session on both sides and erases its keys. */
  abort(): Promise<void> {
    return this.s.control(Control.abort);
  }
}
