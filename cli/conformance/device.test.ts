/**
 * The device profile against `livematrix device` as a vendor runs it: a process that writes what
 * it prints to a file at a printer's pace, kept running by a supervisor loop (as systemd would).
 * Over MQTT 3.1.1 behind `livematrix broker --registry` (connect tokens; the suite connects as a
 * registered gateway), and over MQTT 5 through Mosquitto (`--mqtt 5` on both sides, [LM-MQTT-3],
 * [LM-MQTT-7]). The suite restarts the device with `kill -9` through --restart-cmd, so that the
 * licence state across a crash ([LM-LIC-2]) and the resume of a cut-off print ([LM-DLV-10]) are
 * checked.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mosquittoPath, startMosquitto } from '@livematrix/testkit';
import { CLI, type Running, cli, keys } from '../test/cli-harness.js';
import { DEVICE_IDS, type ProfileRun, runProfile } from './kit.js';

const dir = mkdtempSync(join(tmpdir(), 'lm-conf-device-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const inCI = process.env['CI'] === 'true';
const haveMosquitto = mosquittoPath() !== undefined || inCI;
if (!haveMosquitto) console.warn('mosquitto is not installed: skipping the device profile over MQTT 5 through Mosquitto (apt-get install mosquitto; .ci/run installs it)');

/** The device's status interval, told to the suite too: device/status waits about that long for each STATUS (SPEC.md §10.2) */
const STATUS_MS = 1000;

/**
 * Runs `livematrix device` (in `sub`, under a supervisor loop that starts it again whenever it
 * exits) at `url`, and the device profile against it with --restart-cmd; then `more` with the
 * same device, if given. The device and its supervisor are stopped at the end.
 */
async function withDevice(sub: string, url: string, k: { op: string; dev: string }, mqtt: 4 | 5, suiteArgs: string[], more?: (base: string[]) => Promise<void>): Promise<ProfileRun> {
  const d = join(dir, sub);
  mkdirSync(d, { recursive: true });
  const pidFile = join(d, 'device.pid');
  const stopFile = join(d, 'stop');
  const script = [
    `while [ ! -f '${stopFile}' ]; do`,
    `  '${process.execPath}' '${CLI}' device --identity '${join(dir, 'dev.json')}' --operator-key ${k.op} --url "$URL" --mqtt ${mqtt} --out '${join(d, 'out.gcode')}' --rate 64000 --state '${join(d, 'state')}' --simulate-telemetry --status-interval ${STATUS_MS} 2>>'${join(d, 'device.log')}' &`,
    `  echo $! > '${pidFile}'`,
    '  wait $!',
    'done',
  ].join('\n');
  const supervisor = spawn('sh', ['-c', script], { env: { ...process.env, URL: url }, stdio: 'ignore' });
  const base = ['device', '--url', url, '--device', 'printer-1', '--device-key', k.dev, '--operator', join(dir, 'op.json'), '--consume-rate', '64000', '--mqtt', String(mqtt), '--status-interval', String(STATUS_MS), ...suiteArgs];
  try {
    const r = await runProfile([...base, '--restart-cmd', `kill -9 $(cat '${pidFile}')`, '--report', join(d, 'report')]);
    await more?.(base);
    return r;
  } finally {
    writeFileSync(stopFile, '');
    if (existsSync(pidFile)) spawn('sh', ['-c', `kill $(cat '${pidFile}') 2>/dev/null`]);
    if (supervisor.exitCode === null) await new Promise((res) => supervisor.once('exit', res));
  }
}

