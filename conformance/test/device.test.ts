/**
 * The device profile against the unmodified device SDK: every scenario passes, over the embedded
 * aedes broker (MQTT 3.1.1) and over Mosquitto (MQTT 5).
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '@livematrix/broker';
import { mosquittoPath, startMosquitto } from '@livematrix/testkit';
import { identityKeyPair } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { DEVICE_SCENARIOS, buildReport, runDeviceProfile } from '../src/index.js';
import { startDut } from './harness.js';

async function runAgainst(url: string, v: 4 | 5) {
  const operator = identityKeyPair();
  const keys = identityKeyPair();
  const engine = new MatrixEngine({ workers: 2 });
  await engine.start();
  const dut = await startDut(url, keys, operator.publicKey, engine, { rate: 64_000, protocolVersion: v });
  try {
    return await runDeviceProfile({ url, fleet: 'conf', deviceId: 'dut', devicePublic: keys.publicKey, operator, consumeRate: 64_000, protocolVersion: v });
  } finally {
    await dut.stop();
    await engine.stop();
  }
}

describe('device profile against the device SDK', () => {
  it('passes every scenario over aedes (MQTT 3.1.1)', async () => {
    const broker = await startBroker();
    try {
      const results = await runAgainst(broker.url, 4);
      expect(results.map((r) => r.id)).toEqual(DEVICE_SCENARIOS.map((s) => s.id));
      expect(results.filter((r) => r.status === 'fail')).toEqual([]);
      const report = buildReport('device', 'sdk', results);
      expect(report.passed).toBe(true);
      expect(report.requirements.filter((q) => q.status === 'FAIL')).toEqual([]);
      // the licence scenarios ran and passed: their IDs are PASS ([LM-LIC-1], [LM-LIC-3], [LM-LIC-4], [LM-LIC-5], [LM-REVOKE-3])
      const st = (id: string) => report.requirements.find((q) => q.id === id)?.status;
      expect(['LM-LIC-1', 'LM-LIC-3', 'LM-LIC-4', 'LM-LIC-5', 'LM-REVOKE-3'].map(st)).toEqual(['PASS', 'PASS', 'PASS', 'PASS', 'PASS']);
    } finally {
      await broker.close();
    }
  }, 180_000);

  const have = mosquittoPath() !== undefined || process.env['CI'] === 'true';
  it.runIf(have)('passes every scenario over Mosquitto (MQTT 5)', async () => {
    const broker = await startMosquitto();
    try {
      const results = await runAgainst(broker.url, 5);
      expect(results.filter((r) => r.status === 'fail')).toEqual([]);
    } finally {
      await broker.close();
    }
  }, 180_000);
});
