/**
 * @module clock
 * The gateway's one clock: the time it stamps and compares everything with (revisions
 * [LM-REV-1], time sync [LM-TIME-4], send times, key pacing, alarms, reports) and the timers its
 * sub-machines run on (spec's `Timers`). Injected, so that each sub-machine can be tested without
 * a broker and without waiting.
 */
import { type Timers, systemTimers } from '@livematrix/spec';

export { noTimer, type Cancel } from '@livematrix/spec';

/** A source of time and timers. */
export interface Clock extends Timers {
  /** ms since the Unix epoch, on the clock the gateway's revisions follow */
  now(): number;
}

/**
 * The host's timers with the given time source (default `Date.now`).
 *
 * @example
 * const clock = systemClock(); const stop = clock.every(250, tick); stop();
 */
export function systemClock(now: () => number = Date.now): Clock {
  return { now, after: systemTimers.after, every: systemTimers.every };
}
