/**
 * A gateway process killed mid-stream (kill -9) and started again, as an operator would: the
 * device ends its session as interrupted ([LM-DLV-13]) and the new `livematrix stream` delivers
 * the job, resumed from what the device kept ([LM-DLV-10]), without a manual wait and with the
 * same transaction. On 5862f57 the device refused the new OFFER as busy (and died of it).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Running, cli, keys, report, signJob } from './cli-harness.js';
import { aedes } from './harness.js';

const JOB = join(import.meta.dirname, '..', '..', 'examples', 'cylinder_annular.gcode');

describe('livematrix stream killed and started again', () => {
  it('kill -9 of the gateway mid-stream: a new `stream` with the same transaction delivers the job byte-identical', async () => {
    const broker = await aedes();
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-restart-'));
    const out = join(dir, 'out.gcode');
    const procs: Running[] = [];
    try {
      const k = await keys(dir);
      const tx = await signJob(dir, k, JOB);
      const device = cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--out', out, '--rate', '400000', '--url', broker.url]);
      procs.push(device);
      await device.waitFor(/online/);
      const args = ['stream', JOB, '--device', 'printer-1', '--tx', tx, '--identity', join(dir, 'gw.json'), '--operator-key', k.op, '--url', broker.url, '--w', '16'];
      const first = cli(args);
      procs.push(first);
      await device.waitFor(/^printer-1: [1-9]\d*% /m); // the job is under way
      first.kill('SIGKILL');
      await first;
      const second = cli(args);
      procs.push(second);
      const ran = await second;
      expect(ran.code, ran.err).toBe(0);
      expect(report(ran).receipt.bytes).toBe(readFileSync(JOB).length);
      await device.waitFor(/wrote /);
      expect(device.err).toMatch(/the gateway is gone/);
      expect(device.err).toMatch(/resuming .* at byte [1-9]\d*/);
      expect(readFileSync(out).equals(readFileSync(JOB))).toBe(true);
      expect(existsSync(out + '.part')).toBe(false);
      // the resume counted no second print: the transaction (prints 1) is used up ([LM-LIC-4])
      expect(second.err).toMatch(/holds a resume ticket/);
      const third = await cli(args);
      expect(third.code).not.toBe(0);
      expect(third.err).toMatch(/print count exhausted: 1 of 1/);
    } finally {
      for (const p of procs) p.kill('SIGKILL');
      await Promise.all(procs);
      await broker.close();
    }
  }, 90_000);
});
