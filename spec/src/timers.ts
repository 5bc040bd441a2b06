/**
 * @module timers
 * Timers as both roles inject them into their timer-driven sub-machines (time sync, liveness,
 * ACK pacing, offers, retransmission), in the manner of MQTT.js's KeepaliveManager: a test drives
 * them by hand, the product passes the host's.
 */

/** Stops a timer; calling it again does nothing. */
export type Cancel = () => void;

/** Timers a sub-machine runs on. */
export interface Timers {
  /** runs `fn` once after `ms` */
  after(ms: number, fn: () => void): Cancel;
  /** runs `fn` every `ms` until cancelled */
  every(ms: number, fn: () => void): Cancel;
}

/** A cancel that has nothing to stop. */
export const noTimer: Cancel = () => undefined;

/** The host's timers (setTimeout, setInterval). */
export const systemTimers: Timers = Object.freeze({
  after(ms: number, fn: () => void): Cancel {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  every(ms: number, fn: () => void): Cancel {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
});
