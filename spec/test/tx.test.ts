import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { LmError, Reason, createTx, decodeTx, identityKeyPair, openLicence, randomBytes, verifyTx, type TxRequest } from '../src/index.js';
import { reasonOf } from './helpers.js';

const op = identityKeyPair();
const dev = identityKeyPair();
const gw = identityKeyPair();
const now = Date.now();
const base = (over: Partial<TxRequest> = {}): TxRequest => ({
  job: 'cube', plaintext: { digest: sha256(Uint8Array.of(1, 2, 3)), size: 3 }, device: 'dev-1', devicePublic: dev.publicKey,
  operatorSecret: op.secretKey, operatorPublic: op.publicKey, notBefore: now - 1000, notAfter: now + 3600_000, rate: 1000, burst: 4096, gatewayPublic: gw.publicKey, ...over,
});
const ctx = { now, trustedOperators: [op.publicKey], device: { id: 'dev-1', publicKey: dev.publicKey }, gatewayPublic: gw.publicKey, printsUsed: 0 };
const code = reasonOf;

describe('signed streaming transactions (SPEC.md §11)', () => {
  it('a valid transaction verifies and only its device opens the licence [LM-TX-1] [LM-TX-2]', () => {
    const { tx, licence } = createTx(base());
    const v = verifyTx(tx.bytes, ctx);
    expect(v.hash).toEqual(tx.hash);
    expect(openLicence(v.body.lic, dev.secretKey, dev.publicKey, v.body.jd)).toEqual(licence);
    const other = identityKeyPair();
    expect(code(() => openLicence(v.body.lic, other.secretKey, dev.publicKey, v.body.jd))).toBe(Reason.txSchema);
    // bound to the job digest too
    expect(code(() => openLicence(v.body.lic, dev.secretKey, dev.publicKey, randomBytes(32)))).toBe(Reason.txSchema);
  });

  it('every byte of a signed transaction matters [LM-TX-2]', () => {
    const { tx } = createTx(base());
    for (let i = 0; i < tx.bytes.length; i += 7) {
      const b = tx.bytes.slice();
      b[i] = (b[i] as number) ^ 0x01;
      const c = code(() => verifyTx(b, ctx));
      expect(c, `byte ${i}`).not.toBe(0);
      expect([Reason.txSignature, Reason.txSchema, Reason.txDevice, Reason.txOperator, Reason.txExpired]).toContain(c);
    }
  });

  it('refuses validity windows over 30 days [LM-TX-4]', () => {
    const { tx } = createTx(base({ notAfter: now + 31 * 24 * 3600_000 }));
    expect(code(() => verifyTx(tx.bytes, ctx))).toBe(Reason.txExpired);
  });

  it('a gateway without device context still checks signature, trust, time and count [LM-TX-7]', () => {
    const { tx } = createTx(base({ prints: 2 }));
    expect(verifyTx(tx.bytes, { now, trustedOperators: [op.publicKey], printsUsed: 1 }).body.prints).toBe(2);
    expect(code(() => verifyTx(tx.bytes, { now, trustedOperators: [op.publicKey], printsUsed: 2 }))).toBe(Reason.txCount);
  });

  it('decodeTx never throws anything but LmError', () => {
    for (let i = 0; i < 2000; i++) {
      const b = randomBytes(1 + (i % 300));
      try {
        decodeTx(b);
      } catch (e) {
        expect(e).toBeInstanceOf(LmError);
      }
    }
  });
});
