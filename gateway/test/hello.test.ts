/**
 * HELLO acceptance without a broker ([LM-MQTT-6], [LM-DLV-10]): which HELLO a gateway acts on,
 * which one says the device restarted, and waiting for a device to announce itself.
 */
import { describe, expect, it } from 'vitest';
import { type Caps, FrameType, type HelloBody, type IdentityKeyPair, Reason, decodeFrame, encodeFrame, identityKeyPair, randomBytes } from '@livematrix/spec';
import { HelloTimeoutError } from '../src/errors.js';
import { HELLO_FRESH_MS, HelloBook, MAX_DEVICES, type HelloFrame, helloRefusal, isRestart } from '../src/hello.js';
import { ManualClock } from '@livematrix/testkit';

const CAPS: Caps = { suites: [[3, 40_000_000]], mem: 2 ** 30, wmax: 24, workers: 2 };
const dev = identityKeyPair();

/** nothing known yet of the device's HELLOs */
const fresh = { last: undefined, boots: [], now: 1000 };

function body(o: Partial<HelloBody> = {}, keys: IdentityKeyPair = dev): HelloBody {
  return { device: 'p1', idpk: keys.publicKey, caps: CAPS, time: 1000, software: 'test', online: true, ...o };
}

/** A HELLO as the gateway decodes it, signed by `signer` (default: the key it carries). */
function hello(b: HelloBody, signer?: IdentityKeyPair): HelloFrame {
  const f = decodeFrame(encodeFrame(FrameType.HELLO, b, { kind: 'sig', secretKey: (signer ?? dev).secretKey }));
  if (f.type !== FrameType.HELLO) throw new Error('not a HELLO');
  return f;
}

describe('HELLO acceptance [LM-MQTT-6]', () => {
  it('without a registry, a HELLO counts when it verifies under the key it carries', () => {
    expect(helloRefusal('p1', hello(body()), undefined, fresh)).toBeUndefined();
    const other = identityKeyPair();
    expect(helloRefusal('p1', hello(body({}, other), other), undefined, fresh)).toBeUndefined();
  });

  it('refuses a HELLO for another device\'s topic, or signed by another key than it carries', () => {
    expect(helloRefusal('p2', hello(body()), undefined, fresh)).toBe('it names "p1"');
    expect(helloRefusal('p1', hello(body(), identityKeyPair()), undefined, fresh)).toMatch(/^auth \(9\)/);
  });

  it('with a registry, counts only a HELLO of the registered key of a registered device', () => {
    const registry = new Map([['p1', dev.publicKey]]);
    expect(helloRefusal('p1', hello(body()), registry, fresh)).toBeUndefined();
    const other = identityKeyPair();
    expect(helloRefusal('p1', hello(body({}, other), other), registry, fresh)).toBe('its key is not the registered one');
    expect(helloRefusal('p3', hello(body({ device: 'p3' })), registry, fresh)).toBe('the device is not registered');
  });

  it('within one boot, refuses a HELLO whose time goes back (the same HELLO again counts: retained re-delivery)', () => {
    const boot = randomBytes(8);
    const seen = { last: body({ time: 5000, boot }), boots: [], now: 6000 };
    expect(helloRefusal('p1', hello(body({ time: 5000, boot })), undefined, seen)).toBeUndefined();
    expect(helloRefusal('p1', hello(body({ time: 5400, boot })), undefined, seen)).toBeUndefined();
    expect(helloRefusal('p1', hello(body({ time: 4000, boot })), undefined, seen)).toBe('its time 4000 is before the last accepted HELLO\'s 5000 (a replay)');
  });

  it('refuses a HELLO of a boot the device has left (a replay), even with a later time', () => {
    const old = randomBytes(8);
    const seen = { last: body({ time: 5000, boot: randomBytes(8) }), boots: [old], now: 6000 };
    expect(helloRefusal('p1', hello(body({ time: 5500, boot: old })), undefined, seen)).toMatch(/one the device has left \(a replay\)/);
  });

  it('takes a new boot whose time is near the gateway\'s clock, even before the last one (a clock set right), and refuses a stale one', () => {
    const now = 100 * HELLO_FRESH_MS;
    const seen = { last: body({ time: now + 3_600_000, boot: randomBytes(8) }), boots: [], now };
    expect(helloRefusal('p1', hello(body({ time: now - 2000, boot: randomBytes(8) })), undefined, seen)).toBeUndefined();
    expect(helloRefusal('p1', hello(body({ time: now - HELLO_FRESH_MS - 1, boot: randomBytes(8) })), undefined, seen)).toMatch(/for a new boot/);
  });
});

