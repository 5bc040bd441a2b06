/**
 * The machine sink on an IncomingStream (over a stand-in session that records consumption, as
 * stream.test.ts does) and a real serial link to the simulator over a pty pair: the consumption
 * the gateway would be told of never takes a program line whole before the firmware has it
 * ([LM-DLV-5]), across pieces that cut lines and UTF-8 characters in two; a consumer that sends
 * without waiting for the firmware is caught by the same check; a resumed stream, a halted
 * firmware and a stop are handled as documented.
 */
import { describe, expect, it } from 'vitest';
import { LmError, Reason, type SessionParams, type SignedTx } from '@livematrix/spec';
import { Control, type ControlOpId } from '../src/frames.js';
import { IncomingStream, type StreamSession } from '../src/stream.js';
import { MachineClosedError, MachineHaltedError, MachineStreamError, cleanLine, streamToMachine } from '../src/machine/index.js';
import { bench, gcodeJob, haveSocat, inCI, program, programEnds } from './machine-kit.js';

interface Fake {
  stream: IncomingStream;
  ops: ControlOpId[];
  /** consumption so far, in bytes */
  consumed(): number;
}

/**
 * A stream of `job` in pieces of `piece` bytes; `onConsumed(total)` runs whenever the consumer
 * took a piece; the stream ends once every byte was taken, as a session ends it.
 */
function fakeStream(job: Uint8Array, piece: number, onConsumed: (total: number) => void = () => undefined, from = 0): Fake {
  const ops: ControlOpId[] = [];
  let total = from;
  let stream: IncomingStream | undefined;
  const session: StreamSession = {
    sid: new Uint8Array(16), params: {} as SessionParams, from, resumed: from > 0,
    tx: { hash: new Uint8Array(32).fill(7), body: { job: 'job-1', size: job.length } } as unknown as SignedTx,
    consumed: (b) => {
      total += b.length;
      onConsumed(total);
      if (total === job.length) stream?.finish();
    },
    control: async (op) => void ops.push(op),
  };
  stream = new IncomingStream(session);
  for (let i = from; i < job.length; i += piece) stream.push(job.slice(i, i + piece));
  return { stream, ops, consumed: () => total };
}

/** Consumption that took program line k whole while the firmware had fewer than k + 1 lines. */
function aheadCheck(job: string, firmwareHas: () => number): { violations: string[]; checks: number; at: (total: number) => void } {
  const ends = programEnds(job);
  const r = {
    violations: [] as string[], checks: 0,
    at: (total: number) => {
      r.checks++;
      const has = firmwareHas();
      const firstMissing = ends[has];
      if (firstMissing !== undefined && total >= firstMissing) r.violations.push(`consumed ${total} bytes, line ${has + 1} ends at ${firstMissing}, firmware has ${has} lines`);
    },
  };
  return r;
}

