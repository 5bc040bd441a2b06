/**
 * @module machine/marlin
 * The host side of the Marlin serial protocol, independent of the port: numbered, checksummed
 * lines (`N12 G1 X10*98`), `M110` to start numbering again, one command in flight per `ok` (or a
 * bounded number when the firmware has ADVANCED_OK and says `ok N12 P15 B3`), `Resend: N` /
 * `rs N` from a bounded history, `busy:` extending the timeout, `echo:` and `Error:` lines as
 * events, and a typed error when the firmware goes silent.
 *
 * A line counts as acknowledged when its `ok` came (with advanced ok: `ok N` acknowledges every
 * line up to N, as the firmware runs them in order), or when the firmware's `Resend: N` shows that
 * it accepted every line before N. A timeout first probes: the oldest unacknowledged line goes
 * again, and the firmware either takes it (it was lost) or refuses it as a duplicate with a
 * `Resend:` that says where it stands (its `ok` was lost).
 *
 * With plain `ok`s (no line number) one case stays ambiguous: a command that runs longer than
 * the timeout without `busy:` (Marlin's HOST_KEEPALIVE_FEATURE, on by default, prevents it) makes
 * the probe look like a lost `ok`, and its late `ok` is then counted for the next line. The
 * firmware still receives every line once and in order (it checks the numbers); only the count
 * runs one line ahead. Advanced ok has no such case.
 */
import { EventEmitter } from 'node:events';
import { type Cancel, type Timers, systemTimers } from '../clock.js';
import { MachineClosedError, type MachineError, MachineHaltedError, MachineLineError, MachineProtocolError, MachineResetError, MachineTimeoutError } from './errors.js';
import { frameLine } from './gcode.js';
import { type Reply, parseReply } from './replies.js';

export interface MarlinOptions {
  /** Writes bytes to the firmware, in order (the serial port). */
  write(bytes: Uint8Array): void;
  /** timers of the link (default: the host's) */
  timers?: Timers;
  /**
   * Commands in flight for a firmware built with ADVANCED_OK (`ok N12 P15 B3`), at most its
   * BUFSIZE; without it (the default) one command waits for each `ok`.
   */
  advancedOk?: number;
  /** ms without an acknowledgement (or `busy:`) before a probe, then a typed error; default 30000 */
  timeoutMs?: number;
  /** probes (the oldest line again) after a timeout before the link fails; default 2 */
  probes?: number;
  /**
   * acknowledged lines kept for a `Resend:` that asks for one again (with plain ok, after an ok
   * counted for the wrong line); a request from further back fails the link; default 16
   */
  history?: number;
  /** `Resend:` requests for one line before the link fails (the lines behind a bad one ask too); default max(10, 4 × window) */
  maxResends?: number;
  /** longest line on the wire, `N..` and `*..` included (Marlin's MAX_CMD_SIZE − 1); default 95 */
  maxLineBytes?: number;
  /** the firmware sends an `ok` after each `Resend:` (Marlin 1.1 and 2.1 do); default true */
  okAfterResend?: boolean;
  /** ms to wait for the `ok` of `M110` at the start of a job, per attempt; default 2000 */
  handshakeMs?: number;
  /** attempts of `M110` (a board that resets when its port opens needs a few s); default 5 */
  handshakeAttempts?: number;
}

/** Counters of a link since it was made. */
export interface MarlinStats {
  /** lines written the first time */
  sent: number;
  /** lines written again (after `Resend:` or as a probe) */
  resent: number;
  acknowledged: number;
  /** `Resend:` requests */
  resends: number;
  /** `Error:` lines */
  errors: number;
  busy: number;
  timeouts: number;
}

export interface MarlinEvents {
  sent: [{ n: number; command: string; again: boolean }];
  ack: [{ n: number }];
  resend: [{ n: number }];
  timeout: [{ n: number; probe: number }];
  busy: [string];
  echo: [string];
  /** an `Error:` line of the firmware (line errors are followed by a `Resend:`) */
  'firmware-error': [string];
  /** any other line: temperatures, `wait`, `//action:...`, an `ok` nobody waited for */
  info: [string];
  /** the link failed; every waiting call rejects with the same error */
  failed: [MachineError];
}

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
}

