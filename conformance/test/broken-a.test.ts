/**
 * Proof that the suite can fail: devices built on the SDK with one deliberate violation each
 * fail exactly the scenarios aimed at that violation, and pass the rest.
 */
import { brokenDeviceTests } from './harness.js';

brokenDeviceTests([
  ['acceptExpiredRevision', ['device/expired-revision']],
  ['skipTxSignature', ['device/tx-bad-signature']],
  ['ackBeforeConsume', ['device/back-pressure']],
  ['misreadShifted', ['device/shifted-resend']],
]);
