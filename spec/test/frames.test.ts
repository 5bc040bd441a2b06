import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type AckBody, FrameType, type HintsBody, LmError, Reason, SCHEMAS, checkPublishTopicFrames, decodeFrame, encodeFrame, identityKeyPair, randomBytes, verifyFrame,
  AUTH_KINDS, FRAME_QOS, TOPIC_FRAMES, clipUtf8, encodeCbor, frameMac, parseTopic, reasonOf, toHex, topics, utf8Length,
} from './helpers.js';
import { emitMap } from '../src/frame-schemas.js';

describe('frames (SPEC.md §7)', () => {
  const fk = randomBytes(32);
  const sid = randomBytes(16);

  it('HINTS round-trips and verifies under its direction key only [LM-FRAME-2]', () => {
    fc.assert(
      fc.property(
        fc.record({ seq: fc.maxSafeNat(), rev: fc.maxSafeNat(), chunk: fc.nat(), off: fc.nat(), ctlen: fc.nat(65552), hints: fc.uint8Array({ minLength: 1, maxLength: 400 }) }),
        fc.option(fc.uniqueArray(fc.nat(5000), { minLength: 1, maxLength: 50 }).map((a) => a.sort((x, y) => x - y)), { nil: undefined }),
        (b, idx) => {
          const body: HintsBody = { sid, ...b, ...(idx ? { idx } : {}) };
          const bytes = encodeFrame(FrameType.HINTS, body, { kind: 'mac', key: fk });
          const f = decodeFrame(bytes);
          expect(f.type).toBe(FrameType.HINTS);
          expect(f.body).toEqual(body);
          expect(verifyFrame(f, { mac: fk })).toBe(true);
          expect(() => verifyFrame(f, { mac: randomBytes(32) })).toThrow(LmError);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('HINTS under a MAC: the one-pass writer gives the generic codec\'s bytes, and refuses what the schema refuses [LM-CBOR-1] [LM-FRAME-2]', () => {
    // the generic codec: the body's map, enc([v, type, body, auth]) with the MAC over prefix ‖ enc([v, type, body])
    const generic = (b: HintsBody): Uint8Array => {
      const map = emitMap(SCHEMAS[FrameType.HINTS], b as unknown as Record<string, unknown>);
      const tba = Uint8Array.of(...new TextEncoder().encode('livematrix/1 frame'), 0, ...encodeCbor([1, FrameType.HINTS, map]));
      return encodeCbor([1, FrameType.HINTS, map, frameMac(fk, tba)]);
    };
    fc.assert(
      fc.property(
        fc.record({ seq: fc.maxSafeNat(), rev: fc.oneof(fc.nat(30), fc.maxSafeNat()), chunk: fc.nat(), off: fc.nat(70000), ctlen: fc.nat(65552), hints: fc.uint8Array({ minLength: 1, maxLength: 300 }) }),
        fc.option(fc.uniqueArray(fc.oneof(fc.nat(30), fc.nat(70000), fc.maxSafeNat()), { minLength: 1, maxLength: 40 }).map((a) => a.sort((x, y) => x - y)), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 23 }), { nil: undefined }),
        (b, idx, sh) => {
          const body: HintsBody = { sid, ...b, ...(idx ? { idx } : {}), ...(sh !== undefined && idx ? { sh } : {}) };
          expect(toHex(encodeFrame(FrameType.HINTS, body, { kind: 'mac', key: fk }))).toBe(toHex(generic(body)));
        },
      ),
      { numRuns: 400 },
    );
    const full: HintsBody = { sid, seq: 1, rev: 2, chunk: 3, off: 0, ctlen: 65552, hints: randomBytes(49152), idx: Array.from({ length: 4096 }, (_, i) => i * 3), sh: 10 };
    expect(toHex(encodeFrame(FrameType.HINTS, full, { kind: 'mac', key: fk }))).toBe(toHex(generic(full)));
    const ok: HintsBody = { sid, seq: 1, rev: 2, chunk: 3, off: 0, ctlen: 100, hints: randomBytes(8), idx: [0, 1], sh: 23 };
    expect(decodeFrame(encodeFrame(FrameType.HINTS, ok, { kind: 'mac', key: fk })).body).toEqual(ok);
    for (const bad of [{ sh: 24 }, { sh: 0 }, { idx: [2, 1] }, { idx: [] }, { ctlen: 65553 }, { hints: new Uint8Array(0) }, { sid: randomBytes(15) }, { seq: 1.5 }, { rev: -1 }]) {
      expect(reasonOf(() => encodeFrame(FrameType.HINTS, { ...ok, ...bad }, { kind: 'mac', key: fk }))).toBe(Reason.schema);
    }
  });

  it('ACK round-trips [LM-DLV-2]', () => {
    const ack: AckBody = { sid, cum: 5, sack: [[7, 9], [11, 11]], nack: [[6, Reason.ambiguous, [1, 2]], [10, Reason.revExpired, []]], consumed: 1234, credit: 65536 };
    const f = decodeFrame(encodeFrame(FrameType.ACK, ack, { kind: 'mac', key: fk }));
    expect(f.body).toEqual(ack);
  });

  it('SIG frames verify with the signer key only [LM-FRAME-2] [LM-FRAME-7]', () => {
    const dev = identityKeyPair();
    const bytes = encodeFrame(FrameType.ACCEPT, { sid, epk: randomBytes(32), oh: randomBytes(32), window: 4096 }, { kind: 'sig', secretKey: dev.secretKey });
    const f = decodeFrame(bytes);
    expect(verifyFrame(f, { signer: dev.publicKey })).toBe(true);
    expect(() => verifyFrame(f, { signer: identityKeyPair().publicKey })).toThrow(/signature does not verify/);
  });

  it('refuses an authentication kind the type does not allow [LM-FRAME-5]', () => {
    expect(() => encodeFrame(FrameType.HINTS, { sid, seq: 0, rev: 0, chunk: 0, off: 0, ctlen: 1, hints: Uint8Array.of(1) }, { kind: 'none' })).toThrow(LmError);
    const bye = decodeFrame(encodeFrame(FrameType.BYE, { who: 'dev-1', reason: Reason.offline }, { kind: 'none' }));
    expect(verifyFrame(bye, {})).toBe(false); // advisory
  });

  it('every frame type has a schema and a topic [LM-MQTT-1]', () => {
    for (const t of Object.values(FrameType)) {
      expect(SCHEMAS[t]).toBeDefined();
      expect(checkPublishTopicFrames(t)).toBe(true);
    }
  });

  it('REVOKE travels only on the fleet\'s revocation topic, at QoS 1, signed [LM-REVOKE-1] [LM-REVOKE-2] [LM-REVOKE-4]', () => {
    expect(topics.revocation('f1')).toBe('lm/1/f1/revocation');
    expect(parseTopic('lm/1/f1/revocation')).toEqual({ kind: 'revocation', fleet: 'f1' });
    expect(parseTopic('lm/1/f1/revocation/x')).toBeNull();
    expect(parseTopic('lm/1/bad fleet/revocation')).toBeNull();
    for (const [kind, types] of Object.entries(TOPIC_FRAMES)) expect(types.has(FrameType.REVOKE), kind).toBe(kind === 'revocation');
    expect([...TOPIC_FRAMES.revocation]).toEqual([FrameType.REVOKE]);
    expect(FRAME_QOS[FrameType.REVOKE]).toBe(1);
    expect(AUTH_KINDS[FrameType.REVOKE]).toEqual(['sig']);
  });

  it('frames.cddl and the codec define the same body keys per type', () => {
    const cddl = readFileSync(join(import.meta.dirname, '..', 'frames.cddl'), 'utf8');
    const names: Record<number, string> = { 1: 'hello', 2: 'offer', 3: 'accept', 4: 'time-req', 5: 'time-resp', 6: 'hints', 7: 'key', 8: 'ack', 9: 'control', 10: 'telemetry', 11: 'end', 12: 'receipt', 13: 'alarm', 14: 'error', 15: 'bye', 16: 'revoke', 17: 'svc-req', 18: 'svc-resp', 19: 'status' };
    expect(Object.keys(names).map(Number)).toEqual(Object.values(FrameType));
    for (const [t, name] of Object.entries(names)) {
      const m = new RegExp(`^${name}\\s*=\\s*\\[version, ${t}, \\{([\\s\\S]*?)\\}, `, 'm').exec(cddl);
      expect(m, name).not.toBeNull();
      const keys = [...m![1]!.matchAll(/(\?\s*)?(\d+) =>/g)].map((x) => `${x[1] ? '?' : ''}${x[2]}`);
      const schema = SCHEMAS[Number(t) as keyof typeof SCHEMAS].map((f) => `${f.optional ? '?' : ''}${f.key}`);
      expect(keys, name).toEqual(schema);
    }
  });
});

describe('text lengths count bytes of UTF-8 [LM-FRAME-11]', () => {
  const enc = new TextEncoder();
  it('utf8Length equals the length of the UTF-8 encoding, lone surrogates included', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => utf8Length(s) === enc.encode(s).length));
    fc.assert(fc.property(fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)) }), (s) => utf8Length(s) === enc.encode(s).length));
  });
  it('clipUtf8 keeps the longest prefix of whole code points within the limit', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.integer({ min: 0, max: 40 }), (s, max) => {
      const c = clipUtf8(s, max);
      expect(s.startsWith(c)).toBe(true);
      expect(utf8Length(c)).toBeLessThanOrEqual(max);
      const next = [...s.slice(c.length)][0];
      if (next !== undefined) expect(utf8Length(c + next)).toBeGreaterThan(max);
    }));
  });
  it('a detail of 129 two-byte characters does not encode; its clip does', () => {
    const body = { sid: randomBytes(16), code: Reason.rate, detail: 'é'.repeat(129), time: 1 };
    expect(() => encodeFrame(FrameType.ALARM, body, { kind: 'none' })).toThrow(LmError);
    expect(() => encodeFrame(FrameType.ALARM, { ...body, detail: clipUtf8(body.detail, 256) }, { kind: 'none' })).not.toThrow();
  });
});
