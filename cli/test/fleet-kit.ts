/**
 * The fleet service as operators run it, for tests: identity files, a registry, `livematrix
 * broker`, `livematrix device` processes and `livematrix serve` processes, and a client of the
 * service's HTTP API that waits on its live events (GET /api/events), never on fixed sleeps.
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { fleetEvents, operatorToken, type JobView, type DeviceView, type Snapshot } from '@livematrix/gateway/fleet';
import { type Running, cli, publicKey } from './cli-harness.js';
import { GCODE } from './harness.js';

export interface Fleet {
  dir: string;
  url: string;
  broker: Running;
  /** public keys by id */
  keys: Map<string, string>;
  files: string;
  /** an operator token for the API */
  token: string;
}

/** Keys for the operator, gateways and devices; a registry; a broker with it; a files directory with the examples. */
export async function fleet(devices: string[], gateways: string[] = ['gw-1'], extra: object[] = []): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'lm-fleet-'));
  const keys = new Map<string, string>();
  await Promise.all(['operator', ...gateways, ...devices].map(async (id) => {
    const r = await cli(['keygen', '--id', id, '--out', join(dir, `${id}.json`)]);
    if (r.code !== 0) throw new Error(`keygen ${id}: ${r.err}`);
    keys.set(id, publicKey(r));
  }));
  const clients = [
    ...devices.map((id) => ({ id, role: 'device', fleet: 'default', publicKey: keys.get(id) })),
    ...gateways.map((id) => ({ id, role: 'gateway', fleet: 'default', publicKey: keys.get(id) })),
    ...extra,
  ];
  writeFileSync(join(dir, 'registry.json'), JSON.stringify({ clients }, null, 2));
  const broker = cli(['broker', '--port', '0', '--registry', join(dir, 'registry.json')]);
  const port = (await broker.waitFor(/mqtt (\d+)/, 'out'))[1]!;
  const files = join(dir, 'files');
  mkdirSync(files);
  for (const f of ['calib_cube.gcode', 'cylinder_annular.gcode']) copyFileSync(join(GCODE, f), join(files, f));
  const token = operatorToken(readIdentityFile(join(dir, 'operator.json')), Date.now(), 3600_000, 'test');
  return { dir, url: `mqtt://127.0.0.1:${port}`, broker, keys, files, token };
}

/** `livematrix device` for `id`, writing to dir/out-ID.gcode, consuming at most `rate` bytes/s; `args` added. */
export function device(f: Fleet, id: string, rate?: number, args: string[] = []): Running {
  return cli(['device', '--identity', join(f.dir, `${id}.json`), '--operator-key', f.keys.get('operator')!, '--out', join(f.dir, `out-${id}.gcode`), '--url', f.url,
    '--state', join(f.dir, `state-${id}`), ...(rate ? ['--rate', String(rate)] : []), ...args]);
}

/** `livematrix serve` as gateway `gw`, on a free HTTP port; resolves once it printed its dashboard URL. */
export async function serve(f: Fleet, o: { gw?: string; db?: string; id?: string; lease?: string; args?: string[] } = {}): Promise<{ proc: Running; http: string }> {
  const gw = o.gw ?? 'gw-1';
  const proc = cli(['serve', '--identity', join(f.dir, `${gw}.json`), '--operator', join(f.dir, 'operator.json'), '--registry', join(f.dir, 'registry.json'),
    '--url', f.url, '--files', f.files, '--http', '127.0.0.1:0', '--db', o.db ?? join(f.dir, `serve-${gw}.db`), ...(o.id ? ['--id', o.id] : []),
    ...(o.lease ? ['--lease', o.lease] : []), ...(o.args ?? [])]);
  const m = await proc.waitFor(/dashboard: (http:\/\/[^/#\s]+\/)/, 'out');
  return { proc, http: m[1]! };
}

/** A client of the service's API. */
export class Api {
  constructor(readonly base: string, readonly token: string) {}

  async call<T>(method: string, path: string, body?: unknown, token: string | undefined = this.token): Promise<{ status: number; body: T }> {
    const r = await fetch(new URL(path, this.base), {
      method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text) as T };
  }

  async submit(device: string, file: string, extra: object = {}): Promise<JobView> {
    const r = await this.call<JobView>('POST', '/api/jobs', { device, file, ...extra });
    if (r.status !== 201) throw new Error(`submit: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /**
   * Follows GET /api/events until `done` says yes for the snapshot or an event; resolves with
   * what it returned. Rejects when the stream ends first.
   */
  async until<T>(done: (ev: { event: string; data: unknown }) => T | undefined, signal?: AbortSignal): Promise<T> {
    const ctl = new AbortController();
    signal?.addEventListener('abort', () => ctl.abort());
    try {
      for await (const ev of fleetEvents(this.base, this.token, ctl.signal)) {
        const got = done(ev);
        if (got !== undefined) return got;
      }
      throw new Error('the event stream ended');
    } finally {
      ctl.abort();
    }
  }

  /** Waits until job `id` is in one of `states` (from the snapshot or a later event). */
  job(id: string, states: readonly string[], also: (j: JobView) => boolean = () => true): Promise<JobView> {
    return this.until((ev) => {
      const jobs = ev.event === 'snapshot' ? (ev.data as Snapshot).jobs : ev.event === 'job' ? [ev.data as JobView] : [];
      return jobs.find((j) => j.id === id && states.includes(j.state) && also(j));
    });
  }

  /** Waits until device `id` matches. */
  device(id: string, match: (d: DeviceView) => boolean): Promise<DeviceView> {
    return this.until((ev) => {
      const ds = ev.event === 'snapshot' ? (ev.data as Snapshot).devices : ev.event === 'device' ? [ev.data as DeviceView] : [];
      return ds.find((d) => d.id === id && match(d));
    });
  }
}

/** The whole dashboard link `serve` printed, with its `#token=` fragment when it has one (for a browser). */
export async function dashboardLink(proc: Running): Promise<string> {
  return (await proc.waitFor(/^dashboard: (http:\/\/\S+)\r?\n/m, 'out'))[1]!;
}