describe('restart [LM-DLV-10]', () => {
  const answered = body({ time: 5000, boot: randomBytes(8) });
  it('is an accepted HELLO of the transaction\'s device key with another boot, whatever its time', () => {
    expect(isRestart(body({ time: 6000, boot: randomBytes(8) }), dev.publicKey, answered)).toBe(true);
    expect(isRestart(body({ time: 4000, boot: randomBytes(8) }), dev.publicKey, answered)).toBe(true);
  });
  it('is not the same boot, another key, or a HELLO without boot', () => {
    expect(isRestart(body({ time: 6000, boot: answered.boot! }), dev.publicKey, answered)).toBe(false);
    expect(isRestart(body({ time: 6000, boot: randomBytes(8) }), identityKeyPair().publicKey, answered)).toBe(false);
    expect(isRestart(body({ time: 6000 }), dev.publicKey, answered)).toBe(false);
    expect(isRestart(body({ time: 6000, boot: randomBytes(8) }), dev.publicKey, body({ time: 5000 }))).toBe(false);
  });
});

describe('hello book', () => {
  it('hands a waiter the HELLO of the key it waits for, and forgets online HELLOs on BYE only', async () => {
    const c = new ManualClock();
    const book = new HelloBook(c);
    const other = identityKeyPair();
    const waiting = book.wait('p1', 10_000, dev.publicKey, 'lm/1/f1/d/p1/state');
    book.accept('p1', body({}, other));
    book.notify('p1', body({}, other));
    const h = body({ time: 2000 });
    book.accept('p1', h);
    book.notify('p1', h);
    await expect(waiting).resolves.toBe(h);
    await expect(book.wait('p1', 10_000, undefined, '')).resolves.toBe(h); // the latest of any key
    book.offline('p1');
    expect(book.history('p1', dev.publicKey).last).toBe(h); // kept to see replays
    const none = book.wait('p1', 10_000, dev.publicKey, 'lm/1/f1/d/p1/state');
    c.advance(10_000);
    await expect(none).rejects.toBeInstanceOf(HelloTimeoutError);
    await expect(none).rejects.toMatchObject({ code: Reason.timeout, message: expect.stringContaining('has not announced itself with key') });
    expect(c.pending).toBe(0);
  });

  it('keeps at most four keys per device, the oldest dropped', () => {
    const book = new HelloBook(new ManualClock());
    const keys = Array.from({ length: 5 }, () => identityKeyPair());
    for (const k of keys) book.accept('p1', body({}, k));
    expect(book.history('p1', keys[0]!.publicKey).last).toBeUndefined();
    for (const k of keys.slice(1)) expect(book.history('p1', k.publicKey).last?.idpk).toEqual(k.publicKey);
  });

  it('remembers the boots a device has left', () => {
    const book = new HelloBook(new ManualClock());
    const [a, b] = [randomBytes(8), randomBytes(8)];
    book.accept('p1', body({ boot: a }));
    book.accept('p1', body({ boot: a, time: 1500 }));
    book.accept('p1', body({ boot: b, time: 2000 }));
    expect(book.history('p1', dev.publicKey).boots).toEqual([a]);
  });

  it('keeps the HELLOs of at most MAX_DEVICES devices, the least recently heard dropped', () => {
    const book = new HelloBook(new ManualClock());
    for (let i = 0; i <= MAX_DEVICES; i++) book.accept(`d${i}`, body({ device: `d${i}` }));
    expect(book.history('d0', dev.publicKey).last).toBeUndefined();
    expect(book.history('d1', dev.publicKey).last).toBeDefined();
    expect(book.history(`d${MAX_DEVICES}`, dev.publicKey).last).toBeDefined();
  });
});
