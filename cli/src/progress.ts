/**
 * @module progress
 * Progress on stderr, and a consumer that reads an incoming stream at a machine's pace.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingStream } from '@livematrix/device-sdk';

export const isTTY = process.stderr.isTTY;

export const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

/** A progress line on stderr: a bar on a terminal, a line every 10% otherwise. */
export class Progress {
  private last = -1;
  constructor(private readonly label: string, private readonly total: number) {}
  update(done: number, extra = ''): void {
    const frac = this.total ? Math.min(1, done / this.total) : 1;
    if (isTTY) {
      const width = 30;
      const fill = Math.round(frac * width);
      process.stderr.write(`\r${this.label.padEnd(12)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb(done)} ${extra}`.padEnd(100));
    } else {
      const step = Math.floor(frac * 10);
      if (step !== this.last) {
        this.last = step;
        process.stderr.write(`${this.label}: ${(frac * 100).toFixed(0)}% ${mb(done)} ${extra}\n`);
      }
    }
  }
  done(): void {
    if (isTTY) process.stderr.write('\n');
  }
}

/** The consumer was told to stop (a signal): not a failure of the stream. */
export class Stopped extends Error {}

/**
 * Reads a stream at most `rate` bytes per second, like a machine that prints. `signal` ends it
 * at once, whatever it waits for (the next bytes, the pace, the sink), with {@link Stopped}.
 */
export async function consume(s: IncomingStream, rate: number, sink: (b: Uint8Array) => void | Promise<void>, onProgress?: (n: number) => void, signal?: AbortSignal): Promise<Uint8Array> {
  const h = createHash('sha256');
  const t0 = Date.now();
  let n = 0;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Stopped('stopped'));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  stopped.catch(() => undefined);
  const it = s.bytes()[Symbol.asyncIterator]();
  try {
    for (;;) {
      const r = await Promise.race([it.next(), stopped]);
      if (r.done) break;
      const b = r.value;
      h.update(b);
      const wrote = sink(b);
      if (wrote) await Promise.race([wrote, stopped]);
      n += b.length;
      onProgress?.(n);
      const ahead = (n / rate) * 1000 - (Date.now() - t0);
      if (ahead > 5) await Promise.race([sleep(ahead, undefined, signal ? { signal } : {}).catch(() => undefined), stopped]);
    }
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    // leaves the iterator without waiting for it: a pending read ends when the session does
    if (signal?.aborted) void it.return?.().catch(() => undefined);
  }
  return new Uint8Array(h.digest());
}
