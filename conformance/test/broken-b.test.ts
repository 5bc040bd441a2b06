/**
 * Proof that the suite can fail: devices built on the SDK with one deliberate violation each
 * fail exactly the scenarios aimed at that violation, and pass the rest.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceFaults } from '@livematrix/device-sdk';
import { failuresWith } from './harness.js';

const cases: [keyof DeviceFaults, string[]][] = [['keepExpiredKeys', ['device/expired-key']], ['ignorePadding', ['device/padding']], 
  // a device that guesses instead of NACKing never asks for the shifted re-send either
  ['noAmbiguityNack', ['device/ambiguity-nack', 'device/shifted-resend']], ['skipRateCheck', ['device/rate-alarm']]];

describe('broken devices fail exactly what is aimed at them', () => {
  for (const [fault, aimed] of cases) {
    it(`${fault} fails ${aimed.join(', ')} and nothing else`, async () => {
      const { ids, why } = await failuresWith(fault);
      expect(ids, why).toEqual(aimed);
    }, 180_000);
  }
});