/** Every ID the device scenarios declare is PASS in `r`, but those in `except`; nothing FAILs. */
function expectAllPass(r: ProfileRun, except: string[]): void {
  expect(r.report.requirements.filter((q) => q.status === 'FAIL'), r.stderr.slice(-4000)).toEqual([]);
  // a test can fail with no requirement FAIL (it threw before its checks): name it
  expect(r.code, `${JSON.stringify(r.report.tests.filter((t) => t.status !== 'pass')).slice(0, 4000)}\n${r.stderr.slice(-3000)}`).toBe(0);
  const notPass = DEVICE_IDS().filter((id) => !except.includes(id) && r.report.requirements.find((q) => q.id === id)?.status !== 'PASS');
  expect(notPass, 'IDs the device scenarios declare that no check passed').toEqual([]);
  // the restart scenario ran
  expect(r.report.tests.find((t) => t.id === 'device/restart-keeps-licence')?.status).toBe('pass');
  // without --long the scenario over a minute is skipped: its ID stays NOT EXECUTED, it is not PASS
  expect(r.report.requirements.find((q) => q.id === 'LM-TIME-3')?.status).toBe('NOT EXECUTED');
}

let k: { op: string; gw: string; dev: string } | undefined;
const identities = async () => (k ??= await keys(dir, { gateway: 'gw-conf', device: 'printer-1' }));

describe('device profile against livematrix device (process)', () => {
  it('MQTT 3.1.1, livematrix broker --registry: passes every scenario, restart included; every ID the scenarios declare is PASS; --long adds [LM-TIME-3]', async () => {
    const ids = await identities();
    writeFileSync(join(dir, 'registry.json'), JSON.stringify({
      clients: [
        { id: 'printer-1', role: 'device', fleet: 'default', publicKey: ids.dev },
        { id: 'gw-conf', role: 'gateway', fleet: 'default', publicKey: ids.gw },
      ],
    }, null, 2));
    let broker: Running | undefined;
    try {
      broker = cli(['broker', '--port', '0', '--registry', join(dir, 'registry.json')]);
      const url = `mqtt://127.0.0.1:${(await broker.waitFor(/mqtt (\d+)/, 'out'))[1]!}`;
      const r = await withDevice('v4', url, ids, 4, ['--gateway', join(dir, 'gw.json')], async (base) => {
        // with --long the scenario over a minute runs (the device may resync only every 60 s; ours does every 30 s)
        const long = await runProfile([...base, '--long', '--only', '^device/skew-mid-session$', '--report', join(dir, 'v4', 'report-long')]);
        expect(long.code, long.stderr.slice(-2000)).toBe(0);
        expect(long.report.requirements.find((q) => q.id === 'LM-TIME-3')?.status).toBe('PASS');
      });
      // over MQTT 3.1.1 there is no Content Type: [LM-MQTT-7] is checked over MQTT 5 below
      expectAllPass(r, ['LM-MQTT-7', 'LM-TIME-3']);
      expect(r.report.requirements.find((q) => q.id === 'LM-MQTT-7')?.status).toBe('NOT EXECUTED');
      expect(readFileSync(join(dir, 'v4', 'report', 'junit.xml'), 'utf8')).toContain('failures="0"');
    } finally {
      broker?.kill('SIGTERM');
      await broker?.catch(() => undefined);
    }
  }, 240_000);

  it.runIf(haveMosquitto)('MQTT 5 through Mosquitto: passes every scenario; every ID the scenarios declare is PASS, Content Type [LM-MQTT-7] included', async () => {
    const ids = await identities();
    const mosquitto = await startMosquitto();
    try {
      const r = await withDevice('v5', mosquitto.url, ids, 5, []);
      expectAllPass(r, ['LM-TIME-3']);
      expect(r.report.requirements.find((q) => q.id === 'LM-MQTT-7')?.status).toBe('PASS');
      expect(r.report.target).toMatch(/MQTT 5/);
    } finally {
      await mosquitto.close();
    }
  }, 180_000);

  it('a usage error exits 2 and says what is wrong', async () => {
    const usage = await runProfile(['device', '--url', 'mqtt://127.0.0.1:1', '--device', 'x', '--device-key', 'zz', '--operator', join(dir, 'op.json')], false);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--device-key must be 64 hex digits/);
  });
});
