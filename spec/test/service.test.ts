/**
 * Services over the broker (SPEC.md §16.1): SVC_REQ and SVC_RESP as frames, their inbox topic
 * and QoS ([LM-SVC-7]), the sealing of arguments and results to the other party ([LM-SVC-6]),
 * the keys service's signed segment list ([LM-SVC-5]) and the connect tokens of the new roles.
 */
import { describe, expect, it } from 'vitest';
import {
  AUTH_KINDS, FRAME_QOS, FrameType, LmError, Reason, Role, SVC_MAX, TOPIC_FRAMES, decodeConnectToken, decodeFrame, encodeFrame, identityKeyPair, makeConnectToken,
  parseTopic, randomBytes, signSegmentList, svcKey, svcOpenValue, svcSealValue, svcShared, topics, verifyConnectToken, verifyFrame, verifySegmentList,
} from '../src/index.js';

const requester = identityKeyPair();
const service = identityKeyPair();

describe('services over the broker [LM-SVC-6] [LM-SVC-7]', () => {
  it('SVC_REQ and SVC_RESP: signed, QoS 1, only on an inbox; an inbox carries only them', () => {
    expect(topics.serviceIn('f1', 'keys-1')).toBe('lm/1/f1/s/keys-1/in');
    expect(parseTopic('lm/1/f1/s/keys-1/in')).toEqual({ kind: 'serviceIn', fleet: 'f1', service: 'keys-1' });
    expect(parseTopic('lm/1/f1/s/keys-1/out')).toBeNull();
    expect(() => topics.serviceIn('f1', 'a/b')).toThrow(LmError);
    for (const t of [FrameType.SVC_REQ, FrameType.SVC_RESP]) {
      expect(AUTH_KINDS[t]).toEqual(['sig']);
      expect(FRAME_QOS[t]).toBe(1);
    }
    for (const [kind, types] of Object.entries(TOPIC_FRAMES)) {
      expect(types.has(FrameType.SVC_REQ), kind).toBe(kind === 'serviceIn');
      expect(types.has(FrameType.SVC_RESP), kind).toBe(kind === 'serviceIn');
    }
    expect([...TOPIC_FRAMES.serviceIn]).toEqual([FrameType.SVC_REQ, FrameType.SVC_RESP]);
  });

  it('a request decodes and verifies under its pk; args beyond 60000 bytes or a MAC are refused', () => {
    const body = { id: randomBytes(16), op: 33, args: randomBytes(SVC_MAX), time: Date.now(), from: 'gw-1', pk: requester.publicKey };
    const f = decodeFrame(encodeFrame(FrameType.SVC_REQ, body, { kind: 'sig', secretKey: requester.secretKey }));
    expect(f.type).toBe(FrameType.SVC_REQ);
    expect(verifyFrame(f, { signer: requester.publicKey })).toBe(true);
    expect(() => verifyFrame(f, { signer: service.publicKey })).toThrow(/signature does not verify/);
    expect(() => encodeFrame(FrameType.SVC_REQ, { ...body, args: randomBytes(SVC_MAX + 1) }, { kind: 'sig', secretKey: requester.secretKey })).toThrow(/args/);
    expect(() => encodeFrame(FrameType.SVC_RESP, { id: body.id, code: 0, result: new Uint8Array(0), detail: '', time: 1 }, { kind: 'mac', key: randomBytes(32) })).toThrow(/cannot use authentication "mac"/);
  });

  it('arguments and results are sealed to the other party, per request and direction', () => {
    const id = randomBytes(16);
    const atRequester = svcShared(requester, service.publicKey);
    const atService = svcShared(service, requester.publicKey);
    expect(atRequester).toEqual(atService);
    const kReq = svcKey(atRequester, id, 'req', requester.publicKey, service.publicKey);
    const args = new Map<number, Uint8Array | number>([[1, randomBytes(32)], [2, 7]]);
    const sealed = svcSealValue(kReq, id, args);
    expect(Buffer.from(sealed).includes(Buffer.from(args.get(1) as Uint8Array))).toBe(false);
    expect(svcOpenValue(svcKey(atService, id, 'req', requester.publicKey, service.publicKey), id, sealed)).toEqual(args);
    // the answer's key, another request's key, another id, another party: none opens it
    for (const [k, i] of [
      [svcKey(atService, id, 'resp', requester.publicKey, service.publicKey), id],
      [svcKey(atService, randomBytes(16), 'req', requester.publicKey, service.publicKey), id],
      [kReq, randomBytes(16)],
      [svcKey(svcShared(identityKeyPair(), service.publicKey), id, 'req', requester.publicKey, service.publicKey), id],
    ] as const) {
      const e = (() => {
        try {
          svcOpenValue(k, i, sealed);
        } catch (x) {
          return x;
        }
        return undefined;
      })();
      expect((e as LmError).code).toBe(Reason.auth);
    }
    // a fresh nonce each time: the same value seals differently
    expect(svcSealValue(kReq, id, args)).not.toEqual(sealed);
  });

  it('the keys service\'s list of a deleted job\'s segments verifies only as signed [LM-SVC-5]', () => {
    const ids = randomBytes(16 * 40);
    const dh = randomBytes(32);
    const jid = randomBytes(16);
    const sig = signSegmentList(dh, jid, ids, service);
    expect(verifySegmentList(dh, jid, ids, sig, service.publicKey)).toBe(true);
    const other = ids.slice();
    other[5] = (other[5] as number) ^ 1;
    expect(verifySegmentList(dh, jid, other, sig, service.publicKey)).toBe(false);
    expect(verifySegmentList(dh, jid, ids.subarray(16), sig, service.publicKey)).toBe(false);
    expect(verifySegmentList(randomBytes(32), jid, ids, sig, service.publicKey)).toBe(false);
    expect(verifySegmentList(dh, jid, ids, sig, requester.publicKey)).toBe(false);
    expect(() => signSegmentList(dh, jid, ids.subarray(1), service)).toThrow(/16-byte ids/);
  });

  it('connect tokens name the roles store (3), keys (4) and owner (5); no other', () => {
    for (const role of [Role.store, Role.keys, Role.owner]) {
      const t = decodeConnectToken(makeConnectToken('svc-1', role, service.secretKey));
      expect(t.role).toBe(role);
      expect(verifyConnectToken(t, service.publicKey)).toBe(true);
    }
    expect(() => decodeConnectToken(makeConnectToken('svc-1', 6 as typeof Role.owner, service.secretKey))).toThrow(/wrong types/);
  });
});
