/**
 * @module clock
 * The device's one clock and its timers. Every timer-driven phase (time sync, liveness, ACK
 * pacing) takes them injected, so that a test drives it by hand without a broker; the device
 * passes its `clock` option and the host's timers (spec's `systemTimers`).
 */
export { systemTimers, type Cancel, type Timers } from '@livematrix/spec';

/** Unix time in ms. */
export type Clock = () => number;