/** The host end of a Marlin serial link. Feed it the firmware's lines with {@link receive}. */
export class MarlinHost extends EventEmitter<MarlinEvents> {
  readonly stats: MarlinStats = { sent: 0, resent: 0, acknowledged: 0, resends: 0, errors: 0, busy: 0, timeouts: 0 };
  private readonly o: Required<Omit<MarlinOptions, 'advancedOk'>> & { advanced: boolean; window: number };
  /** every line up to here is acknowledged */
  private acked = 0;
  /** the highest line number given out */
  private highest = 0;
  /** the next line number to write; below highest + 1 after a `Resend:` */
  private next = 1;
  private readonly lines = new Map<number, { bytes: Uint8Array; command: string }>();
  private readonly asked = new Map<number, number>();
  /** after a `Resend:` one line goes at a time until the firmware took it */
  private resync: { target: number } | undefined;
  /** `ok`s that answer a `Resend:`, not a line (plain ok) */
  private swallow = 0;
  private probesDone = 0;
  private timer: Cancel | undefined;
  private handshake: { resolve(): void; reject(e: Error): void; attempts: number; timer: Cancel | undefined } | undefined;
  private readonly senders: (Waiter & { command: string })[] = [];
  private readonly drains: Waiter[] = [];
  private failure: MachineError | undefined;
  private started = false;
  private closed = false;

  constructor(o: MarlinOptions) {
    super();
    const window = o.advancedOk ?? 1;
    if (!Number.isInteger(window) || window < 1 || window > 64) throw new RangeError(`"advancedOk" expected an integer in [1, 64], got ${window}`);
    this.o = {
      write: o.write, timers: o.timers ?? systemTimers, advanced: o.advancedOk !== undefined, window,
      timeoutMs: o.timeoutMs ?? 30_000, probes: o.probes ?? 2, history: Math.max(o.history ?? 16, window),
      maxResends: o.maxResends ?? Math.max(10, 4 * window), maxLineBytes: o.maxLineBytes ?? 95, okAfterResend: o.okAfterResend ?? true,
      handshakeMs: o.handshakeMs ?? 2000, handshakeAttempts: o.handshakeAttempts ?? 5,
    };
  }

  /** lines acknowledged since the last {@link reset} */
  get acknowledged(): number {
    return this.acked;
  }
  /** lines given out since the last {@link reset} */
  get given(): number {
    return this.highest;
  }
  /** the error the link failed with, if it did */
  get failed(): MachineError | undefined {
    return this.failure;
  }

  /**
   * Starts numbering again: `N0 M110 N0*125`, and waits for its `ok`; sends it again after
   * `handshakeMs` without an answer (`busy:` waits longer), as often as `handshakeAttempts`
   * says. A `start` or `Resend:` meanwhile sends nothing more: either may be old, and a second
   * M110 would answer with a second `ok`. Call at the start of each job, with nothing in flight.
   * A link that failed (a timeout, a halted firmware) starts again here; a closed one does not.
   */
  reset(): Promise<void> {
    if (this.closed) return Promise.reject(this.failure ?? new MachineClosedError('the machine link was closed'));
    this.failure = undefined;
    const again = new MachineClosedError('the line numbering started again (reset())');
    for (const s of this.senders.splice(0)) s.reject(again);
    for (const d of this.drains.splice(0)) d.reject(again);
    const before = this.handshake;
    before?.timer?.();
    before?.reject(again);
    this.stopTimer();
    this.acked = 0;
    this.highest = 0;
    this.next = 1;
    this.lines.clear();
    this.asked.clear();
    this.resync = undefined;
    this.probesDone = 0; // (`swallow` stays: an ok that answers an earlier Resend: may still come)
    this.started = false;
    return new Promise<void>((resolve, reject) => {
      this.handshake = { resolve, reject, attempts: 0, timer: undefined };
      this.sendHandshake();
    });
  }

