/**
 * @module ledger
 * The receipt ledger of SPEC.md §11.6: a hash chain of records, one per RECEIPT a gateway
 * verified, each holding the device's signed RECEIPT and the operator's signed transaction, so
 * that anyone holding the ledger can count the prints made under every transaction offline
 * ([LM-LEDGER-1]..[LM-LEDGER-6]). Decoding throws only {@link LmError}; verification collects
 * every problem with its record's seq instead of stopping at the first.
 *
 * @example
 * const a = nextRecord(undefined, { time, receipt, tx, gateway: 'gw-1' });
 * const b = nextRecord(a, { time, receipt: receipt2, tx, gateway: 'gw-1' });
 * (await verifyLedger([a.bytes, b.bytes])).ok // true
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { ascii, concatBytes, equalBytes, toHex } from './bytes.js';
import { type CborValue, LIMITS, decodeCbor, encodeCbor } from './cbor.js';
import { LmError, Reason, type ReasonCode, errorMessage } from './errors.js';
import { ID_RE, type ReceiptBody } from './frame-schemas.js';
import { FrameType, MAX_FRAME, decodeFrame, verifyFrame } from './frames.js';
import { verify } from './identity.js';
import { type SignedTx, decodeTx, txSigningInput } from './tx.js';

/** `prev` of the first record: 32 zero bytes ([LM-LEDGER-2]). (A copy: the code here uses its own.) */
export const LEDGER_GENESIS: Uint8Array = new Uint8Array(32);
const GENESIS = new Uint8Array(32);
/** Largest encoded record ([LM-LEDGER-1]): the CBOR profile's input limit. */
export const LEDGER_MAX_RECORD = LIMITS.maxInput;
/** Largest transaction a record holds, as in OFFER (SPEC §7.2). */
const TX_MAX = 4096;

const HASH_PREFIX = concatBytes(ascii('livematrix/1 ledger'), Uint8Array.of(0));

/** What an appender supplies for one record ([LM-LEDGER-4]). */
export interface LedgerEntry {
  /** ms since the Unix epoch, on the appender's clock */
  time: number;
  /** the RECEIPT frame exactly as the gateway received it, signed by the device */
  receipt: Uint8Array;
  /** the signed transaction's bytes */
  tx: Uint8Array;
  /** id of the gateway that appends the record (1-64 of [A-Za-z0-9._-]) */
  gateway: string;
}

/** The fields of one record ([LM-LEDGER-1]). */
export interface LedgerRecordFields extends LedgerEntry {
  /** 1, 2, 3, ... */
  seq: number;
  /** hash of the previous record; {@link LEDGER_GENESIS} (32 zero bytes) for seq 1 */
  prev: Uint8Array;
}

/** A decoded record with its bytes and hash. */
export interface LedgerRecord extends LedgerRecordFields {
  bytes: Uint8Array;
  hash: Uint8Array;
}

const schemaErr = (msg: string): never => {
  throw new LmError(Reason.schema, `ledger record: ${msg} ([LM-LEDGER-1])`);
};

function checkFields(r: LedgerRecordFields): void {
  if (!Number.isSafeInteger(r.seq) || r.seq < 1) schemaErr(`seq ${String(r.seq)} is not an integer of at least 1`);
  if (!(r.prev instanceof Uint8Array) || r.prev.length !== 32) schemaErr('prev is not 32 bytes');
  if (!Number.isSafeInteger(r.time) || r.time < 0) schemaErr(`time ${String(r.time)} is not an unsigned integer`);
  if (!(r.receipt instanceof Uint8Array) || r.receipt.length === 0 || r.receipt.length > MAX_FRAME) schemaErr('receipt is not a byte string of 1..65536 bytes');
  if (!(r.tx instanceof Uint8Array) || r.tx.length === 0 || r.tx.length > TX_MAX) schemaErr(`tx is not a byte string of 1..${TX_MAX} bytes`);
  if (typeof r.gateway !== 'string' || !ID_RE.test(r.gateway)) schemaErr('gateway is not 1-64 of [A-Za-z0-9._-]');
}

/**
 * The deterministic encoding of a record ([LM-LEDGER-1]). Throws LmError `schema` on a field
 * out of range, `too-large` on a record beyond {@link LEDGER_MAX_RECORD}.
 */
export function encodeLedgerRecord(r: LedgerRecordFields): Uint8Array {
  checkFields(r);
  const bytes = encodeCbor(new Map<number, CborValue>([[1, r.seq], [2, r.prev], [3, r.time], [4, r.receipt], [5, r.tx], [6, r.gateway]]));
  if (bytes.length > LEDGER_MAX_RECORD) throw new LmError(Reason.tooLarge, `ledger record of ${bytes.length} bytes exceeds ${LEDGER_MAX_RECORD} ([LM-LEDGER-1])`);
  return bytes;
}

