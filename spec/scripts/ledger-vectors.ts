/**
 * Vectors of the receipt ledger (SPEC.md §11.6, `ledger.json`): a valid chain of three records
 * and invalid ledgers, each one tamper away from a ledger that verifies. Pure: the same bytes
 * every run (Ed25519 signatures are deterministic, the transactions use fixed randomness).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  type CborValue, type LedgerEntry, type LedgerProblemKind, FrameType, LEDGER_GENESIS, ascii, checkLedgerEntry, createTx, decodeCbor, encodeCbor, encodeFrame,
  identityKeyPair, ledgerHash, nextRecord, toHex, type IdentityKeyPair, type SignedTx,
} from '../src/index.js';
import { det, errorName, txFixture, type VectorFile, type VectorGroup, type VectorTest } from './vectors.js';

const T0 = 1_764_000_000_000;

/** Keys, two transactions (job A allows 2 prints, job B 1) and a RECEIPT maker. */
export function ledgerFixture() {
  const { operator, device } = txFixture();
  const other = identityKeyPair(det('other device identity'));
  const mk = (job: string, text: string, prints: number, n: string) => {
    const plaintext = ascii(text);
    return createTx({
      job, plaintext: { digest: sha256(plaintext), size: plaintext.length }, device: 'printer-01', devicePublic: device.publicKey,
      operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: T0, notAfter: T0 + 24 * 3600 * 1000,
      rate: 2000, burst: 65536, prints,
      fixed: { licence: det(`ledger licence ${n}`), ephemeral: det(`ledger ephemeral ${n}`), nonce: det(`ledger nonce ${n}`, 16) },
    }).tx;
  };
  const txA = mk('calib_cube', 'G28\nG1 X10 Y10 F3000\nM104 S215\n', 2, 'A');
  const txB = mk('bracket', 'G28\nG1 Z5 F600\nM140 S60\n', 1, 'B');
  /** The RECEIPT of session `s` of `tx`, signed by `by` (the transaction's device unless told). */
  const receipt = (tx: SignedTx, s: string, at: number, by: IdentityKeyPair = device): Uint8Array => encodeFrame(FrameType.RECEIPT, {
    sid: det(`ledger sid ${s}`, 16), jd: tx.body.jd, bytes: tx.body.size, digest: tx.body.jd, time: at, device: tx.body.device, txh: tx.hash,
  }, { kind: 'sig', secretKey: by.secretKey });
  const entry = (tx: SignedTx, s: string, at: number, by?: IdentityKeyPair): LedgerEntry => ({ time: at + 250, receipt: receipt(tx, s, at, by), tx: tx.bytes, gateway: 'gw-1' });
  return { operator, device, other, txA, txB, receipt, entry };
}

/** Chains entries from seq 1 ([LM-LEDGER-2]). */
export function chain(entries: readonly LedgerEntry[]): Uint8Array[] {
  let prev: { seq: number; hash: Uint8Array } | undefined;
  return entries.map((e) => {
    const r = nextRecord(prev, e);
    prev = r;
    return r.bytes;
  });
}

/** A record re-encoded with some fields changed (what a forger writes; the chain is not fixed). */
function rewrite(record: Uint8Array, change: Partial<Record<1 | 2 | 3 | 4 | 5 | 6, CborValue>>): Uint8Array {
  const m = new Map(decodeCbor(record) as Map<number, CborValue>);
  for (const [k, v] of Object.entries(change)) m.set(Number(k), v as CborValue);
  return encodeCbor(m);
}

/** A record with one key more (a map of seven fields is not a record, [LM-LEDGER-1]). */
function withKey(record: Uint8Array, k: number, v: CborValue): Uint8Array {
  return encodeCbor(new Map(decodeCbor(record) as Map<number, CborValue>).set(k, v));
}

/** Re-chains records after an edit so that only the edit itself is wrong (a forger who recomputes hashes). */
function rechain(records: readonly Uint8Array[]): Uint8Array[] {
  let prev = LEDGER_GENESIS;
  return records.map((r) => {
    const out = rewrite(r, { 2: prev });
    prev = ledgerHash(out);
    return out;
  });
}

