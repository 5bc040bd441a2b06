/**
 * A clock and timers driven by hand, for the device's timer-driven phases (src/clock.ts).
 */
import type { Cancel, Timers } from '../src/clock.js';

interface Pending {
  at: number;
  fn: () => void;
  every?: number;
}

export class FakeTime implements Timers {
  now: number;
  private id = 0;
  private readonly pending = new Map<number, Pending>();
  /** the clock, as a function to inject */
  readonly clock = (): number => this.now;

  constructor(start = 1_800_000_000_000) {
    this.now = start;
  }

  after(ms: number, fn: () => void): Cancel {
    const id = ++this.id;
    this.pending.set(id, { at: this.now + ms, fn });
    return () => void this.pending.delete(id);
  }

  every(ms: number, fn: () => void): Cancel {
    const id = ++this.id;
    this.pending.set(id, { at: this.now + ms, fn, every: ms });
    return () => void this.pending.delete(id);
  }

  /** timers still set */
  get timers(): number {
    return this.pending.size;
  }

  /** Moves the clock by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: [number, Pending] | undefined;
      for (const e of this.pending) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      const [id, t] = next;
      this.now = t.at;
      if (t.every !== undefined) t.at += t.every;
      else this.pending.delete(id);
      t.fn();
    }
    this.now = end;
  }
}
