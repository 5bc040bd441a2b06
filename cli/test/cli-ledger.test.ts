/**
 * `livematrix ledger verify` and `livematrix ledger show` as an operator runs them, on a SQLite
 * licence database filled through the gateway's LicenceDb with real signed RECEIPTs and
 * transactions ([LM-LEDGER-6]): verify passes, names every problem's seq once a byte of a
 * stored record is changed behind the database's back, and fails for an untrusted operator.
 * Runs the built CLI (npm test builds first).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameType, createTx, decodeLedgerRecord, digest, encodeFrame, fromHex, identityKeyPair, randomBytes, toHex, type SignedTx } from '@livematrix/spec';
import { type LicenceDb, openLicenceDb } from '@livematrix/gateway';
import { cli } from './cli-harness.js';

const operator = identityKeyPair();
const device = identityKeyPair();
const T = Date.UTC(2026, 10, 27, 12, 0, 0);

function makeTx(job: string, prints: number): SignedTx {
  const plaintext = randomBytes(500);
  return createTx({
    job, plaintext: { digest: digest(plaintext), size: plaintext.length }, device: 'printer-1', devicePublic: device.publicKey,
    operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: T - 60_000, notAfter: T + 3_600_000, rate: 1e6, burst: 1e6, prints,
  }).tx;
}

/** One session of `tx` as a gateway records it: opened, counted, its device-signed RECEIPT appended. */
async function print(db: LicenceDb, tx: SignedTx, at: number, gateway: string): Promise<void> {
  const sid = randomBytes(16);
  const id = toHex(sid);
  await db.openSession({ sid: id, txh: toHex(tx.hash), device: 'printer-1', time: at });
  await db.countPrint(id, tx.body.prints, at);
  const receipt = encodeFrame(FrameType.RECEIPT, { sid, jd: tx.body.jd, bytes: tx.body.size, digest: tx.body.jd, time: at + 1000, device: 'printer-1', txh: tx.hash }, { kind: 'sig', secretKey: device.secretKey });
  await db.appendReceipt(id, { receipt, tx: tx.bytes, time: at + 1500, gateway });
}