export interface LedgerCase {
  comment: string;
  flags: string[];
  requirements: string[];
  /** the valid chain with one tamper */
  records: Uint8Array[];
  trustedOperators?: Uint8Array[];
  /** what verifyLedger must report, in order */
  problems: { seq: number; kind: LedgerProblemKind }[];
}

/** The valid chain and the invalid cases, each the valid chain (or its context) with one thing changed. */
export function ledgerCases(): { valid: Uint8Array[]; cases: LedgerCase[] } {
  const { other, txA, txB, entry, receipt } = ledgerFixture();
  const e1 = entry(txA, '1', T0 + 60_000);
  const e2 = entry(txB, '2', T0 + 120_000);
  const e3 = entry(txA, '3', T0 + 180_000);
  const valid = chain([e1, e2, e3]);
  const [r1, r2, r3] = valid as [Uint8Array, Uint8Array, Uint8Array];
  const flipIn = (b: Uint8Array, at: number) => {
    const c = b.slice();
    c[at] = (c[at] as number) ^ 1;
    return c;
  };
  // a byte of the RECEIPT's sid (offset 6: after the array, version, type, map and key heads),
  // which nothing but the device's signature covers
  const flippedReceipt = flipIn(e2.receipt, 10);
  const flippedRecord = flipIn(r2, Buffer.from(r2).indexOf(Buffer.from(e2.receipt)) + 10);
  const fourth = chain([e1, e2, e3, entry(txB, '4', T0 + 240_000)]);
  const cases: LedgerCase[] = [
    {
      comment: 'a byte of a RECEIPT changed, chain recomputed: only the device signature catches it', flags: ['TamperedReceipt'], requirements: ['LM-LEDGER-5'],
      records: rechain([r1, rewrite(r2, { 4: flippedReceipt }), r3]), problems: [{ seq: 2, kind: 'receipt' }],
    },
    {
      comment: 'a byte of a stored record changed in place: the next record\'s prev no longer matches', flags: ['TamperedRecord'], requirements: ['LM-LEDGER-2', 'LM-LEDGER-5'],
      records: [r1, flippedRecord, r3], problems: [{ seq: 2, kind: 'receipt' }, { seq: 3, kind: 'chain' }],
    },
    {
      comment: 'prev of record 2 is not the hash of record 1', flags: ['BrokenChain'], requirements: ['LM-LEDGER-2'],
      records: [r1, rewrite(r2, { 2: det('not a hash') }), r3], problems: [{ seq: 2, kind: 'chain' }, { seq: 3, kind: 'chain' }],
    },
    {
      comment: 'prev of the first record is not 32 zero bytes', flags: ['BrokenChain'], requirements: ['LM-LEDGER-2'],
      records: [rewrite(r1, { 2: det('not a hash') }), r2, r3], problems: [{ seq: 1, kind: 'chain' }, { seq: 2, kind: 'chain' }],
    },
    {
      comment: 'record 2 left out, chain recomputed: seq jumps from 1 to 3', flags: ['SeqGap'], requirements: ['LM-LEDGER-2'],
      records: rechain([r1, r3]), problems: [{ seq: 3, kind: 'seq' }],
    },
    {
      comment: 'a record holds the RECEIPT of job A with transaction B', flags: ['OtherTransaction'], requirements: ['LM-LEDGER-5'],
      records: chain([e1, { ...e2, receipt: receipt(txA, '2', T0 + 120_000) }, e3]),
      problems: [{ seq: 2, kind: 'mismatch' }, { seq: 2, kind: 'mismatch' }, { seq: 2, kind: 'mismatch' }, { seq: 2, kind: 'mismatch' }],
    },
    {
      // the verifier's count ([LM-LEDGER-6]), not a gateway's ([LM-TX-7]), which a ledger cannot show
      comment: 'a second print of transaction B, which allows one', flags: ['OverPrint'], requirements: ['LM-LEDGER-6'],
      records: fourth, problems: [{ seq: 4, kind: 'count' }],
    },
    {
      // the verifier finds the second record ([LM-LEDGER-6]); that a gateway appends one ([LM-LEDGER-4]) only a running gateway shows
      comment: 'the RECEIPT of session 1 recorded twice', flags: ['DuplicateSession'], requirements: ['LM-LEDGER-6'],
      records: chain([e1, e2, e1]), problems: [{ seq: 3, kind: 'session' }],
    },
    {
      comment: 'a RECEIPT signed by another device\'s key', flags: ['TamperedReceipt'], requirements: ['LM-LEDGER-5'],
      records: chain([e1, entry(txB, '2', T0 + 120_000, other), e3]), problems: [{ seq: 2, kind: 'receipt' }],
    },
    {
      comment: 'the operator is not among the trusted keys', flags: ['Untrusted'], requirements: ['LM-LEDGER-5', 'LM-TX-3'],
      records: valid, trustedOperators: [other.publicKey], problems: [{ seq: 1, kind: 'operator' }, { seq: 2, kind: 'operator' }, { seq: 3, kind: 'operator' }],
    },
    {
      comment: 'the last record cut short', flags: ['Malformed'], requirements: ['LM-LEDGER-1'],
      records: [r1, r2, r3.slice(0, r3.length - 1)], problems: [{ seq: 3, kind: 'record' }],
    },
    {
      comment: 'record 2 with a seventh key (7: 0), chain recomputed', flags: ['Malformed'], requirements: ['LM-LEDGER-1'],
      records: rechain([r1, withKey(r2, 7, 0), r3]), problems: [{ seq: 2, kind: 'record' }],
    },
    {
      comment: 'record 2 with gateway "gw 1" (a space is not of [A-Za-z0-9._-]), chain recomputed', flags: ['Malformed'], requirements: ['LM-LEDGER-1'],
      records: rechain([r1, rewrite(r2, { 6: 'gw 1' }), r3]), problems: [{ seq: 2, kind: 'record' }],
    },
    {
      comment: 'record 2 with time as a text string, chain recomputed', flags: ['Malformed'], requirements: ['LM-LEDGER-1'],
      records: rechain([r1, rewrite(r2, { 3: String(T0) }), r3]), problems: [{ seq: 2, kind: 'record' }],
    },
  ];
  return { valid, cases };
}

