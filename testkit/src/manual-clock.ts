/**
 * @module manual-clock
 * A clock and timers for tests of timer-driven sub-machines: time moves only when the test says
 * so, and timers due by then run in the order of their due times.
 */
import type { Cancel, Timers } from '@livematrix/spec';

interface Timer {
  at: number;
  every: number | undefined;
  fn: () => void;
  cancelled: boolean;
}

/**
 * @example
 * const c = new ManualClock(); const stop = c.every(1000, beat); c.advance(3000); // 3 beats
 */
export class ManualClock implements Timers {
  private readonly list: Timer[] = [];

  constructor(public t = 1_800_000_000_000) {}

  /** the time, as a method (a gateway's Clock) */
  readonly now = (): number => this.t;
  /** the time, as a function to inject (a device's Clock) */
  readonly clock = (): number => this.t;

  after(ms: number, fn: () => void): Cancel {
    return this.add({ at: this.t + ms, every: undefined, fn, cancelled: false });
  }

  every(ms: number, fn: () => void): Cancel {
    return this.add({ at: this.t + ms, every: ms, fn, cancelled: false });
  }

  /** timers not yet run or cancelled */
  get pending(): number {
    return this.list.filter((x) => !x.cancelled).length;
  }

  /** Moves time forward by `ms`, running every timer due on the way at its due time. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.list.filter((x) => !x.cancelled && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = due.at;
      if (due.every !== undefined) due.at += due.every;
      else due.cancelled = true;
      due.fn();
    }
    this.t = end;
  }

  private add(x: Timer): Cancel {
    this.list.push(x);
    return () => {
      x.cancelled = true;
    };
  }
}
