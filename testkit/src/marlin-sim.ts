/**
 * @module marlin-sim
 * A firmware simulator that speaks Marlin's serial protocol the way Marlin's GCodeQueue does
 * (src/gcode/queue.cpp): lines end at `\n` or `\r`, `;` starts a comment; a line that starts with
 * `N` must carry the last line number + 1 (except M110, which sets it) and a checksum (XOR of the
 * bytes before the last `*`); a bad line gets `Error:<reason>, Last Line: <n>`, the receive
 * buffer is flushed, then `Resend: <n+1>` and `ok`; a line with a checksum but no line number is
 * refused as in Marlin 1.1. Accepted commands wait in a queue of BUFSIZE (4) and run one at a time;
 * each sends `ok` when done (`ok N<n> P<planner> B<buffer>` with ADVANCED_OK), and a command that
 * runs long sends `echo:busy: processing` every keepalive interval (HOST_KEEPALIVE_FEATURE).
 *
 * Faults, from a seeded generator so that a run can be repeated: received lines with a bit
 * flipped, lost `ok`s, slow moves, a halt, silence, a reboot. `received` is the program as the
 * firmware accepted it, line for line.
 */
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { type Cancel, type Timers, systemTimers } from '@livematrix/spec';
import { openPty } from './pty.js';

export interface MarlinFaults {
  /** seed of the fault generator (default 1) */
  seed?: number;
  /** probability that a received line has one bit flipped */
  corrupt?: number;
  /** probability that an `ok` is never sent */
  loseOk?: number;
  /** every `every`-th numbered line is a slow move of `ms` */
  slow?: { every: number; ms: number };
  /** after running line N: `Error:Printer halted. kill() called!`, then silence */
  haltAfter?: number;
  /** after accepting line N: silence (nothing read, nothing sent) */
  silentAfter?: number;
  /** after running line N (once): reboot (`start`), the queue and line number lost */
  rebootAfter?: number;
  /** an `echo:` line after every k-th command run */
  echoEvery?: number;
}

export interface MarlinSimOptions {
  /** BUFSIZE: commands the queue holds (default 4) */
  bufsize?: number;
  /** ADVANCED_OK: `ok N<n> P<planner free> B<buffer free>` */
  advancedOk?: boolean;
  /** HOST_KEEPALIVE interval in ms (Marlin's default 2000) */
  keepaliveMs?: number;
  /** `ok` after each `Resend:` (Marlin 1.1 and 2.1; default true) */
  okAfterResend?: boolean;
  /** ms a command runs (default 0; slow moves add to it) */
  duration?(command: string, n: number | undefined): number;
  /** `start` and a banner when attached (a board that reset when its port opened; default true) */
  banner?: boolean;
  faults?: MarlinFaults;
  timers?: Timers;
}

export interface MarlinSimStats {
  corrupted: number;
  lostOks: number;
  /** `Resend:` sent */
  resends: number;
  busy: number;
  slow: number;
  /** most commands queued at once */
  maxQueued: number;
}

export interface MarlinSimEvents {
  /** a line accepted into the queue */
  accepted: [{ n: number | undefined; command: string }];
  /** a command ran (its ok sent or lost) */
  ran: [{ n: number | undefined; command: string }];
  /** everything written, line by line */
  said: [string];
}

interface Cmd {
  n: number | undefined;
  command: string;
}

const ERR_LINE_NO = 'Line Number is not Last Line Number+1, Last Line: ';
const ERR_CHECKSUM = 'checksum mismatch, Last Line: ';
const ERR_NO_CHECKSUM = 'No Checksum with line number, Last Line: ';
const ERR_NO_LINENUMBER = 'No Line Number with checksum, Last Line: ';

/** A simulated Marlin firmware on a byte stream (a pty end, a socket...). */
export class MarlinSim extends EventEmitter<MarlinSimEvents> {
  /** accepted commands, in order, without line number and checksum (M110 included) */
  readonly received: Cmd[] = [];
  /** commands run so far */
  ran = 0;
  readonly stats: MarlinSimStats = { corrupted: 0, lostOks: 0, resends: 0, busy: 0, slow: 0, maxQueued: 0 };
  private lastN = 0;
  private rx = '';
  private line = '';
  private comment = false;
  private readonly queue: Cmd[] = [];
  private running = false;
  private reading = false;
  private rebooted = false;
  private dead = false;
  private rnd: () => number;
  private readonly timers: Timers;
  private readonly pending = new Set<Cancel>();
  private input: Readable | undefined;
  private output: Writable | undefined;

