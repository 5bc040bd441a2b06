/**
 * The device profile against the unmodified device SDK over Mosquitto (MQTT 5): every scenario
 * passes and checks every requirement it declares. (Over aedes and MQTT 3.1.1 the profile runs
 * against the `livematrix device` process: cli/conformance/device.test.ts.) Runs whenever Mosquitto is installed, says so when it is not, and fails under CI without it.
 */
import { describe, expect, it } from 'vitest';
import { mosquittoPath, startMosquitto } from '@livematrix/testkit';
import { DEVICE_SCENARIOS, buildReport } from '../src/index.js';
import { runAgainst } from './harness.js';

const have = mosquittoPath() !== undefined || process.env['CI'] === 'true';
if (!have) console.warn('Mosquitto is not installed: skipping the device profile over Mosquitto (apt-get install mosquitto; .ci/run installs it)');

describe('device profile against the device SDK', () => {
  it.runIf(have)('passes every scenario over Mosquitto (MQTT 5)', async () => {
    const broker = await startMosquitto();
    try {
      const results = await runAgainst(broker.url, 5);
      expect(results.filter((r) => r.status === 'fail')).toEqual([]);
      // every scenario checked every ID it declares: none is declared and left unexercised
      // (the restart and the over-a-minute scenarios need --restart-cmd and --long, skipped here; cli/conformance/device.test.ts runs them)
      const ran = DEVICE_SCENARIOS.filter((s) => s.needs === undefined);
      expect(results.map((r) => r.id)).toEqual(ran.map((s) => s.id));
      const unchecked = ran.flatMap((s) => {
        const checked = new Set(results.find((r) => r.id === s.id)?.checks.map((c) => c.id));
        return s.covers.filter((id) => !checked.has(id)).map((id) => `${s.id}: ${id}`);
      });
      expect(unchecked, 'IDs a scenario declares but never checks').toEqual([]);
      const report = buildReport('device', 'sdk over Mosquitto', results);
      expect(report.requirements.filter((q) => q.status === 'FAIL')).toEqual([]);
    } finally {
      await broker.close();
    }
  }, 180_000);
});