/** The record hash: SHA-256(ascii("livematrix/1 ledger") ‖ 0x00 ‖ record) ([LM-LEDGER-2]). */
export function ledgerHash(bytes: Uint8Array): Uint8Array {
  return sha256(concatBytes(HASH_PREFIX, bytes));
}

function field<T extends CborValue>(m: ReadonlyMap<number | string, CborValue>, k: number, name: string, ok: (v: CborValue) => v is T): T {
  const v = m.get(k);
  if (v === undefined || !ok(v)) return schemaErr(`field ${k} (${name}) missing or of the wrong type`);
  return v;
}
const isUint = (v: CborValue): v is number => typeof v === 'number' && v >= 0;
const isBytes = (v: CborValue): v is Uint8Array => v instanceof Uint8Array;
const isText = (v: CborValue): v is string => typeof v === 'string';

/**
 * Decodes one record under the CBOR profile and [LM-LEDGER-1] (structure only: the chain and
 * the signatures are {@link verifyLedger}'s). Throws only {@link LmError}.
 */
export function decodeLedgerRecord(bytes: Uint8Array): LedgerRecord {
  try {
    const v = decodeCbor(bytes, LEDGER_MAX_RECORD);
    if (!(v instanceof Map)) return schemaErr('not a map');
    for (const k of v.keys()) if (typeof k !== 'number' || k < 1 || k > 6) schemaErr(`unexpected key ${String(k)}`);
    const r: LedgerRecordFields = {
      seq: field(v, 1, 'seq', isUint),
      prev: field(v, 2, 'prev', isBytes),
      time: field(v, 3, 'time', isUint),
      receipt: field(v, 4, 'receipt', isBytes),
      tx: field(v, 5, 'tx', isBytes),
      gateway: field(v, 6, 'gateway', isText),
    };
    checkFields(r);
    return { ...r, bytes: bytes.slice(), hash: ledgerHash(bytes) };
  } catch (e) {
    if (e instanceof LmError) throw e;
    throw new LmError(Reason.internal, `ledger decoder fault: ${errorMessage(e)}`);
  }
}

/**
 * The record that follows `prev` (undefined: the first record of a ledger), encoded, with its
 * hash ([LM-LEDGER-2]).
 *
 * @example
 * let head = await db.head(); const r = nextRecord(head, entry); await db.insert(r.seq, r.bytes); head = r;
 */
export function nextRecord(prev: { seq: number; hash: Uint8Array } | undefined, entry: LedgerEntry): { seq: number; prev: Uint8Array; bytes: Uint8Array; hash: Uint8Array } {
  const seq = prev ? prev.seq + 1 : 1;
  const prevHash = prev ? prev.hash : new Uint8Array(32);
  const bytes = encodeLedgerRecord({ seq, prev: prevHash, time: entry.time, receipt: entry.receipt, tx: entry.tx, gateway: entry.gateway });
  return { seq, prev: prevHash, bytes, hash: ledgerHash(bytes) };
}

// ---- verification ----------------------------------------------------------------------------

/**
 * What kind of problem {@link verifyLedger} found: `record` (does not decode), `seq` (not the
 * next number), `chain` (prev is not the hash of the record before), `transaction` (does not
 * decode or its operator signature fails), `operator` (opk not trusted), `receipt` (does not
 * decode, is not a RECEIPT, or its signature fails), `mismatch` (the RECEIPT is not of the
 * record's transaction and job), `count` (a print beyond the transaction's `prints`),
 * `session` (a second record of one session).
 */
export type LedgerProblemKind = 'record' | 'seq' | 'chain' | 'transaction' | 'operator' | 'receipt' | 'mismatch' | 'count' | 'session';

/** One finding of {@link verifyLedger}: the record's seq, the kind and what is wrong. */
export interface LedgerProblem {
  seq: number;
  kind: LedgerProblemKind;
  detail: string;
}

/** Result of {@link verifyLedger}. */
export interface LedgerVerdict {
  ok: boolean;
  /** records read */
  count: number;
  /** hash of the last record, hex (64 zeros for an empty ledger) */
  head: string;
  problems: LedgerProblem[];
}

export interface VerifyLedgerOptions {
  /** operator keys to trust; when given, a transaction signed by another key is a problem ([LM-TX-3]) */
  trustedOperators?: readonly Uint8Array[];
}

/** The transaction and the receipt of a record, with what is wrong with them ([LM-LEDGER-5]). */
interface Opened {
  tx?: SignedTx;
  receipt?: ReceiptBody;
  /** with the reason code an appender refuses the entry with */
  problems: (Omit<LedgerProblem, 'seq'> & { code: ReasonCode })[];
}

