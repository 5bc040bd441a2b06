/**
 * @module @livematrix/spec
 * Reference code of the Live Matrix protocol v1 (SPEC.md): the one implementation of the
 * primitives that the gateway, the device SDK, the broker plugin and the conformance suite share.
 * Every name is listed here on purpose (no `export *`). Subpaths hold what not every user needs:
 * `@livematrix/spec/engine` (WebAssembly kernels, worker threads, revision tables),
 * `@livematrix/spec/transport` (frames over MQTT.js, TLS), `@livematrix/spec/keyfile` (identity files),
 * `@livematrix/spec/keystore` (identity keys behind a key store, also exported here).
 */

// reason codes (SPEC §7.6), the wire error type and toLmError
export { ConfigError, LmError, REASON_WIRE_NAMES, Reason, errorMessage, fail, isReasonCode, reasonName, toLmError, type ReasonCode, type ReasonName } from './errors.js';

// byte helpers
export { ascii, clipUtf8, concatBytes, equalBytes, fromHex, randomBytes, toHex, u32be, utf8Length, wipe } from './bytes.js';

// the deterministic CBOR profile (SPEC §6)
export { LIMITS, decodeCbor, encodeCbor, type CborValue } from './cbor.js';

// session parameters and the revision clock (SPEC §2, §3)
export { MAX_HINT_BYTES, PROTOCOL_VERSION, RANGES, SUITES, SUITE_NAMES, Suite, ambiguityChance, checkRevision, isSuite, minHintLength, revisionAt, senderRevision, suiteByName, validateParams, type SessionParams, type SuiteId } from './params.js';

// frames checked against their session's parameters (SPEC §7.2, [LM-FRAME-15] .. [LM-FRAME-19])
export { acceptFault, hintsFault } from './session-rules.js';

// the hint function and the reference (per-hash) inversion (SPEC §5.1)
export { ReferenceTable, blake3Message, hint, hintDigest, hintInput, hintSymbols, scanResolve, type Lookup } from './hint.js';

// packing and shifted symbols (SPEC §5.2, [LM-DLV-11])
export { pack, shiftedSymbol, splitShifted, symbolCount, unpack } from './pack.js';

// the key schedule and ratchet (SPEC §4)
export { Ratchet, deriveSessionKeys, ecdh, hkdf, transcriptHash, x25519KeyPair, type RevisionKeys, type SessionKeys, type X25519KeyPair } from './keys.js';

// the content layer: chunks, key wraps, telemetry (SPEC §7.4, §7.5)
export { TAG_LENGTH, TELEMETRY_MAX, openChunk, openTelemetry, sealChunk, sealTelemetry, unwrapChunkKey, wrapChunkKey } from './aead.js';

// frames: types, encoding, authentication; bodies and their schemas (SPEC §7)
export { AUTH_KINDS, ControlOp, type ControlOpId, FRAME_TYPE_NAMES, FrameType, MAC_LENGTH, MAX_FRAME, SIG_LENGTH, decodeFrame, digest, encodeFrame, frameMac, verifyFrame, type AnyFrame, type AuthKind, type Frame, type FrameTypeId, type FrameTypeName, type Signer, type VerifyKeys } from './frames.js';
export { ID_RE, RECEIPT_MAX, SCHEMAS, SVC_MAX, TICKET_MAX, type SvcReqBody, type SvcRespBody, type StatusBody, STATUS_TEL_MAX, type RevokeBody, type AcceptBody, type AckBody, type AlarmBody, type Bodies, type ByeBody, type Caps, type ControlBody, type EndBody, type ErrorBody, type HelloBody, type HintsBody, type KeyBody, type OfferBody, type ReceiptBody, type TelemetryBody, type TimeReqBody, type TimeRespBody } from './frame-schemas.js';

// Ed25519 identities
export { edPublicToX25519, edSecretToX25519, identityKeyPair, sign, verify, type IdentityKeyPair } from './identity.js';
// identity keys behind a key store (a secure element); also `@livematrix/spec/keystore`
export { KeyStoreMismatchError, agreeWith, checkKeyStore, frameSigner, isKeyStore, keyStoreOf, memoryKeyStore, signWith, signingKey, type IdentityKey, type IdentityKeyStore, type IdentitySigner, type SigningKey } from './keystore.js';

