/**
 * The gateway profile against `livematrix stream` as an operator runs it: `livematrix broker`
 * (without a registry, so that the suite's devices, with ids and keys drawn per run, can connect)
 * and the suite as a process whose --stream-cmd starts one `livematrix stream` per stream it
 * needs, with a licence database that lasts the run ({state}), and --ledger-cmd reading that
 * database's receipt ledger with `livematrix ledger verify --json` after the last stream;
 * `livematrix stream` prints the telemetry it accepts (--telemetry-in-output).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GATEWAY_TESTS } from '@livematrix/conformance';
import { CLI, type Running, cli, keys } from '../test/cli-harness.js';
import { runProfile } from './kit.js';

const dir = mkdtempSync(join(tmpdir(), 'lm-conf-gateway-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every ID the gateway tests declare. */
const GATEWAY_IDS = [...new Set(GATEWAY_TESTS.flatMap((t) => t.covers))].sort();

describe('gateway profile against livematrix stream (processes, livematrix broker)', () => {
  it('passes every test; every ID the tests declare is PASS; nothing FAILs', async () => {
    const k = await keys(dir, { gateway: 'gw-conf' });
    let broker: Running | undefined;
    try {
      broker = cli(['broker', '--port', '0']);
      const url = `mqtt://127.0.0.1:${(await broker.waitFor(/mqtt (\d+)/, 'out'))[1]!}`;
      const streamCmd = `'${process.execPath}' '${CLI}' stream {file} --device {device} --tx {tx} --identity '${join(dir, 'gw.json')}' --operator-key ${k.op} --url {url} --fleet {fleet} --db {state}/gw.db`;
      const t0 = Date.now();
      const ledgerCmd = `'${process.execPath}' '${CLI}' ledger verify --json --db {state}/gw.db`;
      const r = await runProfile(['gateway', '--url', url, '--operator', join(dir, 'op.json'), '--gateway-key', k.gw, '--stream-cmd', streamCmd, '--ledger-cmd', ledgerCmd, '--telemetry-in-output', '--report', join(dir, 'report')]);
      const ms = Date.now() - t0;
      const failed = r.report.requirements.filter((q) => q.status === 'FAIL').map((q) => `${q.id}: ${q.reason}`);
      expect(failed, r.stderr.slice(-4000)).toEqual([]);
      // a test can fail with no requirement FAIL (it threw before its checks): name it
      const failedTests = JSON.stringify(r.report.tests.filter((t) => t.status !== 'pass')).slice(0, 4000);
      expect(r.code, `${failedTests}\n${r.stderr.slice(-3000)}`).toBe(0);
      const notPass = GATEWAY_IDS.filter((id) => r.report.requirements.find((q) => q.id === id)?.status !== 'PASS');
      expect(notPass, 'IDs the gateway tests declare that no check passed').toEqual([]);
      expect(r.report.tests.map((t) => t.id).sort()).toEqual(GATEWAY_TESTS.map((t) => t.id).sort());
      expect(readFileSync(join(dir, 'report', 'junit.xml'), 'utf8')).toContain('failures="0"');
      expect(ms, 'the profile must run in under 2 minutes against the reference gateway').toBeLessThan(120_000);
    } finally {
      broker?.kill('SIGTERM');
      await broker?.catch(() => undefined);
    }
  }, 170_000);

  it('a stream or ledger command with a placeholder the suite does not know is a usage error (exit 2)', async () => {
    const usage = await runProfile(['gateway', '--url', 'mqtt://127.0.0.1:1', '--operator', join(dir, 'op.json'), '--stream-cmd', 'gw {file} {tx} {job}'], false);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--stream-cmd has placeholders the suite does not fill: \{job\}/);
    const ledger = await runProfile(['gateway', '--url', 'mqtt://127.0.0.1:1', '--operator', join(dir, 'op.json'), '--stream-cmd', 'gw {file} {tx}', '--ledger-cmd', 'gw-ledger {state} {device}'], false);
    expect(ledger.code).toBe(2);
    expect(ledger.stderr).toMatch(/--ledger-cmd has placeholders the suite does not fill: \{device\}/);
  });
});