/** The reason code of each kind of problem, for an appender that refuses an entry. */
const CODES: Readonly<Record<LedgerProblemKind, ReasonCode>> = {
  record: Reason.schema, seq: Reason.schema, chain: Reason.schema, transaction: Reason.txSignature, operator: Reason.txOperator,
  receipt: Reason.auth, mismatch: Reason.digest, count: Reason.txCount, session: Reason.replay,
};

function openEntry(r: LedgerRecordFields, trusted: readonly Uint8Array[] | undefined): Opened {
  const problems: Opened['problems'] = [];
  const add = (kind: LedgerProblemKind, detail: string, code: ReasonCode = CODES[kind]): void => void problems.push({ kind, detail, code });
  let tx: SignedTx;
  try {
    tx = decodeTx(r.tx);
  } catch (e) {
    return { problems: [{ kind: 'transaction', detail: `transaction does not decode: ${errorMessage(e)} ([LM-LEDGER-5])`, code: Reason.txSchema }] };
  }
  const b = tx.body;
  if (!verify(b.opk, txSigningInput(b), tx.sig)) add('transaction', 'transaction signature does not verify under its opk ([LM-TX-2], [LM-LEDGER-5])');
  if (trusted && !trusted.some((k) => equalBytes(k, b.opk))) add('operator', `transaction is signed by operator key ${toHex(b.opk)}, which is not trusted ([LM-TX-3], [LM-LEDGER-5])`);
  let receipt: ReceiptBody | undefined;
  try {
    const f = decodeFrame(r.receipt);
    if (f.type !== FrameType.RECEIPT) {
      add('receipt', `receipt is a frame of type ${f.type}, not RECEIPT ([LM-LEDGER-5])`);
    } else {
      receipt = f.body;
      try {
        verifyFrame(f, { signer: b.dpk });
      } catch {
        add('receipt', `RECEIPT signature does not verify under the transaction's device key (dpk) ([LM-DLV-7], [LM-LEDGER-5])`);
      }
    }
  } catch (e) {
    add('receipt', `receipt does not decode: ${errorMessage(e)} ([LM-LEDGER-5])`, e instanceof LmError ? e.code : Reason.malformed);
  }
  if (receipt) {
    if (!equalBytes(receipt.txh, tx.hash)) add('mismatch', `RECEIPT txh ${toHex(receipt.txh)} is not SHA-256 of the record's transaction ${toHex(tx.hash)} ([LM-LEDGER-5])`);
    if (!equalBytes(receipt.jd, b.jd)) add('mismatch', 'RECEIPT jd differs from the transaction\'s jd ([LM-LEDGER-5])');
    if (!equalBytes(receipt.digest, b.jd)) add('mismatch', 'RECEIPT digest differs from the transaction\'s jd: the consumer did not take the job ([LM-LEDGER-5])');
    if (receipt.device !== b.device) add('mismatch', `RECEIPT is from device "${receipt.device}", the transaction names "${b.device}" ([LM-LEDGER-5])`);
    if (receipt.bytes !== b.size) add('mismatch', `RECEIPT counts ${receipt.bytes} bytes, the transaction's job has ${b.size} ([LM-LEDGER-5])`);
  }
  return receipt ? { tx, receipt, problems } : { tx, problems };
}

/**
 * Checks what an appender is about to record ([LM-LEDGER-5]): the RECEIPT verifies under the
 * transaction's device key and matches the transaction, whose operator signature verifies.
 * Returns the decoded transaction and RECEIPT; throws the first problem as an {@link LmError}
 * (`auth` for a RECEIPT signature, `digest` for a mismatch, `tx-signature` or `tx-schema` for the
 * transaction, the decoder's code for a RECEIPT that does not decode).
 *
 * @example
 * const { receipt } = checkLedgerEntry(entry); if (toHex(receipt.sid) !== sid) ...
 */
export function checkLedgerEntry(entry: Pick<LedgerEntry, 'receipt' | 'tx'>): { tx: SignedTx; receipt: ReceiptBody } {
  const o = openEntry({ seq: 1, prev: GENESIS, time: 0, gateway: 'check', receipt: entry.receipt, tx: entry.tx }, undefined);
  const first = o.problems[0];
  if (first) throw new LmError(first.code, first.detail);
  if (!o.tx || !o.receipt) throw new LmError(Reason.internal, 'ledger entry: no transaction or RECEIPT after the checks');
  return { tx: o.tx, receipt: o.receipt };
}

/**
 * Verifies a ledger offline ([LM-LEDGER-6]): every record decodes, seq runs 1, 2, 3, ..., each
 * `prev` is the hash of the record before, each RECEIPT verifies under its transaction's device
 * key and matches the transaction, each transaction's operator signature verifies (and its key
 * is trusted, when `trustedOperators` is given), no transaction has more records than its
 * `prints`, and no session has two. Collects every problem; `ok` when there is none.
 *
 * @example
 * const v = await verifyLedger(db.ledger(), { trustedOperators: [opk] });
 * for (const p of v.problems) console.log(`seq ${p.seq}: ${p.detail}`);
 */
