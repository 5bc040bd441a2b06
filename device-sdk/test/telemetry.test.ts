/**
 * Telemetry under the d2g chain ([LM-TEL-1]): the hints are those of the sealed payload under
 * the revision's d2g keys, which the gateway derives from its own copy of the chain.
 */
import { describe, expect, it } from 'vitest';
import { Ratchet, type SessionParams, minHintLength, openTelemetry, pack, randomBytes, sealTelemetry, senderRevision, toHex } from '@livematrix/spec';
import { Kernel } from '@livematrix/spec/engine';
import { NoSessionError } from '../src/errors.js';
import { TelemetrySender } from '../src/telemetry.js';

const PERIOD = 1000;
const EPOCH = 1_800_000_000_000;
const params: SessionParams = { suite: 3, w: 16, L: 3, period: PERIOD, epoch: EPOCH, grace: 250, r0: 5, chunk: 1024, symbolsPerFrame: 4096, wt: 12 };

describe('telemetry [LM-TEL-1]', () => {
  it('seals a payload as hints under the d2g keys of the current revision', () => {
    const ck = randomBytes(32);
    let now = EPOCH + 10 * PERIOD + 600;
    const kernel = new Kernel();
    const sid = randomBytes(16);
    const tel = new TelemetrySender({ sid, params, chain: new Ratchet(ck.slice(), params.r0), kernel, clock: () => now });
    const payload = new TextEncoder().encode('{"nozzle":215}');
    const a = tel.seal(payload);
    expect([a.seq, a.rev]).toEqual([0, senderRevision(now, params)]);
    now -= 500; // a clock that steps back keeps the chain where it is
    const b = tel.seal(payload);
    expect([b.seq, b.rev]).toEqual([1, a.rev]);

    // what the spec says the hints are, from the gateway's own ratchet
    const k = new Ratchet(ck, params.r0).keysFor(a.rev);
    const Lt = minHintLength(params.wt);
    expect(a.ctlen).toBe(payload.length + 16);
    const ct = sealTelemetry(k.wk, sid, a.seq, payload);
    expect(openTelemetry(k.wk, sid, a.seq, ct)).toEqual(payload);
    kernel.setKey(k.hk);
    const expected = kernel.hintList(params.suite, params.wt, Lt, pack(ct, params.wt));
    kernel.wipe();
    expect(toHex(a.hints)).toBe(toHex(expected));
    expect(toHex(b.hints)).not.toBe(toHex(a.hints)); // another seq, another nonce
    tel.destroy();
    expect(() => tel.seal(payload)).toThrow(NoSessionError);
  });
});
