/**
 * The Marlin host protocol over a real serial port (the `serialport` package on one end of a
 * socat pty pair) against the testkit's firmware simulator on the other: the firmware's
 * accepted program equals the job line for line, also with flipped bits, lost oks and slow moves,
 * with one command in flight or with advanced ok; silence, a halt, a reboot and an overlong line
 * fail with their typed errors, and so do bytes without a line break (a wrong baud rate).
 */
import { describe, expect, it } from 'vitest';
import { openPty, ptyPair } from '@livematrix/testkit';
import { MAX_FIRMWARE_LINE, openMarlinSerial } from '../src/machine/serial.js';
import { MachineHaltedError, MachineLineError, MachineProtocolError, MachineResetError, MachineTimeoutError, type MarlinHost, cleanLine } from '../src/machine/index.js';
import { bench, gcodeJob, haveSocat, inCI, program } from './machine-kit.js';

/** Sends a job's lines the way the sink does (without a stream), and waits for every ok. */
async function sendJob(host: MarlinHost, job: string): Promise<void> {
  await host.reset();
  for (const l of job.split(/\r\n|\r|\n/)) {
    const c = cleanLine(l);
    if (c) await host.send(c);
  }
  await host.drain();
}

/** The most lines the host had given out but not yet seen acknowledged. */
function trackInFlight(host: MarlinHost): { max: number } {
  const t = { max: 0 };
  host.on('sent', () => (t.max = Math.max(t.max, host.given - host.acknowledged)));
  return t;
}

