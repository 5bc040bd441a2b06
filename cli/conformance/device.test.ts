/**
 * The device profile against `livematrix device` as a vendor runs it: a process that writes what
 * it prints to a file at a printer's pace, kept running by a supervisor loop (as systemd would),
 * behind `livematrix broker --registry` (connect tokens). The suite connects as a registered
 * gateway, and restarts the device with `kill -9` through --restart-cmd, so that the licence
 * state across a crash ([LM-LIC-2]) and the resume of a cut-off print ([LM-DLV-10]) are checked.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, type Running, cli, keys } from '../test/cli-harness.js';
import { DEVICE_IDS, runProfile } from './kit.js';

const dir = mkdtempSync(join(tmpdir(), 'lm-conf-device-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('device profile against livematrix device (process, broker with registry)', () => {
  it('passes every scenario, restart included; every ID the scenarios declare is PASS', async () => {
    const k = await keys(dir, { gateway: 'gw-conf', device: 'printer-1' });
    writeFileSync(join(dir, 'registry.json'), JSON.stringify({
      clients: [
        { id: 'printer-1', role: 'device', fleet: 'default', publicKey: k.dev },
        { id: 'gw-conf', role: 'gateway', fleet: 'default', publicKey: k.gw },
      ],
    }, null, 2));
    let broker: Running | undefined;
    const pidFile = join(dir, 'device.pid');
    const stopFile = join(dir, 'stop');
    // the supervisor: starts the device again whenever it exits, until the stop file exists
    const script = [
      `while [ ! -f '${stopFile}' ]; do`,
      `  '${process.execPath}' '${CLI}' device --identity '${join(dir, 'dev.json')}' --operator-key ${k.op} --url "$URL" --out '${join(dir, 'out.gcode')}' --rate 64000 --state '${join(dir, 'state')}' --simulate-telemetry 2>>'${join(dir, 'device.log')}' &`,
      `  echo $! > '${pidFile}'`,
      '  wait $!',
      'done',
    ].join('\n');
    let supervisor: ReturnType<typeof spawn> | undefined;
    try {
      broker = cli(['broker', '--port', '0', '--registry', join(dir, 'registry.json')]);
      const url = `mqtt://127.0.0.1:${(await broker.waitFor(/mqtt (\d+)/, 'out'))[1]!}`;
      supervisor = spawn('sh', ['-c', script], { env: { ...process.env, URL: url }, stdio: 'ignore' });
      const r = await runProfile(['device', '--url', url, '--device', 'printer-1', '--device-key', k.dev, '--operator', join(dir, 'op.json'),
        '--gateway', join(dir, 'gw.json'), '--consume-rate', '64000', '--restart-cmd', `kill -9 $(cat '${pidFile}')`, '--report', join(dir, 'report')]);
      const failed = r.report.requirements.filter((q) => q.status === 'FAIL');
      expect(failed, r.stderr.slice(-4000)).toEqual([]);
      expect(r.code, r.stderr.slice(-4000)).toBe(0);
      // over MQTT 3.1.1 there is no Content Type: [LM-MQTT-7] is checked over MQTT 5 (conformance/test/device-mosquitto.test.ts)
      const notPass = DEVICE_IDS().filter((id) => id !== 'LM-MQTT-7' && id !== 'LM-TIME-3' && r.report.requirements.find((q) => q.id === id)?.status !== 'PASS');
      expect(r.report.requirements.find((q) => q.id === 'LM-MQTT-7')?.status).toBe('NOT EXECUTED');
      expect(notPass, 'IDs the device scenarios declare that no check passed').toEqual([]);
      // the restart scenario ran: it is in the report, with its two IDs
      expect(r.report.tests.find((t) => t.id === 'device/restart-keeps-licence')?.status).toBe('pass');
      expect(readFileSync(join(dir, 'report', 'junit.xml'), 'utf8')).toContain('failures="0"');
      // without --long the scenario over a minute is skipped: its ID stays NOT EXECUTED, it is not PASS
      expect(r.report.requirements.find((q) => q.id === 'LM-TIME-3')?.status).toBe('NOT EXECUTED');
      // with --long it runs (the device may resync only every 60 s; ours does every 30 s)
      const long = await runProfile(['device', '--url', url, '--device', 'printer-1', '--device-key', k.dev, '--operator', join(dir, 'op.json'),
        '--gateway', join(dir, 'gw.json'), '--consume-rate', '64000', '--long', '--only', '^device/skew-mid-session$', '--report', join(dir, 'report-long')]);
      expect(long.code, long.stderr.slice(-2000)).toBe(0);
      expect(long.report.requirements.find((q) => q.id === 'LM-TIME-3')?.status).toBe('PASS');
    } finally {
      writeFileSync(stopFile, '');
      if (existsSync(pidFile)) spawn('sh', ['-c', `kill $(cat '${pidFile}') 2>/dev/null`]);
      if (supervisor && supervisor.exitCode === null) await new Promise((res) => supervisor!.once('exit', res));
      broker?.kill('SIGTERM');
      await broker?.catch(() => undefined);
    }
  }, 240_000);

  it('a usage error exits 2 and says what is wrong', async () => {
    const usage = await runProfile(['device', '--url', 'mqtt://127.0.0.1:1', '--device', 'x', '--device-key', 'zz', '--operator', join(dir, 'op.json')], false);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--device-key must be 64 hex digits/);
  });
});
