/**
 * HINTS out without a broker ([LM-HINT-1], [LM-REV-1], [LM-DLV-3], [LM-DLV-11]): a chunk cut
 * into frames in `seq` order with the hints of the current revision, re-sends of some symbols,
 * and shifted re-sends in the same revision with a new shift each time.
 */
import PQueue from 'p-queue';
import { describe, expect, it } from 'vitest';
import { type Caps, type HintsBody, Ratchet, Reason, hintDigest, hintSymbols, negotiate, pack, randomBytes, senderRevision, shiftedSymbol } from '@livematrix/spec';
import { Kernel } from '@livematrix/spec/engine';
import { type OutFrame, Sender, planShift } from '../src/sender.js';
import { ManualClock } from '@livematrix/testkit';

const CAPS: Caps = { suites: [[3, 40_000_000]], mem: 2 ** 30, wmax: 24, workers: 2 };

function frame(o: Partial<OutFrame> = {}): OutFrame {
  return { seq: 0, chunk: 0, off: 0, symbols: new Uint32Array(10), ctlen: 20, sentAt: 1, received: false, rev: 7, shiftedRev: -1, shifts: 0, ...o };
}

describe('shifted re-sends [LM-DLV-11]', () => {
  it('answer an ambiguous NACK in the frame\'s revision with the positions that straddle each symbol, a new shift each time', () => {
    const fr = frame();
    expect(planShift(fr, Reason.ambiguous, [1, 4], 7, 16)).toEqual({ sh: 8, pos: [1, 2, 4, 5] });
    expect(planShift(fr, Reason.ambiguous, [4, 9], 7, 16)).toEqual({ sh: 4, pos: [4, 5, 9, 10] });
    expect(planShift(fr, Reason.ambiguous, [1], 7, 16)).toEqual({ sh: 12, pos: [1, 2] });
    expect(planShift(fr, Reason.ambiguous, [1], 7, 16)).toBeUndefined(); // three shifts per revision
    expect(fr.shifts).toBe(3);
    fr.rev = 8;
    expect(planShift(fr, Reason.ambiguous, [1], 8, 16)).toEqual({ sh: 8, pos: [1, 2] }); // a new revision starts over
  });

  it('leave other NACKs to a later revision', () => {
    expect(planShift(frame(), Reason.unknown, [1], 7, 16)).toBeUndefined();
    expect(planShift(frame({ rev: 6 }), Reason.ambiguous, [1], 7, 16)).toBeUndefined();
    expect(planShift(frame(), Reason.ambiguous, [], 7, 16)).toBeUndefined();
    expect(planShift(frame(), Reason.ambiguous, [10], 7, 16)).toBeUndefined();
    expect(planShift(frame(), Reason.ambiguous, Array.from({ length: 513 }, () => 0), 7, 16)).toBeUndefined();
    expect(planShift(frame(), Reason.ambiguous, [1], 7, 9)).toEqual({ sh: 4, pos: [1, 2] });
  });
});

function rig(halted = false) {
  const clock = new ManualClock(Date.now());
  const params = negotiate(CAPS, clock.t, { w: 16 });
  clock.t = params.epoch + params.period; // in revision r0: a sender stamps t − G ([LM-REV-1]) and the epoch may be just behind now
  const chain = randomBytes(32);
  const sent: HintsBody[] = [];
  const revisions: number[] = [];
  const queue = new PQueue({ concurrency: 1 });
  const kernel = new Kernel();
  const sender = new Sender({
    sid: randomBytes(16), params, g2d: new Ratchet(chain, params.r0), kernel, queue, now: clock.now, halted: () => halted,
    send: async (type, body) => {
      if (type !== 6) throw new Error(`sent type ${type}`);
      sent.push(body as HintsBody);
    },
    onRevision: (r) => void revisions.push(r), onSent: () => undefined, afterSent: () => undefined,
  });
  /** The hint key of revision r, from a second ratchet on the same chain. */
  const hk = (r: number) => new Ratchet(chain, params.r0).keysFor(r).hk;
  return { clock, params, sender, sent, revisions, queue, hk, kernel };
}

