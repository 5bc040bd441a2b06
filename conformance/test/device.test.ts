/**
 * The device profile against the unmodified device SDK: every scenario passes over the embedded
 * aedes broker (MQTT 3.1.1); device-mosquitto.test.ts runs it over Mosquitto (MQTT 5), in a file
 * of its own so that the two runs go side by side.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '@livematrix/broker';
import { DEVICE_SCENARIOS, buildReport } from '../src/index.js';
import { runAgainst } from './harness.js';

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
});