// signed streaming transactions and sealed licences (SPEC §11)
export { TX_MAX_VALIDITY_MS, createTx, decodeTx, openLicence, sealLicence, signTx, verifyTx, type SealedLicence, type SignedTx, type TxBody, type TxContext, type TxRequest } from './tx.js';

// time synchronisation (SPEC §8)
export { bestSample, checkSkew, skewBound, syncResult, type SyncResult, type TimeSample } from './timesync.js';

// capability negotiation (SPEC §12)
export { DEFAULT_SYMBOLS_PER_FRAME, SUITE_PREFERENCE, TABLE_BYTES_PER_ENTRY, defaultChunk, largestWidth, negotiate, type NegotiationPolicy } from './negotiate.js';

// the MQTT topic tree and QoS (SPEC §10)
export { FRAME_QOS, TOPIC_FRAMES, TOPIC_ROOT, parseTopic, topics, type ParsedTopic, type TopicKind } from './topics.js';

// machine state outside sessions: STATUS states, the boot sequence's rules (SPEC §10.2)
export { DEFAULT_STATUS_INTERVAL_MS, DEVICE_STATE_NAMES, DeviceState, isStaleBye, statusRefusal, type DeviceStateId, type DeviceStateName, type StatusContext, type StatusFrame } from './status.js';

// connect tokens of the broker profile (SPEC §10.1)
export { CLIENT_ID_PREFIX, ROLE_NAMES, Role, decodeConnectToken, makeConnectToken, verifyConnectToken, type ConnectToken, type RoleId, type RoleName } from './token.js';


// timers the roles' sub-machines take injected
export { noTimer, systemTimers, type Cancel, type Timers } from './timers.js';

// licences: resume tickets and revocation lists (SPEC §11.4, §11.5)
export { decodeTicket, signTicket, ticketId, verifyTicket, type SignedTicket, type TicketBody, type TicketContext } from './ticket.js';
export { REVOCATION_PERIOD_MS, Revocations, signRevocation, verifyRevocation, type RevocationRequest } from './revocation.js';

// the receipt ledger: hash-chained records of verified RECEIPTs (SPEC §11.6)
export { LEDGER_GENESIS, LEDGER_MAX_RECORD, checkLedgerEntry, decodeLedgerRecord, encodeLedgerRecord, ledgerHash, nextRecord, summarizeLedger, verifyLedger, type LedgerEntry, type LedgerJobSummary, type LedgerPrint, type LedgerProblem, type LedgerProblemKind, type LedgerRecord, type LedgerRecordFields, type LedgerVerdict, type VerifyLedgerOptions } from './ledger.js';

// protected jobs: owner-side encryption, segments among decoys, the epoch layer, the content chain (SPEC §16)
export {
  ContentKeys, NO_LICENCE, PROTECTED_VERSION, SEGMENT_GRANULARITY, UPLOAD_CHUNK, contentChain, decoyCount, epochKey, jobDigestKey, keyedJobDigest, nextEpochChain, openEnvelope, openOuter, openProtectedChunk,
  sealOuter, sealProtectedChunk, sealUpload, signDelete, signDeletionReceipt, verifyDelete, verifyDeletionReceipt, verifyUpload,
  type DeleteBody, type DeletionReceipt, type Playbook, type Segment, type SignedUpload, type UploadBody, type UploadOptions,
} from './protected.js';

// services of protected jobs over the broker: ops, sealed arguments and results, the deleted job's segment list (SPEC §16.1)
export {
  SVC_OP_NAMES, SVC_PART, SVC_SEAL_OVERHEAD, SVC_WINDOW_MS, SvcOp, isSvcOp, signSegmentList, svcKey, svcOpen, svcOpenValue, svcSeal, svcSealValue, svcShared, verifySegmentList,
  type SvcOpId, type SvcOpName,
} from './service.js';
