/**
 * Re-sends and the congestion window without a broker ([LM-DLV-3], [LM-DLV-12]): the window
 * grows while frames come back in time, halves at most once per two latency targets, and the
 * retry map merges NACKed symbols and waits for a later revision.
 */
import { describe, expect, it } from 'vitest';
import { Reason } from '@livematrix/spec';
import { CongestionWindow, INITIAL_CWND, MAX_CWND, MIN_CWND, RetryMap, latencyTarget, nackedSymbols, overdue } from '../src/retransmit.js';
import { ManualClock } from '@livematrix/testkit';

describe('latency target [LM-DLV-12]', () => {
  it('is a quarter of P - 2G, at least 20 ms', () => {
    expect(latencyTarget({ period: 1000, grace: 250 })).toBe(125);
    expect(latencyTarget({ period: 2000, grace: 100 })).toBe(450);
    expect(latencyTarget({ period: 100, grace: 45 })).toBe(20);
  });
});

describe('congestion window [LM-DLV-12]', () => {
  it('starts small and grows by the frames reported received while they come back within half the target', () => {
    const c = new ManualClock();
    const cw = new CongestionWindow(c.now, 100);
    expect(cw.size).toBe(INITIAL_CWND);
    expect(cw.allows(3)).toBe(true);
    expect(cw.allows(4)).toBe(false);
    cw.received(3, 10);
    expect(cw.size).toBe(7);
    cw.received(0, 10);
    expect(cw.size).toBe(7);
    expect(cw.allows(6)).toBe(true);
    expect(cw.allows(7)).toBe(false);
  });

  it('halves on congestion at most once per two latency targets, never below the minimum', () => {
    const c = new ManualClock();
    const cw = new CongestionWindow(c.now, 100);
    cw.received(28, 0);
    expect(cw.size).toBe(32);
    cw.congested();
    expect(cw.size).toBe(16);
    cw.congested(); // the same moment: one cut
    expect(cw.size).toBe(16);
    c.advance(199);
    cw.congested(); // still within two targets (200 ms) of the cut
    expect(cw.size).toBe(16);
    c.advance(1);
    cw.congested();
    expect(cw.size).toBe(8);
    for (let i = 0; i < 5; i++) {
      c.advance(200);
      cw.congested();
    }
    expect(cw.size).toBe(MIN_CWND);
  });

  it('a frame later than the target halves it; then it grows by 1/cwnd per frame near the target and fast below half of it', () => {
    const c = new ManualClock();
    const cw = new CongestionWindow(c.now, 100);
    cw.received(12, 0);
    expect(cw.size).toBe(16);
    cw.received(1, 101);
    expect(cw.size).toBe(8);
    cw.received(4, 60); // at the threshold, between half the target and the target: slow
    expect(cw.size).toBe(8.5);
    cw.received(2, 49); // below half the target: fast
    expect(cw.size).toBe(10.5);
  });

  it('is bounded above', () => {
    const cw = new CongestionWindow(new ManualClock().now, 100);
    cw.received(10_000, 0);
    expect(cw.size).toBe(MAX_CWND);
  });
});

describe('retry map [LM-DLV-3]', () => {
  it('merges the symbols NACKed for a frame and releases them only in a later revision', () => {
    const r = new RetryMap();
    r.add(7, [5, 2], 10);
    r.add(7, [3, 5], 10);
    expect(r.has(7)).toBe(true);
    expect(r.due(10)).toEqual([]);
    expect(r.due(11)).toEqual([{ seq: 7, idx: [2, 3, 5] }]);
    expect(r.size).toBe(0);
    expect(r.due(12)).toEqual([]);
  });

  it('a whole frame absorbs symbol lists, whichever came first', () => {
    const r = new RetryMap();
    r.add(1, undefined, 3);
    r.add(1, [4], 3);
    r.add(2, [4], 3);
    r.add(2, undefined, 3);
    r.add(3, [1], 3);
    expect(r.due(4)).toEqual([{ seq: 1, idx: undefined }, { seq: 2, idx: undefined }, { seq: 3, idx: [1] }]);
  });

  it('waits past the revision of the latest NACK', () => {
    const r = new RetryMap();
    r.add(1, [1], 5);
    r.add(1, [2], 8);
    expect(r.due(8)).toEqual([]);
    expect(r.due(9)).toEqual([{ seq: 1, idx: [1, 2] }]);
  });

  it('the symbols to re-send: those listed, the whole frame when all are or it came stale, early or to a busy device', () => {
    expect(nackedSymbols(10, Reason.ambiguous, [1, 4])).toEqual([1, 4]);
    expect(nackedSymbols(10, Reason.unknown, [1, 12])).toEqual([1]);
    expect(nackedSymbols(3, Reason.ambiguous, [0, 1, 2])).toBeUndefined();
    expect(nackedSymbols(10, Reason.ambiguous, [])).toBeUndefined();
    for (const whole of [Reason.revExpired, Reason.revFuture, Reason.busy]) expect(nackedSymbols(10, whole, [1])).toBeUndefined();
  });

  it('overdue: sent frames not received within the timeout and not already waiting for a revision', () => {
    const frames = [
      { received: true, sentAt: 1000 },
      { received: false, sentAt: 1000 },
      { received: false, sentAt: 1500 },
      { received: false, sentAt: 0 },
      { received: false, sentAt: 1000 },
    ];
    const r = new RetryMap();
    r.add(4, undefined, 1);
    expect(overdue(frames, 0, 3001, 2000, r)).toEqual([frames[1]]);
    expect(overdue(frames, 2, 3501, 2000, r)).toEqual([frames[2]]);
    expect(overdue(frames, 0, 3000, 2000, r)).toEqual([]);
  });
});
