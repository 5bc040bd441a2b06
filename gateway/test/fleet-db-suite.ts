/**
 * The contract every FleetDb backend must pass (as licence-db-suite.ts for the licence
 * database): jobs and their state machine ([LM-FLEET-1]), one transaction per change with its
 * event ([LM-FLEET-2]), leases ([LM-FLEET-3]), quarantine and alarms ([LM-FLEET-4]), API keys
 * ([LM-FLEET-5]). A backend's test file calls `fleetDbSuite({ name, open, reopen? })`: `open`
 * makes an empty database, `reopen` opens another handle on the last one opened (for SQLite and
 * PostgreSQL: another connection, as a restarted or another service instance would have).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LmError, Reason } from '@livematrix/spec';
import { JOB_STATES, type FleetDb, type JobState, type NewJob } from '../src/fleet/db/index.js';
import { BadRequestError, JobTransitionError, NotFoundError } from '../src/fleet/errors.js';

export interface FleetDbBackend {
  name: string;
  /** a new, empty database */
  open(): Promise<FleetDb>;
  /** another handle on the database `open` made last */
  reopen?(): Promise<FleetDb>;
}

/** A start time for the tests' clocks. */
export const T = 1_764_000_000_000;
const SHA = 'ab'.repeat(32);

/** A job to queue: device `device`, created at `time`. */
export function newJob(id: string, device: string, time: number, extra: Partial<NewJob> = {}): NewJob {
  return { id, device, source: { kind: 'file', sha256: SHA, name: `${id}.gcode` }, size: 1000, tx: '0a0b0c', txh: 'cd'.repeat(32), maxAttempts: 3, timeoutMs: 60_000, time, by: 'api:test', ...extra };
}

/** The reason code a promise rejects with (0 when it resolves). */
async function reasonOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    if (e instanceof LmError) return e.code;
    throw e;
  }
}

const moved = (job: string, from: JobState[], to: JobState, time: number, extra: object = {}) => ({ job, from, to, reason: `to ${to}`, time, by: 'api:test', ...extra });

