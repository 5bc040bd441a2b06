/**
 * Device state on the gateway side without a broker (SPEC.md §10.2): a BYE of an earlier boot
 * sequence than the current HELLO's is the late Will of an earlier connection and changes nothing
 * ([LM-STATE-5]); a STATUS is taken only when it is the device's, of its current connection and
 * newer than the last ([LM-STATE-6]).
 */
import { describe, expect, it } from 'vitest';
import { type Caps, FrameType, type HelloBody, Reason, type StatusBody, type StatusFrame, decodeFrame, encodeFrame, identityKeyPair } from '@livematrix/spec';
import { ManualClock } from '@livematrix/testkit';
import { HelloBook } from '../src/hello.js';
import { StatusBook, lateByeReason } from '../src/status.js';

const CAPS: Caps = { suites: [[3, 40_000_000]], mem: 2 ** 30, wmax: 24, workers: 2 };
const dev = identityKeyPair();
const hello = (bd?: number): HelloBody => ({ device: 'p1', idpk: dev.publicKey, caps: CAPS, time: 1000, software: 'test', online: true, ...(bd !== undefined ? { bd } : {}) });
const bye = (bd?: number) => ({ who: 'p1', reason: Reason.offline, ...(bd !== undefined ? { bd } : {}) });

function status(o: Partial<StatusBody> = {}, signer = dev): StatusFrame {
  const f = decodeFrame(encodeFrame(FrameType.STATUS, { device: 'p1', state: 1, seq: 0, time: 1000, bd: 5, ...o }, { kind: 'sig', secretKey: signer.secretKey }));
  if (f.type !== FrameType.STATUS) throw new Error('not a STATUS');
  return f;
}

describe('late Last Wills [LM-STATE-5]', () => {
  it('[LM-STATE-5] a BYE of a bd below the latest HELLO\'s is ignored; of the same or a greater bd, without bd, or against a HELLO without bd, it counts', () => {
    expect(lateByeReason(bye(4), hello(5))).toMatch(/bd 4 is below that of the device's current connection \(5\).*LM-STATE-5/);
    // the Will of a later connection whose HELLO this gateway never took (it was away, or refused
    // it): that connection is gone, and so is the device
    expect(lateByeReason(bye(6), hello(5))).toBeUndefined();
    expect(lateByeReason(bye(5), hello(5))).toBeUndefined();
    expect(lateByeReason(bye(), hello(5))).toBeUndefined();
    expect(lateByeReason(bye(4), hello())).toBeUndefined();
    expect(lateByeReason(bye(4), undefined)).toBeUndefined();
  });

  it('[LM-STATE-5] the latest HELLO is the one accepted last under the device\'s key, kept across a BYE; another key\'s HELLO decides nothing', () => {
    const book = new HelloBook(new ManualClock());
    expect(book.latestOf('p1', dev.publicKey)).toBeUndefined();
    book.accept('p1', hello(5));
    const other = identityKeyPair();
    // whoever announces the device under a key of their own cannot make its Will look late
    book.accept('p1', { ...hello(9), idpk: other.publicKey });
    expect(book.latestOf('p1', dev.publicKey)?.bd).toBe(5);
    expect(book.latestOf('p1', other.publicKey)?.bd).toBe(9);
    expect(book.latestOf('p1', undefined)).toBeUndefined(); // no key known: nothing decides
    expect(book.firstKeyOf('p1')).toEqual(dev.publicKey); // without a registry: the first key it took
    book.accept('p1', hello(6));
    expect(book.latestOf('p1', dev.publicKey)?.bd).toBe(6);
    book.offline('p1');
    expect(book.latestOf('p1', dev.publicKey)?.bd).toBe(6);
    expect(book.onlineDevices()).toEqual([]);
  });
});

describe('taking a STATUS [LM-STATE-6]', () => {
  it('[LM-STATE-6] takes the device\'s STATUS of its current connection in order; a repeat, an older seq, another bd, another key or device is ignored', () => {
    const book = new StatusBook();
    const h = hello(5);
    expect(book.take('p1', status({ seq: 0 }), dev.publicKey, h)).toBeUndefined();
    expect(book.take('p1', status({ seq: 0 }), dev.publicKey, h)).toMatch(/seq 0 is not after the last one taken \(0\)/); // a retained STATUS delivered again
    expect(book.take('p1', status({ seq: 2, state: 2 }), dev.publicKey, h)).toBeUndefined();
    expect(book.take('p1', status({ seq: 1 }), dev.publicKey, h)).toMatch(/not after/);
    expect(book.get('p1')).toMatchObject({ seq: 2, state: 2 });
    expect(book.take('p1', status({ seq: 9, bd: 4 }), dev.publicKey, h)).toMatch(/bd 4 is not that of the device's current connection \(5\)/);
    const other = identityKeyPair();
    expect(book.take('p1', status({ seq: 9 }, other), dev.publicKey, h)).toMatch(/^auth \(9\)/);
    expect(book.take('p2', status({ seq: 9 }), dev.publicKey, h)).toBe('it names "p1"');
    expect(book.take('p1', status({ seq: 9 }), undefined, undefined)).toMatch(/key is not known/);
    expect(book.take('p1', status({ seq: 9 }), dev.publicKey, hello())).toMatch(/no HELLO with a boot sequence/);
    expect(book.get('p1')).toMatchObject({ seq: 2 }); // none of those changed it
    // a new connection: its STATUS numbered 0 is taken once its HELLO was
    expect(book.take('p1', status({ seq: 0, bd: 6 }), dev.publicKey, hello(6))).toBeUndefined();
    expect(book.get('p1')).toMatchObject({ seq: 0, bd: 6 });
  });
  it('[LM-STATE-6] a STATUS that comes before its connection\'s HELLO (another topic: MQTT does not order them) is kept and taken once that HELLO is; a forged one never is', () => {
    const book = new StatusBook();
    expect(book.take('p1', status({ seq: 0, bd: 5 }), dev.publicKey, hello(5))).toBeUndefined();
    const early = status({ seq: 3, bd: 6, state: 4 });
    expect(book.take('p1', early, dev.publicKey, hello(5))).toMatch(/bd 6 is not that of the device's current connection \(5\)/);
    expect(book.takePending('p1', dev.publicKey, hello(5))).toBeUndefined(); // its HELLO has not come yet
    expect(book.get('p1')).toMatchObject({ bd: 5, seq: 0 });
    expect(book.takePending('p1', dev.publicKey, hello(6))).toMatchObject({ bd: 6, seq: 3, state: 4 });
    expect(book.get('p1')).toMatchObject({ bd: 6, seq: 3 });
    expect(book.takePending('p1', dev.publicKey, hello(6))).toBeUndefined(); // taken once
    expect(book.isRepeat('p1', early)).toBe(true); // a retained copy delivered again: nothing to report
    expect(book.isRepeat('p1', status({ seq: 4, bd: 6 }))).toBe(false);
    // signed by another key: kept like any early STATUS, but its HELLO does not make it the device's
    const forged = status({ seq: 0, bd: 7, state: 4 }, identityKeyPair());
    book.take('p1', forged, dev.publicKey, hello(6));
    expect(book.takePending('p1', dev.publicKey, hello(7))).toBeUndefined();
    expect(book.get('p1')).toMatchObject({ bd: 6, seq: 3 });
  });
});
