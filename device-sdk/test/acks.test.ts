/**
 * The ACK/NACK builder without a broker: ranges, splitting beyond 64 ([LM-DLV-2]), pacing on
 * an injected timer, and `consumed` taken from the session's progress ([LM-DLV-4]).
 */
import { describe, expect, it } from 'vitest';
import { type AckBody, Reason } from '@livematrix/spec';
import { AckLedger, type AckProgress, ackBodies } from '../src/acks.js';
import { ManualClock } from '@livematrix/testkit';

const sid = new Uint8Array(16).fill(7);

function ledger(progress: AckProgress = { from: 0, delivered: 0, consumed: 0 }) {
  const time = new ManualClock();
  const sent: { at: number; body: AckBody }[] = [];
  const acks = new AckLedger({ sid, timers: time, credit: 4096, progress: () => progress, send: (body) => sent.push({ at: time.t, body }) });
  return { time, sent, acks, progress };
}

describe('ackBodies [LM-DLV-2]', () => {
  it('folds received frames into inclusive ranges', () => {
    const [b] = ackBodies(sid, 3, [9, 5, 6, 7, 12], [], 100, 4096);
    expect(b).toEqual({ sid, cum: 3, sack: [[5, 7], [9, 9], [12, 12]], nack: [], consumed: 100, credit: 4096 });
  });

  it('splits more than 64 ranges and 64 NACKs over further ACKs, each with the same cum, consumed and credit', () => {
    const received = Array.from({ length: 150 }, (_, i) => 10 + 2 * i); // 150 ranges of one frame
    const nacks = Array.from({ length: 70 }, (_, i): [number, number, number[]] => [1000 + i, Reason.unknown, [i]]);
    const bodies = ackBodies(sid, 10, received, nacks, 5, 99);
    expect(bodies.map((b) => [b.sack.length, b.nack.length])).toEqual([[64, 64], [64, 6], [22, 0]]);
    expect(bodies.flatMap((b) => b.sack)).toEqual(received.map((s) => [s, s]));
    expect(bodies.flatMap((b) => b.nack)).toEqual(nacks);
    for (const b of bodies) expect([b.cum, b.consumed, b.credit]).toEqual([10, 5, 99]);
  });

  it('sends one ACK when there is nothing to list', () => {
    expect(ackBodies(sid, 0, [], [], 0, 1)).toHaveLength(1);
  });
});

describe('AckLedger [LM-DLV-2] [LM-DLV-4]', () => {
  it('moves cum over frames received in any order', () => {
    const { acks } = ledger();
    acks.received(2);
    acks.received(1);
    expect(acks.cum).toBe(0);
    expect(acks.isReceived(2)).toBe(true);
    expect(acks.isReceived(0)).toBe(false);
    acks.received(0);
    expect(acks.cum).toBe(3);
    expect(acks.isReceived(1)).toBe(true);
  });

  it('coalesces ACKs within 5 ms and sends a NACK at once', () => {
    const { time, sent, acks } = ledger();
    const t0 = time.t;
    acks.received(0);
    acks.soon();
    acks.soon();
    time.advance(4);
    expect(sent).toHaveLength(0);
    time.advance(1);
    expect(sent.map((s) => [s.at - t0, s.body.cum])).toEqual([[5, 1]]);
    acks.soon();
    acks.nack(4, Reason.ambiguous, [3]);
    time.advance(0);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.at).toBe(t0 + 5);
    expect(sent[1]!.body.nack).toEqual([[4, Reason.ambiguous, [3]]]);
    time.advance(10);
    expect(sent).toHaveLength(2); // the NACK's ACK replaced the pending one; NACKs are sent once
  });

  it('NACKs a long symbol list as the whole frame', () => {
    const { time, sent, acks } = ledger();
    acks.nack(1, Reason.unknown, Array.from({ length: 257 }, (_, i) => i));
    time.advance(0);
    expect(sent[0]!.body.nack).toEqual([[1, Reason.unknown, []]]);
  });

  it('reports what the consumer took, not what was decrypted', () => {
    const { time, sent, acks } = ledger({ from: 0, delivered: 9000, consumed: 1200 });
    acks.flush();
    time.advance(10);
    expect(sent.map((s) => s.body.consumed)).toEqual([1200]);
  });

  it('sends nothing after stop()', () => {
    const { time, sent, acks } = ledger();
    acks.soon();
    acks.stop();
    acks.nack(0, Reason.busy, []);
    acks.flush();
    time.advance(100);
    expect(sent).toEqual([]);
    expect(time.pending).toBe(0);
  });
});
