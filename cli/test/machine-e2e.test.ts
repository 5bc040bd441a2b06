/**
 * The machine link end to end: a real Device and Gateway over aedes stream a slicer file into the
 * Marlin simulator through the SDK's sink on a socat pty pair, and the consumption the device
 * acknowledges (as the gateway sees it, too) never takes a program line whole before the
 * firmware ran it ([LM-DLV-5]); then `livematrix device --serial` does the same as processes.
 * socat missing: skipped, except under CI (CI=true), where it is a failure.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MarlinSim, type PtyPair, expectedProgram, programLineEnds, ptyPair, socatPath, testEngine } from '@livematrix/testkit';
import { type MarlinSerial, openMarlinSerial, streamToMachine } from '@livematrix/device-sdk/machine';
import { cli, keys, signJob } from './cli-harness.js';
import { GCODE, aedes, sign, withRig } from './harness.js';

const have = socatPath() !== undefined;
const inCI = process.env['CI'] === 'true';
if (!have) console.warn(inCI ? 'socat is not installed, and CI requires it: the machine-link tests will fail' : 'socat is not installed: skipping the machine-link end-to-end tests (apt-get install socat; .ci/run installs it)');

const engine = testEngine();
const FILE = join(GCODE, 'calib_cube.gcode');
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function simOnPty(o: ConstructorParameters<typeof MarlinSim>[0]): Promise<{ pair: PtyPair; sim: MarlinSim }> {
  const pair = await ptyPair();
  cleanup.push(() => pair.close());
  const sim = MarlinSim.onPty(pair.b, o);
  cleanup.push(() => sim.close());
  return { pair, sim };
}

describe.runIf(have || inCI)('machine link end to end [LM-DLV-5]', () => {
  it('a Device streams a slicer file into the simulator; consumption never runs ahead of the firmware', () => withRig(engine(), { window: 32 * 1024 }, async ({ r }) => {
    const data = new Uint8Array(readFileSync(FILE));
    const job = Buffer.from(data).toString();
    const ends = programLineEnds(data);
    // a printer's pace: every 400th line a 120 ms move (busy: after 50 ms)
    const { pair, sim } = await simOnPty({ keepaliveMs: 50, faults: { slow: { every: 400, ms: 120 } } });
    const link: MarlinSerial = await openMarlinSerial({ path: pair.a, baudRate: 115200, timeoutMs: 2000 });
    cleanup.push(() => link.close());

    const { tx, licence } = sign(r, data);
    const incoming = r.device.nextStream();
    const gs = await r.gateway.stream('p1', data, tx.bytes, licence, { policy: { w: 16 } });
    const stream = await incoming;
    const violations: string[] = [];
    const seen = { device: 0, gateway: 0 };
    const check = (who: 'device' | 'gateway', consumed: number) => {
      seen[who]++;
      const ran = sim.ran - 1; // the program lines the firmware ran (and so answered), M110 aside
      const end = ends[ran];
      if (end !== undefined && consumed >= end) violations.push(`${who}: ${consumed} bytes consumed, but line ${ran + 1} (ending at ${end}) not run`);
    };
    stream.on('progress', (p) => check('device', p.bytes));
    gs.on('progress', (p) => check('gateway', p.consumed));
    const [result] = await Promise.all([streamToMachine(stream, link.host), gs.done]);

    expect(sim.program).toEqual(expectedProgram(job));
    expect(result).toMatchObject({ bytes: data.length, lines: expectedProgram(job).length });
    expect(violations).toEqual([]);
    expect(seen.device).toBeGreaterThan(20); // one per piece: the check ran all along
    expect(seen.gateway).toBeGreaterThan(5);
    expect(sim.stats.busy).toBeGreaterThan(0); // slow moves held the stream, nothing timed out
    expect(link.host.stats.timeouts).toBe(0);
  }));

  it('`livematrix device --serial` writes each stream to the firmware; --serial with --out is a usage error', async () => {
    const bad = await cli(['device', '--identity', 'x.json', '--operator-key', '0'.repeat(64), '--serial', '/dev/null', '--out', 'x.gcode']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--out does not go with --serial/);
    const help = await cli(['device', '--help']);
    expect(help.out).toMatch(/--serial PATH sends each stream to a Marlin-style firmware/);

    const broker = await aedes();
    cleanup.push(() => broker.close());
    const dir = mkdtempSync(join(tmpdir(), 'lm-serial-'));
    const k = await keys(dir);
    const txFile = await signJob(dir, k, FILE);
    const { pair, sim } = await simOnPty({ advancedOk: true, duration: (_c, n) => (n !== undefined && n % 20 === 0 ? 5 : 0) });
    const device = cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--serial', pair.a, '--baud', '250000', '--advanced-ok', '4', '--once', '--url', broker.url]);
    cleanup.push(() => device.kill());
    await device.waitFor(/machine link on \/dev\/\S+ at 250000 baud, 4 commands in flight/);
    await device.waitFor(/device printer-1 online/);
    const streamed = await cli(['stream', FILE, '--device', 'printer-1', '--tx', txFile, '--identity', join(dir, 'gw.json'), '--operator-key', k.op, '--url', broker.url, '--w', '16']);
    expect(streamed.code, streamed.err).toBe(0);
    const d = await device;
    expect(d.code, d.err).toBe(0);
    const lines = expectedProgram(readFileSync(FILE, 'utf8'));
    expect(d.err).toContain(`machine acknowledged ${lines.length} lines`);
    expect(sim.program).toEqual(lines);
    expect(sim.stats.maxQueued).toBeGreaterThan(1); // advanced ok kept several commands queued
  });
});
