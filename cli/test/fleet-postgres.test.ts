/**
 * Two `livematrix serve` instances on one PostgreSQL database (SPEC §17): the fleet tables and
 * the gateways' licence database and receipt ledger shared, each instance leasing jobs under
 * row locks ([LM-FLEET-3]) with a short lease (--lease 3s), gw-1 and gw-2 on one broker.
 * - [LM-FLEET-3], [LM-FLEET-2]: jobs for two devices submitted through serve-1; the instance
 *   streaming the slow printer's job (whichever leased it) is killed with SIGKILL between a
 *   quarter and half of the way in and never started again; the other instance takes the job
 *   over once its lease has run out (an IN_PROGRESS -> IN_PROGRESS event by the survivor, "lease
 *   taken over from" the dead one) and finishes it from the device's resume ticket: output
 *   byte-identical, every job run once (attempts 1, one QUEUED -> IN_PROGRESS each, streamed by
 *   one instance and again only by the one that took it over, after the kill), the other
 *   printer's jobs in submission order, one receipt in the shared ledger per job, and the ledger
 *   verifies offline (`livematrix ledger verify --db URL`).
 *
 * A throw-away PostgreSQL cluster from the testkit, with a schema of its own reached through the
 * URL (`?options=-c search_path=...`, as gateway/test/postgres-schemas.ts builds it), so the
 * CLI's handling of such a URL is exercised too (serve's fleet and licence databases, ledger
 * verify). Without PostgreSQL installed the test says so and is skipped locally; under CI
 * (CI=true) its absence is a failure. Synchronised on the service's live events and what the
 * processes print, never on sleeps.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { type RunningPostgres, postgresBinDir, startPostgres } from '@livematrix/testkit';
import type { JobDetail, JobView, LedgerView, Snapshot } from '@livematrix/gateway/fleet';
import { type Running, cli } from './cli-harness.js';
import { Api, device, fleet, serve } from './fleet-kit.js';
import { GCODE } from './harness.js';

const cylinder = readFileSync(join(GCODE, 'cylinder_annular.gcode'));
const cube = readFileSync(join(GCODE, 'calib_cube.gcode'));

const have = postgresBinDir() !== undefined;
const inCI = process.env['CI'] === 'true';
if (!have) console.warn(inCI ? 'PostgreSQL is not installed, and CI requires it: the fleet PostgreSQL test will fail' : 'PostgreSQL is not installed: skipping the fleet PostgreSQL test (apt-get install postgresql; .ci/run installs it)');

const FINAL: readonly string[] = ['SUCCEEDED', 'FAILED', 'REJECTED', 'TIMED_OUT', 'CANCELED'];
const step = (s: string) => console.log(`${new Date().toISOString().slice(11, 23)} ${s}`);
const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** Kills a process (SIGKILL) and waits for it to end. */
async function ended(p: Running): Promise<void> {
  p.kill('SIGKILL');
  await p;
}