describe.runIf(haveSocat || inCI)('machine sink: a stream into the simulator over a pty pair', () => {
  it('consumes a piece only once the firmware acknowledged its lines [LM-DLV-5], across cut lines and characters', async () => {
    const job = gcodeJob(300);
    const bytes = Buffer.from(job);
    const { sim, link } = await bench({ duration: (_c, n) => (n !== undefined && n % 10 === 0 ? 8 : 0) });
    const check = aheadCheck(job, () => sim.ran - 1); // lines run (and so oked), the M110 not counted
    const f = fakeStream(bytes, 97, check.at);
    const progress: number[] = [];
    const r = await streamToMachine(f.stream, link.host, { onProgress: (p) => progress.push(p.acknowledged) });
    expect(sim.program).toEqual(program(job));
    expect(sim.program).toContain('M117 Température 215°C'); // a character cut between two pieces
    expect(r).toMatchObject({ bytes: bytes.length, lines: program(job).length, resends: 0 });
    expect(f.consumed()).toBe(bytes.length);
    expect(check.checks).toBe(Math.ceil(bytes.length / 97));
    expect(check.violations).toEqual([]);
    expect(progress.length).toBe(check.checks);
  });

  it('holds with flipped bits, lost oks, slow moves and advanced ok: the program equals the job, consumption stays behind', async () => {
    const job = gcodeJob(400);
    const bytes = Buffer.from(job);
    const { sim, link } = await bench(
      { advancedOk: true, keepaliveMs: 40, faults: { seed: 3, corrupt: 0.03, loseOk: 0.03, slow: { every: 50, ms: 200 } } },
      { advancedOk: 4, timeoutMs: 200, probes: 20, handshakeMs: 300 },
    );
    // a line counts as acknowledged once the firmware accepted it (its ok, or a Resend: past it)
    const check = aheadCheck(job, () => sim.program.length);
    const f = fakeStream(bytes, 211, check.at);
    const r = await streamToMachine(f.stream, link.host);
    expect(sim.program).toEqual(program(job));
    expect(sim.stats.corrupted).toBeGreaterThan(2);
    expect(sim.stats.lostOks).toBeGreaterThan(2);
    expect(r.resends).toBeGreaterThan(0);
    expect(check.checks).toBe(Math.ceil(bytes.length / 211));
    expect(check.violations).toEqual([]);
  });

  it('the same check catches a consumer that hands lines over without waiting for the firmware', async () => {
    const job = gcodeJob(120);
    const { sim, link } = await bench({ duration: () => 3 });
    const check = aheadCheck(job, () => sim.ran - 1);
    const f = fakeStream(Buffer.from(job), 97, check.at);
    await link.host.reset();
    for await (const line of f.stream.lines()) {
      const c = cleanLine(line);
      if (c) await link.host.send(c); // written, not acknowledged
    }
    await link.host.drain();
    expect(sim.program).toEqual(program(job));
    expect(check.violations.length).toBeGreaterThan(0);
  });

  it('rethrows a stream that fails mid-job, after the firmware acknowledged the lines already sent', async () => {
    const job = gcodeJob(120);
    const { sim, link } = await bench({ duration: () => 2 });
    let f: Fake | undefined;
    f = fakeStream(Buffer.from(job), 300, (total) => {
      if (total >= 900) f?.stream.fail(new LmError(Reason.aborted, 'the gateway aborted'));
    });
    await expect(streamToMachine(f.stream, link.host)).rejects.toMatchObject({ code: Reason.aborted });
    expect(f.ops).toEqual([]); // the stream failed by itself: nothing to abort
    expect(link.host.acknowledged).toBe(link.host.given); // nothing left in flight for the next job
    expect(sim.program).toEqual(program(job).slice(0, sim.program.length));
    expect(sim.program.length).toBeGreaterThan(10);
    expect(sim.program.length).toBeLessThan(program(job).length);
  });

  it('refuses a resumed stream that starts mid-job, before sending anything', async () => {
    const job = Buffer.from(gcodeJob(50));
    const { sim, link } = await bench({});
    await expect(streamToMachine(fakeStream(job, 256, undefined, 256).stream, link.host)).rejects.toBeInstanceOf(MachineStreamError);
    expect(sim.received).toEqual([]);
  });

  it('aborts the stream when the firmware halts [LM-DLV-9], or leaves it when asked to; a stop leaves it too', async () => {
    const job = Buffer.from(gcodeJob(80));
    const { link } = await bench({ faults: { haltAfter: 30 } });
    const halted = fakeStream(job, 128);
    await expect(streamToMachine(halted.stream, link.host)).rejects.toBeInstanceOf(MachineHaltedError);
    expect(halted.ops).toEqual([Control.abort]);

    const other = await bench({ faults: { haltAfter: 30 } });
    const kept = fakeStream(job, 128);
    await expect(streamToMachine(kept.stream, other.link.host, { abortOnFailure: false })).rejects.toBeInstanceOf(MachineHaltedError);
    expect(kept.ops).toEqual([]);

    const slow = await bench({ duration: () => 50 });
    const stopping = new AbortController();
    const stopped = fakeStream(job, 128);
    slow.sim.on('accepted', (c) => c.n === 5 && stopping.abort());
    await expect(streamToMachine(stopped.stream, slow.link.host, { signal: stopping.signal })).rejects.toBeInstanceOf(MachineClosedError);
    expect(stopped.ops).toEqual([]);
    expect(stopped.consumed()).toBeLessThan(job.length);
  });
});
