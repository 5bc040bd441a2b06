/**
 * The fleet database backends against one contract (fleet-db-suite.ts): SQLite in memory,
 * SQLite in a file (close and reopen; two connections leasing at once) and PostgreSQL (a
 * throw-away cluster from the testkit, a schema per test; two pools racing for leases)
 * ([LM-FLEET-1] .. [LM-FLEET-5]). Without PostgreSQL installed its part says so and is skipped
 * locally; under CI its absence is a failure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@livematrix/spec';
import { openFleetDb, type FleetDb } from '../src/fleet/db/index.js';
import { openLicenceDb } from '../src/index.js';
import { T, fleetDbSuite, newJob } from './fleet-db-suite.js';
import { postgresHere, postgresSchemas } from './postgres-schemas.js';

const tmp = mkdtempSync(join(tmpdir(), 'lm-fleet-db-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let files = 0;
const newFile = () => join(tmp, `db-${++files}`, 'fleet.db');

/**
 * Service instances (two handles, three workers each) race to lease 20 jobs over 5 devices, each
 * run ending SUCCEEDED: every job is leased exactly once, a device never has two open jobs, and
 * each device's jobs run in submission order ([LM-FLEET-3]).
 */
async function leaseRace(dbs: FleetDb[]): Promise<void> {
  const devices = ['d0', 'd1', 'd2', 'd3', 'd4'];
  const ids = Array.from({ length: 20 }, (_, i) => `j-${String(i).padStart(2, '0')}`);
  for (const [i, id] of ids.entries()) await dbs[0]!.addJob(newJob(id, devices[i % 5]!, T + i));
  const leased: string[] = [];
  const byDevice = new Map<string, string[]>();
  const busy = new Set<string>();
  const problems: string[] = [];
  let done = 0;
  await Promise.all(dbs.flatMap((db, k) => [0, 1, 2].map(async (w) => {
    const owner = `inst-${k}-${w}`;
    for (let idle = 0; done < ids.length && idle < 2000;) {
      const j = await db.lease(owner, devices, T + 100, 60_000);
      if (!j) {
        idle++;
        await sleep(1);
        continue;
      }
      if (busy.has(j.device)) problems.push(`${owner} leased ${j.id} while ${j.device} had an open job`);
      busy.add(j.device);
      leased.push(j.id);
      byDevice.set(j.device, [...(byDevice.get(j.device) ?? []), j.id]);
      const open = await db.jobs({ device: j.device, states: ['IN_PROGRESS', 'PAUSED'] });
      if (open.length !== 1) problems.push(`${j.device} has open jobs ${open.map((o) => o.id).join(', ')}`);
      await sleep(2);
      busy.delete(j.device); // before the commit: no one may lease the device until it is done
      await db.transition({ job: j.id, from: ['IN_PROGRESS'], to: 'SUCCEEDED', reason: 'done', time: T + 200, by: owner });
      done++;
    }
  })));
  expect(problems).toEqual([]);
  expect([...leased].sort()).toEqual(ids);
  for (const [d, list] of byDevice) expect(list).toEqual(ids.filter((_, i) => devices[i % 5] === d));
  expect((await dbs[1]!.counts()).SUCCEEDED).toBe(20);
  for (const id of ids) expect((await dbs[1]!.events(id)).map((e) => e.to)).toEqual(['QUEUED', 'IN_PROGRESS', 'SUCCEEDED']);
}

describe('openFleetDb', () => {
  it('refuses an empty location with ConfigError', async () => {
    await expect(openFleetDb('')).rejects.toBeInstanceOf(ConfigError);
  });
});

fleetDbSuite({ name: 'SQLite in memory', open: () => openFleetDb(':memory:') });

let lastFile = '';
fleetDbSuite({ name: 'SQLite file', open: () => openFleetDb((lastFile = newFile())), reopen: () => openFleetDb(lastFile) });

describe('SQLite file: durability and sharing', () => {
  it('a file database is in WAL mode with synchronous=FULL; its directory is created; tables are lm_fleet_*', async () => {
    const file = newFile();
    const db = await openFleetDb(file);
    expect(db.kind).toBe('sqlite');
    await db.close();
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = raw.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all().map((r) => r.name);
      expect(tables).toEqual(['lm_fleet_alarms', 'lm_fleet_api_keys', 'lm_fleet_devices', 'lm_fleet_events', 'lm_fleet_jobs', 'lm_fleet_meta']);
    } finally {
      raw.close();
    }
  });

  it('refuses a database whose schema is newer than this service, and a path it cannot open', async () => {
    const file = newFile();
    await (await openFleetDb(file)).close();
    const raw = new Database(file);
    raw.prepare("UPDATE lm_fleet_meta SET value = '99' WHERE key = 'schema'").run();
    raw.close();
    await expect(openFleetDb(file)).rejects.toThrow(/fleet database schema version 99 is newer/);
    await expect(openFleetDb(join(tmp, 'db-1'))).rejects.toBeInstanceOf(ConfigError); // a directory
  });

  it('two connections on one file leasing at once never share a job or a device [LM-FLEET-3]', async () => {
    const file = newFile();
    const dbs = [await openFleetDb(file), await openFleetDb(file)];
    try {
      await leaseRace(dbs);
    } finally {
      for (const db of dbs) await db.close();
    }
  });
});

describe.runIf(postgresHere('fleet database'))('PostgreSQL', () => {
  const { newUrl } = postgresSchemas('fleet');
  let lastUrl = '';

  fleetDbSuite({
    name: 'PostgreSQL',
    open: async () => openFleetDb((lastUrl = await newUrl())),
    // another pool: other connections, as another service instance would have
    reopen: () => openFleetDb(lastUrl),
  });

  it('two pools racing lease() for 20 jobs over 5 devices: no job leased twice, never two open jobs of a device [LM-FLEET-3]', async () => {
    const url = await newUrl();
    const dbs = [await openFleetDb(url), await openFleetDb(url)];
    try {
      expect(dbs[0]!.kind).toBe('postgres');
      await leaseRace(dbs);
    } finally {
      for (const db of dbs) await db.close();
    }
  });

  it('shares a database with the licence tables; BIGINT times come back as numbers', async () => {
    const url = await newUrl();
    const licence = await openLicenceDb(url);
    const fleet = await openFleetDb(url);
    try {
      const late = 2 ** 52;
      await fleet.addJob(newJob('j-1', 'd1', late, { size: 2 ** 40 }));
      expect(await fleet.job('j-1')).toMatchObject({ created: late, notBefore: late, size: 2 ** 40 });
      const c = new pg.Client(url);
      await c.connect();
      try {
        const names = (await c.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")).rows.map((r) => r.tablename);
        expect(names.filter((n) => n.startsWith('lm_fleet_'))).toEqual(['lm_fleet_alarms', 'lm_fleet_api_keys', 'lm_fleet_devices', 'lm_fleet_events', 'lm_fleet_jobs', 'lm_fleet_meta']);
        expect(names).toContain('lm_sessions');
      } finally {
        await c.end();
      }
    } finally {
      await fleet.close();
      await licence.close();
    }
  });

  it('a URL with a password is never echoed in an error', async () => {
    const u = new URL(await newUrl());
    u.password = 'hunter2';
    u.port = String(Number(u.port) === 1 ? 2 : 1); // nothing listens there
    await expect(openFleetDb(u.toString())).rejects.toThrow(/cannot open the fleet database postgres:\/\/postgres:\*\*\*@/);
    await expect(openFleetDb(u.toString())).rejects.not.toThrow(/hunter2/);
  });
});