export function fleetDbSuite(backend: FleetDbBackend): void {
  describe(`FleetDb contract: ${backend.name}`, () => {
    const handles: FleetDb[] = [];
    const keep = (db: FleetDb) => (handles.push(db), db);
    const open = async () => keep(await backend.open());
    const reopen = async () => keep(await backend.reopen!());
    afterEach(async () => {
      for (const h of handles.splice(0)) await h.close();
    });

    it('starts empty: counts name every state, an unknown device is not quarantined', async () => {
      const db = await open();
      expect(await db.counts()).toEqual(Object.fromEntries(JOB_STATES.map((s) => [s, 0])));
      expect(await db.jobs()).toEqual([]);
      expect(await db.job('j-1')).toBeUndefined();
      expect(await db.events('j-1')).toEqual([]);
      expect(await db.device('printer-9')).toEqual({ id: 'printer-9', quarantined: false });
      expect(await db.devices()).toEqual([]);
      expect(await db.alarms()).toEqual([]);
      expect(await db.apiKeys()).toEqual([]);
    });

    it('addJob queues a job with its creation event; a duplicate id throws [LM-FLEET-2]', async () => {
      const db = await open();
      const j = await db.addJob(newJob('j-1', 'd1', T, { licence: 'EE'.repeat(32) }));
      expect(j).toEqual({
        id: 'j-1', device: 'd1', state: 'QUEUED', source: { kind: 'file', sha256: SHA, name: 'j-1.gcode' }, size: 1000, tx: '0a0b0c', txh: 'cd'.repeat(32),
        licence: 'ee'.repeat(32), reason: 'queued', attempts: 0, maxAttempts: 3, timeoutMs: 60_000, notBefore: T, progress: 0, created: T, updated: T,
      });
      expect(await db.job('j-1')).toEqual(j);
      expect(await db.events('j-1')).toEqual([{ job: 'j-1', from: null, to: 'QUEUED', reason: 'queued', time: T, by: 'api:test' }]);
      await expect(db.addJob(newJob('j-1', 'd2', T + 1))).rejects.toBeInstanceOf(BadRequestError);
      expect((await db.job('j-1'))?.device).toBe('d1');
      const stored = await db.addJob(newJob('j-2', 'd1', T, { source: { kind: 'stored', jid: '0F'.repeat(16) } }));
      expect((await db.job('j-2'))?.source).toEqual({ kind: 'stored', jid: '0f'.repeat(16) });
      expect('licence' in stored).toBe(false);
      expect((await db.counts()).QUEUED).toBe(2);
    });

    it('refuses bad input with LmError schema, naming the field', async () => {
      const db = await open();
      expect(await reasonOf(db.addJob(newJob(42 as never, 'd1', T)))).toBe(Reason.schema);
      expect(await reasonOf(db.addJob(newJob('j-1', 'd1', -1)))).toBe(Reason.schema);
      expect(await reasonOf(db.addJob(newJob('j-1', 'd1', T, { txh: 'zz' })))).toBe(Reason.schema);
      expect(await reasonOf(db.addJob(newJob('j-1', 'd1', T, { source: { kind: 'url' } as never })))).toBe(Reason.schema);
      await expect(db.addJob(newJob('j-1', 'd1', 1.5))).rejects.toThrow(/"time" expected an unsigned integer/);
      expect(await reasonOf(db.transition(moved('j-1', ['QUEUED'], 'DONE' as never, T)))).toBe(Reason.schema);
      expect(await reasonOf(db.lease('a', ['d1'], -5, 1000))).toBe(Reason.schema);
      expect(await reasonOf(db.jobs({ limit: -1 }))).toBe(Reason.schema);
      expect(await db.jobs()).toEqual([]); // nothing was added
    });

    it('transitions: the move, its event, notBefore and ledgerSeq; stale `from` and unknown jobs [LM-FLEET-1] [LM-FLEET-2]', async () => {
      const db = await open();
      await db.addJob(newJob('j-1', 'd1', T));
      expect(await db.transition(moved('j-1', ['QUEUED'], 'PAUSED', T + 1))).toMatchObject({ state: 'PAUSED', reason: 'to PAUSED', updated: T + 1 });
      // stale: the caller thought it QUEUED; nothing changes
      expect(await db.transition(moved('j-1', ['QUEUED', 'IN_PROGRESS'], 'CANCELED', T + 2))).toBeUndefined();
      expect(await db.job('j-1')).toMatchObject({ state: 'PAUSED', updated: T + 1 });
      expect(await db.transition(moved('j-1', ['PAUSED'], 'QUEUED', T + 3, { notBefore: T + 500 }))).toMatchObject({ state: 'QUEUED', notBefore: T + 500 });
      const leased = await db.lease('inst-a', ['d1'], T + 500, 10_000);
      expect(leased).toMatchObject({ id: 'j-1', leaseOwner: 'inst-a' });
      const done = await db.transition(moved('j-1', ['IN_PROGRESS'], 'SUCCEEDED', T + 600, { ledgerSeq: 7 }));
      expect(done).toMatchObject({ state: 'SUCCEEDED', ledgerSeq: 7, updated: T + 600 });
      expect(done?.leaseOwner).toBeUndefined(); // leaving IN_PROGRESS releases the lease
      expect(done?.leaseUntil).toBeUndefined();
      expect((await db.events('j-1')).map((e) => [e.from, e.to, e.time])).toEqual([
        [null, 'QUEUED', T], ['QUEUED', 'PAUSED', T + 1], ['PAUSED', 'QUEUED', T + 3], ['QUEUED', 'IN_PROGRESS', T + 500], ['IN_PROGRESS', 'SUCCEEDED', T + 600],
      ]);
      // stale again: the run ended while another writer wanted it FAILED (not a forbidden move: nothing to move)
      expect(await db.transition(moved('j-1', ['IN_PROGRESS'], 'FAILED', T + 700))).toBeUndefined();
      expect((await db.events('j-1')).length).toBe(5);
      await expect(db.transition(moved('j-404', ['QUEUED'], 'CANCELED', T))).rejects.toBeInstanceOf(NotFoundError);
    });

    it('a forbidden transition throws JobTransitionError and changes nothing, state and events [LM-FLEET-1]', async () => {
      const db = await open();
      await db.addJob(newJob('j-1', 'd1', T));
      await expect(db.transition(moved('j-1', ['QUEUED'], 'SUCCEEDED', T + 1))).rejects.toBeInstanceOf(JobTransitionError);
      await db.transition(moved('j-1', ['QUEUED'], 'CANCELED', T + 2));
      const before = [await db.job('j-1'), await db.events('j-1')];
      for (const to of ['QUEUED', 'IN_PROGRESS', 'PAUSED', 'FAILED'] as const) {
        await expect(db.transition(moved('j-1', ['CANCELED'], to, T + 3))).rejects.toThrow(/CANCELED -> .* is not a transition/);
      }
      expect([await db.job('j-1'), await db.events('j-1')]).toEqual(before);
      expect(before[0]).toMatchObject({ state: 'CANCELED', updated: T + 2 });
    });

    it('a paused run keeps its lease (and renews it); leaving IN_PROGRESS and PAUSED, or release: true, drops it; resuming from PAUSED keeps startedAt [LM-FLEET-3]', async () => {
      const db = await open();
      await db.addJob(newJob('j-1', 'd1', T));
      await db.lease('inst-a', ['d1'], T + 10, 1000);
      const paused = await db.transition(moved('j-1', ['IN_PROGRESS'], 'PAUSED', T + 20));
      expect(paused).toMatchObject({ state: 'PAUSED', startedAt: T + 10, leaseOwner: 'inst-a' });
      expect(await db.renew('inst-a', ['j-1'], T + 2000)).toMatchObject([{ id: 'j-1', state: 'PAUSED', leaseUntil: T + 2000 }]);
      expect(await db.transition(moved('j-1', ['PAUSED'], 'IN_PROGRESS', T + 30, { release: true }))).toMatchObject({ state: 'IN_PROGRESS', startedAt: T + 10 });
      // an IN_PROGRESS job without a lease is there to be taken
      expect(await db.lease('inst-b', ['d1'], T + 40, 1000)).toMatchObject({ id: 'j-1', leaseOwner: 'inst-b', attempts: 1, startedAt: T + 10 });
      const requeued = await db.transition(moved('j-1', ['IN_PROGRESS'], 'QUEUED', T + 50, { notBefore: T + 99 }));
      expect(requeued).toMatchObject({ state: 'QUEUED', notBefore: T + 99 });
      expect(requeued?.leaseOwner).toBeUndefined();
    });

    it('leases the oldest QUEUED job (created, then id), one open job per device, each device in submission order [LM-FLEET-3]', async () => {
      const db = await open();
      await db.addJob(newJob('j-3', 'd1', T + 2));
      await db.addJob(newJob('j-1', 'd1', T));
      await db.addJob(newJob('j-2', 'd2', T + 1));
      await db.addJob(newJob('j-b', 'd3', T + 3));
      await db.addJob(newJob('j-a', 'd3', T + 3));
      await db.addJob(newJob('j-x', 'd4', T - 100)); // oldest, but its device is not asked for
      const all = ['d1', 'd2', 'd3'];
      expect(await db.lease('inst-a', [], T + 10, 1000)).toBeUndefined();
      const first = await db.lease('inst-a', all, T + 10, 1000);
      expect(first).toMatchObject({ id: 'j-1', state: 'IN_PROGRESS', attempts: 1, startedAt: T + 10, leaseOwner: 'inst-a', leaseUntil: T + 1010, reason: 'started (attempt 1)' });
      expect((await db.events('j-1')).at(-1)).toEqual({ job: 'j-1', from: 'QUEUED', to: 'IN_PROGRESS', reason: 'started (attempt 1)', time: T + 10, by: 'inst-a' });
      // inst-a asking again gets its own run back (as after a restart): a caller asks for the devices it is not serving
      expect((await db.lease('inst-a', all, T + 10, 1000))?.id).toBe('j-1');
      expect((await db.lease('inst-b', all, T + 10, 1000))?.id).toBe('j-2'); // d1 is busy: j-3 waits
      expect((await db.lease('inst-c', all, T + 10, 1000))?.id).toBe('j-a');
      expect(await db.lease('inst-d', all, T + 10, 1000)).toBeUndefined();
      await db.transition(moved('j-1', ['IN_PROGRESS'], 'SUCCEEDED', T + 11));
      expect((await db.lease('inst-d', all, T + 12, 1000))?.id).toBe('j-3');
      // a PAUSED job holds its device too
      await db.transition(moved('j-a', ['IN_PROGRESS'], 'PAUSED', T + 13));
      expect(await db.lease('inst-b', ['d3'], T + 14, 1000)).toBeUndefined();
      expect((await db.jobs({ device: 'd3', states: ['QUEUED'] })).map((j) => j.id)).toEqual(['j-b']);
      expect(await db.counts()).toMatchObject({ QUEUED: 2, IN_PROGRESS: 2, PAUSED: 1, SUCCEEDED: 1 });
    });

    it('notBefore is respected, and a device\'s oldest QUEUED job is its only candidate [LM-FLEET-3]', async () => {
      const db = await open();
      await db.addJob(newJob('j-1', 'd1', T));
      await db.lease('inst-a', ['d1'], T + 1, 1000);
      await db.transition(moved('j-1', ['IN_PROGRESS'], 'QUEUED', T + 2, { notBefore: T + 1000 })); // a retry, backed off
      await db.addJob(newJob('j-2', 'd1', T + 3));
      await db.addJob(newJob('j-3', 'd2', T + 4));
      expect((await db.lease('inst-a', ['d1'], T + 999, 1000))).toBeUndefined(); // j-2 does not jump the queue
      const again = await db.lease('inst-a', ['d1', 'd2'], T + 1000, 1000);
      expect(again).toMatchObject({ id: 'j-1', attempts: 2, startedAt: T + 1000, reason: 'started (attempt 2)' });
      expect((await db.lease('inst-b', ['d1', 'd2'], T + 1000, 1000))?.id).toBe('j-3');
      // the same creation time: the id decides which job is the device's oldest
      await db.addJob(newJob('j-n', 'd3', T + 5));
      await db.addJob(newJob('j-m', 'd3', T + 5));
      await db.transition(moved('j-m', ['QUEUED'], 'PAUSED', T + 6));
      await db.transition(moved('j-m', ['PAUSED'], 'QUEUED', T + 7, { notBefore: T + 5000 }));
      expect(await db.lease('inst-c', ['d3'], T + 1000, 1000)).toBeUndefined();
      expect((await db.lease('inst-c', ['d3'], T + 5000, 1000))?.id).toBe('j-m');
    });

    it('a quarantined device\'s jobs are not leased, and are after clear; quarantine is idempotent [LM-FLEET-4]', async () => {
      const db = await open();
      await db.addJob(newJob('j-1', 'd1', T));
      await db.quarantine('d1', 'alarm 0x21', T + 1);
      await db.quarantine('d1', 'another reason', T + 2);
      expect(await db.device('d1')).toEqual({ id: 'd1', quarantined: true, reason: 'alarm 0x21', since: T + 1 });
      expect(await db.lease('inst-a', ['d1'], T + 3, 1000)).toBeUndefined();
      expect(await db.clear('d1', 'api:ops', T + 4)).toBe(true);
      expect(await db.clear('d1', 'api:ops', T + 5)).toBe(false);
      expect(await db.clear('d-unknown', 'api:ops', T + 5)).toBe(false);
      expect(await db.device('d1')).toEqual({ id: 'd1', quarantined: false, since: T + 4 });
      expect((await db.lease('inst-a', ['d1'], T + 6, 1000))?.id).toBe('j-1');
      // nor is a run of a quarantined device taken over when its lease expires
      await db.quarantine('d1', 'alarm 0x22', T + 7);
      expect(await db.lease('inst-b', ['d1'], T + 5000, 1000)).toBeUndefined();
      await db.clear('d1', 'api:ops', T + 5001);
      expect(await db.lease('inst-b', ['d1'], T + 5002, 1000)).toMatchObject({ id: 'j-1', leaseOwner: 'inst-b' });
      await db.quarantine('d2', 'tamper', T + 7);
      expect((await db.devices()).map((d) => [d.id, d.quarantined])).toEqual([['d1', false], ['d2', true]]);
    });

    it('an expired lease is taken over by another owner, keeping attempts and startedAt [LM-FLEET-3]', async () => {
      const db = await open();
      await db.addJob(newJob('j-1', 'd1', T));
      await db.lease('inst-a', ['d1'], T, 1000);
      await db.progress('inst-a', 'j-1', 400, T + 10);
      expect(await db.lease('inst-b', ['d1'], T + 1000, 1000)).toBeUndefined(); // leaseUntil = T + 1000: not yet expired
      const taken = await db.lease('inst-b', ['d1'], T + 1001, 1000);
      expect(taken).toMatchObject({ id: 'j-1', state: 'IN_PROGRESS', attempts: 1, startedAt: T, progress: 400, leaseOwner: 'inst-b', leaseUntil: T + 2001 });
      expect((await db.events('j-1')).at(-1)).toEqual({ job: 'j-1', from: 'IN_PROGRESS', to: 'IN_PROGRESS', reason: 'lease taken over from inst-a', time: T + 1001, by: 'inst-b' });
      expect(await db.renew('inst-a', ['j-1'], T + 5000)).toEqual([]); // the old owner lost it
    });

    it('the owner leases its own job again after a restart, before the lease expires [LM-FLEET-3]', async () => {
      let db = await open();
      await db.addJob(newJob('j-1', 'd1', T));
      await db.addJob(newJob('j-2', 'd2', T + 1));
      await db.lease('inst-a', ['d1'], T, 60_000);
      if (backend.reopen) {
        await db.close();
        db = await reopen();
      }
      expect(await db.lease('inst-b', ['d1'], T + 5, 60_000)).toBeUndefined();
      const again = await db.lease('inst-a', ['d1', 'd2'], T + 5, 60_000);
      expect(again).toMatchObject({ id: 'j-1', attempts: 1, startedAt: T, leaseOwner: 'inst-a', leaseUntil: T + 60_005 });
      expect((await db.events('j-1')).at(-1)?.reason).toBe('lease taken over from inst-a');
    });

    it('renew extends the leases the owner holds; a job canceled meanwhile drops out [LM-FLEET-3]', async () => {
      const db = await open();
      await db.addJob(newJob('j-1', 'd1', T));
      await db.addJob(newJob('j-2', 'd2', T + 1));
      expect((await db.lease('inst-a', ['d1', 'd2'], T + 2, 1000))?.id).toBe('j-1');
      expect((await db.lease('inst-a', ['d2'], T + 2, 1000))?.id).toBe('j-2');
      expect(await db.transition(moved('j-2', ['IN_PROGRESS'], 'CANCELED', T + 3))).toMatchObject({ state: 'CANCELED' });
      const held = await db.renew('inst-a', ['j-2', 'j-1', 'j-404'], T + 9000);
      expect(held.map((j) => [j.id, j.leaseUntil])).toEqual([['j-1', T + 9000]]);
      expect((await db.job('j-1'))?.leaseUntil).toBe(T + 9000);
      expect(await db.renew('inst-b', ['j-1'], T + 99_000)).toEqual([]);
      expect((await db.job('j-1'))?.leaseUntil).toBe(T + 9000);
      expect(await db.renew('inst-a', [], T)).toEqual([]);
      // progress rides along, only up, only for what the owner holds
      expect((await db.renew('inst-a', ['j-1'], T + 9500, new Map([['j-1', 700]])))[0]).toMatchObject({ progress: 700, leaseUntil: T + 9500 });
      expect((await db.renew('inst-a', ['j-1'], T + 9600, new Map([['j-1', 500]])))[0]).toMatchObject({ progress: 700 });
      await db.renew('inst-b', ['j-1'], T + 9700, new Map([['j-1', 900]]));
      expect(await db.job('j-1')).toMatchObject({ progress: 700, leaseUntil: T + 9600 });
      // a move records progress given with it (never lower); SUCCEEDED records the whole size
      expect(await db.transition({ ...moved('j-1', ['IN_PROGRESS'], 'PAUSED', T + 9700), progress: 800 })).toMatchObject({ progress: 800 });
      expect(await db.transition({ ...moved('j-1', ['PAUSED'], 'IN_PROGRESS', T + 9800), progress: 10 })).toMatchObject({ progress: 800 });
      expect(await db.transition(moved('j-1', ['IN_PROGRESS'], 'SUCCEEDED', T + 9900))).toMatchObject({ progress: 1000 });
    });

    it('progress only goes up, and only from the lease holder [LM-DLV-5]', async () => {
      const db = await open();
      await db.addJob(newJob('j-1', 'd1', T));
      await db.progress('inst-a', 'j-1', 10, T); // not leased yet: ignored
      await db.lease('inst-a', ['d1'], T + 1, 1000);
      await db.progress('inst-a', 'j-1', 500, T + 2);
      await db.progress('inst-a', 'j-1', 300, T + 3);
      await db.progress('inst-b', 'j-1', 900, T + 4);
      expect(await db.job('j-1')).toMatchObject({ progress: 500, updated: T + 2 });
      await db.progress('inst-a', 'j-1', 1000, T + 5);
      expect((await db.job('j-1'))?.progress).toBe(1000);
    });

    it('jobs(): newest first (created, then id), by device and states, limit (default 200)', async () => {
      const db = await open();
      await db.addJob(newJob('j-a', 'd1', T + 5));
      await db.addJob(newJob('j-b', 'd2', T + 5));
      await db.addJob(newJob('j-c', 'd1', T + 1));
      await db.transition(moved('j-c', ['QUEUED'], 'CANCELED', T + 6));
      expect((await db.jobs()).map((j) => j.id)).toEqual(['j-b', 'j-a', 'j-c']);
      expect((await db.jobs({ device: 'd1' })).map((j) => j.id)).toEqual(['j-a', 'j-c']);
      expect((await db.jobs({ states: ['CANCELED', 'FAILED'] })).map((j) => j.id)).toEqual(['j-c']);
      expect((await db.jobs({ device: 'd2', states: ['CANCELED'] }))).toEqual([]);
      expect((await db.jobs({ limit: 1 })).map((j) => j.id)).toEqual(['j-b']);
      for (let i = 0; i < 200; i++) await db.addJob(newJob(`k-${String(i).padStart(3, '0')}`, 'd9', T + 10 + i));
      const page = await db.jobs();
      expect(page.length).toBe(200);
      expect(page[0]?.id).toBe('k-199');
      expect((await db.counts()).QUEUED).toBe(202);
    });

    it('alarms: numbered in order, listed newest first [LM-FLEET-4]', async () => {
      const db = await open();
      const a1 = await db.addAlarm({ device: 'd1', code: 0x21, detail: 'digest', time: T, origin: 'stream', job: 'j-1' });
      const a2 = await db.addAlarm({ device: 'd2', code: 0x30, detail: '', time: T + 1, origin: 'fleet' });
      expect(a2.seq).toBeGreaterThan(a1.seq);
      expect(a1).toEqual({ seq: a1.seq, device: 'd1', code: 0x21, detail: 'digest', time: T, origin: 'stream', job: 'j-1' });
      expect(await db.alarms()).toEqual([a2, a1]);
      expect(await db.alarms(1)).toEqual([a2]);
      expect(await reasonOf(db.addAlarm({ device: 'd1', code: 1, detail: '', time: T, origin: 'mqtt' as never }))).toBe(Reason.schema);
    });

    it('API keys: by hash, listed, revoked keys still found as revoked; ids and hashes unique [LM-FLEET-5]', async () => {
      const db = await open();
      const k1 = { id: 'k1', name: 'ops', hash: '11'.repeat(32), created: T, revoked: false };
      const k2 = { id: 'k2', name: 'ci', hash: '22'.repeat(32), created: T + 1, revoked: false };
      await db.addApiKey(k1);
      await db.addApiKey(k2);
      await expect(db.addApiKey({ ...k1, id: 'k3' })).rejects.toBeInstanceOf(BadRequestError);
      await expect(db.addApiKey({ ...k1, hash: '33'.repeat(32) })).rejects.toBeInstanceOf(BadRequestError);
      expect(await db.apiKeyByHash(k2.hash)).toEqual(k2);
      expect(await db.apiKeyByHash('44'.repeat(32))).toBeUndefined();
      expect(await db.revokeApiKey('k1')).toBe(true);
      expect(await db.revokeApiKey('k-unknown')).toBe(false);
      expect(await db.apiKeyByHash(k1.hash)).toEqual({ ...k1, revoked: true });
      expect(await db.apiKeys()).toEqual([{ ...k1, revoked: true }, k2]);
    });

    if (backend.reopen !== undefined) it('jobs, events, devices, alarms and keys survive close and reopen', async () => {
      const db = await open();
      await db.addJob(newJob('j-1', 'd1', T, { licence: 'aa'.repeat(32) }));
      await db.lease('inst-a', ['d1'], T + 1, 1000);
      await db.progress('inst-a', 'j-1', 64, T + 2);
      await db.quarantine('d2', 'tamper', T + 3);
      const alarm = await db.addAlarm({ device: 'd2', code: 3, detail: 'x', time: T + 3, origin: 'fleet' });
      await db.addApiKey({ id: 'k1', name: 'ops', hash: '11'.repeat(32), created: T, revoked: false });
      const state = [await db.jobs(), await db.events('j-1'), await db.devices(), await db.alarms(), await db.apiKeys(), await db.counts()];
      await db.close();
      const again = await reopen();
      expect([await again.jobs(), await again.events('j-1'), await again.devices(), await again.alarms(), await again.apiKeys(), await again.counts()]).toEqual(state);
      expect((await again.addAlarm({ ...alarm, time: T + 4 })).seq).toBeGreaterThan(alarm.seq);
    });

    it('a closed database refuses calls', async () => {
      const db = await backend.open();
      await db.close();
      await db.close();
      await expect(db.job('j-1')).rejects.toThrow(/closed/);
      await expect(db.addJob(newJob('j-1', 'd1', T))).rejects.toThrow(/closed/);
    });
  });
}
