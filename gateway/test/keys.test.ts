/**
 * Chunk keys without a broker ([LM-AEAD-3], [LM-ALARM-1], [LM-DLV-13]): a KEY goes out once
 * every frame of its chunk was received and the transaction's allowance covers the chunk, never
 * while withheld, is re-sent with a doubling back-off, and is erased once consumed.
 */
import { describe, expect, it } from 'vitest';
import { Allowance, ChunkKeys } from '../src/keys.js';
import { ManualClock } from '@livematrix/testkit';

const KB = 1000;

function rig(o: { rate?: number; burst?: number; from?: number; first?: number } = {}) {
  const clock = new ManualClock();
  const allowance = new Allowance(o.from ?? 0, o.rate ?? KB, o.burst ?? KB);
  const sent: { j: number; at: number }[] = [];
  let withheld = false;
  const keys = new ChunkKeys({ now: clock.now, allowance, withheld: () => withheld, transmit: (j) => sent.push({ j, at: clock.now() }) }, o.first ?? 0);
  const add = (j: number, pending = 1) => keys.add(j, { key: new Uint8Array(32).fill(j + 1), pending, start: j * KB, end: (j + 1) * KB });
  return { clock, allowance, keys, sent, add, withhold: () => (withheld = true) };
}

describe('allowance [LM-ALARM-1]', () => {
  it('is from + rate · (t − t_start) / 1000 + burst, counted from the first HINTS only', () => {
    const a = new Allowance(5000, 100, 50);
    expect(a.at(1_000_000)).toBe(5050); // before the first HINTS: the burst only
    a.start(10_000);
    a.start(11_000); // the first start counts
    expect(a.at(10_000)).toBe(5050);
    expect(a.at(12_000)).toBe(5250);
    expect(a.seconds(12_500)).toBe(2.5);
  });
});

describe('chunk key release [LM-AEAD-3]', () => {
  it('waits for every frame of the chunk, then for the allowance to cover its last byte', () => {
    const r = rig({ rate: KB, burst: KB });
    r.allowance.start(r.clock.now());
    r.add(0, 2);
    r.add(1, 1);
    r.add(2, 1);
    r.keys.received(0);
    expect(r.sent).toEqual([]); // one frame of chunk 0 still missing
    r.keys.received(0);
    expect(r.sent.map((s) => s.j)).toEqual([0]); // [0, 1000) is within the burst
    r.keys.received(1);
    r.keys.received(2);
    expect(r.sent.map((s) => s.j)).toEqual([0]); // [1000, 2000) is not allowed yet
    r.clock.advance(999);
    r.keys.release();
    expect(r.sent.map((s) => s.j)).toEqual([0]);
    r.clock.advance(1);
    r.keys.release();
    expect(r.sent.map((s) => s.j)).toEqual([0, 1]);
    r.clock.advance(1000);
    r.keys.release();
    r.keys.release();
    expect(r.sent.map((s) => s.j)).toEqual([0, 1, 2]); // each KEY once
    expect(r.keys.allSent()).toBe(true);
  });

  it('withholds every KEY once withheld (an alarm), re-sends included', () => {
    const r = rig();
    r.add(0, 1);
    r.add(1, 1);
    r.keys.received(0);
    r.withhold();
    r.keys.received(1);
    r.keys.release();
    r.clock.advance(60_000);
    r.keys.resend(0, 100);
    expect(r.sent.map((s) => s.j)).toEqual([0]);
    expect(r.keys.allSent()).toBe(false);
  });

  it('re-sends an unconsumed KEY after the timeout, doubling the wait each time up to 32 timeouts [LM-DLV-13]', () => {
    const r = rig();
    r.add(0, 1);
    r.keys.received(0);
    const t0 = r.clock.now();
    for (let i = 0; i < 14_000; i++) {
      r.clock.advance(1);
      r.keys.resend(0, 100);
    }
    const times = r.sent.map((s) => s.at - t0);
    expect(times).toEqual([0, 101, 302, 703, 1504, 3105, 6306, 9507, 12708]);
  });

  it('re-sends nothing the consumer took, and erases the keys of consumed chunks only', () => {
    const r = rig({ burst: 10 * KB });
    for (let j = 0; j < 3; j++) r.add(j, 1);
    const k0 = r.keys.get(0)!.key;
    const k1 = r.keys.get(1)!.key;
    for (let j = 0; j < 3; j++) r.keys.received(j);
    r.keys.wipeConsumed(1500);
    expect(k0.every((b) => b === 0)).toBe(true);
    expect(k1.every((b) => b === 2)).toBe(true);
    r.clock.advance(1000);
    r.keys.resend(2000, 100); // chunks 0 and 1 consumed: only chunk 2 again
    expect(r.sent.map((s) => s.j)).toEqual([0, 1, 2, 2]);
    r.keys.wipeAll();
    expect(k1.every((b) => b === 0)).toBe(true);
  });

  it('after a resume counts chunks from the resume point, the holes below it ignored', () => {
    const r = rig({ from: 5 * KB, first: 5, burst: KB });
    r.allowance.start(r.clock.now());
    r.add(5, 1);
    r.add(6, 1);
    expect(r.keys.count).toBe(7);
    expect(r.keys.allSent()).toBe(false);
    r.keys.received(5);
    r.keys.received(6); // [6000, 7000) is beyond from + burst
    expect(r.sent.map((s) => s.j)).toEqual([5]);
    r.clock.advance(1000);
    r.keys.release();
    expect(r.keys.allSent()).toBe(true);
  });
});
