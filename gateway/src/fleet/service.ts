/**
 * @module fleet/service
 * The fleet service (SPEC §17): per-device job queues kept in a {@link FleetDb}, run through one
 * {@link Gateway} as devices come online. One scheduling pass at a time leases jobs
 * ([LM-FLEET-3]) for online devices without a run here; each run streams its job under its
 * transaction and moves it along the state machine ([LM-FLEET-1]) when it ends; a timer renews
 * leases, notices jobs changed by another instance (cancel, pause, resume), times runs out and
 * retries after back-off. Alarms quarantine ([LM-FLEET-4]). Nothing is acted on before the
 * database holds it ([LM-FLEET-2]); a restart goes on from there, the device resuming with its
 * ticket ([LM-LIC-4]).
 */
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { type IdentityKeyPair, LmError, Reason, fromHex, toLmError } from '@livematrix/spec';
import { type Clock, systemClock, type Cancel } from '../clock.js';
import type { Gateway } from '../gateway.js';
import type { GatewayStream } from '../stream.js';
import { Control, type FleetAlarm, type StreamOptions, type StreamReport } from '../types.js';
import { StreamAbortedError } from '../errors.js';
import type { SubmitJob, LedgerView } from './api.js';
import { JobTransitionError, NotFoundError } from './errors.js';
import type { FileStore } from './files.js';
import { ledgerRecordOf } from './ledger-view.js';
import { AlarmDesk } from './alarms.js';
import { outcome, receiptLost } from './outcome.js';
import { PresenceBook } from './presence.js';
import { changedDevices } from './views.js';
import { prepareJob } from './submit.js';
import type { AlarmRecord, DeviceRecord, FleetDb, JobRecord, JobState, Transition } from './types.js';

export interface FleetServiceOptions {
  /** this instance's id: the owner of its leases; the same id after a restart takes its jobs back at once */
  id: string;
  gateway: Gateway;
  db: FleetDb;
  files: FileStore;
  trustedOperators: readonly Uint8Array[];
  /** the operator key the service signs transactions with; without it, jobs come with signed transactions */
  operator?: IdentityKeyPair;
  /** registered device keys (the broker's registry): needed to sign for a device */
  deviceKeys?: ReadonlyMap<string, Uint8Array>;
  /** hands a protected job's licence to the keys service ([LM-SVC-4]) */
  grant?: (tx: Uint8Array, licence: Uint8Array) => Promise<void>;
  /** options of every stream (negotiation policy, timeouts) */
  stream?: StreamOptions;
  /** ms a lease lasts without renewal; default 15000 */
  leaseMs?: number;
  /** ms between housekeeping passes (renewal, timeouts, back-off); default 1000 */
  tickMs?: number;
  clock?: Clock;
}

export interface FleetServiceEvents {
  job: [JobRecord];
  device: [string];
  alarm: [AlarmRecord];
  ledger: [LedgerView];
  /** a stream of a job started */
  started: [JobRecord];
  /** a stream's report, once its receipt is in the ledger */
  report: [StreamReport];
  log: [string];
}

/** A job running here. */
interface Run {
  job: JobRecord;
  stream: GatewayStream | undefined;
  paused: boolean;
  /** why this service ended the run itself; undefined: the stream ended on its own */
  ended?: { to: JobState; reason: string } | 'stopping' | 'elsewhere';
  /** progress last written to the database */
  written: number;
}

export class FleetService extends EventEmitter<FleetServiceEvents> {
  readonly presence: PresenceBook;
  readonly clock: Clock;
  private readonly runs = new Map<string, Run>();
  private passing = false;
  private keeping = false;
  private again = false;
  private stopping = false;
  private timer: Cancel | undefined;
  private readonly alarms: AlarmDesk;
  private readonly leaseMs: number;
  /** devices' quarantine and every open job, as of the last housekeeping pass (views read these) */
  private deviceRecords = new Map<string, DeviceRecord>();
  private openJobs = new Map<string, JobRecord>();

