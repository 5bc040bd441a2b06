/**
 * @module @livematrix/gateway
 * The sender side of Live Matrix. This release exposes the protocol primitives a gateway uses,
 * from the shared reference code; jobs, streaming and telemetry are built on them (see the
 * project's issues).
 */
export {
  decodeFrame, encodeFrame, verifyFrame, FrameType, Ratchet, deriveSessionKeys, ecdh, x25519KeyPair,
  transcriptHash, pack, hintSymbols, sealChunk, wrapChunkKey, openTelemetry, senderRevision, negotiate,
  createTx, verifyTx, identityKeyPair, topics, LmError, Reason,
} from '@livematrix/spec';