describe('sender [LM-HINT-1] [LM-DLV-3]', () => {
  it('cuts a chunk into frames of at most N symbols, each with the hints of the current revision', async () => {
    const r = rig();
    const { params: p } = r;
    const ct = randomBytes(p.chunk + 16);
    const syms = pack(ct, p.w);
    const n = r.sender.cut(0, ct);
    expect(n).toBe(Math.ceil(syms.length / p.symbolsPerFrame));
    await r.queue.onIdle();
    const rev = senderRevision(r.clock.t, p);
    expect(r.revisions).toEqual([rev]);
    expect(r.sent.map((b) => b.seq)).toEqual([...Array(n).keys()]);
    const last = r.sent[n - 1]!;
    expect(last.off).toBe((n - 1) * p.symbolsPerFrame);
    expect(last.ctlen).toBe(ct.length);
    expect(last.rev).toBe(rev);
    expect(last.idx).toBeUndefined();
    expect(last.hints).toEqual(hintSymbols(p.suite, r.hk(rev), p.w, p.L, syms.subarray(last.off)));
    expect(r.sender.inFlight).toBe(n);
  });

  it('re-sends listed symbols under the current revision, and shifted ones only in the revision they were planned for', async () => {
    const r = rig();
    const { params: p } = r;
    const ct = randomBytes(64);
    const syms = pack(ct, p.w);
    r.sender.cut(3, ct);
    await r.queue.onIdle();
    const fr = r.sender.frames[0]!;
    const rev = senderRevision(r.clock.t, p);
    const shift = planShift(fr, Reason.ambiguous, [2], rev, p.w)!;
    r.sender.hints(fr, [2], shift);
    await r.queue.onIdle();
    expect(r.sent[1]).toMatchObject({ seq: 0, chunk: 3, rev, idx: [2, 3], sh: shift.sh });
    expect(r.sent[1]!.hints).toEqual(hintSymbols(p.suite, r.hk(rev), p.w, p.L, [shiftedSymbol(syms, p.w, shift.sh, 2), shiftedSymbol(syms, p.w, shift.sh, 3)]));
    const again = planShift(fr, Reason.ambiguous, [2], rev, p.w)!;
    r.clock.advance(p.period); // the revision turns before it goes out: a plain re-send of the symbol
    r.sender.hints(fr, [2], again);
    await r.queue.onIdle();
    expect(r.sent[2]).toMatchObject({ seq: 0, rev: rev + 1, idx: [2] });
    expect(r.sent[2]!.sh).toBeUndefined();
    expect(r.sent[2]!.hints).toEqual(hintSymbols(p.suite, r.hk(rev + 1), p.w, p.L, [syms[2]!]));
  });

  it('marks frames received once, by cumulative point and by number, and sends nothing for them', async () => {
    const r = rig();
    const ct = randomBytes(r.params.chunk * 2);
    r.sender.cut(0, ct);
    await r.queue.onIdle();
    const total = r.sender.frames.length;
    expect(r.sender.advance(2)).toEqual([0, 2]);
    expect(r.sender.advance(1)).toEqual([2, 1]); // never backwards
    expect(r.sender.ackedUpTo).toBe(2);
    expect(r.sender.markReceived(0)?.seq).toBe(0);
    expect(r.sender.markReceived(0)).toBeUndefined();
    expect(r.sender.markReceived(total)).toBeUndefined();
    expect(r.sender.inFlight).toBe(total - 1);
    r.sender.hints(r.sender.frames[0]!);
    await r.queue.onIdle();
    expect(r.sent).toHaveLength(total);
  });

  it('keeps a revision\'s hint key in the kernel only while the revision lasts, and erases it with the session [LM-KEY-5]', async () => {
    const r = rig();
    const { params: p } = r;
    const rev = senderRevision(r.clock.t, p);
    r.sender.cut(0, randomBytes(64));
    await r.queue.onIdle();
    expect(r.kernel.digest(p.suite, p.w, 5)).toEqual(hintDigest(p.suite, r.hk(rev), p.w, 5)); // held between frames
    r.clock.advance(p.period);
    r.sender.cut(1, randomBytes(64));
    await r.queue.onIdle();
    expect(r.sent.map((b) => b.rev)).toEqual([rev, rev + 1]);
    expect(r.kernel.digest(p.suite, p.w, 5)).toEqual(hintDigest(p.suite, r.hk(rev + 1), p.w, 5)); // the old one is gone
    r.sender.wipe();
    expect(r.kernel.digest(p.suite, p.w, 5)).toEqual(hintDigest(p.suite, new Uint8Array(32), p.w, 5)); // a zero key
  });

  it('sends nothing once halted', async () => {
    const r = rig(true);
    r.sender.cut(0, randomBytes(64));
    await r.queue.onIdle();
    expect(r.sent).toEqual([]);
    expect(r.sender.inFlight).toBe(1);
  });
});
