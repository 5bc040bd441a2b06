/**
 * The receipt ledger (SPEC.md §11.6): the vectors of ledger.json against the reference code,
 * every invalid ledger caught for its reason while its valid twin passes, the record codec's
 * bounds, and a seeded fuzz of the record decoder (nothing but LmError leaves it).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode as cborxDecode } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import {
  LEDGER_GENESIS, LmError, Reason, checkLedgerEntry, concatBytes, decodeLedgerRecord, encodeLedgerRecord, fromHex, isReasonCode, ledgerHash, nextRecord, summarizeLedger,
  toHex, verifyLedger, type LedgerProblemKind,
} from '../src/index.js';
import { chain, ledgerCases, ledgerFixture } from '../scripts/ledger-vectors.js';
import type { VectorFile, VectorTest } from '../scripts/vectors.js';
import { reasonOf } from './helpers.js';

const file = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'v1', 'ledger.json'), 'utf8')) as VectorFile;
const tests = file.testGroups.flatMap((g) => g.tests);
const records = (t: VectorTest): Uint8Array[] => (t['records'] as string[]).map(fromHex);
const trusted = (t: VectorTest): Uint8Array[] => (t['trustedOperators'] as string[]).map(fromHex);
const kinds = (ps: readonly { seq: number; kind: LedgerProblemKind }[]) => ps.map((p) => ({ seq: p.seq, kind: p.kind }));

describe('ledger vectors [LM-LEDGER-1] [LM-LEDGER-2] [LM-LEDGER-5] [LM-LEDGER-6]', () => {
  const valid = tests.find((t) => t.result === 'valid')!;

  it('the valid chain verifies, with the hashes and head of the file', async () => {
    const rs = records(valid);
    expect(rs.length).toBe(3);
    const v = await verifyLedger(rs, { trustedOperators: trusted(valid) });
    expect(v).toEqual({ ok: true, count: 3, head: valid['head'], problems: [] });
    expect(rs.map((r) => toHex(ledgerHash(r)))).toEqual(valid['hashes']);
  });

  it('record hashes match an independent SHA-256 over the prefix, and records decode the same with cbor-x', () => {
    let prev = LEDGER_GENESIS;
    for (const [i, r] of records(valid).entries()) {
      const h = createHash('sha256').update(Buffer.from('livematrix/1 ledger\0', 'ascii')).update(r).digest('hex');
      expect(h).toBe((valid['hashes'] as string[])[i]);
      const m = cborxDecode(Buffer.from(r)) as Record<string, unknown>; // cbor-x: maps with integer keys come back as objects
      expect(m[1]).toBe(i + 1);
      expect(toHex(m[2] as Uint8Array)).toBe(toHex(prev));
      expect(m[6]).toBe('gw-1');
      const d = decodeLedgerRecord(r);
      expect(encodeLedgerRecord(d)).toEqual(r); // deterministic: decoding and encoding again gives the same bytes
      prev = fromHex(h);
    }
  });

  for (const t of tests.filter((x) => x.result === 'invalid')) {
    it(`#${t.tcId} ${t.comment}: caught as ${t['error'] as string}; its twin #${t['twin'] as number} passes`, async () => {
      const v = await verifyLedger(records(t), { trustedOperators: trusted(t) });
      expect(v.ok).toBe(false);
      expect(kinds(v.problems)).toEqual(t['problems']);
      for (const p of v.problems) expect(p.detail).toMatch(/\[LM-[A-Z]+-\d+\]/);
      const twin = tests.find((x) => x.tcId === t['twin'])!;
      expect(twin.result).toBe('valid');
      expect((await verifyLedger(records(twin), { trustedOperators: trusted(twin) })).ok).toBe(true);
      // the tamper is the only difference: the records or the trusted keys differ from the twin's
      expect(JSON.stringify([t['records'], t['trustedOperators']])).not.toBe(JSON.stringify([twin['records'], twin['trustedOperators']]));
    });
  }

  it('covers every case the brief names: tampered receipt, broken prev, seq gap, another tx\'s receipt, over-print', () => {
    const flags = new Set(tests.flatMap((t) => t.flags));
    for (const f of ['TamperedReceipt', 'TamperedRecord', 'BrokenChain', 'SeqGap', 'OtherTransaction', 'OverPrint']) expect(flags.has(f), f).toBe(true);
  });
});

describe('ledger records [LM-LEDGER-1] [LM-LEDGER-2]', () => {
  const { txA, entry } = ledgerFixture();
  const e = entry(txA, 'unit', 1_764_000_000_000);

  it('nextRecord numbers from 1, chains prev to the hash of the record before', () => {
    const a = nextRecord(undefined, e);
    const b = nextRecord(a, e);
    expect(a.seq).toBe(1);
    expect(a.prev).toEqual(LEDGER_GENESIS);
    expect(b.seq).toBe(2);
    expect(b.prev).toEqual(a.hash);
    expect(a.hash).toEqual(ledgerHash(a.bytes));
    const d = decodeLedgerRecord(b.bytes);
    expect({ seq: d.seq, time: d.time, gateway: d.gateway }).toEqual({ seq: 2, time: e.time, gateway: 'gw-1' });
    expect(d.receipt).toEqual(e.receipt);
    expect(d.tx).toEqual(e.tx);
  });

  it('encoding refuses fields out of range with reason schema', () => {
    const ok = { seq: 1, prev: LEDGER_GENESIS, ...e };
    expect(reasonOf(() => encodeLedgerRecord(ok))).toBe(0);
    for (const bad of [
      { ...ok, seq: 0 }, { ...ok, seq: 1.5 }, { ...ok, prev: new Uint8Array(31) }, { ...ok, time: -1 }, { ...ok, receipt: new Uint8Array(0) },
      { ...ok, tx: new Uint8Array(4097) }, { ...ok, gateway: '' }, { ...ok, gateway: 'gw 1' }, { ...ok, gateway: 'g'.repeat(65) },
    ]) {
      expect(reasonOf(() => encodeLedgerRecord(bad))).toBe(Reason.schema);
    }
  });

  it('decoding refuses a non-map, a missing or unknown key, a wrong type, trailing bytes, each as an LmError', () => {
    const r = nextRecord(undefined, e).bytes;
    expect(reasonOf(() => decodeLedgerRecord(Uint8Array.of(0x80)))).toBe(Reason.schema);
    expect(reasonOf(() => decodeLedgerRecord(concatBytes(r, Uint8Array.of(0))))).toBe(Reason.trailing);
    expect(reasonOf(() => decodeLedgerRecord(new Uint8Array(0)))).toBe(Reason.malformed);
    expect(reasonOf(() => decodeLedgerRecord(r.subarray(0, r.length - 3)))).toBe(Reason.malformed);
    // the six keys and a seventh
    const head = r[0] as number;
    expect(head).toBe(0xa6);
    const seven = concatBytes(Uint8Array.of(0xa7), r.subarray(1), Uint8Array.of(0x07, 0x00));
    expect(reasonOf(() => decodeLedgerRecord(seven))).toBe(Reason.schema);
  });

  it('checkLedgerEntry: what an appender checks before it appends, as an LmError with a reason code [LM-LEDGER-5]', () => {
    const { txA, txB, other, receipt } = ledgerFixture();
    expect(checkLedgerEntry(e).tx.hash).toEqual(txA.hash);
    expect(reasonOf(() => checkLedgerEntry({ ...e, receipt: receipt(txA, 'x', 1, other) }))).toBe(Reason.auth);
    expect(reasonOf(() => checkLedgerEntry({ ...e, tx: txB.bytes }))).toBe(Reason.digest);
    expect(reasonOf(() => checkLedgerEntry({ ...e, receipt: Uint8Array.of(0x80) }))).toBe(Reason.schema);
    expect(reasonOf(() => checkLedgerEntry({ ...e, tx: Uint8Array.of(0xff) }))).toBe(Reason.txSchema);
    const badSig = txA.bytes.slice();
    badSig[badSig.length - 1] = (badSig[badSig.length - 1] as number) ^ 1;
    expect(reasonOf(() => checkLedgerEntry({ ...e, tx: badSig }))).toBe(Reason.txSignature);
  });

  it('a seeded fuzz of mutated records: every failure is an LmError with a reason code ([LM-CBOR-6])', () => {
    const base = nextRecord(undefined, e).bytes;
    let x = 0x1234567;
    const next = () => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x;
    };
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const b = base.slice(0, i % 5 === 0 ? next() % (base.length + 1) : base.length);
      for (let k = 0, n = 1 + (next() % 3); k < n && b.length; k++) b[next() % b.length]! ^= 1 << (next() % 8);
      try {
        decodeLedgerRecord(b);
      } catch (err) {
        expect(err).toBeInstanceOf(LmError);
        expect(isReasonCode((err as LmError).code)).toBe(true);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(100);
  });
});

describe('verifyLedger and summarizeLedger [LM-LEDGER-6]', () => {
  it('reads an AsyncIterable as well as an array; an empty ledger is ok with the genesis head', async () => {
    const { valid } = ledgerCases();
    async function* gen() {
      for (const r of valid) yield r;
    }
    const v = await verifyLedger(gen());
    expect(v.ok).toBe(true);
    expect(v.count).toBe(3);
    expect(await verifyLedger([])).toEqual({ ok: true, count: 0, head: '0'.repeat(64), problems: [] });
  });

  it('summarises prints per job: how many, on which device, when, under which transaction', async () => {
    const { txA, txB, entry } = ledgerFixture();
    const s = await summarizeLedger(chain([entry(txA, 's1', 1000), entry(txB, 's2', 2000), entry(txA, 's3', 3000)]));
    expect(s.map((j) => [j.job, j.made, j.allowed])).toEqual([['calib_cube', 2, 2], ['bracket', 1, 1]]);
    const a = s[0]!;
    expect(a.jd).toBe(toHex(txA.body.jd));
    expect(a.prints.map((p) => [p.seq, p.device, p.time, p.txh, p.gateway, p.appended])).toEqual([
      [1, 'printer-01', 1000, toHex(txA.hash), 'gw-1', 1250],
      [3, 'printer-01', 3000, toHex(txA.hash), 'gw-1', 3250],
    ]);
    expect(a.prints[0]!.sid).toMatch(/^[0-9a-f]{32}$/);
  });

  it('every invalid case of the generator is one tamper from the valid chain (rebuilt, not read from the file)', async () => {
    const { valid, cases } = ledgerCases();
    expect((await verifyLedger(valid)).ok).toBe(true);
    for (const c of cases) {
      const v = await verifyLedger(c.records, c.trustedOperators ? { trustedOperators: c.trustedOperators } : {});
      expect(kinds(v.problems), c.comment).toEqual(c.problems);
    }
  });
});