  /**
   * Gives `command` (one cleaned line: no comment, no line break) the next line number and writes
   * it once the window has room; resolves when written, not when acknowledged (see {@link drain}).
   * Rejects with MachineLineError when the framed line is longer than the firmware takes.
   */
  send(command: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.started) return Promise.reject(new MachineClosedError('send() before reset(): the line numbering was not started with M110'));
    if (/[\r\n]/.test(command) || command.trim() === '') return Promise.reject(new MachineLineError(`a command is one non-empty line: ${JSON.stringify(command)}`));
    const len = frameLine(this.highest + this.senders.length + 1, command).length - 1;
    if (len > this.o.maxLineBytes) return Promise.reject(new MachineLineError(`line ${JSON.stringify(command.slice(0, 40))}... is ${len} bytes with its number and checksum; the firmware takes at most ${this.o.maxLineBytes}`));
    return new Promise<void>((resolve, reject) => {
      this.senders.push({ command, resolve, reject });
      this.pump();
    });
  }

  /** Resolves when every line given out is acknowledged. */
  drain(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.idle()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.drains.push({ resolve, reject }));
  }

  /** One line from the firmware (without its line break). Never throws. */
  receive(line: string): void {
    const r = parseReply(line);
    if (this.failure) {
      // the count of oks that answer a Resend: goes on, for the next reset()
      if (r.kind === 'resend' && this.o.okAfterResend) this.swallow++;
      else if (r.kind === 'ok' && this.swallow > 0) this.swallow--;
      return;
    }
    if (r.kind !== 'other' || r.text !== '') this.onReply(r);
  }

  /** Fails every waiting call with `e` (or MachineClosedError) and stops the timers. */
  close(e?: MachineError): void {
    this.closed = true;
    this.fail(e ?? new MachineClosedError('the machine link was closed'));
  }

  // ---- replies ----
  private onReply(r: Reply): void {
    switch (r.kind) {
      case 'ok':
        return this.onOk(r.n);
      case 'resend':
        return this.onResend(r.n);
      case 'busy':
        this.stats.busy++;
        this.emit('busy', r.text);
        if (this.timer) this.armTimer(); // keepalive: the command runs, the clock starts again
        if (this.handshake) this.armHandshake();
        return;
      case 'echo':
        this.emit('echo', r.text);
        return;
      case 'error':
        this.stats.errors++;
        this.emit('firmware-error', r.text);
        if (r.fatal) this.fail(new MachineHaltedError(r.text));
        return;
      case 'start':
        this.emit('info', r.text);
        // during the handshake: a board that resets when its port opens, or an old line (the
        // handshake's timer sends M110 again if it was lost); later, even between jobs, the
        // numbering is gone: the link fails until the next reset()
        if (this.started) this.fail(new MachineResetError(`the firmware rebooted ("${r.text}") after line ${this.acked}: what it had queued is lost`));
        return;
      case 'other':
        this.emit('info', r.text);
    }
  }

  private onOk(n: number | undefined): void {
    const h = this.handshake;
    if (h) {
      if (this.swallow > 0 && !this.o.advanced) return void this.swallow--;
      if (this.o.advanced && n === undefined) {
        if (this.swallow > 0) return void this.swallow--;
        return this.fail(new MachineProtocolError('the firmware answered M110 with a plain "ok": it reports no line numbers (ADVANCED_OK); use one command in flight'));
      }
      if (n !== undefined && n !== 0) return; // an old line's ok
      h.timer?.();
      this.handshake = undefined;
      this.started = true;
      h.resolve();
      return this.pump();
    }
    if (this.o.advanced) {
      if (n === undefined) return; // answers a Resend:, or an unnumbered command
      if (n <= this.acked) return; // late: already acknowledged
      if (n > this.highest) return this.fail(new MachineProtocolError(`the firmware acknowledged line ${n}, which was never sent (last sent: ${this.highest}): does another host talk to it?`));
      return this.ackTo(n);
    }
    if (this.swallow > 0) return void this.swallow--;
    if (this.next - 1 > this.acked) return this.ackTo(this.acked + 1);
    this.emit('info', 'ok (unexpected: no line was waiting)');
  }

  private onResend(n: number): void {
    this.stats.resends++;
    this.emit('resend', { n });
    if (this.o.okAfterResend) this.swallow++;
    if (!this.started) return; // the handshake's timer sends M110 again if it was lost
    if (n > this.highest + 1 || n < 1) return this.fail(new MachineProtocolError(`the firmware asked for line ${n}; the last line sent is ${this.highest}`));
    if (n - 1 > this.acked) this.ackTo(n - 1, false); // it accepted every line before n
    if (this.failure) return;
    if (n <= this.acked) {
      // only a plain ok counted for the wrong line (a probe's duplicate, see the module doc) puts
      // the firmware behind what was counted; further back, it lost its numbering (a reboot)
      if (this.o.advanced || this.acked - n >= this.o.history || !this.lines.has(n)) {
        return this.fail(new MachineProtocolError(`the firmware asked for line ${n}, but had acknowledged up to ${this.acked}: it lost its line numbering (rebooted?)`));
      }
    }
    const times = (this.asked.get(n) ?? 0) + 1;
    this.asked.set(n, times);
    if (times > this.o.maxResends) return this.fail(new MachineProtocolError(`line ${n} was asked for ${times} times: the link keeps corrupting it`));
    // every Resend: gets a copy: the lines that were on the wire behind a bad one are refused
    // too, each with its own Resend:, and any refusal may have flushed the copy before
    this.resync = { target: n };
    this.next = n;
    this.armTimer();
    this.pump();
  }

  // ---- sending ----
  private get limit(): number {
    return this.resync ? 1 : this.o.window;
  }

  private pump(): void {
    while (!this.failure && this.started) {
      const inFlight = this.next - 1 - this.acked;
      if (inFlight >= this.limit) return;
      if (this.next <= this.highest) {
        const l = this.lines.get(this.next);
        if (!l) return this.fail(new MachineProtocolError(`line ${this.next} is not in the history`));
        this.write(this.next, l, true);
        this.next++;
        continue;
      }
      const s = this.senders.shift();
      if (!s) return;
      const n = ++this.highest;
      const l = { bytes: frameLine(n, s.command), command: s.command };
      this.lines.set(n, l);
      this.write(n, l, false);
      this.next = n + 1;
      s.resolve();
    }
  }

  private write(n: number, l: { bytes: Uint8Array; command: string }, again: boolean): void {
    if (again) this.stats.resent++;
    else this.stats.sent++;
    if (!this.timer) this.armTimer();
    this.emit('sent', { n, command: l.command, again });
    try {
      this.o.write(l.bytes);
    } catch (e) {
      this.fail(new MachineClosedError(`writing line ${n} failed: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  private ackTo(n: number, more = true): void {
    for (let i = this.acked + 1; i <= n; i++) {
      this.stats.acknowledged++;
      this.emit('ack', { n: i });
    }
    this.acked = n;
    if (this.next <= n) this.next = n + 1;
    if (this.resync && n >= this.resync.target) this.resync = undefined;
    for (const k of this.lines.keys()) if (k <= n - this.o.history) this.lines.delete(k);
    for (const k of this.asked.keys()) if (k <= n) this.asked.delete(k);
    this.probesDone = 0;
    if (this.idle()) {
      this.stopTimer();
      for (const d of this.drains.splice(0)) d.resolve();
    } else this.armTimer();
    if (more) this.pump();
  }

  private idle(): boolean {
    return this.acked === this.highest && this.senders.length === 0;
  }

  // ---- time ----
  private armTimer(): void {
    this.stopTimer();
    this.timer = this.o.timers.after(this.o.timeoutMs, () => this.onTimeout());
  }

  private stopTimer(): void {
    this.timer?.();
    this.timer = undefined;
  }

  private onTimeout(): void {
    this.timer = undefined;
    if (this.failure || this.acked === this.highest) return;
    const n = this.acked + 1;
    this.stats.timeouts++;
    if (this.probesDone >= this.o.probes) {
      return this.fail(new MachineTimeoutError(n, this.o.timeoutMs, `${this.probesDone} probe(s) unanswered`));
    }
    this.probesDone++;
    this.emit('timeout', { n, probe: this.probesDone });
    const l = this.lines.get(n);
    if (l && this.next > n) this.write(n, l, true); // the firmware takes it, or says where it stands
    this.armTimer();
  }

  private sendHandshake(): void {
    const h = this.handshake;
    if (!h) return;
    if (++h.attempts > this.o.handshakeAttempts) {
      this.handshake = undefined;
      h.timer?.();
      const e = new MachineTimeoutError(0, this.o.handshakeMs, `M110 N0 unanswered ${this.o.handshakeAttempts} times`);
      h.reject(e);
      return this.fail(e);
    }
    this.armHandshake();
    this.emit('sent', { n: 0, command: 'M110 N0', again: h.attempts > 1 });
    try {
      this.o.write(frameLine(0, 'M110 N0'));
    } catch (e) {
      this.fail(new MachineClosedError(`writing M110 failed: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  private armHandshake(): void {
    const h = this.handshake;
    if (!h) return;
    h.timer?.();
    h.timer = this.o.timers.after(this.o.handshakeMs, () => this.sendHandshake());
  }

  private fail(e: MachineError): void {
    if (this.failure) return;
    this.failure = e;
    this.stopTimer();
    const h = this.handshake;
    this.handshake = undefined;
    h?.timer?.();
    h?.reject(e);
    for (const s of this.senders.splice(0)) s.reject(e);
    for (const d of this.drains.splice(0)) d.reject(e);
    this.emit('failed', e);
  }
}