  constructor(private readonly o: MarlinSimOptions = {}) {
    super();
    this.timers = o.timers ?? systemTimers;
    this.rnd = mulberry32(o.faults?.seed ?? 1);
  }

  /** Opens one end of a pty pair and runs on it. */
  static onPty(path: string, o: MarlinSimOptions = {}): MarlinSim & { close(): void } {
    const end = openPty(path);
    const sim = new MarlinSim(o);
    sim.attach(end.input, end.output);
    return Object.assign(sim, {
      close: () => {
        sim.stop();
        end.close();
      },
    });
  }

  /** The accepted program without the host's M110 lines. */
  get program(): string[] {
    return this.received.filter((c) => !/^M110(\s|$)/.test(c.command)).map((c) => c.command);
  }

  attach(input: Readable, output: Writable): void {
    this.input = input;
    this.output = output;
    input.on('data', (d: Buffer) => this.onBytes(d.toString('latin1')));
    if (this.o.banner ?? true) {
      this.say('start');
      this.say('echo:Marlin simulator (Live Matrix testkit)');
    }
  }

  /** Stops running: timers cancelled, nothing more said. */
  stop(): void {
    this.dead = true;
    for (const c of this.pending) c();
    this.pending.clear();
  }

  // ---- receiving (GCodeQueue::get_serial_commands) ----
  private onBytes(s: string): void {
    if (this.dead) return;
    this.rx += s;
    this.readLines();
  }

  private readLines(): void {
    if (this.reading) return; // a command that ran at once, from inside onLine()
    this.reading = true;
    const bufsize = this.o.bufsize ?? 4;
    let i = 0;
    while (!this.dead && i < this.rx.length && this.queue.length < bufsize) {
      const c = this.rx[i++] ?? '';
      if (c === '\n' || c === '\r') {
        this.rx = this.rx.slice(i);
        i = 0;
        const l = this.line;
        this.line = '';
        this.comment = false;
        if (l) this.onLine(l); // a line error empties rx
      } else if (!this.comment) {
        if (c === ';') this.comment = true;
        else this.line += c;
      }
    }
    this.rx = this.rx.slice(i);
    this.reading = false;
    // Marlin stops reading when its queue is full; the pty holds the rest (back-pressure)
    if (this.rx.length > 512) this.input?.pause();
    else this.input?.resume();
  }

  private onLine(raw: string): void {
    const f = this.o.faults ?? {};
    let line = raw;
    if (f.corrupt && this.rnd() < f.corrupt) {
      const i = Math.floor(this.rnd() * line.length);
      line = line.slice(0, i) + String.fromCharCode(line.charCodeAt(i) ^ (1 << Math.floor(this.rnd() * 7))) + line.slice(i + 1);
      this.stats.corrupted++;
    }
    const cmd = line.replace(/^ +/, '');
    let n: number | undefined;
    if (cmd.startsWith('N')) {
      const m110 = cmd.includes('M110');
      const npos = m110 && cmd.indexOf('N', 4) >= 0 ? cmd.indexOf('N', 4) : 0;
      const gcodeN = strtol(cmd.slice(npos + 1));
      if (gcodeN !== this.lastN + 1 && !m110) return this.lineError(ERR_LINE_NO);
      const star = cmd.lastIndexOf('*');
      if (star < 0) return this.lineError(ERR_NO_CHECKSUM);
      let sum = 0;
      for (let i = 0; i < star; i++) sum ^= cmd.charCodeAt(i) & 0xff;
      if (strtol(cmd.slice(star + 1)) !== sum) return this.lineError(ERR_CHECKSUM);
      this.lastN = gcodeN;
      n = strtol(cmd.slice(1));
    } else if (cmd.includes('*')) return this.lineError(ERR_NO_LINENUMBER);
    // the parser skips N<n> and stops at '*'; the bytes were checked, the program is UTF-8
    const command = Buffer.from(cmd.replace(/^N-?\d+\s*/, '').replace(/\*[^*]*$/, '').trim(), 'latin1').toString('utf8');
    const c = { n, command };
    this.received.push(c);
    this.queue.push(c);
    this.stats.maxQueued = Math.max(this.stats.maxQueued, this.queue.length);
    this.emit('accepted', c);
    if (f.silentAfter !== undefined && n === f.silentAfter) return this.stop();
    this.runNext();
  }