describe.runIf(haveSocat || inCI)('machine link over a pty pair (socat) against the Marlin simulator', () => {
  it('numbers and checksums every line; the firmware receives the job line for line (one ok per command)', async () => {
    const job = gcodeJob(200);
    const { sim, link } = await bench({ bufsize: 4, faults: { echoEvery: 50 } });
    const echoes: string[] = [];
    link.host.on('echo', (e) => echoes.push(e));
    const flight = trackInFlight(link.host);
    await sendJob(link.host, job);
    expect(sim.program).toEqual(program(job));
    expect(sim.program).toContain('M117 Layer (1/3)'); // parentheses are not comments for Marlin by default
    expect(sim.received[0]).toEqual({ n: 0, command: 'M110 N0' }); // numbering starts again
    expect(sim.received[1]?.n).toBe(1);
    expect(link.host.acknowledged).toBe(program(job).length);
    expect(flight.max).toBe(1);
    expect(link.host.stats.resends).toBe(0);
    expect(echoes).toContain('simulated note after 100 commands'); // echo: lines are events
  });

  it('recovers from flipped bits, lost oks and slow moves with one command in flight: the program equals the job', async () => {
    const job = gcodeJob(400);
    const { sim, link } = await bench({ keepaliveMs: 40, faults: { seed: 7, corrupt: 0.04, loseOk: 0.02, slow: { every: 45, ms: 260 }, echoEvery: 97 } }, { timeoutMs: 150, probes: 20, handshakeMs: 300 });
    const busy: string[] = [];
    const errors: string[] = [];
    const echoes: string[] = [];
    link.host.on('busy', (b) => busy.push(b));
    link.host.on('firmware-error', (e) => errors.push(e));
    link.host.on('echo', (e) => echoes.push(e));
    await sendJob(link.host, job);
    expect(sim.program).toEqual(program(job));
    // every fault happened, and the host saw it
    expect(sim.stats.corrupted).toBeGreaterThan(3);
    expect(sim.stats.lostOks).toBeGreaterThan(2);
    expect(sim.stats.slow).toBeGreaterThan(3);
    expect(link.host.stats.resends).toBeGreaterThanOrEqual(sim.stats.corrupted);
    expect(link.host.stats.timeouts).toBeGreaterThan(0);
    expect(busy).toContain('processing'); // slow moves extended the timeout instead of failing
    expect(errors.some((e) => /checksum mismatch|Line Number|No Checksum|No Line Number/.test(e))).toBe(true);
    expect(echoes.some((e) => e.startsWith('simulated note'))).toBe(true);
  });

  it('keeps at most N commands in flight with advanced ok, and recovers from the same faults', async () => {
    const job = gcodeJob(500);
    const { sim, link } = await bench({ advancedOk: true, bufsize: 4, keepaliveMs: 40, faults: { seed: 11, corrupt: 0.04, loseOk: 0.03, slow: { every: 60, ms: 250 } } }, { advancedOk: 4, timeoutMs: 150, probes: 20, handshakeMs: 300 });
    const flight = trackInFlight(link.host);
    await sendJob(link.host, job);
    expect(sim.program).toEqual(program(job));
    expect(sim.stats.corrupted).toBeGreaterThan(3);
    expect(sim.stats.lostOks).toBeGreaterThan(3);
    expect(flight.max).toBe(4); // the window was used, and never exceeded
    expect(sim.stats.maxQueued).toBeLessThanOrEqual(4);
  });

  it('without faults, advanced ok keeps the firmware queue full and acknowledges by line number', async () => {
    const job = gcodeJob(150);
    const { sim, link } = await bench({ advancedOk: true, bufsize: 4, duration: () => 1 }, { advancedOk: 4 });
    const acks: number[] = [];
    link.host.on('ack', (a) => acks.push(a.n));
    await sendJob(link.host, job);
    expect(sim.program).toEqual(program(job));
    expect(acks).toEqual(program(job).map((_, i) => i + 1)); // each line once, in order
    expect(sim.stats.maxQueued).toBeGreaterThan(1);
  });

  it('fails with MachineTimeoutError when the firmware goes silent [probes first]', async () => {
    const { sim, link } = await bench({ faults: { silentAfter: 20 } }, { timeoutMs: 250, probes: 2 });
    const probes: number[] = [];
    link.host.on('timeout', (t) => probes.push(t.n));
    const err = await sendJob(link.host, gcodeJob(100)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MachineTimeoutError);
    expect((err as MachineTimeoutError).line).toBe(20);
    expect(probes.slice(-2)).toEqual([20, 20]); // the line went twice more before the link gave up
    expect(sim.program).toHaveLength(20);
  });

  it('fails with MachineHaltedError when the firmware halts, and with MachineResetError when it reboots mid-job', async () => {
    const halted = await bench({ faults: { haltAfter: 12 } }, { timeoutMs: 2000 });
    const e1 = await sendJob(halted.link.host, gcodeJob(60)).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(MachineHaltedError);
    expect((e1 as Error).message).toContain('kill() called');
    // (the line sent after the reboot is refused, and the RX flush may take the next M110 with it)
    const rebooted = await bench({ faults: { rebootAfter: 15 } }, { timeoutMs: 2000, handshakeMs: 300 });
    const e2 = await sendJob(rebooted.link.host, gcodeJob(60)).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(MachineResetError);
    // the link starts again with the next job: M110, then the whole program
    const job = gcodeJob(30);
    const before = rebooted.sim.received.length;
    await sendJob(rebooted.link.host, job);
    expect(rebooted.sim.received.slice(before).map((c) => c.command).filter((c) => !c.startsWith('M110'))).toEqual(program(job));
  });

  it('refuses advanced ok with a firmware that answers M110 with a plain ok (no ADVANCED_OK)', async () => {
    const { link } = await bench({ advancedOk: false }, { advancedOk: 4 });
    await expect(link.host.reset()).rejects.toBeInstanceOf(MachineProtocolError);
    // (the accepted case, advanced ok with ADVANCED_OK firmware, is the test above)
  });

  it('refuses a line longer than the firmware takes before writing anything, and sends one that fits', async () => {
    const { sim, link } = await bench({});
    await link.host.reset();
    const fits = 'M117 ' + 'x'.repeat(95 - 'N1 M117 *00'.length);
    await expect(link.host.send('M117 ' + 'x'.repeat(100))).rejects.toBeInstanceOf(MachineLineError);
    await expect(link.host.send('G1 X1\nG1 X2')).rejects.toBeInstanceOf(MachineLineError);
    await link.host.send(fits);
    await link.host.drain();
    expect(sim.program).toEqual([fits]);
  });

  it('fails with MachineProtocolError when the firmware sends more than 4096 bytes without a line break (a wrong baud rate?); a 4000-byte line passes', async () => {
    const pair = await ptyPair();
    const fw = openPty(pair.b);
    const link = await openMarlinSerial({ path: pair.a, baudRate: 115200 });
    try {
      // accepted: a long line, split across writes, arrives whole
      const long = 'echo:' + 'y'.repeat(3995);
      const echoed = new Promise<string>((r) => link.host.once('echo', r));
      fw.output.write(long.slice(0, 1500));
      fw.output.write(long.slice(1500) + '\n');
      expect(await echoed).toBe('y'.repeat(3995));
      // refused: noise of a wrong baud rate, never a line break
      const waiting = link.host.reset().catch((e: unknown) => e);
      fw.output.write(Buffer.alloc(MAX_FIRMWARE_LINE + 1, 0xf3));
      const e = await waiting;
      expect(e).toBeInstanceOf(MachineProtocolError);
      expect((e as Error).message).toMatch(/the firmware sent \d+ bytes without a line break \(at most 4096 in a line\): is 115200 the baud rate the firmware was built with\?/);
    } finally {
      await link.close();
      fw.close();
      await pair.close();
    }
  });
});