  private constructor(readonly o: FleetServiceOptions) {
    super();
    this.clock = o.clock ?? systemClock();
    this.leaseMs = o.leaseMs ?? 15_000;
    this.presence = new PresenceBook((d) => this.emit('device', d));
    this.alarms = new AlarmDesk({
      db: o.db, clock: this.clock, log: (l) => this.log(l),
      quarantined: async (a) => {
        this.deviceRecords.set(a.device, await this.o.db.device(a.device));
        this.emit('alarm', a);
        this.emit('device', a.device);
      },
    });
  }

  /** Starts scheduling: takes back this instance's jobs, then leases new ones as devices come online. */
  static async start(o: FleetServiceOptions): Promise<FleetService> {
    const s = new FleetService(o);
    await s.refresh();
    const gw = o.gateway;
    gw.on('hello', (device) => {
      s.presence.hello(device, s.clock.now());
      s.schedule();
    });
    gw.on('offline', (device) => s.presence.offline(device, s.clock.now()));
    // the devices' signed status, as the gateway takes it ([LM-STATE-6], SPEC §10.2)
    gw.on('status', (device, body) => s.presence.status(device, body, s.clock.now()));
    gw.on('alarm', (a) => void s.onFleetAlarm(a).catch((e: unknown) => s.log(`alarm: ${toLmError(e).message}`)));
    for (const d of gw.online()) s.presence.hello(d, s.clock.now()); // HELLOs retained before the service listened
    for (const d of s.knownDevices()) {
      const st = gw.status(d); // and the STATUS frames the gateway took meanwhile
      if (st) s.presence.status(d, st, s.clock.now());
    }
    s.timer = s.clock.every(o.tickMs ?? 1000, () => void s.housekeeping().catch((e: unknown) => s.log(`housekeeping: ${toLmError(e).message}`)));
    s.schedule();
    return s;
  }

  get id(): string {
    return this.o.id;
  }

  get canSign(): boolean {
    return this.o.operator !== undefined;
  }

  private log(line: string): void {
    this.emit('log', line);
  }

  /** A device's quarantine, as last read. */
  deviceRecord(id: string): DeviceRecord {
    return this.deviceRecords.get(id) ?? { id, quarantined: false };
  }

  /** A device's open job (IN_PROGRESS or PAUSED), here or on another instance, as last read. */
  openJob(device: string): JobRecord | undefined {
    return this.runOf(device)?.job ?? [...this.openJobs.values()].find((j) => j.device === device);
  }

  /** Reads quarantines and open jobs again. */
  private async refresh(): Promise<void> {
    const before = this.openJobs;
    const quarantined = this.deviceRecords;
    this.deviceRecords = new Map((await this.o.db.devices()).map((d) => [d.id, d]));
    this.openJobs = new Map((await this.o.db.jobs({ states: ['IN_PROGRESS', 'PAUSED'], limit: 10_000 })).map((j) => [j.id, j]));
    // what changed here or on another instance reaches those who follow the devices
    for (const d of changedDevices(before, this.openJobs, quarantined, this.deviceRecords)) this.emit('device', d);
  }

  /** Streams running on this instance. */
  running(): number {
    return this.runs.size;
  }

  /** Every device the service knows: registered, heard from, or with a record (as of the last housekeeping pass). */
  knownDevices(): string[] {
    return [...new Set([...(this.o.deviceKeys?.keys() ?? []), ...this.presence.known(), ...this.deviceRecords.keys()])].sort();
  }

  /** The run of a device's open job here, if any. */
  runOf(device: string): Run | undefined {
    return [...this.runs.values()].find((r) => r.job.device === device);
  }

  // ---- operators' actions ([LM-FLEET-1], [LM-FLEET-5]) ----

