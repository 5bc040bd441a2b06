/**
 * @module pipeline
 * The revision pipeline ([LM-REV-3], [LM-REV-4]): driven by the revision clock, it builds the
 * next revision's table while the current one serves, holds at most the current and previous
 * revisions (plus the one being built), and zero-fills and releases expired tables and keys.
 * Only a device runs it (a gateway hashes forward and never inverts), so it lives here, on the
 * engine of @livematrix/spec/engine.
 */
import { EventEmitter } from 'node:events';
import { type RevisionKeys, type SuiteId, revisionAt, wipe } from '@livematrix/spec';
import { type BuildReport, type MatrixEngine, type RevisionTable, type TableMemory, allocTable } from '@livematrix/spec/engine';
import { type Cancel, type Timers, systemTimers } from './clock.js';

export interface PipelineOptions {
  engine: MatrixEngine;
  suite: SuiteId;
  w: number;
  L: number;
  epoch: number;
  period: number;
  /** keys of a revision; called once per revision, in increasing order (a ratchet) */
  keysFor: (r: number) => RevisionKeys;
  /** clock in Unix ms; default Date.now */
  now?: () => number;
  /** timers of the revision clock; default the system's */
  timers?: Timers;
  /** first revision that has keys */
  r0: number;
  /** revisions held below the current one; 1 by the spec ([LM-REV-3]); more only to build deliberately broken devices */
  keep?: number;
}

export interface BuiltEvent extends BuildReport {
  revision: number;
  /** ms the table was ready after its revision began (0 when early) */
  lateness: number;
}

interface Slot {
  revision: number;
  /** the table's memory, from its build on; a slot without it holds keys only (see start()) */
  mem?: TableMemory;
  table?: RevisionTable;
  keys?: RevisionKeys;
}

export interface PipelineEvents {
  built: [BuiltEvent];
  expired: [number];
  error: [Error];
}

/**
 * @example
 * const p = new RevisionPipeline({ engine, suite: 3, w: 20, L: 4, epoch, period: 1000, r0, keysFor: (r) => ratchet.keysFor(r) });
 * await p.start(); const t = p.table(rev); ... p.stop();
 */
export class RevisionPipeline extends EventEmitter<PipelineEvents> {
  private readonly o: Required<PipelineOptions>;
  private readonly slots = new Map<number, Slot>();
  private readonly free: TableMemory[] = [];
  private cancelTick: Cancel | undefined;
  private building: Promise<void> | undefined;
  private lastBuilt = -1;
  /** a revision held with its keys only that a frame waits for: built before any other */
  private asked: number | undefined;
  private running = false;
  /** Build reports, newest last (at most 64). */
  readonly history: BuiltEvent[] = [];

  constructor(opts: PipelineOptions) {
    super();
    this.o = { now: Date.now, keep: 1, timers: systemTimers, ...opts };
  }

  /** Current revision on the clock. */
  current(): number {
    return revisionAt(this.o.now(), this.o.epoch, this.o.period);
  }

  /**
   * Starts the clock and waits until the current revision's table is ready. Frames stamped with
   * the previous revision are served too ([LM-REV-2]): its keys are taken first (the ratchet only
   * moves forward), but its table is built only when such a frame comes (a stream that starts
   * just after the revision turned), so that the first table a stream waits for is the current one.
   */
  async start(): Promise<void> {
    this.running = true;
    const c = this.current();
    if (this.lastBuilt < 0 && c - 1 >= this.o.r0 && !this.slots.has(c - 1)) this.slots.set(c - 1, { revision: c - 1, keys: this.o.keysFor(c - 1) });
    this.tick();
    await this.ready(c);
  }

  /** Stops, and erases every table and key ([LM-REV-3], [LM-KEY-5]). */
  async stop(): Promise<void> {
    this.running = false;
    this.cancelTick?.();
    this.cancelTick = undefined;
    await this.building?.catch(() => undefined);
    for (const r of [...this.slots.keys()]) this.release(r);
    for (const m of this.free) {
      new Uint8Array(m.entries).fill(0);
      new Uint8Array(m.offsets).fill(0);
    }
    this.free.length = 0;
  }

