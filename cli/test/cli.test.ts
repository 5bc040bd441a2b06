/**
 * The `livematrix` command as an operator runs it: keys, a signed transaction, a device process
 * writing to a file, and a job streamed from standard input, over a real aedes broker on
 * loopback. Runs the built CLI (npm test builds first).
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, publicKey } from './cli-harness.js';
import { GCODE, aedes } from './harness.js';

describe('livematrix CLI', () => {
  it('--help helps; an unknown command is a usage error (exit 2)', async () => {
    const h = await cli(['--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/Commands:[\s\S]*stream/);
    const s = await cli(['stream', '--help']);
    expect(s.code).toBe(0);
    expect(s.out).toMatch(/standard input/);
    const bad = await cli(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unknown command "frobnicate"/);
    const missing = await cli(['stream', join(tmpdir(), 'no-such.gcode'), '--device', 'x', '--tx', 'x']);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/no such file/);
  });

  it('keygen, sign, device and `stream -` deliver a slicer file byte-identical', async () => {
    const broker = await aedes();
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-'));
    const file = join(GCODE, 'cylinder_annular.gcode');
    let device: ReturnType<typeof cli> | undefined;
    try {
      const [op, gw, dev] = await Promise.all([
        cli(['keygen', '--id', 'operator', '--out', join(dir, 'op.json')]),
        cli(['keygen', '--id', 'gw-1', '--out', join(dir, 'gw.json')]),
        cli(['keygen', '--id', 'printer-1', '--out', join(dir, 'dev.json')]),
      ]);
      for (const k of [op, gw, dev]) expect(k.code).toBe(0);
      const signed = await cli(['sign', '--operator', join(dir, 'op.json'), '--job', file, '--device', 'printer-1', '--device-key', publicKey(dev),
        '--gateway-key', publicKey(gw), '--rate', '100000000', '--burst', '100000000', '--out', join(dir, 'tx.json')]);
      expect(signed.code, signed.err).toBe(0);
      const out = join(dir, 'out.gcode');
      device = cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', publicKey(op), '--out', out, '--once', '--url', broker.url]);
      const streamed = await cli(['stream', '-', '--device', 'printer-1', '--tx', join(dir, 'tx.json'), '--identity', join(dir, 'gw.json'),
        '--operator-key', publicKey(op), '--url', broker.url, '--w', '16'], { stdin: file });
      expect(streamed.code, streamed.err).toBe(0);
      const report = JSON.parse(streamed.out.trim().split('\n').pop()!) as { bytes: number; receipt: { bytes: number } };
      expect(report.receipt.bytes).toBe(readFileSync(file).length);
      const d = await device;
      expect(d.code, d.err).toBe(0);
      expect(existsSync(out + '.part')).toBe(false);
      expect(readFileSync(out).equals(readFileSync(file))).toBe(true);
    } finally {
      device?.kill();
      await broker.close();
    }
  }, 60_000);
});