  /** Queues a job. */
  async submit(req: SubmitJob, by: string): Promise<JobRecord> {
    const j = await prepareJob(req, {
      files: this.o.files, now: this.clock.now(), trustedOperators: this.o.trustedOperators, operator: this.o.operator,
      deviceKey: (id) => this.o.deviceKeys?.get(id), grant: this.o.grant, by,
    });
    const rec = await this.o.db.addJob(j);
    this.log(`job ${rec.id} queued for ${rec.device} by ${by}: ${rec.source.kind === 'file' ? rec.source.name : `stored ${rec.source.jid}`}`);
    this.emit('job', rec);
    this.schedule();
    return rec;
  }

  private async existing(id: string): Promise<JobRecord> {
    const j = await this.o.db.job(id);
    if (!j) throw new NotFoundError(`no job ${id}`);
    return j;
  }

  private async move(j: JobRecord, to: JobState, reason: string, by: string): Promise<JobRecord> {
    const r = await this.o.db.transition({ job: j.id, from: [j.state], to, reason, time: this.clock.now(), by });
    if (!r) throw new JobTransitionError(j.id, `${j.state} (changed meanwhile)`, to);
    this.emit('job', r);
    return r;
  }

  async cancel(id: string, by: string): Promise<JobRecord> {
    const j = await this.existing(id);
    const r = await this.move(j, 'CANCELED', `canceled by ${by}`, by);
    const run = this.runs.get(id);
    if (run) this.endRun(run, 'elsewhere'); // the transition is made: the run only stops
    this.schedule();
    return r;
  }

  async pause(id: string, by: string): Promise<JobRecord> {
    const j = await this.existing(id);
    const r = await this.move(j, 'PAUSED', `paused by ${by}`, by);
    const run = this.runs.get(id);
    if (run) {
      run.job = { ...r, progress: Math.max(r.progress, run.job.progress) };
      await this.pauseRun(run, true);
    }
    return r;
  }

  async resume(id: string, by: string): Promise<JobRecord> {
    const j = await this.existing(id);
    // a job that never started waits in its queue again; one that ran goes on under its lease (or is taken over)
    const r = await this.move(j, j.attempts > 0 ? 'IN_PROGRESS' : 'QUEUED', `resumed by ${by}`, by);
    const run = this.runs.get(id);
    if (run) {
      run.job = { ...r, progress: Math.max(r.progress, run.job.progress) };
      await this.pauseRun(run, false);
    }
    this.schedule();
    return r;
  }

  /** Lifts a device's quarantine ([LM-FLEET-4]). */
  async clear(device: string, by: string): Promise<boolean> {
    const was = await this.o.db.clear(device, by, this.clock.now());
    this.deviceRecords.set(device, await this.o.db.device(device));
    if (was) this.log(`quarantine of ${device} cleared by ${by}`);
    this.emit('device', device);
    this.schedule();
    return was;
  }

  private async pauseRun(run: Run, on: boolean): Promise<void> {
    if (run.paused === on) return;
    run.paused = on;
    await run.stream?.control(on ? Control.pause : Control.resume).catch((e: unknown) => this.log(`job ${run.job.id}: ${on ? 'pause' : 'resume'}: ${toLmError(e).message}`));
    this.emit('device', run.job.device);
  }

  // ---- alarms ([LM-FLEET-4]) ----

  /** An ALARM on the fleet's alarm topic ([LM-ALARM-6]): its device's run here ends, its keys withheld ([LM-ALARM-1]). */
  private async onFleetAlarm(a: FleetAlarm): Promise<void> {
    if (!(await this.alarms.onFleet(a)) || !a.device) return;
    const run = this.runOf(a.device);
    if (run) this.endRun(run, { to: 'FAILED', reason: `device quarantined: ${a.detail}` });
  }

  // ---- scheduling ([LM-FLEET-3]) ----

  /** Asks for a scheduling pass; passes never overlap. */
  schedule(): void {
    if (this.stopping) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = true;
    void this.pass().catch((e: unknown) => this.log(`scheduling: ${toLmError(e).message}`)).finally(() => {
      this.passing = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    });
  }