describe('livematrix ledger', () => {
  const state = mkdtempSync(join(tmpdir(), 'lm-cli-ledger-'));
  const file = join(state, 'gateway.db');
  const op = toHex(operator.publicKey);

  afterAll(() => rmSync(state, { recursive: true, force: true }));
  beforeAll(async () => {
    const db = await openLicenceDb(file);
    try {
      const bracket = makeTx('bracket.gcode', 2);
      await print(db, bracket, T, 'gw-1');
      await print(db, makeTx('gear.gcode', 1), T + 60_000, 'gw-2');
      await print(db, bracket, T + 120_000, 'gw-1');
    } finally {
      await db.close();
    }
  });

  it('verify passes on an intact ledger, from $LIVEMATRIX_STATE/gateway.db by default', async () => {
    const r = await cli(['ledger', 'verify', '--operator-key', op], { env: { LIVEMATRIX_STATE: state } });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/3 records, head [0-9a-f]{64}/);
    expect(r.out).toMatch(/^ok: the chain is unbroken/m);
    const noKey = await cli(['ledger', 'verify', '--db', file]);
    expect(noKey.code).toBe(0);
    expect(noKey.out).toMatch(/not checked against a trusted key/);
  });

  it('show tells how many prints of each job, on which device and when; --job and --json', async () => {
    const r = await cli(['ledger', 'show', '--db', file]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/job bracket\.gcode \(jd [0-9a-f]{16}\.\.\.\): 2 prints made of 2 allowed, on printer-1/);
    expect(r.out).toMatch(/job gear\.gcode .*: 1 print made of 1 allowed/);
    expect(r.out).toMatch(/1\s+printer-1\s+2026-11-27 12:00:01Z\s+gw-1/);
    expect(r.out).toMatch(/3\s+printer-1\s+2026-11-27 12:02:01Z\s+gw-1/);
    const j = await cli(['ledger', 'show', '--db', file, '--job', 'gear.gcode', '--json']);
    expect(j.code, j.err).toBe(0);
    const jobs = JSON.parse(j.out) as { job: string; jd: string; made: number; prints: { seq: number; device: string; gateway: string }[] }[];
    expect(jobs.map((x) => [x.job, x.made, x.prints.map((p) => [p.seq, p.device, p.gateway])])).toEqual([['gear.gcode', 1, [[2, 'printer-1', 'gw-2']]]]);
    const byJd = await cli(['ledger', 'show', '--db', file, '--job', jobs[0]!.jd.slice(0, 10), '--json']);
    expect((JSON.parse(byJd.out) as { job: string }[]).map((x) => x.job)).toEqual(['gear.gcode']);
    const none = await cli(['ledger', 'show', '--db', file, '--job', 'nothing.gcode']);
    expect(none.out).toMatch(/no prints of job "nothing.gcode" \(2 jobs in the ledger\)/);
  });

  it('verify --json: the verdict and every record, in seq order, as the ledger holds them', async () => {
    const r = await cli(['ledger', 'verify', '--db', file, '--operator-key', op, '--json']);
    expect(r.code, r.err).toBe(0);
    const v = JSON.parse(r.out) as { ok: boolean; count: number; head: string; operatorsChecked: boolean; problems: unknown[]; records: string[] };
    expect([v.ok, v.count, v.operatorsChecked, v.problems]).toEqual([true, 3, true, []]);
    const records = v.records.map((h) => decodeLedgerRecord(fromHex(h)));
    expect(records.map((x) => [x.seq, x.gateway])).toEqual([[1, 'gw-1'], [2, 'gw-2'], [3, 'gw-1']]);
    expect(toHex(records[2]!.hash)).toBe(v.head);
    expect(toHex(records[1]!.prev)).toBe(toHex(records[0]!.hash));
    const untrusted = await cli(['ledger', 'verify', '--db', file, '--operator-key', toHex(identityKeyPair().publicKey), '--json']);
    expect(untrusted.code).toBe(1);
    const u = JSON.parse(untrusted.out) as { ok: boolean; problems: { seq: number; kind: string }[]; records: string[] };
    expect([u.ok, u.records.length, u.problems.map((p) => [p.seq, p.kind])]).toEqual([false, 3, [[1, 'operator'], [2, 'operator'], [3, 'operator']]]);
    expect(untrusted.err).toMatch(/the ledger does not verify: 3 problems \(listed in the JSON\)/);
  });

  it('verify fails, naming each record, for an operator key that is not trusted', async () => {
    const r = await cli(['ledger', 'verify', '--db', file, '--operator-key', toHex(identityKeyPair().publicKey)]);
    expect(r.code).toBe(1);
    for (const seq of [1, 2, 3]) expect(r.out).toMatch(new RegExp(`^seq ${seq}: operator: .*not trusted`, 'm'));
    expect(r.err).toMatch(/the ledger does not verify: 3 problems in records 1, 2, 3/);
  });

  it('usage: a missing database, an unknown subcommand, options of the other subcommand', async () => {
    const missing = await cli(['ledger', 'verify', '--db', join(state, 'nope.db')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no licence database at .*nope\.db/);
    const bad = await cli(['ledger', 'frobnicate', '--db', file]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unknown ledger subcommand "frobnicate"/);
    expect((await cli(['ledger', 'verify', '--db', file, '--job', 'gear.gcode'])).code).toBe(2);
    expect((await cli(['ledger', 'show', '--db', file, '--operator-key', op])).code).toBe(2);
    const h = await cli(['ledger', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/ledger verify \[--db LOCATION\]/);
  });

  // last: it changes the database
  it('a byte of a stored record changed behind the database: verify fails and names the seq [LM-LEDGER-2]', async () => {
    const raw = new Database(file);
    try {
      const row = raw.prepare<[], { record: Buffer }>('SELECT record FROM lm_ledger WHERE seq = 2').get()!;
      row.record[row.record.length - 10]! ^= 0x01; // in the transaction's operator signature
      raw.prepare('UPDATE lm_ledger SET record = ? WHERE seq = 2').run(row.record);
    } finally {
      raw.close();
    }
    const r = await cli(['ledger', 'verify', '--db', file, '--operator-key', op]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^seq 2: transaction: transaction signature does not verify/m);
    expect(r.out).toMatch(/^seq 3: chain: prev [0-9a-f]{64} is not the hash/m);
    expect(r.err).toMatch(/the ledger does not verify: \d+ problems in records 2, 3/);
    const show = await cli(['ledger', 'show', '--db', file]);
    expect(show.code).toBe(0);
    expect(show.err).toMatch(/warning: the ledger does not verify/);
  });
});