  /** GCodeQueue::gcode_line_error: the error, the receive buffer flushed, Resend:, ok */
  private lineError(why: string): void {
    this.say(`Error:${why}${this.lastN}`);
    this.rx = '';
    this.line = '';
    this.stats.resends++;
    this.say(`Resend: ${this.lastN + 1}`);
    if (this.o.okAfterResend ?? true) this.ok(undefined);
  }

  // ---- running (GCodeQueue::advance) ----
  private runNext(): void {
    if (this.running || this.dead) return;
    const c = this.queue[0];
    if (!c) return;
    this.running = true;
    const f = this.o.faults ?? {};
    let ms = this.o.duration?.(c.command, c.n) ?? 0;
    if (f.slow && c.n !== undefined && c.n > 0 && c.n % f.slow.every === 0) {
      ms += f.slow.ms;
      this.stats.slow++;
    }
    if (ms <= 0) return this.finish(c);
    const keepalive = this.o.keepaliveMs ?? 2000;
    const beat = this.timers.every(keepalive, () => {
      this.stats.busy++;
      this.say('echo:busy: processing');
    });
    const done = this.timers.after(ms, () => {
      beat();
      this.pending.delete(beat);
      this.pending.delete(done);
      this.finish(c);
    });
    this.pending.add(beat);
    this.pending.add(done);
  }

  private finish(c: Cmd): void {
    if (this.dead) return;
    const f = this.o.faults ?? {};
    const m110 = /^M110\b/.exec(c.command) ? /N(-?\d+)/.exec(c.command.slice(4)) : null;
    if (m110?.[1]) this.lastN = Number(m110[1]); // M110's handler: set_current_line_number
    this.ok(c.n);
    this.queue.shift();
    this.ran++;
    this.emit('ran', c);
    if (f.echoEvery && this.ran % f.echoEvery === 0) this.say(`echo:simulated note after ${this.ran} commands`);
    if (f.haltAfter !== undefined && c.n === f.haltAfter) {
      this.say('Error:Printer halted. kill() called!');
      return this.stop();
    }
    if (f.rebootAfter !== undefined && c.n === f.rebootAfter && !this.rebooted) {
      this.rebooted = true;
      this.queue.length = 0;
      this.rx = '';
      this.lastN = 0;
      this.say('start');
    }
    this.running = false;
    this.readLines();
    this.runNext();
  }

  private ok(n: number | undefined): void {
    const f = this.o.faults ?? {};
    if (f.loseOk && this.rnd() < f.loseOk) {
      this.stats.lostOks++;
      return;
    }
    if (!this.o.advancedOk) return this.say('ok');
    const bufsize = this.o.bufsize ?? 4;
    this.say(`ok${n !== undefined ? ` N${n}` : ''} P${15} B${bufsize - this.queue.length}`);
  }

  private say(l: string): void {
    if (this.dead) return;
    this.emit('said', l);
    this.output?.write(l + '\n');
  }
}

/**
 * The program a firmware should receive from a G-code job: each line (ended by \n, \r\n or \r)
 * without its `;` comment, trimmed, blank ones dropped. The tests' oracle, written apart from
 * the SDK's own cleaning.
 */
export function expectedProgram(job: string): string[] {
  return job.split(/\r\n|\r|\n/).map((l) => l.replace(/;.*$/, '').trim()).filter((l) => l !== '');
}

/**
 * Byte offsets just past each program line of `job` (its \n included; jobs with lone \r line
 * ends are not covered): a consumer that took `ends[k]` bytes took program line k whole.
 */
export function programLineEnds(job: string | Uint8Array): number[] {
  const bytes = typeof job === 'string' ? Buffer.from(job) : Buffer.from(job.buffer, job.byteOffset, job.byteLength);
  const ends: number[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      const text = bytes.subarray(start, i).toString().replace(/;.*$/, '').trim();
      if (text !== '') ends.push(Math.min(i + 1, bytes.length));
      start = i + 1;
    }
  }
  return ends;
}

/** C's strtol on a decimal: the leading number, 0 when there is none. */
function strtol(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m?.[1] ? Number(m[1]) : 0;
}

/** A small seeded generator (mulberry32), for repeatable faults and inputs: a failing run can be repeated. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