  /** The table of revision r when it is held and ready. */
  table(r: number): RevisionTable | undefined {
    this.prune();
    return this.slots.get(r)?.table;
  }

  /** The keys of revision r when held. */
  keys(r: number): RevisionKeys | undefined {
    this.prune();
    return this.slots.get(r)?.keys;
  }

  /** Revisions held (ready or building). */
  held(): number[] {
    this.prune();
    return [...this.slots.keys()].sort((a, b) => a - b);
  }

  /** Releases what the clock has expired, even between timer ticks ([LM-REV-3]). */
  private prune(): void {
    if (!this.running) return;
    const c = this.current();
    for (const r of [...this.slots.keys()]) if (r < c - this.o.keep) this.release(r);
  }

  /** Resolves when revision r's table is ready (or immediately if it is, or will never be). */
  async ready(r: number): Promise<RevisionTable | undefined> {
    while (this.running) {
      const s = this.slots.get(r);
      if (s?.table) return s.table;
      if (r < this.current() - this.o.keep) return undefined;
      // a revision held with its keys only (start()): a frame wants it, so it is built next
      if (s && !s.mem) {
        this.asked = r;
        if (!this.building) this.tick();
      }
      if (this.building) await this.building;
      else await new Promise<void>((res) => this.o.timers.after(5, res));
    }
    return undefined;
  }

  private tick(): void {
    if (!this.running) return;
    const c = this.current();
    this.prune(); // release everything below c - 1 ([LM-REV-3])
    if (!this.building) {
      // A revision a frame asked for first (see ready()); else the current revision if missing
      // (start, or we fell behind), else the next one.
      const asked = this.asked !== undefined ? this.slots.get(this.asked) : undefined;
      this.asked = undefined;
      if (asked && !asked.mem) this.building = this.build(asked.revision).finally(() => (this.building = undefined)).then(() => this.tick());
      else {
        const target = this.slots.get(c)?.table || this.slots.has(c) ? c + 1 : Math.max(c, this.o.r0);
        if (target > this.lastBuilt && !this.slots.has(target)) this.building = this.build(target).finally(() => (this.building = undefined)).then(() => this.tick());
      }
    }
    const next = this.o.epoch + (c + 1) * this.o.period;
    this.cancelTick?.();
    this.cancelTick = this.o.timers.after(Math.max(1, next - this.o.now()), () => this.tick());
  }

  private async build(r: number): Promise<void> {
    const mem = this.free.pop() ?? allocTable(this.o.w);
    const slot: Slot = this.slots.get(r) ?? { revision: r };
    slot.mem = mem;
    this.slots.set(r, slot);
    try {
      const keys = (slot.keys ??= this.o.keysFor(r));
      const { table, report } = await this.o.engine.buildTable(this.o.suite, this.o.w, this.o.L, keys.hk, mem);
      if (!this.slots.has(r)) {
        // expired while building
        table.wipe();
        return;
      }
      slot.table = table;
      this.lastBuilt = Math.max(this.lastBuilt, r);
      const lateness = Math.max(0, this.o.now() - (this.o.epoch + r * this.o.period));
      const ev: BuiltEvent = { ...report, revision: r, lateness };
      this.history.push(ev);
      if (this.history.length > 64) this.history.shift();
      this.emit('built', ev);
    } catch (e) {
      this.release(r);
      this.emit('error', e instanceof Error ? e : new Error(String(e)));
    }
  }

  private release(r: number): void {
    const s = this.slots.get(r);
    if (!s) return;
    this.slots.delete(r);
    s.table?.wipe();
    if (s.mem && !s.table) {
      new Uint8Array(s.mem.entries).fill(0);
      new Uint8Array(s.mem.offsets).fill(0);
    }
    if (s.keys) wipe(s.keys.hk, s.keys.wk);
    if (s.mem && this.free.length < 1) this.free.push(s.mem);
    this.emit('expired', r);
  }
}
