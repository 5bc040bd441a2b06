/**
 * The device profile against the unmodified device SDK over Mosquitto (MQTT 5): every scenario
 * passes. Runs whenever Mosquitto is installed, says so when it is not, and fails under CI without it.
 */
import { describe, expect, it } from 'vitest';
import { mosquittoPath, startMosquitto } from '@livematrix/testkit';
import { runAgainst } from './harness.js';

const have = mosquittoPath() !== undefined || process.env['CI'] === 'true';
if (!have) console.warn('Mosquitto is not installed: skipping the device profile over Mosquitto (apt-get install mosquitto; .ci/run installs it)');

describe('device profile against the device SDK', () => {
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
