/**
 * Liveness without a broker ([LM-DLV-13]): a device silent too long ends the session with
 * `timeout`, one whose Last Will arrived ends it with `offline` after the grace unless it is
 * heard again; the Will alone ends nothing.
 */
import { describe, expect, it } from 'vitest';
import { Reason } from '@livematrix/spec';
import { DeviceOfflineError, DeviceSilentError } from '../src/errors.js';
import { Liveness } from '../src/liveness.js';
import { ManualClock } from '@livematrix/testkit';

const limits = { silence: 20_000, grace: 10_000 };

describe('liveness [LM-DLV-13]', () => {
  it('counts silence from ACCEPT and from each authenticated frame, not before ACCEPT', () => {
    const c = new ManualClock();
    const l = new Liveness('p1', c.now, limits);
    c.advance(60_000);
    expect(l.check()).toBeUndefined(); // still offering: the offer timeout applies
    l.accepted();
    c.advance(15_000);
    l.heard();
    c.advance(20_000);
    expect(l.check()).toBeUndefined();
    c.advance(1);
    const e = l.check();
    expect(e).toBeInstanceOf(DeviceSilentError);
    expect(e?.code).toBe(Reason.timeout);
    expect(e?.message).toContain('no authenticated frame from device "p1" for 20.0 s');
  });

  it('ends with offline once the Will\'s grace passed without the device', () => {
    const c = new ManualClock();
    const l = new Liveness('p1', c.now, limits);
    l.accepted();
    expect(l.offline()).toBe(true);
    c.advance(5000);
    expect(l.offline()).toBe(false); // a second Will: the grace still runs from the first
    c.advance(5000);
    expect(l.check()).toBeUndefined();
    c.advance(1);
    const e = l.check();
    expect(e).toBeInstanceOf(DeviceOfflineError);
    expect(e?.code).toBe(Reason.offline);
    expect(e?.message).toContain('went offline (its Last Will) 10.0 s ago');
  });

  it('an authenticated frame after the Will cancels it', () => {
    const c = new ManualClock();
    const l = new Liveness('p1', c.now, limits);
    l.accepted();
    l.offline();
    c.advance(9000);
    l.heard();
    c.advance(19_000);
    expect(l.check()).toBeUndefined();
    expect(l.offline()).toBe(true); // a new Will starts a new grace
    c.advance(10_001);
    expect(l.check()).toBeInstanceOf(DeviceOfflineError);
  });
});
