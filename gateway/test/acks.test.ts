/**
 * One ACK applied to the phases, without a broker: frames reported received release their
 * chunk's KEY ([LM-AEAD-3]) and steer the window ([LM-DLV-12]); NACKs become shifted re-sends
 * ([LM-DLV-11]) or wait for a later revision ([LM-DLV-3]); consumption beyond the transaction
 * raises the alarm ([LM-ALARM-1]).
 */
import PQueue from 'p-queue';
import { describe, expect, it } from 'vitest';
import { type AckBody, type Caps, type HintsBody, Ratchet, Reason, negotiate, randomBytes, senderRevision } from '@livematrix/spec';
import { Kernel } from '@livematrix/spec/engine';
import { type AckTarget, applyAck } from '../src/acks.js';
import { Allowance, ChunkKeys } from '../src/keys.js';
import { Stats } from '../src/report.js';
import { CongestionWindow, INITIAL_CWND, RetryMap, latencyTarget } from '../src/retransmit.js';
import { Sender } from '../src/sender.js';
import { ManualClock } from '@livematrix/testkit';

const CAPS: Caps = { suites: [[3, 40_000_000]], mem: 2 ** 30, wmax: 24, workers: 2 };

async function rig(o: { rate?: number; burst?: number } = {}) {
  const clock = new ManualClock(Date.now());
  const params = negotiate(CAPS, clock.t, { w: 16 });
  clock.t = params.epoch + params.period; // in revision r0: a sender stamps t − G ([LM-REV-1]) and the epoch may be just behind now
  const queue = new PQueue({ concurrency: 1 });
  const hints: HintsBody[] = [];
  const keysSent: number[] = [];
  const alarms: { code: number; detail: string; observed?: number; limit?: number }[] = [];
  let acknowledged = 0;
  const sender = new Sender({
    sid: randomBytes(16), params, g2d: new Ratchet(randomBytes(32), params.r0), kernel: new Kernel(), queue, now: clock.now, halted: () => false,
    send: async (_t, body) => void hints.push(body as HintsBody), onRevision: () => undefined, onSent: () => undefined, afterSent: () => undefined,
  });
  const allowance = new Allowance(0, o.rate ?? 1e9, o.burst ?? 1e9);
  const keys = new ChunkKeys({ now: clock.now, allowance, withheld: () => false, transmit: (j) => void keysSent.push(j) }, 0);
  const t: AckTarget = {
    params, sender, keys, allowance, stats: new Stats(), retry: new RetryMap(), window: new CongestionWindow(clock.now, latencyTarget(params)),
    limits: { rate: o.rate ?? 1e9, burst: o.burst ?? 1e9 }, now: clock.now, consumed: 0, credit: 0, firstAck: false,
    flushRetries: () => undefined, alarm: (code, detail, observed, limit) => void alarms.push({ code, detail, observed, limit }), acknowledged: () => void acknowledged++,
  };
  // six chunks of one frame each (8176 + 16 bytes are 4096 symbols of 16 bits), sent
  for (let j = 0; j < 6; j++) keys.add(j, { key: randomBytes(32), pending: sender.cut(j, randomBytes(params.chunk + 16)), start: j * params.chunk, end: (j + 1) * params.chunk });
  allowance.start(clock.t);
  await queue.onIdle();
  if (sender.frames.length !== 6) throw new Error(`expected one frame per chunk, got ${sender.frames.length} frames`);
  return { clock, params, queue, hints, keysSent, alarms, t, acks: () => acknowledged };
}

const ack = (b: Partial<AckBody>): AckBody => ({ sid: new Uint8Array(16), cum: 0, sack: [], nack: [], consumed: 0, credit: 65_536, ...b });

describe('an ACK applied', () => {
  it('marks cum and sack frames, sends each chunk\'s KEY when its last frame is in, and grows the window', async () => {
    const r = await rig();
    applyAck(r.t, ack({ cum: 2, sack: [[4, 4]] }));
    expect(r.t.firstAck).toBe(true);
    expect(r.t.credit).toBe(65_536);
    expect(r.acks()).toBe(1);
    expect(r.keysSent).toEqual([0, 1, 4]);
    expect(r.t.window.size).toBe(INITIAL_CWND + 3);
    expect(r.t.sender.inFlight).toBe(3);
    applyAck(r.t, ack({ cum: 3, sack: [[4, 5]] }));
    expect(r.keysSent).toEqual([0, 1, 4, 2, 5]);
    expect(r.t.sender.ackedUpTo).toBe(3);
    expect(r.t.sender.inFlight).toBe(1);
  });

  it('a frame reported later than the latency target halves the window', async () => {
    const r = await rig();
    applyAck(r.t, ack({ cum: 1 }));
    const before = r.t.window.size;
    r.clock.advance(r.t.window.target + 1);
    applyAck(r.t, ack({ cum: 2 }));
    expect(r.t.window.size).toBe(before / 2);
  });

  it('answers an ambiguous NACK at once with shifted symbols, and queues other NACKs for a later revision', async () => {
    const r = await rig();
    const rev = senderRevision(r.clock.t, r.params);
    applyAck(r.t, ack({ nack: [[0, Reason.ambiguous, [3]], [1, Reason.unknown, [1, 2]], [2, Reason.revExpired, [4]]] }));
    await r.queue.onIdle();
    const shifted = r.hints.at(-1)!;
    expect(shifted).toMatchObject({ seq: 0, rev, idx: [3, 4] });
    expect(shifted.sh).toBeGreaterThan(0);
    expect(r.t.stats).toMatchObject({ shiftedResends: 1, resends: 1, symbolsResent: 1 });
    expect(r.t.retry.due(rev)).toEqual([]);
    expect(r.t.retry.due(rev + 1)).toEqual([{ seq: 1, idx: [1, 2] }, { seq: 2, idx: undefined }]);
    expect(r.t.window.size).toBe(INITIAL_CWND / 2); // rev-expired: congested
  });

  it('raises the rate alarm when consumption runs ahead of the transaction, and applies nothing more', async () => {
    const r = await rig({ rate: 1000, burst: 4096 });
    r.clock.advance(2000);
    applyAck(r.t, ack({ consumed: 6096, credit: 1 }));
    expect(r.alarms).toEqual([]);
    applyAck(r.t, ack({ consumed: 6097, credit: 2 }));
    expect(r.alarms).toEqual([{ code: Reason.rate, detail: 'device consumed 6097 bytes in 2.0 s; the transaction allows 1000 bytes/s plus a burst of 4096', observed: 6097, limit: 6096 }]);
    expect(r.t.credit).toBe(1);
    expect(r.acks()).toBe(1);
  });
});
