/**
 * The contract every LicenceDb backend must pass (in aedes' abstract-persistence manner): print
 * counts ([LM-TX-7]), sessions and tickets, the receipt ledger ([LM-LEDGER-2] .. [LM-LEDGER-5]),
 * serialised writers ([LM-LEDGER-3]) and the revocation list. A backend's test file calls
 * `licenceDbSuite({ name, open, reopen?, tamper? })`: `open` makes an empty database, `reopen`
 * opens another handle (another connection) on the last one opened, `tamper` flips a byte of a
 * stored record behind the database's back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LmError, Reason, randomBytes, toHex, verifyLedger, type ReasonCode } from '@livematrix/spec';
import type { LicenceDb } from '../src/index.js';
import { DEVICE_ID, ledgerFixture } from './ledger-fixture.js';

export interface LicenceDbBackend {
  name: string;
  /** a new, empty database */
  open(): Promise<LicenceDb>;
  /** another handle on the database `open` made last (for SQLite and PostgreSQL: another connection) */
  reopen?(): Promise<LicenceDb>;
  /** flips a byte of the stored record `seq`, as someone with access to the database could */
  tamper?(seq: number): Promise<void>;
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

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const r of it) out.push(r);
  return out;
}

const sid = () => toHex(randomBytes(16));

