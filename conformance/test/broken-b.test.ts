/**
 * Proof that the suite can fail: devices built on the SDK with one deliberate violation each
 * fail exactly the scenarios aimed at that violation, and pass the rest.
 */
import { describe, expect, it } from 'vitest';
import { startBroker } from '@livematrix/broker';
import type { DeviceFaults } from '@livematrix/device-sdk';
import { MatrixEngine, identityKeyPair } from '@livematrix/spec';
import { runDeviceProfile } from '../src/index.js';
import { startDut } from './harness.js';

const cases: [keyof DeviceFaults, string[]][] = [['keepExpiredKeys', ['device/expired-key']], ['ignorePadding', ['device/padding']], ['noAmbiguityNack', ['device/ambiguity-nack']]];

describe('broken devices fail exactly what is aimed at them', () => {
  for (const [fault, aimed] of cases) {
    it(`${fault} fails ${aimed.join(', ')} and nothing else`, async () => {
      const broker = await startBroker();
      const operator = identityKeyPair();
      const keys = identityKeyPair();
      const engine = new MatrixEngine({ workers: 1 });
      await engine.start();
      const dut = await startDut(broker.url, keys, operator.publicKey, engine, { rate: 64_000, faults: { [fault]: true } });
      try {
        const results = await runDeviceProfile({ url: broker.url, fleet: 'conf', deviceId: 'dut', devicePublic: keys.publicKey, operator, consumeRate: 64_000 });
        expect(results.filter((r) => r.status === 'fail').map((r) => r.id)).toEqual(aimed);
      } finally {
        await dut.stop();
        await engine.stop();
        await broker.close();
      }
    }, 180_000);
  }
});
