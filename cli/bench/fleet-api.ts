/**
 * @module bench/fleet-api
 * bench:fleet's view of the fleet service: job submission through its HTTP API and its live
 * event stream (GET /api/events), followed until a condition holds.
 */
import { type DeviceView, type JobView, type Snapshot, fleetEvents } from '@livematrix/gateway/fleet';

export class Api {
  constructor(readonly base: string, readonly token: string) {}

  async submit(device: string, file: string): Promise<JobView> {
    const r = await fetch(new URL('/api/jobs', this.base), {
      method: 'POST', headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ device, file }),
    });
    const text = await r.text();
    if (r.status !== 201) throw new Error(`submit for ${device}: ${r.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as JobView;
  }
}

/**
 * Follows GET /api/events (server-sent events: a snapshot, then device and job views as they
 * change, coalesced by the service to one per 250 ms) and keeps the latest view of each.
 */
export class Events {
  readonly jobs = new Map<string, JobView>();
  readonly devices = new Map<string, DeviceView>();
  private readonly ctl = new AbortController();
  private readonly waiters = new Set<() => void>();
  private failure: Error | undefined;

  constructor(private readonly api: Api) {}

  /** Connects and reads in the background; resolves once the snapshot is in. */
  async start(): Promise<void> {
    const events = fleetEvents(this.api.base, this.api.token, this.ctl.signal);
    let snapshot: () => void = () => undefined;
    const gotSnapshot = new Promise<void>((res) => (snapshot = res));
    void (async () => {
      for await (const { event, data } of events) {
        this.take(event, data);
        if (event === 'snapshot') snapshot();
      }
    })().catch((e: unknown) => {
      if (this.ctl.signal.aborted) return;
      this.failure = e instanceof Error ? e : new Error(String(e));
      this.wake();
    });
    await gotSnapshot;
  }

  private take(event: string, data: unknown): void {
    if (event === 'snapshot') {
      const s = data as Snapshot;
      for (const d of s.devices) this.devices.set(d.id, d);
      for (const j of s.jobs) this.jobs.set(j.id, j);
    } else if (event === 'device') {
      const d = data as DeviceView;
      this.devices.set(d.id, d);
    } else if (event === 'job') {
      const j = data as JobView;
      this.jobs.set(j.id, j);
    } else return;
    this.wake();
  }

  /** Wakes every waiter to look again (an event, or a message from a farm). */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once `done()` holds, looking after each event and each wake(); rejects at the deadline or when the stream ends. */
  until(done: () => boolean, deadline: number, what: string): Promise<void> {
    return new Promise((res, rej) => {
      const check = (): void => {
        if (this.failure) finish(this.failure);
        else if (done()) finish();
      };
      const t = setTimeout(() => finish(new Error(`timed out waiting for ${what}`)), Math.max(0, deadline - Date.now()));
      const finish = (e?: Error): void => {
        clearTimeout(t);
        this.waiters.delete(check);
        if (e) rej(e);
        else res();
      };
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.ctl.abort();
  }
}

