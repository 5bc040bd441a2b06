/**
 * A clock for tests: time moves only when the test says so, and timers due by then run in
 * order of their due time.
 */
import type { Cancel, Clock } from '../src/clock.js';

interface Timer {
  at: number;
  every: number | undefined;
  f: () => void;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  private readonly timers: Timer[] = [];

  constructor(public t = 1_800_000_000_000) {}

  readonly now = (): number => this.t;

  after(ms: number, f: () => void): Cancel {
    return this.add({ at: this.t + ms, every: undefined, f, cancelled: false });
  }

  every(ms: number, f: () => void): Cancel {
    return this.add({ at: this.t + ms, every: ms, f, cancelled: false });
  }

  /** Timers not yet run or cancelled. */
  get pending(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }

  /** Moves time forward by `ms`, running every timer due on the way at its due time. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => !x.cancelled && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = due.at;
      if (due.every !== undefined) due.at += due.every;
      else due.cancelled = true;
      due.f();
    }
    this.t = end;
  }

  private add(x: Timer): Cancel {
    this.timers.push(x);
    return () => {
      x.cancelled = true;
    };
  }
}
