import { describe, expect, it } from 'vitest';
import { LmError, Ratchet, Reason, deriveSessionKeys, ecdh, randomBytes, toHex, transcriptHash, x25519KeyPair } from '../src/index.js';

describe('key schedule (SPEC.md §4)', () => {
  it('both sides derive equal keys; directions and purposes differ [LM-KEY-2]', () => {
    const g = x25519KeyPair();
    const d = x25519KeyPair();
    const lic = randomBytes(32);
    const th = transcriptHash(randomBytes(100), randomBytes(80));
    const kg = deriveSessionKeys(ecdh(g.secretKey, d.publicKey), lic, th);
    const kd = deriveSessionKeys(ecdh(d.secretKey, g.publicKey), lic, th);
    expect(kg).toEqual(kd);
    expect(new Set(Object.values(kg).map(toHex)).size).toBe(4);
  });

  it('a different licence secret gives unrelated keys [LM-KEY-2]', () => {
    const g = x25519KeyPair();
    const d = x25519KeyPair();
    const th = randomBytes(32);
    const z = ecdh(g.secretKey, d.publicKey);
    expect(deriveSessionKeys(z, randomBytes(32), th).ckG2d).not.toEqual(deriveSessionKeys(z, randomBytes(32), th).ckG2d);
  });

  it('stepping and jumping give the same keys [LM-KEY-3]', () => {
    const ck = randomBytes(32);
    const a = new Ratchet(ck, 10);
    const b = new Ratchet(ck, 10);
    const stepped = [10, 11, 12, 13, 14, 15].map((r) => a.keysFor(r));
    expect(b.keysFor(15)).toEqual(stepped[5]);
    expect(new Set(stepped.map((k) => toHex(k.hk))).size).toBe(6);
  });

  it('erases chain keys: no way back, not before r0 [LM-KEY-4]', () => {
    const ck = randomBytes(32);
    const r = new Ratchet(ck, 100);
    r.keysFor(103);
    for (const back of [99, 100, 103]) {
      try {
        r.keysFor(back);
        expect.unreachable();
      } catch (e) {
        expect((e as LmError).code).toBe(Reason.revExpired);
      }
    }
    expect(r.keysFor(104).revision).toBe(104);
    r.destroy();
    expect(() => r.keysFor(105)).toThrow(LmError);
  });

  it('does not keep a reference to the caller\'s chain key', () => {
    const ck = randomBytes(32);
    const copy = ck.slice();
    const r = new Ratchet(ck, 0);
    r.keysFor(3);
    expect(ck).toEqual(copy); // the caller erases its own copy
  });
});