export async function verifyLedger(records: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, opts: VerifyLedgerOptions = {}): Promise<LedgerVerdict> {
  const problems: LedgerProblem[] = [];
  const used = new Map<string, number>();
  const sids = new Map<string, number>();
  let prevHash: Uint8Array = GENESIS;
  let expected = 1;
  let count = 0;
  for await (const bytes of records) {
    count++;
    const hash = bytes instanceof Uint8Array ? ledgerHash(bytes) : GENESIS;
    let r: LedgerRecord;
    try {
      r = decodeLedgerRecord(bytes);
    } catch (e) {
      problems.push({ seq: expected, kind: 'record', detail: `record does not decode: ${errorMessage(e)} ([LM-LEDGER-1])` });
      prevHash = hash;
      expected++;
      continue;
    }
    const seq = r.seq;
    if (seq !== expected) problems.push({ seq, kind: 'seq', detail: `seq ${seq} follows seq ${expected - 1}: records are missing, repeated or out of order ([LM-LEDGER-2])` });
    if (!equalBytes(r.prev, prevHash)) {
      problems.push({ seq, kind: 'chain', detail: expected === 1 ? 'prev of the first record is not 32 zero bytes ([LM-LEDGER-2])' : `prev ${toHex(r.prev)} is not the hash ${toHex(prevHash)} of the record before: the chain is broken ([LM-LEDGER-2])` });
    }
    const o = openEntry(r, opts.trustedOperators);
    for (const p of o.problems) problems.push({ seq, kind: p.kind, detail: p.detail });
    if (o.tx) {
      const txh = toHex(o.tx.hash);
      const n = (used.get(txh) ?? 0) + 1;
      used.set(txh, n);
      if (n > o.tx.body.prints) problems.push({ seq, kind: 'count', detail: `print ${n} of transaction ${txh}, which allows ${o.tx.body.prints} ([LM-TX-7], [LM-LEDGER-6])` });
    }
    if (o.receipt) {
      const sid = toHex(o.receipt.sid);
      const first = sids.get(sid);
      if (first !== undefined) problems.push({ seq, kind: 'session', detail: `session ${sid} already has a record (seq ${first}) ([LM-LEDGER-4])` });
      else sids.set(sid, seq);
    }
    prevHash = hash;
    expected = seq + 1;
  }
  return { ok: problems.length === 0, count, head: toHex(prevHash), problems };
}

// ---- summary ---------------------------------------------------------------------------------

/** One print of a job as the ledger records it. */
export interface LedgerPrint {
  seq: number;
  device: string;
  /** the RECEIPT's time: when the device completed the job, on its clock (ms since the epoch) */
  time: number;
  /** session id, hex */
  sid: string;
  /** transaction hash, hex */
  txh: string;
  /** the gateway that appended the record */
  gateway: string;
  /** the record's time: when the gateway appended it, on its clock */
  appended: number;
}

/** The prints of one job (by its digest `jd`) in a ledger. */
export interface LedgerJobSummary {
  /** job digest, hex */
  jd: string;
  /** the job's name in its (first) transaction */
  job: string;
  /** prints made */
  made: number;
  /** prints the job's transactions allow together */
  allowed: number;
  prints: LedgerPrint[];
}

/**
 * Per job: how many prints were made, on which devices, when ([LM-LEDGER-6]). Records that do
 * not decode are left out (verifyLedger reports them); jobs in the order of their first record.
 */
export async function summarizeLedger(records: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<LedgerJobSummary[]> {
  const jobs = new Map<string, LedgerJobSummary>();
  const txs = new Set<string>();
  for await (const bytes of records) {
    let r: LedgerRecord;
    try {
      r = decodeLedgerRecord(bytes);
    } catch {
      continue;
    }
    const o = openEntry(r, undefined);
    if (!o.tx || !o.receipt) continue;
    const jd = toHex(o.tx.body.jd);
    const txh = toHex(o.tx.hash);
    let j = jobs.get(jd);
    if (!j) {
      j = { jd, job: o.tx.body.job, made: 0, allowed: 0, prints: [] };
      jobs.set(jd, j);
    }
    if (!txs.has(txh)) {
      txs.add(txh);
      j.allowed += o.tx.body.prints;
    }
    j.made++;
    j.prints.push({ seq: r.seq, device: o.receipt.device, time: o.receipt.time, sid: toHex(o.receipt.sid), txh, gateway: r.gateway, appended: r.time });
  }
  return [...jobs.values()];
}