export function licenceDbSuite(backend: LicenceDbBackend): void {
  describe(`LicenceDb contract: ${backend.name}`, () => {
    const handles: LicenceDb[] = [];
    const open = async () => {
      const db = await backend.open();
      handles.push(db);
      return db;
    };
    const reopen = async () => {
      if (!backend.reopen) throw new Error('no reopen');
      const db = await backend.reopen();
      handles.push(db);
      return db;
    };
    afterEach(async () => {
      for (const h of handles.splice(0)) await h.close();
    });
    const f = ledgerFixture();
    const T = 1_764_000_000_000;

    it('starts empty', async () => {
      const db = await open();
      expect(await db.printsUsed(toHex(randomBytes(32)))).toBe(0);
      expect(await db.session(sid())).toBeUndefined();
      expect(await collect(db.ledger())).toEqual([]);
      expect(await db.revocation()).toBeUndefined();
    });

    it('opens sessions as offered; a known sid or a malformed id is refused', async () => {
      const db = await open();
      const tx = f.tx(1);
      const s = sid();
      await db.openSession({ sid: s, txh: toHex(tx.hash), device: DEVICE_ID, time: T });
      expect(await db.session(s)).toEqual({ sid: s, txh: toHex(tx.hash), device: DEVICE_ID, state: 'offered', counted: false, opened: T, updated: T });
      expect(await reasonOf(db.openSession({ sid: s, txh: toHex(tx.hash), device: DEVICE_ID, time: T }))).toBe(Reason.replay);
      expect(await reasonOf(db.openSession({ sid: 'xyz', txh: toHex(tx.hash), device: DEVICE_ID, time: T }))).toBe(Reason.schema);
      expect(await reasonOf(db.openSession({ sid: sid(), txh: 'ab', device: DEVICE_ID, time: T }))).toBe(Reason.schema);
      // upper-case hex is the same id
      expect((await db.session(s.toUpperCase()))?.sid).toBe(s);
    });

    it('counts a print exactly once per session, with its move to streaming [LM-TX-7]', async () => {
      const db = await open();
      const tx = f.tx(3);
      const txh = toHex(tx.hash);
      const s = sid();
      await db.openSession({ sid: s, txh, device: DEVICE_ID, time: T });
      expect(await db.countPrint(s, 3, T + 1)).toBe(1);
      expect(await db.countPrint(s, 3, T + 2)).toBe(1);
      expect(await db.printsUsed(txh)).toBe(1);
      expect(await db.session(s)).toMatchObject({ state: 'streaming', counted: true, updated: T + 1 });
      const s2 = sid();
      await db.openSession({ sid: s2, txh, device: DEVICE_ID, time: T });
      expect(await db.countPrint(s2, 3, T + 3)).toBe(2);
      expect(await db.printsUsed(txh)).toBe(2);
      expect(await reasonOf(db.countPrint(sid(), 3, T))).toBe(Reason.unknownSession);
    });

    it('refuses a print beyond the limit with tx-count and changes nothing [LM-TX-7]', async () => {
      const db = await open();
      const tx = f.tx(2);
      const txh = toHex(tx.hash);
      const sids = [sid(), sid(), sid()];
      for (const s of sids) await db.openSession({ sid: s, txh, device: DEVICE_ID, time: T });
      await db.countPrint(sids[0]!, 2, T);
      await db.countPrint(sids[1]!, 2, T);
      expect(await reasonOf(db.countPrint(sids[2]!, 2, T + 5))).toBe(Reason.txCount);
      expect(await db.printsUsed(txh)).toBe(2);
      expect(await db.session(sids[2]!)).toMatchObject({ state: 'offered', counted: false, updated: T });
      // a session that ended cannot count
      await db.setState(sids[0]!, 'failed', T + 6);
      expect(await reasonOf(db.countPrint(sids[0]!, 5, T + 7))).toBe(Reason.replay);
    });

    it('a session opened with a ticket counts no print; a ticket opens one session only', async () => {
      const db = await open();
      const tx = f.tx(1);
      const txh = toHex(tx.hash);
      const first = sid();
      await db.openSession({ sid: first, txh, device: DEVICE_ID, time: T });
      await db.countPrint(first, 1, T);
      await db.setState(first, 'interrupted', T + 1);
      const ticket = toHex(randomBytes(16));
      const resumed = sid();
      await db.openSession({ sid: resumed, txh, device: DEVICE_ID, time: T + 2, ticket });
      expect(await db.countPrint(resumed, 1, T + 3)).toBe(1);
      expect(await db.session(resumed)).toMatchObject({ state: 'streaming', counted: false, ticket });
      expect(await db.printsUsed(txh)).toBe(1);
      expect(await reasonOf(db.openSession({ sid: sid(), txh, device: DEVICE_ID, time: T + 4, ticket }))).toBe(Reason.replay);
      expect(await reasonOf(db.openSession({ sid: sid(), txh, device: DEVICE_ID, time: T + 4, ticket: ticket.toUpperCase() }))).toBe(Reason.replay);
    });

    it('two sessions counting at once with one print left: exactly one succeeds [LM-LEDGER-3]', async () => {
      const db = await open();
      const other = backend.reopen ? await reopen() : db;
      // the first print of a transaction, and the last of one that has prints counted already
      for (const [prints, before] of [[1, 0], [1, 0], [2, 1], [2, 1], [3, 2], [3, 2]] as const) {
        const tx = f.tx(prints);
        const txh = toHex(tx.hash);
        for (let i = 0; i < before; i++) {
          const s = sid();
          await db.openSession({ sid: s, txh, device: DEVICE_ID, time: T });
          await db.countPrint(s, prints, T);
        }
        const a = sid();
        const b = sid();
        await db.openSession({ sid: a, txh, device: DEVICE_ID, time: T });
        await other.openSession({ sid: b, txh, device: DEVICE_ID, time: T });
        const results = await Promise.allSettled([db.countPrint(a, prints, T + 1), other.countPrint(b, prints, T + 1)]);
        expect(results.filter((r) => r.status === 'fulfilled').length).toBe(1);
        const refused = results.find((r) => r.status === 'rejected');
        expect(refused?.status === 'rejected' && refused.reason instanceof LmError && (refused.reason.code as ReasonCode)).toBe(Reason.txCount);
        expect(await db.printsUsed(txh)).toBe(prints);
        expect(await other.printsUsed(txh)).toBe(prints);
      }
    });

    it('states: unfinished lists offered, streaming and interrupted sessions, oldest first; completed is final', async () => {
      const db = await open();
      const tx = f.tx(9);
      const txh = toHex(tx.hash);
      const ids = [sid(), sid(), sid(), sid()];
      for (const [i, s] of ids.entries()) await db.openSession({ sid: s, txh, device: DEVICE_ID, time: T + i });
      await db.setState(ids[1]!, 'interrupted', T + 10);
      await db.setState(ids[2]!, 'failed', T + 11);
      await db.countPrint(ids[3]!, 9, T + 12);
      expect((await db.unfinished(txh)).map((s) => [s.sid, s.state])).toEqual([[ids[0], 'offered'], [ids[1], 'interrupted'], [ids[3], 'streaming']]);
      expect(await db.unfinished(toHex(randomBytes(32)))).toEqual([]);
      expect(await reasonOf(db.setState(sid(), 'failed', T))).toBe(Reason.unknownSession);
      await db.appendReceipt(ids[3]!, { receipt: f.receipt(tx, ids[3]!), tx: tx.bytes, time: T + 13, gateway: 'gw-1' });
      expect(await db.session(ids[3]!)).toMatchObject({ state: 'completed', updated: T + 13 });
      expect(await reasonOf(db.setState(ids[3]!, 'streaming', T + 14))).toBe(Reason.replay);
      expect(await reasonOf(db.setState(ids[0]!, 'paused' as never, T + 14))).toBe(Reason.schema);
    });

    it('appends one record per verified RECEIPT, chained; verifyLedger finds the chain valid [LM-LEDGER-2] [LM-LEDGER-4]', async () => {
      const db = await open();
      const a = f.tx(2, 'bracket.gcode');
      const b = f.tx(1, 'gear.gcode');
      const r1 = await f.complete(db, a);
      const r2 = await f.complete(db, b, 'gw-2');
      const r3 = await f.complete(db, a);
      expect([r1.seq, r2.seq, r3.seq]).toEqual([1, 2, 3]);
      // the same RECEIPT again (the device re-sends it): no second record, the first returned
      const again = await db.appendReceipt(r2.sid, { receipt: f.receipt(b, r2.sid), tx: b.bytes, time: T, gateway: 'gw-1' });
      expect(again.seq).toBe(2);
      expect(toHex(again.hash)).toBe(toHex(r2.hash));
      const records = await collect(db.ledger());
      expect(records.length).toBe(3);
      const v = await verifyLedger(records, { trustedOperators: [f.operator.publicKey] });
      expect(v).toEqual({ ok: true, count: 3, head: toHex(r3.hash), problems: [] });
      expect((await collect(db.ledger(2))).length).toBe(2);
      expect(await collect(db.ledger(4))).toEqual([]);
      expect(await db.printsUsed(toHex(a.hash))).toBe(2);
    });

    it('appends nothing for a RECEIPT that fails its checks [LM-LEDGER-5]', async () => {
      const db = await open();
      const tx = f.tx(5);
      const txh = toHex(tx.hash);
      const s = sid();
      await db.openSession({ sid: s, txh, device: DEVICE_ID, time: T });
      await db.countPrint(s, 5, T);
      const at = { tx: tx.bytes, time: T, gateway: 'gw-1' };
      expect(await reasonOf(db.appendReceipt(s, { ...at, receipt: f.receipt(tx, s, f.stranger) }))).toBe(Reason.auth);
      expect(await reasonOf(db.appendReceipt(s, { ...at, receipt: f.receipt(tx, sid()) }))).toBe(Reason.digest);
      const otherTx = f.tx(5);
      expect(await reasonOf(db.appendReceipt(s, { ...at, tx: otherTx.bytes, receipt: f.receipt(otherTx, s) }))).toBe(Reason.digest);
      expect(await reasonOf(db.appendReceipt(s, { ...at, receipt: Uint8Array.of(1, 2, 3) }))).not.toBe(0);
      expect(await reasonOf(db.appendReceipt(sid(), { ...at, receipt: f.receipt(tx, s) }))).toBe(Reason.unknownSession);
      expect(await collect(db.ledger())).toEqual([]);
      expect(await db.session(s)).toMatchObject({ state: 'streaming' });
    });

    it('two appenders at once never fork the chain [LM-LEDGER-3]', async () => {
      const db = await open();
      const other = backend.reopen ? await reopen() : db;
      const tx = f.tx(1000);
      const runs = await Promise.all([db, other, db, other].map(async (h, k) => {
        const out: number[] = [];
        for (let i = 0; i < 6; i++) out.push((await f.complete(h, tx, `gw-${k}`)).seq);
        return out;
      }));
      expect(runs.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
      const v = await verifyLedger(other.ledger());
      expect(v.ok).toBe(true);
      expect(v.count).toBe(24);
      expect(await db.printsUsed(toHex(tx.hash))).toBe(24);
    });

    it('keeps the revocation list with the greatest seq', async () => {
      const db = await open();
      const [l5, l4, l6] = [randomBytes(100), randomBytes(100), randomBytes(100)];
      expect(await db.saveRevocation(l5, 5)).toBe(true);
      expect(await db.saveRevocation(l4, 4)).toBe(false);
      expect(await db.saveRevocation(l4, 5)).toBe(false);
      expect(await db.revocation()).toEqual(l5);
      expect(await db.saveRevocation(l6, 6)).toBe(true);
      expect(await db.revocation()).toEqual(l6);
    });

    if (backend.tamper !== undefined) it('a record changed in the database is found by verifyLedger, naming its seq [LM-LEDGER-6]', async () => {
      const db = await open();
      const tx = f.tx(10);
      for (let i = 0; i < 4; i++) await f.complete(db, tx);
      expect((await verifyLedger(db.ledger())).ok).toBe(true);
      await backend.tamper!(2);
      const v = await verifyLedger(db.ledger());
      expect(v.ok).toBe(false);
      expect(v.problems.map((p) => p.seq)).toContain(3); // the next record's prev no longer matches
      expect(v.problems.every((p) => p.seq === 2 || p.seq === 3)).toBe(true);
    });

    if (backend.reopen !== undefined) it('counts, sessions, the ledger and the revocation list survive close and reopen', async () => {
      const db = await open();
      const tx = f.tx(3);
      const r = await f.complete(db, tx);
      const open2 = sid();
      await db.openSession({ sid: open2, txh: toHex(tx.hash), device: DEVICE_ID, time: T });
      await db.saveRevocation(Uint8Array.of(7), 7);
      await db.close();
      const again = await reopen();
      expect(await again.printsUsed(toHex(tx.hash))).toBe(1);
      expect(await again.session(r.sid)).toMatchObject({ state: 'completed', counted: true });
      expect((await again.unfinished(toHex(tx.hash))).map((s) => s.sid)).toEqual([open2]);
      expect(await again.revocation()).toEqual(Uint8Array.of(7));
      const next = await f.complete(again, tx);
      expect(next.seq).toBe(2);
      expect(await verifyLedger(again.ledger())).toMatchObject({ ok: true, count: 2, head: toHex(next.hash) });
    });
  });
}
