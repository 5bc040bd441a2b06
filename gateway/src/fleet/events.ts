/**
 * @module fleet/events
 * Live events for the dashboard and other clients (server-sent events, GET /api/events): a
 * `snapshot` first, then `device`, `job`, `alarm` and `ledger` records as they change (a device's
 * signed status, SPEC §10.2, comes as a `device` record with its `status`). Progress
 * moves many times a second, so device and job updates are coalesced: each client gets the
 * latest of each at most every 250 ms. A comment every 15 s keeps proxies from closing the line.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Snapshot } from './api.js';
import { recentLedger } from './ledger-view.js';
import type { FleetService } from './service.js';
import type { JobRecord } from './types.js';
import { alarmView, deviceView, jobView } from './views.js';

const FLUSH_MS = 250;
const PING_MS = 15_000;

interface Client {
  res: ServerResponse;
  /** events that came while its snapshot was being made: written after it */
  pending: string[] | undefined;
}

export class EventHub {
  private readonly followers = new Set<Client>();
  private readonly dirtyDevices = new Set<string>();
  private readonly dirtyJobs = new Map<string, JobRecord>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly ping: NodeJS.Timeout;
  private filesChanged = false;

  constructor(private readonly s: FleetService) {
    s.on('device', (d) => this.mark(() => this.dirtyDevices.add(d)));
    s.on('job', (j) => this.mark(() => this.dirtyJobs.set(j.id, j)));
    s.on('alarm', (a) => this.send('alarm', alarmView(a)));
    s.on('ledger', (l) => this.send('ledger', l));
    this.ping = setInterval(() => this.write(': ping\n\n'), PING_MS);
    this.ping.unref();
  }

  get clients(): number {
    return this.followers.size;
  }

  /** The job files changed: clients get a new snapshot's file list. */
  files(): void {
    this.filesChanged = true;
    this.mark(() => undefined);
  }

  private mark(f: () => void): void {
    if (this.followers.size === 0) return;
    f();
    this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  private async flush(): Promise<void> {
    this.flushTimer = undefined;
    for (const j of this.dirtyJobs.values()) this.send('job', jobView(j));
    this.dirtyJobs.clear();
    for (const d of this.dirtyDevices) this.send('device', deviceView(this.s, d));
    this.dirtyDevices.clear();
    if (this.filesChanged) {
      this.filesChanged = false;
      this.send('files', await this.s.o.files.list());
    }
  }

  private write(chunk: string): void {
    for (const c of this.followers) {
      if (c.pending) c.pending.push(chunk);
      else c.res.write(chunk);
    }
  }

  private send(event: string, data: unknown): void {
    if (this.followers.size > 0) this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** The state a new client starts from. */
  async snapshot(): Promise<Snapshot> {
    const s = this.s;
    return {
      id: s.id, devices: s.knownDevices().map((id) => deviceView(s, id)), jobs: (await s.o.db.jobs({ limit: 200 })).map(jobView),
      alarms: (await s.o.db.alarms(50)).map(alarmView), ledger: await recentLedger(s.o.gateway.db, 50), files: await s.o.files.list(), canSign: s.canSign,
    };
  }

  /** Streams events to one client until it goes. */
  async follow(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // following from before the snapshot is read: nothing that changes meanwhile is lost
    const c: Client = { res, pending: [] };
    this.followers.add(c);
    try {
      res.write(`event: snapshot\ndata: ${JSON.stringify(await this.snapshot())}\n\n`);
      for (const chunk of c.pending ?? []) res.write(chunk);
      c.pending = undefined;
    } catch (e) {
      this.followers.delete(c);
      res.end(`event: error\ndata: ${JSON.stringify({ message: e instanceof Error ? e.message : String(e) })}\n\n`);
      return;
    }
    const gone = () => this.followers.delete(c);
    req.on('close', gone);
    res.on('error', gone);
  }

  close(): void {
    clearInterval(this.ping);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const c of this.followers) c.res.end();
    this.followers.clear();
  }
}
