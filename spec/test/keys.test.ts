import { describe, expect, it } from 'vitest';
import { LmError, Ratchet, Reason, TELEMETRY_MAX, deriveSessionKeys, ecdh, openTelemetry, randomBytes, sealTelemetry, toHex, transcriptHash, x25519KeyPair } from '../src/index.js';

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

describe('telemetry size (SPEC.md [LM-TEL-1])', () => {
  const wk = randomBytes(32);
  const sid = randomBytes(16);
  const code = (f: () => unknown): number | undefined => {
    try {
      f();
    } catch (e) {
      return e instanceof LmError ? e.code : -1;
    }
    return undefined;
  };
  it('a payload of 4096 bytes seals and opens; one byte more is too-large on both sides, before the AEAD', () => {
    const max = new Uint8Array(TELEMETRY_MAX).fill(7);
    expect(openTelemetry(wk, sid, 3, sealTelemetry(wk, sid, 3, max))).toEqual(max);
    expect(code(() => sealTelemetry(wk, sid, 3, new Uint8Array(TELEMETRY_MAX + 1)))).toBe(Reason.tooLarge);
    // a ciphertext one byte over: refused as too-large, not as a failed tag (auth), so it never counts as tampering
    expect(code(() => openTelemetry(wk, sid, 3, new Uint8Array(TELEMETRY_MAX + 17)))).toBe(Reason.tooLarge);
    expect(code(() => openTelemetry(wk, sid, 3, new Uint8Array(TELEMETRY_MAX + 16)))).toBe(Reason.auth);
  });
});
