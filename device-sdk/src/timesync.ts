/**
 * @module timesync
 * Two timer-driven sub-machines of a session, each on an injected clock and timers:
 * - TimeSync: rounds of the four-timestamp exchange and the skew rule ([LM-TIME-1]..[LM-TIME-3]);
 * - Liveness: the heartbeat TIME_REQ and the end of a session whose gateway fell silent
 *   ([LM-DLV-13]).
 */
import { type LmError, type TimeSample, bestSample, checkSkew, toLmError } from '@livematrix/spec';
import type { Cancel, Clock, Timers } from './clock.js';

/** TIME_REQ per round, and the spacing between them (ms) */
const REQUESTS_PER_ROUND = 4;
const REQUEST_SPACING_MS = 40;
/** how long a round waits for the last answers before it judges (ms) */
const ROUND_WAIT_MS = 200;
/** rounds of 4 time-sync samples (about 0.3 s each) before a device refuses for skew ([LM-TIME-2]) */
export const SYNC_ROUNDS = 5;
/** a new exchange this often during a session; the spec asks for at least every 60 s ([LM-TIME-3]) */
export const RESYNC_MS = 30_000;
/** a TIME_REQ at least this often during a session: the gateway's answer proves it alive ([LM-DLV-13]) */
export const HEARTBEAT_MS = 1000;

export interface TimeSyncOptions {
  clock: Clock;
  timers: Timers;
  /** the session's grace window G ([LM-TIME-2]) */
  grace: number;
  /** sends TIME_REQ with send time t1 */
  request(t1: number): void;
  /** the clocks agree for the first time in the session: hints may come */
  agreed(): void;
  /** every round failed the skew rule ([LM-TIME-2]) */
  refused(e: LmError): void;
}

/** One exchange: samples of up to SYNC_ROUNDS rounds, the best of all counts. */
interface SyncRun {
  readonly samples: TimeSample[];
  rounds: number;
}

export class TimeSync {
  private run: SyncRun = { samples: [], rounds: 0 };
  private cancel: Cancel | undefined;
  private agreedOnce = false;
  private stopped = false;

  constructor(private readonly o: TimeSyncOptions) {}

  /** true once the clocks agreed ([LM-TIME-1]: no hints before) */
  get synced(): boolean {
    return this.agreedOnce;
  }

  /** Starts a fresh exchange ([LM-TIME-1]). */
  start(): void {
    this.run = { samples: [], rounds: 0 };
    this.round();
  }

  /** A TIME_RESP of the session: a sample, t4 on the device's clock. */
  onResponse(b: { t1: number; t2: number; t3: number }): void {
    this.run.samples.push({ t1: b.t1, t2: b.t2, t3: b.t3, t4: this.o.clock() });
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }

  private round(): void {
    this.run.rounds++;
    let sent = 0;
    const next = () => {
      if (this.stopped) return;
      if (sent < REQUESTS_PER_ROUND) {
        sent++;
        this.o.request(this.o.clock());
        this.cancel = this.o.timers.after(REQUEST_SPACING_MS, next);
      } else {
        this.cancel = this.o.timers.after(ROUND_WAIT_MS, () => this.judge());
      }
    };
    next();
  }

  private judge(): void {
    if (this.stopped) return;
    try {
      checkSkew(bestSample(this.run.samples), this.o.grace);
    } catch (e) {
      // A slow round trip widens the bound (|offset| + delay / 2) and a busy gateway may not
      // have answered yet: another round of samples (the best of all counts) before refusing.
      if (this.run.rounds < SYNC_ROUNDS) return this.round();
      this.o.refused(toLmError(e));
      return;
    }
    const first = !this.agreedOnce;
    this.agreedOnce = true;
    this.cancel = this.o.timers.after(RESYNC_MS, () => this.start()); // [LM-TIME-3]
    if (first) this.o.agreed();
  }
}

export interface LivenessOptions {
  clock: Clock;
  timers: Timers;
  /** ms without an authenticated frame of the gateway after which the session ends ([LM-DLV-13]) */
  timeout: number;
  /** ms between heartbeats; default HEARTBEAT_MS */
  interval?: number;
  /** sends the heartbeat (a TIME_REQ once the clocks agreed) */
  beat(): void;
  /** the gateway has been silent for `silentMs`: end the session as interrupted */
  gone(silentMs: number): void;
}

/** [LM-DLV-13]: a heartbeat the gateway answers, and the end of a session whose gateway is gone. */
export class Liveness {
  private lastHeard: number;
  private cancel: Cancel | undefined;

  constructor(private readonly o: LivenessOptions) {
    this.lastHeard = o.clock();
  }

  /** An authenticated frame of the gateway arrived. */
  heard(): void {
    this.lastHeard = this.o.clock();
  }

  /** ms since the gateway last sent an authenticated frame */
  silentFor(): number {
    return this.o.clock() - this.lastHeard;
  }

  start(): void {
    this.cancel = this.o.timers.every(this.o.interval ?? HEARTBEAT_MS, () => this.tick());
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }

  private tick(): void {
    const silent = this.silentFor();
    if (silent > this.o.timeout) {
      this.stop();
      this.o.gone(silent);
      return;
    }
    this.o.beat();
  }
}
