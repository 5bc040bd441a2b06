/**
 * @module clock
 * The device's one clock and its timers. Every timer-driven phase (time sync, liveness, ACK
 * pacing) takes them injected, as MQTT.js's KeepaliveManager takes its timer, so that a test
 * drives it by hand without a broker; the device passes its `clock` option and the system timers.
 */

/** Unix time in ms. */
export type Clock = () => number;

/** Cancels a timer; calling it twice is harmless. */
export type Cancel = () => void;

export interface Timers {
  /** runs `fn` once after `ms` */
  after(ms: number, fn: () => void): Cancel;
  /** runs `fn` every `ms` until cancelled */
  every(ms: number, fn: () => void): Cancel;
}

/** The host's timers. */
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
