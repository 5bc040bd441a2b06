/**
 * `livematrix device` stopped by SIGTERM in the middle of a stream: it ends within 2 s with exit
 * code 0, leaves the partial job in FILE.part (never under FILE), and a restarted device resumes
 * the job. Runs the built CLI over a real aedes broker on loopback.
 */
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Ran, type Running, cli, keys, report, signJob } from './cli-harness.js';
import { GCODE, aedes } from './harness.js';

const JOB = join(GCODE, 'cylinder_annular.gcode');

/** The process's end, or undefined when it is still running after `ms` (a bound on a failure, not a synchronisation). */
function endedWithin(p: Running, ms: number): Promise<Ran | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]).finally(() => clearTimeout(timer));
}

describe('livematrix device and signals', () => {
  it('SIGTERM mid-stream: exit 0 within 2 s, FILE.part kept and FILE absent; a restart resumes the job', async () => {
    const broker = await aedes();
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-signal-'));
    const out = join(dir, 'out.gcode');
    const procs: Running[] = [];
    try {
      const k = await keys(dir);
      const tx = await signJob(dir, k, JOB);
      const slow = cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--out', out, '--rate', '100000', '--url', broker.url]);
      procs.push(slow);
      await slow.waitFor(/online/);
      const stream = cli(['stream', JOB, '--device', 'printer-1', '--tx', tx, '--identity', join(dir, 'gw.json'), '--operator-key', k.op, '--url', broker.url, '--w', '16']);
      procs.push(stream);
      // 10%: the stream runs, and the device passed a point of the job's digest it keeps (a multiple
      // of lcm(C, 64), 32704 bytes at w = 16; [LM-DLV-20]), which the restart resumes from
      await slow.waitFor(/^printer-1: [1-9]\d% /m);
      const t0 = performance.now();
      slow.kill('SIGTERM');
      const ended = await endedWithin(slow, 10_000);
      const ms = performance.now() - t0;
      console.log(`SIGTERM mid-stream: the device process closed ${ms.toFixed(0)} ms after the signal; stderr:\n${slow.err}`);
      expect(ended, `still running 10 s after SIGTERM:\n${slow.err}`).toBeDefined();
      expect(ms).toBeLessThan(2000);
      expect(ended!.code, ended!.err).toBe(0);
      expect(ended!.err).toMatch(/aborted by SIGTERM/);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(out + '.part')).toBe(true);
      const kept = statSync(out + '.part').size;
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(readFileSync(JOB).length);

      // the gateway sees the device come back (a new boot) and offers the job again to resume it
      const again = cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--out', out, '--once', '--url', broker.url]);
      procs.push(again);
      const [s, d] = await Promise.all([stream, again]);
      expect(d.code, d.err).toBe(0);
      expect(s.code, s.err).toBe(0);
      expect(report(s).receipt.bytes).toBe(readFileSync(JOB).length);
      expect(d.err).toMatch(/resuming .* at byte \d+/);
      expect(readFileSync(out).equals(readFileSync(JOB))).toBe(true);
      expect(existsSync(out + '.part')).toBe(false);
    } finally {
      for (const p of procs) p.kill();
      await broker.close();
    }
  }, 60_000);
});