/** ledger.json. `file` numbers the tests. */
export function ledgerVectors(file: (algorithm: string, notes: Record<string, string>, groups: { [k: string]: unknown; tests: VectorTest[] }[]) => VectorFile): VectorFile {
  const { operator } = ledgerFixture();
  const { valid, cases } = ledgerCases();
  let head = LEDGER_GENESIS;
  for (const r of valid) head = ledgerHash(r);
  const tests: VectorTest[] = [{
    tcId: 0, comment: 'three records: job A, job B, job A again (A allows 2 prints, B 1)', result: 'valid', flags: [],
    // the head a verifier prints ([LM-LEDGER-7])
    requirements: ['LM-LEDGER-1', 'LM-LEDGER-2', 'LM-LEDGER-5', 'LM-LEDGER-6', 'LM-LEDGER-7'],
    records: valid.map(toHex), hashes: valid.map((r) => toHex(ledgerHash(r))), head: toHex(head), trustedOperators: [toHex(operator.publicKey)],
  }];
  for (const c of cases) {
    tests.push({
      tcId: 0, comment: c.comment, result: 'invalid', flags: c.flags, requirements: c.requirements, records: c.records.map(toHex),
      trustedOperators: (c.trustedOperators ?? [operator.publicKey]).map(toHex), problems: c.problems, error: (c.problems[0] as { kind: string }).kind,
    });
  }
  const f = file('LIVEMATRIX-LEDGER', {
    TamperedReceipt: 'a RECEIPT whose device signature does not verify', TamperedRecord: 'a stored record changed in place', BrokenChain: 'prev is not the hash of the record before',
    SeqGap: 'seq does not run 1, 2, 3, ...', OtherTransaction: 'a RECEIPT that is not of the record\'s transaction', OverPrint: 'more records of one transaction than its prints',
    DuplicateSession: 'two records of one session', Untrusted: 'a transaction signed by an operator key the verifier does not trust', Malformed: 'a record that does not decode',
    problems: 'what verifyLedger reports, in order: the record\'s seq and the kind of problem; error is the first kind',
    twin: 'an invalid test\'s twin is the valid chain it differs from in one thing: a record, a record more or less, or the trusted keys',
  }, [{ type: 'LedgerTest', hash: 'SHA-256(ascii("livematrix/1 ledger") || 0x00 || record)', operatorPublic: toHex(operator.publicKey), tests }]);
  const [validTest, ...invalid] = tests as [VectorTest, ...VectorTest[]];
  for (const t of invalid) t['twin'] = validTest.tcId;
  return f;
}