  private async pass(): Promise<void> {
    const busy = new Set([...this.runs.values()].map((r) => r.job.device));
    const free = this.presence.online().filter((d) => !busy.has(d));
    while (free.length > 0 && !this.stopping) {
      const job = await this.o.db.lease(this.o.id, free, this.clock.now(), this.leaseMs);
      if (!job) return;
      free.splice(free.indexOf(job.device), 1);
      this.emit('job', job);
      this.startRun(job);
    }
  }

  private startRun(job: JobRecord): void {
    const run: Run = { job, stream: undefined, paused: false, written: job.progress };
    this.runs.set(job.id, run);
    this.emit('device', job.device);
    void this.execute(run).catch((e: unknown) => this.log(`job ${job.id}: ${toLmError(e).message}`)).finally(() => {
      this.runs.delete(job.id);
      this.openJobs.delete(job.id); // ended: the device shows idle now, not at the next refresh
      this.emit('device', job.device);
      this.schedule();
    });
  }

  /** Ends a run from here: the stream is aborted, its keys withheld. */
  private endRun(run: Run, why: NonNullable<Run['ended']>): void {
    if (run.ended) return;
    run.ended = why;
    if (run.stream) this.abort(run);
  }

  /** Aborts a run's stream at once: CONTROL abort to the device, and the stream failed here without waiting for that send. */
  private abort(run: Run): void {
    const s = run.stream;
    if (!s) return;
    void s.control(Control.abort).catch(() => undefined);
    s.fail(new StreamAbortedError(typeof run.ended === 'object' ? run.ended.reason : 'ended by the fleet service')); // keys withheld from now on ([LM-ALARM-1])
  }

  /** A run's job leaves IN_PROGRESS or PAUSED for good (or for its queue), logged and told. */
  private async end(job: JobRecord, t: Omit<Transition, 'job' | 'from' | 'time' | 'by'>): Promise<void> {
    const r = await this.o.db.transition({ ...t, job: job.id, from: ['IN_PROGRESS', 'PAUSED'], time: this.clock.now(), by: this.o.id });
    if (!r) return;
    this.log(`job ${job.id} ${r.state}: ${r.reason}`);
    this.emit('job', r);
  }

  private async execute(run: Run): Promise<void> {
    const { job } = run;
    const gw = this.o.gateway;
    const tx = fromHex(job.tx);
    const src = job.source;
    try {
      const s = src.kind === 'file'
        ? await gw.stream(job.device, () => createReadStream(this.o.files.path(src.sha256)), tx, fromHex(job.licence ?? ''), this.o.stream)
        : await gw.streamProtected(job.device, tx, this.o.stream);
      run.stream = s;
      this.emit('started', job);
      if (run.ended) this.abort(run);
      else if (run.paused) void s.control(Control.pause).catch(() => undefined);
      this.log(`job ${job.id} streaming to ${job.device} (attempt ${job.attempts})`);
      s.on('progress', (p) => this.onProgress(run, p.consumed));
      s.on('telemetry', (t) => this.presence.telemetry(job.device, t, this.clock.now()));
      s.on('alarm', (a) => void this.alarms.onStream(job.device, job.id, a.code, a.detail).catch((e: unknown) => this.log(`alarm: ${toLmError(e).message}`)));
      const report = await s.done;
      this.emit('report', report);
      const seq = report.ledger?.seq;
      await this.end(job, { to: 'SUCCEEDED', reason: `receipt in the ledger${seq !== undefined ? ` as record ${seq}` : ''}: ${report.bytes} bytes in ${report.seconds.toFixed(1)} s`, ...(seq !== undefined ? { ledgerSeq: seq } : {}) });
      if (report.ledger) this.emit('ledger', { seq: report.ledger.seq, hash: report.ledger.hash.slice(0, 16), device: job.device, job: report.job, bytes: report.bytes, time: this.clock.now() });
    } catch (e) {
      await this.failed(run, toLmError(e));
    }
  }

