/**
 * @module fleet/ledger-view
 * The receipt ledger as the fleet service shows it ([LM-LEDGER-1]): its newest records, and the
 * record of a transaction, which tells a job that has already SUCCEEDED from one refused because
 * its prints are used up (a service that stopped between the receipt and its own write).
 */
import { checkLedgerEntry, decodeLedgerRecord, digest, equalBytes, fromHex, toHex } from '@livematrix/spec';
import type { LicenceDb } from '../db/types.js';
import type { LedgerView } from './api.js';

function view(bytes: Uint8Array): LedgerView & { txh: Uint8Array } {
  const r = decodeLedgerRecord(bytes);
  const { tx, receipt } = checkLedgerEntry(r);
  return { seq: r.seq, hash: toHex(r.hash).slice(0, 16), device: tx.body.device, job: tx.body.job, bytes: receipt.bytes, time: r.time, txh: digest(r.tx) };
}

/** The newest `limit` records, newest first. */
export async function recentLedger(db: LicenceDb, limit = 50): Promise<LedgerView[]> {
  const out: LedgerView[] = [];
  for await (const b of db.ledger()) {
    const { txh: _txh, ...v } = view(b);
    out.push(v);
    if (out.length > limit) out.shift();
  }
  return out.reverse();
}

/** The ledger record of the transaction `txh` (hex), if its receipt is there. */
export async function ledgerRecordOf(db: LicenceDb, txh: string): Promise<LedgerView | undefined> {
  const want = fromHex(txh);
  let found: LedgerView | undefined;
  for await (const b of db.ledger()) {
    const { txh: h, ...v } = view(b);
    if (equalBytes(h, want)) found = v;
  }
  return found;
}
