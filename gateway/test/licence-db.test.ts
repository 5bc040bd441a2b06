/**
 * The licence database backends against one contract (licence-db-suite.ts): SQLite in memory,
 * SQLite in a file (close and reopen; processes killed with SIGKILL mid-append; two processes
 * appending to one file) and PostgreSQL (a throw-away cluster from the testkit, two pools on one
 * database) ([LM-TX-7], [LM-LEDGER-2] .. [LM-LEDGER-6]). Without PostgreSQL installed its part
 * says so and is skipped locally; under CI (CI=true, .ci/run installs it) its absence is a
 * failure. The child processes run the built gateway (npm test builds first).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLedger } from '@livematrix/spec';
import { type LicenceDb, openLicenceDb } from '../src/index.js';
import { LEDGER_PAGE } from '../src/db/common.js';
import { licenceDbSuite } from './licence-db-suite.js';
import { postgresHere, postgresSchemas } from './postgres-schemas.js';
import { ledgerFixture } from './ledger-fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'lm-licence-db-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let files = 0;
const newFile = () => join(tmp, `db-${++files}`, 'gateway.db');

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const r of it) out.push(r);
  return out;
}

licenceDbSuite({ name: 'SQLite in memory', open: () => openLicenceDb(':memory:') });

let lastFile = '';
licenceDbSuite({
  name: 'SQLite file',
  open: () => openLicenceDb((lastFile = newFile())),
  reopen: () => openLicenceDb(lastFile),
  tamper: async (seq) => {
    const raw = new Database(lastFile);
    try {
      const row = raw.prepare<[number], { record: Buffer }>('SELECT record FROM lm_ledger WHERE seq = ?').get(seq)!;
      row.record[Math.floor(row.record.length / 2)]! ^= 1;
      raw.prepare('UPDATE lm_ledger SET record = ? WHERE seq = ?').run(row.record, seq);
    } finally {
      raw.close();
    }
  },
});

describe('SQLite file: durability', () => {
  it('a file database is in WAL mode with synchronous=FULL; its directory is created', async () => {
    const file = newFile();
    const db = await openLicenceDb(file);
    await db.close();
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.prepare<[], { value: string }>("SELECT value FROM lm_meta WHERE key = 'schema'").get()?.value).toBe('1');
    } finally {
      raw.close();
    }
  });

  it('refuses a database whose schema is newer than this gateway', async () => {
    const file = newFile();
    await (await openLicenceDb(file)).close();
    const raw = new Database(file);
    raw.prepare("UPDATE lm_meta SET value = '99' WHERE key = 'schema'").run();
    raw.close();
    await expect(openLicenceDb(file)).rejects.toThrow(/schema version 99 is newer/);
  });

  it('reads a ledger longer than one page in seq order', async () => {
    const db = await openLicenceDb(':memory:');
    try {
      const f = ledgerFixture();
      const tx = f.tx(1000);
      const n = LEDGER_PAGE + 3;
      for (let i = 0; i < n; i++) await f.complete(db, tx);
      const v = await verifyLedger(db.ledger());
      expect(v).toMatchObject({ ok: true, count: n });
      expect((await collect(db.ledger(LEDGER_PAGE - 1))).length).toBe(5);
    } finally {
      await db.close();
    }
  });

  /** Runs the appender child on `file`; resolves `until(n)` once it printed n seqs. */
  function appender(file: string, count: number, gateway: string) {
    const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [join(import.meta.dirname, '..', 'dist', 'test', 'ledger-appender.js'), file, String(count), gateway], { stdio: 'pipe' });
    const seqs: number[] = [];
    let err = '';
    let buf = '';
    const waiters: (() => void)[] = [];
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) seqs.push(Number(l));
      for (const w of [...waiters]) w();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const closed = new Promise<number | null>((res) => child.on('close', (code) => {
      for (const w of [...waiters]) w();
      res(code);
    }));
    const until = (n: number) => new Promise<void>((res, rej) => {
      const check = () => {
        if (seqs.length >= n) {
          waiters.splice(waiters.indexOf(check), 1);
          res();
        } else if (child.exitCode !== null || child.signalCode !== null) {
          rej(new Error(`the appender ended after ${seqs.length} records: ${err}`));
        }
      };
      waiters.push(check);
      check();
    });
    return { child, seqs, until, closed, err: () => err };
  }

  it('processes killed with SIGKILL mid-append leave a consistent chain; appending goes on [LM-LEDGER-3] [LM-LEDGER-4]', async () => {
    const file = newFile();
    let total = 0;
    for (let round = 1; round <= 3; round++) {
      const a = appender(file, 0, `gw-${round}`);
      await a.until(15 * round); // it appends in a loop: most of its time is inside a database transaction
      a.child.kill('SIGKILL');
      await a.closed;
      const db = await openLicenceDb(file);
      try {
        const v = await verifyLedger(db.ledger());
        expect(v.problems).toEqual([]);
        // every seq the child reported is in the ledger; a record may exist whose line was never printed
        expect(v.count).toBeGreaterThanOrEqual(total + a.seqs.length);
        expect(a.seqs).toEqual(Array.from({ length: a.seqs.length }, (_, i) => total + i + 1));
        total = v.count;
      } finally {
        await db.close();
      }
    }
    // the counts agree with the ledger: every completed session counted its print once, and a
    // session killed between counting and appending counted without a record
    const raw = new Database(file, { readonly: true });
    try {
      const completed = raw.prepare<[], { n: number }>("SELECT count(*) AS n FROM lm_sessions WHERE state = 'completed'").get()!.n;
      const counted = raw.prepare<[], { n: number }>('SELECT count(*) AS n FROM lm_sessions WHERE counted = 1').get()!.n;
      const used = raw.prepare<[], { n: number }>('SELECT sum(used) AS n FROM lm_prints').get()!.n;
      expect(completed).toBe(total);
      expect(used).toBe(counted);
      expect(counted - completed).toBeLessThanOrEqual(3);
    } finally {
      raw.close();
    }
  }, 60_000);

  it('two processes appending to one file at once never fork the chain [LM-LEDGER-3]', async () => {
    const file = newFile();
    await (await openLicenceDb(file)).close(); // the schema exists before both start
    const [a, b] = [appender(file, 40, 'gw-a'), appender(file, 40, 'gw-b')];
    expect([await a.closed, await b.closed], a.err() + b.err()).toEqual([0, 0]);
    expect([...a.seqs, ...b.seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    const db = await openLicenceDb(file);
    try {
      expect(await verifyLedger(db.ledger())).toMatchObject({ ok: true, count: 80 });
    } finally {
      await db.close();
    }
  }, 60_000);
});

