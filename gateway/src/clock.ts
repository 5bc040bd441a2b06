/**
 * @module clock
 * The gateway's one clock: the time it stamps and compares everything with (revisions
 * [LM-REV-1], time sync [LM-TIME-4], send times, key pacing, alarms, reports) and the timers its
 * sub-machines run on. Injected, in the manner of MQTT.js's KeepaliveManager, so that each
 * sub-machine can be tested without a broker and without waiting.
 */

/** Stops a timer; calling it again does nothing. */
export type Cancel = () => void;

/** A source of time and timers. */
export interface Clock {
  /** ms since the Unix epoch, on the clock the gateway's revisions follow */
  now(): number;
  /** runs `f` once after `ms` */
  after(ms: number, f: () => void): Cancel;
  /** runs `f` every `ms` until cancelled */
  every(ms: number, f: () => void): Cancel;
}

/** A cancel that has nothing to stop. */
export const noTimer: Cancel = () => undefined;

/**
 * The host's timers with the given time source (default `Date.now`).
 *
 * @example
 * const clock = systemClock(); const stop = clock.every(250, tick); stop();
 */
export function systemClock(now: () => number = Date.now): Clock {
  return {
    now,
    after(ms, f) {
      const t = setTimeout(f, ms);
      return () => clearTimeout(t);
    },
    every(ms, f) {
      const t = setInterval(f, ms);
      return () => clearInterval(t);
    },
  };
}
