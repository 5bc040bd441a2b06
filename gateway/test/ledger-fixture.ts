/**
 * Real signed material for the licence database tests ([LM-LEDGER-5]): an operator, a device,
 * transactions from createTx and RECEIPT frames signed by the device, and one completed
 * session (opened, counted, its RECEIPT appended). No vitest here: the SIGKILL test's child
 * process (ledger-appender.ts) uses it too.
 */
import {
  FrameType, type IdentityKeyPair, type SignedTx, createTx, digest, encodeFrame, fromHex, identityKeyPair, randomBytes, toHex,
} from '@livematrix/spec';
import type { LicenceDb } from '../src/index.js';

export const DEVICE_ID = 'printer-1';

export interface LedgerFixture {
  operator: IdentityKeyPair;
  device: IdentityKeyPair;
  /** another device's key: a RECEIPT it signs must not verify */
  stranger: IdentityKeyPair;
  /** a transaction for DEVICE_ID allowing `prints` prints of a job of random bytes */
  tx(prints: number, job?: string): SignedTx;
  /** the RECEIPT of session `sid` of `tx`, signed by the device (or by `by`) */
  receipt(tx: SignedTx, sid: string, by?: IdentityKeyPair): Uint8Array;
  /** a new session of `tx`: opened, its print counted, its RECEIPT appended */
  complete(db: LicenceDb, tx: SignedTx, gateway?: string): Promise<{ sid: string; seq: number; hash: Uint8Array }>;
}

export function ledgerFixture(now: () => number = Date.now): LedgerFixture {
  const operator = identityKeyPair();
  const device = identityKeyPair();
  const stranger = identityKeyPair();
  const tx = (prints: number, job = 'part.gcode'): SignedTx => {
    const plaintext = randomBytes(64 + (randomBytes(1)[0] as number));
    return createTx({
      job, plaintext: { digest: digest(plaintext), size: plaintext.length }, device: DEVICE_ID, devicePublic: device.publicKey,
      operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: now() - 60_000, notAfter: now() + 3_600_000,
      rate: 1_000_000, burst: 1_000_000, prints,
    }).tx;
  };
  const receipt = (t: SignedTx, sid: string, by: IdentityKeyPair = device): Uint8Array => encodeFrame(FrameType.RECEIPT, {
    sid: fromHex(sid), jd: t.body.jd, bytes: t.body.size, digest: t.body.jd, time: now(), device: t.body.device, txh: t.hash,
  }, { kind: 'sig', secretKey: by.secretKey });
  const complete = async (db: LicenceDb, t: SignedTx, gateway = 'gw-1') => {
    const sid = toHex(randomBytes(16));
    await db.openSession({ sid, txh: toHex(t.hash), device: DEVICE_ID, time: now() });
    await db.countPrint(sid, t.body.prints, now());
    const r = await db.appendReceipt(sid, { receipt: receipt(t, sid), tx: t.bytes, time: now(), gateway });
    return { sid, ...r };
  };
  return { operator, device, stranger, tx, receipt, complete };
}