  /** A run that ended without its receipt. */
  private async failed(run: Run, err: LmError): Promise<void> {
    const { job } = run;
    const why = run.ended;
    if (why === 'stopping' || (this.stopping && why === undefined)) return; // the job stays IN_PROGRESS: a restart, or another instance, goes on ([LM-FLEET-2])
    if (why === 'elsewhere') return; // canceled: the transition is in
    if (why) return this.end(job, { ...why, progress: run.job.progress });
    // the print happened and its receipt is in the ledger: this service stopped before it wrote so
    const rec = err.code === Reason.txCount ? await ledgerRecordOf(this.o.gateway.db, job.txh) : undefined;
    if (rec) return this.end(job, { to: 'SUCCEEDED', reason: `receipt already in the ledger as record ${rec.seq}`, ledgerSeq: rec.seq });
    const o = receiptLost(err, job) ?? outcome(err, job.attempts, job.maxAttempts);
    if (o.quarantine && !(await this.o.db.device(job.device)).quarantined) await this.alarms.quarantine(job.device, err.code, err.message, 'stream', job.id);
    await this.end(job, { to: o.to, reason: o.reason, progress: run.job.progress, ...(o.backoff !== undefined ? { notBefore: this.clock.now() + o.backoff } : {}) });
  }

  /** Acknowledged progress: shown at once, written with the next lease renewal (one commit a pass for every run). */
  private onProgress(run: Run, consumed: number): void {
    run.job.progress = Math.max(run.job.progress, consumed);
    this.emit('job', run.job);
    this.emit('device', run.job.device);
  }

  /** Renews leases, follows changes made elsewhere, times runs out, and starts what back-off released. */
  private async housekeeping(): Promise<void> {
    if (this.stopping || this.keeping) return; // one pass at a time: a slow database does not pile them up
    this.keeping = true;
    try {
      await this.keep();
    } finally {
      this.keeping = false;
    }
  }

  private async keep(): Promise<void> {
    await this.refresh();
    const now = this.clock.now();
    const mine = [...this.runs.values()];
    if (mine.length > 0) {
      const progress = new Map(mine.filter((r) => r.job.progress > r.written).map((r) => [r.job.id, r.job.progress]));
      const held = new Map((await this.o.db.renew(this.o.id, mine.map((r) => r.job.id), now + this.leaseMs, progress)).map((j) => [j.id, j]));
      for (const r of mine) r.written = Math.max(r.written, progress.get(r.job.id) ?? 0);
      for (const run of mine) {
        const j = held.get(run.job.id);
        if (!j) {
          this.endRun(run, 'elsewhere'); // canceled, or taken by another instance
          continue;
        }
        run.job = { ...j, progress: Math.max(j.progress, run.job.progress) };
        if ((j.state === 'PAUSED') !== run.paused) await this.pauseRun(run, j.state === 'PAUSED');
        if (j.timeoutMs > 0 && j.startedAt !== undefined && now - j.startedAt > j.timeoutMs && !run.ended) {
          await this.end(j, { to: 'TIMED_OUT', reason: `still running after ${j.timeoutMs} ms`, progress: run.job.progress });
          this.endRun(run, 'elsewhere');
        }
      }
    }
    this.schedule();
  }

  /**
   * Stops scheduling and the gateway. Running jobs stay IN_PROGRESS with their leases released,
   * so that another instance takes them over at once, or this one when it starts again.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.timer?.();
    const running = [...this.runs.values()];
    for (const r of running) r.ended = 'stopping';
    await this.o.gateway.stop();
    while (this.runs.size > 0) await new Promise<void>((r) => this.once('device', () => r()));
    if (running.length > 0) await this.o.db.renew(this.o.id, running.map((r) => r.job.id), this.clock.now()).catch(() => undefined);
  }
}