describe.runIf(postgresHere('licence database'))('PostgreSQL', () => {
  const { newUrl: newDatabase } = postgresSchemas('lm_test');
  let lastUrl = '';

  licenceDbSuite({
    name: 'PostgreSQL',
    open: async () => openLicenceDb((lastUrl = await newDatabase())),
    // another pool: other connections, as another gateway process would have
    reopen: () => openLicenceDb(lastUrl),
    tamper: async (seq) => {
      const c = new pg.Client(lastUrl);
      await c.connect();
      try {
        await c.query('UPDATE lm_ledger SET record = set_byte(record, length(record) / 2, get_byte(record, length(record) / 2) # 1) WHERE seq = $1', [seq]);
      } finally {
        await c.end();
      }
    },
  });

  it('many appenders on separate pools at once never fork the chain [LM-LEDGER-3]', async () => {
    const url = await newDatabase();
    const dbs: LicenceDb[] = [];
    for (let i = 0; i < 3; i++) dbs.push(await openLicenceDb(url));
    try {
      const f = ledgerFixture();
      const tx = f.tx(1000);
      const seqs = (await Promise.all(dbs.map(async (db, k) => {
        const out: number[] = [];
        for (let i = 0; i < 10; i++) out.push((await f.complete(db, tx, `gw-${k}`)).seq);
        return out;
      }))).flat();
      expect(seqs.sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(await verifyLedger(dbs[0]!.ledger())).toMatchObject({ ok: true, count: 30 });
    } finally {
      for (const db of dbs) await db.close();
    }
  });

  it('a URL with a password is never echoed in an error', async () => {
    const u = new URL(await newDatabase());
    u.password = 'hunter2';
    u.port = String(Number(u.port) === 1 ? 2 : 1); // nothing listens there
    await expect(openLicenceDb(u.toString())).rejects.toThrow(/cannot open the licence database postgres:\/\/postgres:\*\*\*@/);
    await expect(openLicenceDb(u.toString())).rejects.not.toThrow(/hunter2/);
  });
});
