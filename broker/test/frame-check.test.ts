import { describe, expect, it } from 'vitest';
import { FrameType, Reason, encodeFrame, identityKeyPair, randomBytes, topics } from '@livematrix/spec';
import { checkPublish } from '../src/index.js';

describe('broker frame check [LM-MQTT-4]', () => {
  const sid = randomBytes(16);
  const fk = randomBytes(32);
  const hints = encodeFrame(FrameType.HINTS, { sid, seq: 0, rev: 1, chunk: 0, off: 0, ctlen: 20, hints: randomBytes(12) }, { kind: 'mac', key: fk });
  const dev = identityKeyPair();

  it('passes a valid frame on its topic', () => {
    expect(checkPublish(topics.deviceIn('f1', 'd1'), hints)).toEqual({ ok: true, type: FrameType.HINTS });
    const hello = encodeFrame(FrameType.HELLO, { device: 'd1', idpk: dev.publicKey, caps: { suites: [[3, 1e7]], mem: 1e8, wmax: 24, workers: 2 }, time: 1, software: 'x', online: true }, { kind: 'sig', secretKey: dev.secretKey });
    expect(checkPublish(topics.deviceState('f1', 'd1'), hello).ok).toBe(true);
  });

  it('drops a frame type not allowed on the topic', () => {
    const r = checkPublish(topics.deviceOut('f1', 'd1'), hints);
    expect(r).toMatchObject({ ok: false, reason: Reason.schema });
  });

  it('drops malformed payloads with their reason and ignores other topics', () => {
    expect(checkPublish(topics.deviceIn('f1', 'd1'), Uint8Array.of(0xff))).toMatchObject({ ok: false, reason: Reason.malformed });
    expect(checkPublish(topics.deviceIn('f1', 'd1'), new Uint8Array(70000))).toMatchObject({ ok: false, reason: Reason.tooLarge });
    expect(checkPublish('lm/1/f1/x/d1/in', hints)).toMatchObject({ ok: false, reason: Reason.schema });
    expect(checkPublish('$SYS/broker/uptime', Uint8Array.of(1))).toEqual({ ok: 'ignored' });
  });

  it('never throws on random payloads', () => {
    for (let i = 0; i < 5000; i++) {
      const r = checkPublish(topics.deviceIn('f1', 'd1'), randomBytes(i % 100));
      if (r.ok !== true) expect(r).toMatchObject({ ok: false, reason: expect.any(Number) });
    }
  });
});