/**
 * ledger-append.json: what an appender writes ([LM-LEDGER-1], [LM-LEDGER-2]) and refuses to write
 * ([LM-LEDGER-5]): the records of the valid chain of ledger.json from their fields and the record
 * before, and entries whose RECEIPT or transaction fails the checks, with the reason code. A file
 * of its own: ledger.json's tests are whole ledgers.
 */
export function ledgerAppendVectors(file: (algorithm: string, notes: Record<string, string>, groups: VectorGroup[]) => VectorFile): VectorFile {
  const { other, txA, txB, entry, receipt } = ledgerFixture();
  const entries = [entry(txA, '1', T0 + 60_000), entry(txB, '2', T0 + 120_000), entry(txA, '3', T0 + 180_000)];
  const fields = (e: LedgerEntry) => ({ time: e.time, receipt: toHex(e.receipt), tx: toHex(e.tx), gateway: e.gateway });
  const tests: VectorTest[] = [];
  let prev: { seq: number; hash: Uint8Array } | undefined;
  for (const [i, e] of entries.entries()) {
    checkLedgerEntry(e);
    const r = nextRecord(prev, e);
    tests.push({
      tcId: 0, comment: `record ${i + 1} of ledger.json's valid chain${prev ? '' : ': the first, prev 32 zero bytes'}`, result: 'valid', flags: prev ? [] : ['First'],
      requirements: ['LM-LEDGER-1', 'LM-LEDGER-2', 'LM-LEDGER-5'], ...(prev ? { after: { seq: prev.seq, hash: toHex(prev.hash) } } : {}), ...fields(e),
      record: toHex(r.bytes), hash: toHex(r.hash),
    });
    prev = r;
  }
  const first = nextRecord(undefined, entries[0] as LedgerEntry);
  const after = { seq: first.seq, hash: toHex(first.hash) };
  /** what an appender does: check the entry ([LM-LEDGER-5]), then encode the record ([LM-LEDGER-1]) */
  const append = (e: LedgerEntry) => {
    checkLedgerEntry(e);
    return nextRecord(first, e);
  };
  const refuse = (comment: string, flags: string[], requirements: string[], e: LedgerEntry) => {
    tests.push({ tcId: 0, comment, result: 'invalid', flags, requirements, after, ...fields(e), error: errorName(() => append(e)) });
  };
  const e2 = entries[1] as LedgerEntry;
  const flipped = e2.receipt.slice();
  flipped[10] = (flipped[10] as number) ^ 1;
  refuse('a RECEIPT with one byte of its sid changed: its signature does not verify', ['TamperedReceipt'], ['LM-LEDGER-5'], { ...e2, receipt: flipped });
  refuse('a RECEIPT signed by another device\'s key', ['TamperedReceipt'], ['LM-LEDGER-5'], { ...e2, receipt: receipt(txB, '2', T0 + 120_000, other) });
  refuse('the RECEIPT of transaction A with transaction B', ['OtherTransaction'], ['LM-LEDGER-5'], { ...e2, receipt: receipt(txA, '2', T0 + 120_000) });
  const badTx = txB.bytes.slice();
  badTx[badTx.length - 1] = (badTx[badTx.length - 1] as number) ^ 1;
  refuse('a transaction whose operator signature does not verify', ['BadSignature'], ['LM-LEDGER-5'], { ...e2, tx: badTx });
  refuse('gateway id "gw 1": not of [A-Za-z0-9._-]', ['Malformed'], ['LM-LEDGER-1'], { ...e2, gateway: 'gw 1' });
  return file('LIVEMATRIX-LEDGER-APPEND', {
    First: 'the first record of a ledger: no record before it',
    TamperedReceipt: 'a RECEIPT whose device signature does not verify', OtherTransaction: 'a RECEIPT that is not of the entry\'s transaction',
    BadSignature: 'a transaction whose operator signature does not verify', Malformed: 'a field outside its range',
    after: 'seq and hash of the record the new one follows (absent for the first record)',
    error: 'the reason code the appender refuses the entry with (SPEC.md §7.6)',
  }, [{ type: 'LedgerAppendTest', hash: 'SHA-256(ascii("livematrix/1 ledger") || 0x00 || record)', tests }]);
}
