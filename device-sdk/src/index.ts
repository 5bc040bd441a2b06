/**
 * @module @livematrix/device-sdk
 * The machine side of Live Matrix. This release exposes the protocol primitives a device uses,
 * from the shared reference code; the MQTT session, revision pipeline and consumer API are
 * built on them (see the project's issues).
 */
export {
  decodeFrame, encodeFrame, verifyFrame, FrameType, Ratchet, deriveSessionKeys, ecdh, x25519KeyPair,
  transcriptHash, unpack, openChunk, unwrapChunkKey, sealTelemetry, pack, hintSymbols, ReferenceTable,
  scanResolve, checkRevision, verifyTx, openLicence, syncResult, bestSample, checkSkew, identityKeyPair,
  topics, LmError, Reason,
} from '@livematrix/spec';
