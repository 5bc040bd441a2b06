/**
 * @module scenarios
 * Device profile scenarios. Each declares the requirement IDs it covers (constants generated
 * from spec/requirements.json) and throws an Error saying what the device did wrong. The groups
 * live in this folder; DEVICE_SCENARIOS runs them in one fixed order that reports and tests rely on.
 */
import type { Scenario } from './common.js';
import { ambiguityNack, everySuite, tableNotReady, deliverW12Keccak, deliverW16Blake3, deliverW20Sha3, hello, shiftedResend, unknownHintNack } from './delivery.js';
import { licenceSealedElsewhere, offerFlood, zeroEphemeral, paramsOutOfRange, refusalSigned, servesAfterRefusal, txBadSignature, txExpired, txOtherDevice, txOtherGateway, txPrintCount, txUnsigned, txUntrustedOperator } from './refusals.js';
import { offerReplay, resumeNeedsTicket, resumeWithoutInterruption, revokedTx, setupCountsNothing, ticketResumesOnce } from './licences.js';
import { protectedJob } from './protected.js';
import { restartKeepsLicence, unauthenticatedAdvisory } from './restart.js';
import { bootSequence, deviceStatus } from './state.js';
import { expiredKey, expiredRevision, futureRevision } from './revisions.js';
import { duplicateReorder, silentGateway, unknownSession, garbageIn, liveness, lossResend, padding, reconnect, tamperedChunk, tamperedFrame } from './resilience.js';
import { abort, alarm, backPressure, endDigestMismatch, pauseResume, rateAlarm, skewBeyondGrace, skewInGrace, skewMidSession, slowTimeSync, telemetry, timeSyncFirst } from './flow.js';

export type { Ctx, Scenario } from './common.js';

export const DEVICE_SCENARIOS: readonly Scenario[] = [
  hello,
  deliverW16Blake3,
  deliverW12Keccak,
  deliverW20Sha3,
  everySuite,
  tableNotReady,
  protectedJob,
  txUnsigned,
  txBadSignature,
  txExpired,
  txOtherDevice,
  txUntrustedOperator,
  refusalSigned,
  servesAfterRefusal,
  offerFlood,
  liveness,
  txPrintCount,
  offerReplay,
  resumeNeedsTicket,
  resumeWithoutInterruption,
  setupCountsNothing,
  ticketResumesOnce,
  revokedTx,
  txOtherGateway,
  licenceSealedElsewhere,
  paramsOutOfRange,
  zeroEphemeral,
  ambiguityNack,
  shiftedResend,
  rateAlarm,
  unknownHintNack,
  lossResend,
  duplicateReorder,
  expiredRevision,
  futureRevision,
  expiredKey,
  tamperedFrame,
  tamperedChunk,
  padding,
  skewInGrace,
  skewBeyondGrace,
  slowTimeSync,
  skewMidSession,
  timeSyncFirst,
  backPressure,
  abort,
  endDigestMismatch,
  unknownSession,
  pauseResume,
  alarm,
  unauthenticatedAdvisory,
  telemetry,
  garbageIn,
  reconnect,
  silentGateway,
  restartKeepsLicence,
  deviceStatus,
  bootSequence,
];
