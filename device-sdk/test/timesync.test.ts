/**
 * The time-sync and liveness sub-machines on an injected clock and timers, without a broker:
 * rounds of four requests and the skew rule ([LM-TIME-1]..[LM-TIME-3]), the heartbeat and the
 * end of a session whose gateway fell silent ([LM-DLV-13]).
 */
import { describe, expect, it } from 'vitest';
import { type LmError, Reason } from '@livematrix/spec';
import { Liveness, RESYNC_MS, SYNC_ROUNDS, TimeSync } from '../src/timesync.js';
import { ManualClock } from '@livematrix/testkit';

/** A time sync whose gateway answers at once with its clock `offset` ms ahead (or never). */
function sync(offset: number | undefined) {
  const time = new ManualClock();
  const t0 = time.t;
  const requests: number[] = [];
  const outcome: { agreed: number[]; refused: LmError[] } = { agreed: [], refused: [] };
  const s: TimeSync = new TimeSync({
    clock: time.clock, timers: time, grace: 250,
    request: (t1) => {
      requests.push(t1 - t0);
      if (offset !== undefined) s.onResponse({ t1, t2: t1 + offset, t3: t1 + offset });
    },
    agreed: () => void outcome.agreed.push(time.t - t0),
    refused: (e) => void outcome.refused.push(e),
  });
  return { time, s, requests, outcome };
}

describe('time sync [LM-TIME-1] [LM-TIME-2] [LM-TIME-3]', () => {
  it('sends four TIME_REQ 40 ms apart and agrees once the best sample is within the grace', () => {
    const { time, s, requests, outcome } = sync(100);
    s.start();
    expect(s.synced).toBe(false);
    time.advance(359);
    expect(requests).toEqual([0, 40, 80, 120]);
    expect(outcome.agreed).toEqual([]);
    time.advance(1);
    expect(outcome.agreed).toEqual([360]);
    expect(s.synced).toBe(true);
  });

  it(`takes ${SYNC_ROUNDS} rounds before it refuses a skew beyond the grace, with θ, δ and G in the message`, () => {
    const { time, s, requests, outcome } = sync(300);
    s.start();
    time.advance(SYNC_ROUNDS * 360 - 1);
    expect(outcome.refused).toEqual([]);
    time.advance(1);
    expect(requests).toHaveLength(4 * SYNC_ROUNDS);
    expect(outcome.refused.map((e) => e.code)).toEqual([Reason.skew]);
    expect(outcome.refused[0]!.message).toMatch(/offset 300\.0 ms, round trip 0\.0 ms, bound 300\.0 ms > grace 250 ms/);
    expect(s.synced).toBe(false);
  });

  it('refuses with timeout when the gateway never answers', () => {
    const { time, s, outcome } = sync(undefined);
    s.start();
    time.advance(SYNC_ROUNDS * 360);
    expect(outcome.refused.map((e) => e.code)).toEqual([Reason.timeout]);
  });

  it('repeats the exchange every 30 s and calls agreed only once', () => {
    const { time, s, requests, outcome } = sync(0);
    s.start();
    time.advance(360 + RESYNC_MS + 360);
    expect(requests).toHaveLength(8);
    expect(requests[4]).toBe(360 + RESYNC_MS);
    expect(outcome.agreed).toHaveLength(1);
    s.stop();
    time.advance(10 * RESYNC_MS);
    expect(requests).toHaveLength(8);
  });
});

describe('liveness [LM-DLV-13]', () => {
  it('beats every second and ends the session once the gateway is silent beyond the timeout', () => {
    const time = new ManualClock();
    const gone: number[] = [];
    let beats = 0;
    const l = new Liveness({ clock: time.clock, timers: time, timeout: 10_000, beat: () => void beats++, gone: (ms) => void gone.push(ms) });
    l.start();
    time.advance(3000);
    expect(beats).toBe(3);
    l.heard(); // an authenticated frame of the gateway
    expect(l.silentFor()).toBe(0);
    time.advance(10_000);
    expect(gone).toEqual([]); // silent for exactly the timeout: not yet
    expect(beats).toBe(13);
    time.advance(1000);
    expect(gone).toEqual([11_000]);
    expect(beats).toBe(13);
    time.advance(5000);
    expect(gone).toHaveLength(1);
    expect(time.pending).toBe(0);
  });

  it('stops beating when stopped', () => {
    const time = new ManualClock();
    let beats = 0;
    const l = new Liveness({ clock: time.clock, timers: time, timeout: 10_000, beat: () => void beats++, gone: () => undefined });
    l.start();
    time.advance(2000);
    l.stop();
    time.advance(20_000);
    expect(beats).toBe(2);
  });
});
