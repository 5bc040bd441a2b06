/**
 * Proof that the suite can fail: devices built on the SDK with one deliberate violation each
 * fail exactly the scenarios aimed at that violation, and pass the rest.
 */
import { brokenDeviceTests } from './harness.js';

brokenDeviceTests([
  ['keepExpiredKeys', ['device/expired-key']],
  ['ignorePadding', ['device/padding']],
  // a device that guesses instead of NACKing never asks for the shifted re-send either
  ['noAmbiguityNack', ['device/ambiguity-nack', 'device/shifted-resend']],
  ['skipRateCheck', ['device/rate-alarm']],
  // a gateway, which holds no licence, could make the keys such a device takes
  ['unwrapUnderHintLayer', ['device/protected-job']],
]);