describe.runIf(have || inCI)('two livematrix serve instances on one PostgreSQL database', () => {
  let server: RunningPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** A new empty schema and a URL whose connections use it. */
  async function schemaUrl(name: string): Promise<string> {
    if (!server) throw new Error('PostgreSQL did not start');
    const admin = new pg.Client(server.url);
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA ${name}`);
    } finally {
      await admin.end();
    }
    const u = new URL(server.url);
    u.searchParams.set('options', `-c search_path=${name}`);
    return u.toString();
  }

  it('an instance killed mid-stream: the other takes its job over when the lease runs out, byte-identical, each job run once, one receipt per job ([LM-FLEET-3], [LM-FLEET-2])', async () => {
    const t0 = Date.now();
    const url = await schemaUrl('fleet_takeover');
    const f = await fleet(['printer-1', 'printer-2'], ['gw-1', 'gw-2']);
    cleanup.push(() => rmSync(f.dir, { recursive: true, force: true }), () => ended(f.broker));
    // printer-1 slow: ~13 s for the cylinder, so that it is mid-stream at the kill and still
    // several seconds from its end when the other instance takes over (see the kill below)
    const d1 = device(f, 'printer-1', 150_000);
    const d2 = device(f, 'printer-2');
    cleanup.push(() => ended(d1), () => ended(d2));
    await Promise.all([d1.waitFor(/online/), d2.waitFor(/online/)]);

    // both at once: the tables are created under advisory locks
    const started = [serve(f, { gw: 'gw-1', id: 'serve-1', db: url, lease: '3s' }), serve(f, { gw: 'gw-2', id: 'serve-2', db: url, lease: '3s' })];
    for (const s of started) cleanup.push(() => s.then((x) => ended(x.proc), () => undefined)); // (a start that failed ended already)
    const [s1, s2] = await Promise.all(started);
    const seen = new Map<string, JobView>(); // the latest view of each job the test had from the survivor
    onTestFailed(async () => {
      // what the processes said, what the survivor's events said last, and the database's view of the jobs
      for (const [n, p] of [['printer-1', d1], ['printer-2', d2], ['serve-1', s1!.proc], ['serve-2', s2!.proc]] as const) console.log(`---- ${n}:\n${p.err}`);
      console.log('last events:', JSON.stringify([...seen.values()].map((j) => ({ id: j.id, state: j.state, progress: j.progress, owner: j.leaseOwner }))));
      const c = new pg.Client(url);
      await c.connect();
      try {
        for (const q of ['SELECT id, device, state, attempts, lease_owner, lease_until, progress, reason FROM lm_fleet_jobs ORDER BY created',
          'SELECT job, from_state, to_state, reason, ts, actor FROM lm_fleet_events ORDER BY seq', 'SELECT sid, device, state, ticket, counted FROM lm_sessions ORDER BY ord']) {
          console.log(q, JSON.stringify((await c.query(q)).rows, null, 1));
        }
      } finally {
        await c.end();
      }
    });
    const inst = { 'serve-1': { ...s1!, api: new Api(s1!.http, f.token) }, 'serve-2': { ...s2!, api: new Api(s2!.http, f.token) } };
    expect(s1!.proc.out).toMatch(/livematrix serve serve-1 .*database postgres/);
    expect(s2!.proc.out).toMatch(/livematrix serve serve-2 .*database postgres/);
    step(`both instances up (${Date.now() - t0} ms)`);

    // keys paced near printer-1's pace ([LM-AEAD-3]): at the kill the rest of its keys are not out,
    // so the device is cut off and holds a ticket rather than finishing alone
    const a = await inst['serve-1'].api.submit('printer-1', 'cylinder_annular.gcode', { rate: 200_000, burst: 65_536 });
    const b = await inst['serve-1'].api.submit('printer-2', 'calib_cube.gcode');
    const c = await inst['serve-1'].api.submit('printer-2', 'calib_cube.gcode');
    const jobs = [a, b, c];

    // The kill: printer-2's jobs done (their receipts in the ledger), printer-1's between a
    // quarter and a half acknowledged. A job that fits in the device's receive window (4 MiB)
    // has all its keys sent soon after it starts; killed then, its device completes the print
    // alone and its RECEIPT goes to the dead instance: no ledger record, and the takeover's
    // resume is refused (tx-resume), a gap of the protocol, not of the lease. The cylinder at
    // 150 kB/s from under half way has > 6 s left: the takeover (lease 3 s, housekeeping every
    // 1 s) offers it to the device before that. Only the instance running a job reports its
    // progress live: both instances' events are followed, the newest view of each job kept.
    const stop = new AbortController();
    const views = new Map<string, JobView>();
    const newer = (x: JobView | undefined, y: JobView) => !x || FINAL.includes(y.state) || (!FINAL.includes(x.state) && y.progress >= x.progress);
    const midway = (api: Api) => api.until((ev) => {
      for (const j of ev.event === 'snapshot' ? (ev.data as Snapshot).jobs : ev.event === 'job' ? [ev.data as JobView] : []) if (newer(views.get(j.id), j)) views.set(j.id, j);
      const [va, vb, vc] = jobs.map((j) => views.get(j.id));
      if (!va || !vb || !vc) return undefined;
      if ((va.state !== 'IN_PROGRESS' && va.state !== 'QUEUED') || va.progress >= va.size / 2) throw new Error(`printer-1's job went past the kill window (printer-2's: ${vb.state}, ${vc.state}): ${JSON.stringify(va)}`);
      return va.state === 'IN_PROGRESS' && va.progress > va.size / 4 && vb.state === 'SUCCEEDED' && vc.state === 'SUCCEEDED' ? va : undefined;
    }, stop.signal);
    const mid = await Promise.race(Object.values(inst).map((s) => midway(s.api))).finally(() => stop.abort());
    const owner = mid.leaseOwner;
    expect(owner === 'serve-1' || owner === 'serve-2', `lease owner ${owner}`).toBe(true);
    const deadId = owner as keyof typeof inst;
    const survivorId = deadId === 'serve-1' ? 'serve-2' : 'serve-1';
    const dead = inst[deadId];
    const survivor = inst[survivorId];
    step(`kill -9 ${deadId}: printer-1's job at ${mid.progress} of ${mid.size} bytes`);
    const killedAt = Date.now();
    await ended(dead.proc);

    // every job ended, as the survivor's events tell
    const done = await survivor.api.until((ev) => {
      for (const j of ev.event === 'snapshot' ? (ev.data as Snapshot).jobs : ev.event === 'job' ? [ev.data as JobView] : []) if (newer(seen.get(j.id), j)) seen.set(j.id, j);
      const all = jobs.map((j) => seen.get(j.id));
      return all.every((j) => j && FINAL.includes(j.state)) ? all as JobView[] : undefined;
    });
    step(`all ended on ${survivorId} ${Date.now() - killedAt} ms after the kill`);
    expect(done.map((j) => j.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(done.map((j) => j.attempts)).toEqual([1, 1, 1]); // taken over under its lease, never run again
    expect(readFileSync(join(f.dir, 'out-printer-1.gcode')).equals(cylinder)).toBe(true);
    expect(readFileSync(join(f.dir, 'out-printer-2.gcode')).equals(cube)).toBe(true);
    expect(survivor.proc.err).toMatch(/printer-1 holds a resume ticket of this transaction \(cut off at \d+ bytes\)/); // it went on from the device's ticket
    expect(d1.err).toMatch(/resuming cylinder_annular\.gcode at byte [1-9]\d*/);

    // each job leased once from its queue; the only other lease is the takeover of printer-1's job, after the kill, by the survivor
    const details = await Promise.all(jobs.map(async (j) => (await survivor.api.call<JobDetail>('GET', `/api/jobs/${j.id}`)).body));
    const streamed = (log: string, j: JobView) => log.split(`job ${j.id} streaming to ${j.device}`).length - 1;
    for (const d of details) console.log(`${d.id} ${d.device}:\n${d.events.map((e) => `  ${e.from ?? '-'} -> ${e.to}: ${e.reason} (${e.by})`).join('\n')}`);
    const [da, db, dc] = details as [JobDetail, JobDetail, JobDetail];
    expect(da.events.map((e) => `${e.from ?? '-'} -> ${e.to} (${e.by})`)).toEqual([
      expect.stringMatching(/^- -> QUEUED \(api:operator:/), `QUEUED -> IN_PROGRESS (${deadId})`, `IN_PROGRESS -> IN_PROGRESS (${survivorId})`, `IN_PROGRESS -> SUCCEEDED (${survivorId})`,
    ]);
    expect(da.events[2]!.reason).toBe(`lease taken over from ${deadId}`);
    expect(da.events[2]!.time).toBeGreaterThanOrEqual(killedAt);
    step(`taken over ${da.events[2]!.time - killedAt} ms after the kill`);
    expect([streamed(dead.proc.err, a), streamed(survivor.proc.err, a)]).toEqual([1, 1]);
    for (const d of [db, dc]) {
      // run by one instance from start to receipt
      expect(d.events.map((e) => `${e.from ?? '-'} -> ${e.to}`)).toEqual(['- -> QUEUED', 'QUEUED -> IN_PROGRESS', 'IN_PROGRESS -> SUCCEEDED']);
      expect(d.events[2]!.by).toBe(d.events[1]!.by);
      expect(streamed(s1!.proc.err, d) + streamed(s2!.proc.err, d), d.id).toBe(1);
    }
    expect(dc.events[1]!.time).toBeGreaterThanOrEqual(db.events[2]!.time); // [LM-FLEET-3]: in submission order, whichever instance ran them
    expect(d2.err.split('stream calib_cube.gcode').length - 1).toBe(2); // printer-2 took each job once
    expect(d1.err.split('resuming cylinder_annular.gcode').length - 1).toBe(1);

    // one receipt per job in the shared ledger, and the ledger verifies offline
    const ledger = (await survivor.api.call<LedgerView[]>('GET', '/api/ledger')).body;
    expect(ledger.map((l) => `${l.device}:${l.job}`).sort()).toEqual(['printer-1:cylinder_annular.gcode', 'printer-2:calib_cube.gcode', 'printer-2:calib_cube.gcode']);
    expect(ledger.map((l) => l.seq).sort((x, y) => x - y)).toEqual(done.map((j) => j.ledgerSeq).sort((x, y) => x! - y!));
    const verify = await cli(['ledger', 'verify', '--db', url]);
    expect(verify.code, verify.err + verify.out).toBe(0);
    step(`done in ${Date.now() - t0} ms`);
  }, 60_000);
});
