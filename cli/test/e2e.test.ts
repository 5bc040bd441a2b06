/**
 * End to end over a real aedes broker on loopback: byte-identical delivery of real slicer
 * output, hints only on the wire, replay and tampering refused, skew, pause/resume/abort,
 * rate alarms, broker restart.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '@livematrix/testkit';
import { LmError, Reason, decodeFrame, FrameType } from '@livematrix/spec';
import { Device } from '@livematrix/device-sdk';
import { Control } from '@livematrix/gateway';
import { CAPS, GCODE, type Rig, aedes, freePort, rig, run, sign, syntheticGcode, withRig } from './harness.js';
import { crash, overstateConsumption } from './kit.js';

const SYNTHETIC = 'synthetic-8MB.gcode';
const files = ['calib_cube.gcode', 'cylinder_annular.gcode', SYNTHETIC];
const synthetic = syntheticGcode(8 * 2 ** 20);
const load = (f: string) => (f === SYNTHETIC ? synthetic : new Uint8Array(readFileSync(join(GCODE, f))));
const engine = testEngine();

describe('byte-identical delivery over aedes [LM-DLV-6] [LM-DLV-7]', () => {
  for (const w of [16, 20]) {
    for (const f of files) {
      it(`${f} at w=${w}`, async () => {
        const broker = await aedes();
        const r = await rig(broker.url, engine());
        try {
          const data = load(f);
          const { gs, output } = await run(r, data, { policy: { w } });
          const [report, out] = await Promise.all([gs.done, output]);
          expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
          expect(report.receipt.bytes).toBe(data.length);
          expect(report.params.w).toBe(w);
          // w=16 has L=3: about one symbol in 256 is ambiguous, so every frame needs a
          // re-send, and [LM-DLV-11] sends most of them shifted within the revision
          if (w === 16 && data.length > 100_000) expect(report.shiftedResends).toBeGreaterThan(0);
          // every byte went as hints: at least 8L/w wire bytes per plaintext byte (the 2.0
          // target for the ratio is checked by bench:stream, not by a timed test)
          expect(report.wireBytes).toBeGreaterThan((data.length * 8 * report.params.L) / w);
        } finally {
          await r.close();
          await broker.close();
        }
      });
    }
  }
});

describe('a stream accepted before the consumer asks for it', () => {
  it('is handed to the next nextStream(), not lost (a resume can arrive while the consumer still leaves the cut-off stream)', () => withRig(engine(), {}, async ({ r }) => {
    const data = load('calib_cube.gcode');
    const { tx, licence } = sign(r, data);
    const accepted = new Promise<void>((res) => r.device.once('stream', () => res()));
    const gs = await r.gateway.stream('p1', data, tx.bytes, licence, { policy: { w: 16 } });
    await accepted; // nobody was waiting in nextStream() when it came
    const stream = await r.device.nextStream();
    const parts: Uint8Array[] = [];
    for await (const b of stream.bytes()) parts.push(b.slice());
    expect(Buffer.concat(parts).equals(Buffer.from(data))).toBe(true);
    expect((await gs.done).receipt.bytes).toBe(data.length);
  }));
});

describe('jobs from a stream [LM-TX-6] [LM-DLV-6]', () => {
  it('a file read as a stream arrives byte-identical, read no further ahead than window and read-ahead', () => withRig(engine(), {}, async ({ r }) => {
    const data = load(SYNTHETIC);
    let consumed = 0;
    let read = 0;
    let lead = 0;
    const readAhead = 1 << 20;
    async function* job() {
      for (let at = 0; at < data.length; at += 64 * 1024) {
        const b = data.slice(at, at + 64 * 1024);
        read += b.length;
        lead = Math.max(lead, read - consumed);
        yield b;
      }
    }
    const { gs, output } = await run(r, data, { policy: { w: 20 }, job: job(), readAhead });
    gs.on('progress', (p) => (consumed = p.consumed));
    const [report, out] = await Promise.all([gs.done, output]);
    expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    expect(report.bytes).toBe(data.length);
    // the device's window (4 MiB) + read-ahead + a chunk and a piece of slack: not the 8 MiB job
    expect(lead).toBeLessThan(4 * 2 ** 20 + readAhead + report.params.chunk + 64 * 1024 + 1);
    expect(lead).toBeGreaterThan(0);
  }));

  const mangles: [string, (d: Uint8Array) => Uint8Array][] = [
    ['differs from the transaction in one byte', (d) => {
      const x = d.slice();
      x[x.length - 10] = (x[x.length - 10] as number) ^ 1;
      return x;
    }],
    ['ends short', (d) => d.slice(0, d.length - 1000)],
    ['is longer', (d) => Buffer.concat([d, Buffer.from('G28\n')])],
  ];
  for (const [what, mangle] of mangles) {
    it(`a stream that ${what} fails with digest before END; the device never completes it`, () => withRig(engine(), {}, async ({ r }) => {
      const data = load('cylinder_annular.gcode');
      const bad = mangle(data);
      async function* job() {
        for (let i = 0; i < bad.length; i += 50_000) yield bad.subarray(i, i + 50_000);
      }
      const { gs, stream, output } = await run(r, data, { policy: { w: 16 }, job: job() });
      let ended = false;
      stream.on('end', () => (ended = true));
      await expect(gs.done).rejects.toMatchObject({ code: Reason.digest });
      await expect(output).rejects.toBeInstanceOf(LmError);
      expect(ended).toBe(false);
    }));
  }
});

describe('what crosses the broker', () => {
  it('only hints: no 8-byte substring of the plaintext appears in any payload', async () => {
    const broker = await aedes();
    const payloads: Buffer[] = [];
    broker.aedes.on('publish', (packet) => {
      if (packet.topic.startsWith('lm/')) payloads.push(Buffer.from(packet.payload as Buffer));
    });
    const r = await rig(broker.url, engine());
    try {
      const data = load('calib_cube.gcode');
      const { gs, output } = await run(r, data, { policy: { w: 16 } });
      const [report] = await Promise.all([gs.done, output]);
      const grams = new Set<string>();
      for (let i = 0; i + 8 <= data.length; i++) grams.add(Buffer.from(data.subarray(i, i + 8)).toString('latin1'));
      // at least a HINTS and a KEY frame per chunk were captured
      expect(payloads.length).toBeGreaterThanOrEqual(2 * Math.ceil(data.length / report.params.chunk));
      let hits = 0;
      for (const p of payloads) for (let i = 0; i + 8 <= p.length; i++) if (grams.has(p.subarray(i, i + 8).toString('latin1'))) hits++;
      expect(hits).toBe(0);
    } finally {
      await r.close();
      await broker.close();
    }
  });
});

describe('replay and tampering [LM-REV-2] [LM-ALARM-4] [LM-FRAME-2]', () => {
  it('recorded HINTS re-published after their revision expired give no bytes and raise rev-expired; tampered frames are refused', async () => {
    const broker = await aedes();
    const r = await rig(broker.url, engine());
    const spy = await mqtt.connectAsync(broker.url, { clientId: 'recorder', protocolVersion: 4 });
    try {
      const data = load('calib_cube.gcode');
      const recorded: Buffer[] = [];
      await spy.subscribeAsync('lm/1/f1/d/p1/in', { qos: 1 });
      spy.on('message', (_t, p) => {
        try {
          if (decodeFrame(new Uint8Array(p)).type === FrameType.HINTS && recorded.length < 20) recorded.push(Buffer.from(p));
        } catch {
          // not a frame
        }
      });
      // A slow machine: 205 KB at 40 KB/s keeps the session alive for about 5 revisions.
      const { gs, stream, output } = await run(r, data, { policy: { w: 16, period: 1000 }, rate: 40_000 });
      const rejects: number[] = [];
      stream.on('reject', (e) => rejects.push(e.code));
      await new Promise((res) => setTimeout(res, 2600));
      expect(recorded.length).toBeGreaterThan(0);
      for (const p of recorded) await spy.publishAsync('lm/1/f1/d/p1/in', p, { qos: 0 });
      // one tampered frame: a flipped bit in the hints
      const t = Buffer.from(recorded[0]!);
      t[t.length - 40] = (t[t.length - 40] as number) ^ 1;
      await spy.publishAsync('lm/1/f1/d/p1/in', t, { qos: 0 });
      const [, out] = await Promise.all([gs.done, output]);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true); // nothing extra delivered
      expect(rejects.filter((c) => c === Reason.revExpired).length).toBeGreaterThanOrEqual(recorded.length);
      expect(rejects).toContain(Reason.auth);
      // after the session: replays hit no session at all
      const late: number[] = [];
      r.device.on('reject', (e) => late.push(e.code));
      for (const p of recorded.slice(0, 3)) await spy.publishAsync('lm/1/f1/d/p1/in', p, { qos: 1 });
      await new Promise((res) => setTimeout(res, 200));
      expect(late).toEqual([Reason.unknownSession, Reason.unknownSession, Reason.unknownSession]);
    } finally {
      await spy.endAsync();
      await r.close();
      await broker.close();
    }
  });
});

describe('clock skew [LM-TIME-2]', () => {
  it('works with the device clock 150 ms ahead (inside the 250 ms grace window)', async () => {
    await withRig(engine(), { clock: () => Date.now() + 150 }, async ({ r }) => {
      const data = load('calib_cube.gcode');
      const { gs, output } = await run(r, data, { policy: { w: 16, period: 1000 } });
      const [, out] = await Promise.all([gs.done, output]);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    });
  });
  it('fails clearly with the device clock 2 s behind', async () => {
    await withRig(engine(), { clock: () => Date.now() - 2000 }, async ({ r }) => {
      const data = load('calib_cube.gcode');
      const { gs, output } = await run(r, data, { policy: { w: 16, period: 1000 } });
      const err = await output.then(() => null, (e: unknown) => e as LmError);
      expect(err?.code).toBe(Reason.skew);
      expect(err?.message).toMatch(/offset -?2000.*grace 250 ms; this machine's clock differs/);
      await expect(gs.done).rejects.toMatchObject({ code: Reason.skew });
    });
  });
});

describe('flow control [LM-DLV-4] [LM-DLV-5] [LM-DLV-9]', () => {
  it('pause stops the stream, resume finishes it', async () => {
    await withRig(engine(), { window: 32 * 1024 }, async ({ r }) => {
      const data = load('calib_cube.gcode');
      const { gs, stream, output } = await run(r, data, { policy: { w: 16 }, rate: 80_000 });
      let consumed = 0;
      gs.on('progress', (p) => (consumed = p.consumed));
      await new Promise((res) => setTimeout(res, 600));
      await stream.pause();
      await new Promise((res) => setTimeout(res, 700));
      const atPause = consumed;
      await new Promise((res) => setTimeout(res, 700));
      // the consumer drains what it had (at most the window), nothing more arrives
      expect(consumed - atPause).toBeLessThanOrEqual(32 * 1024 + gs.params.chunk);
      expect(consumed).toBeLessThan(data.length);
      await stream.resume();
      const [, out] = await Promise.all([gs.done, output]);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    });
  });

  it('a device acknowledges only what its consumer took: an idle consumer holds the gateway to the window', async () => {
    await withRig(engine(), { window: 32 * 1024 }, async ({ r }) => {
      const data = load('cylinder_annular.gcode');
      const { tx, licence } = sign(r, data);
      const incoming = r.device.nextStream();
      const gs = await r.gateway.stream('p1', data, tx.bytes, licence, { policy: { w: 16 } });
      const stream = await incoming;
      let consumed = -1;
      gs.on('progress', (p) => (consumed = p.consumed));
      await new Promise((res) => setTimeout(res, 1500));
      expect(consumed).toBe(0); // nobody read: nothing acknowledged as consumed
      expect(r.gateway.link.stats.bytesOut).toBeLessThan(3 * 32 * 1024 * 2); // about the window, not the 2 MB file
      await stream.abort();
      await expect(gs.done).rejects.toMatchObject({ code: Reason.aborted });
    });
  });

  it('abort ends both sides', async () => {
    await withRig(engine(), {}, async ({ r }) => {
      const data = load('cylinder_annular.gcode');
      const { gs, output } = await run(r, data, { policy: { w: 16 }, rate: 200_000 });
      await new Promise((res) => setTimeout(res, 500));
      await gs.control(Control.abort);
      await expect(output).rejects.toMatchObject({ code: Reason.aborted });
      await expect(gs.done).rejects.toMatchObject({ code: Reason.aborted });
    });
  });
});

describe('alarms [LM-ALARM-1] [LM-AEAD-3]', () => {
  it('a device faster than its transaction is held to it: keys are released at the allowed pace', async () => {
    await withRig(engine(), {}, async ({ r }) => {
      const data = load('calib_cube.gcode');
      const t0 = Date.now();
      const { gs, output } = await run(r, data, { policy: { w: 16 }, txRate: 100_000, burst: 32_768 });
      const seen: number[] = [];
      gs.on('alarm', (a) => seen.push(a.code));
      const [, out] = await Promise.all([gs.done, output]);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
      // 205 kB at 100 kB/s after a 32 kB burst: at least 1.7 s, however fast the consumer
      expect(Date.now() - t0).toBeGreaterThan(1500);
      expect(seen).toEqual([]);
    });
  });

  it('a device that claims more than the transaction allows raises the alarm, stops the stream and withholds keys', async () => {
    const broker = await aedes();
    const alarms: Buffer[] = [];
    broker.aedes.on('publish', (p) => {
      if (p.topic === 'lm/1/f1/alarm') alarms.push(Buffer.from(p.payload as Buffer));
    });
    const r = await rig(broker.url, engine(), { phases: overstateConsumption });
    try {
      const data = load('cylinder_annular.gcode');
      const { gs, output } = await run(r, data, { policy: { w: 16 }, txRate: 200_000, burst: 65_536 });
      const seen: number[] = [];
      gs.on('alarm', (a) => seen.push(a.code));
      await expect(gs.done).rejects.toMatchObject({ code: Reason.rate });
      const err = await output.then(() => null, (e: unknown) => e as LmError);
      expect(err).toBeInstanceOf(LmError); // the device never completes: the remaining keys were withheld
      expect(seen).toEqual([Reason.rate]);
      await new Promise((res) => setTimeout(res, 100));
      expect(alarms.length).toBe(1);
      expect(decodeFrame(new Uint8Array(alarms[0]!)).type).toBe(FrameType.ALARM);
    } finally {
      await r.close();
      await broker.close();
    }
  });
});

describe('broker restart mid-stream [LM-DLV-8]', () => {
  it('ends with byte-identical output', async () => {
    const port = await freePort();
    let broker = await aedes(port);
    const r = await rig(broker.url, engine());
    try {
      const data = load('cylinder_annular.gcode');
      const { gs, output } = await run(r, data, { policy: { w: 16 }, rate: 1_000_000 });
      await new Promise((res) => setTimeout(res, 700));
      await broker.close();
      await new Promise((res) => setTimeout(res, 300));
      broker = await aedes(port);
      const [, out] = await Promise.all([gs.done, output]);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    } finally {
      await r.close();
      await broker.close();
    }
  });
});

describe('device connection lost mid-stream [LM-DLV-8]', () => {
  it('the device reconnects and the session ends with byte-identical output', async () => {
    await withRig(engine(), {}, async ({ r }) => {
      const data = load('cylinder_annular.gcode');
      const { gs, output } = await run(r, data, { policy: { w: 16 }, rate: 1_000_000 });
      await new Promise((res) => setTimeout(res, 700));
      r.device.link.client.stream.destroy(); // the device host's connection drops
      const [, out] = await Promise.all([gs.done, output]);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    });
  });
});

describe('device process restart mid-stream [LM-DLV-10]', () => {
  /**
   * Streams cylinder_annular.gcode, lets the device's consumer take `cut` bytes, crashes the
   * device process, waits `down` ms and starts a new one that resumes from what it kept.
   */
  async function restart(r: Rig, url: string, o: { cut: number; down?: number; rate?: number; burst?: number; fromStream?: boolean }) {
    const data = load('cylinder_annular.gcode');
    const { tx, licence } = sign(r, data, { ...(o.rate ? { rate: o.rate } : {}), ...(o.burst ? { burst: o.burst } : {}) });
    const incoming = r.device.nextStream();
    const job = o.fromStream ? createReadStream(join(GCODE, 'cylinder_annular.gcode'), { highWaterMark: 16 * 1024 }) : data;
    const gs = await r.gateway.stream('p1', job, tx.bytes, licence, { policy: { w: 16 }, readAhead: 64 * 1024 });
    const stream = await incoming;
    // the machine's consumer keeps what it took (its own storage survives the restart)
    const taken: Uint8Array[] = [];
    let bytes = 0;
    for await (const b of stream.bytes()) {
      taken.push(b.slice());
      bytes += b.length;
      if (bytes > o.cut) break; // the process dies here
    }
    await crash(r.device);
    if (o.down) await new Promise((res) => setTimeout(res, o.down));
    const kept = Buffer.concat(taken);
    const second = await Device.start({
      url, fleet: 'f1', id: 'p1', identity: r.deviceKeys, trustedOperators: [r.operator.publicKey], caps: CAPS, licences: r.licences,
      resume: () => ({ bytes: kept.length, read: (n: number) => [kept.subarray(0, n)] }),
    }, engine());
    return { data, gs, kept, second, resumed: await second.nextStream() };
  }

  for (const fromStream of [false, true]) it(`a new device process resumes the job${fromStream ? ' (read from a stream)' : ''} from its consumer's progress; the output is byte-identical`, () => withRig(engine(), {}, async ({ r, broker }) => {
    const { data, gs, kept, second, resumed } = await restart(r, broker.url, { cut: 700_000, fromStream });
    try {
      expect(resumed.offset).toBeGreaterThan(0);
      expect(resumed.offset % resumed.params.chunk).toBe(0);
      const rest: Uint8Array[] = [];
      for await (const b of resumed.bytes()) rest.push(b.slice());
      const report = await gs.done;
      const out = Buffer.concat([kept.subarray(0, resumed.offset), ...rest]);
      expect(out.equals(Buffer.from(data))).toBe(true);
      expect(report.receipt.bytes).toBe(data.length);
    } finally {
      await second.stop();
    }
  }));

  it('a restarted device cannot spend the allowance of its downtime: keys follow the rate from the resume [LM-ALARM-1] [LM-AEAD-3]', () => withRig(engine(), {}, async ({ r, broker }) => {
    const rate = 200_000;
    const burst = 64 * 1024;
    // 2 s down: counted from the job's start, 400 kB of allowance would be waiting
    const { second, resumed } = await restart(r, broker.url, { cut: 150_000, down: 2000, rate, burst });
    try {
      const t0 = Date.now();
      let got = 0;
      for await (const b of resumed.bytes()) {
        got += b.length;
        if (Date.now() - t0 > 500) break;
      }
      const elapsed = (Date.now() - t0) / 1000;
      expect(got).toBeGreaterThan(0);
      expect(got).toBeLessThanOrEqual(burst + rate * (elapsed + 0.25) + 2 * resumed.params.chunk);
    } finally {
      await second.stop();
    }
  }));
});
