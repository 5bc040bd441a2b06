/**
 * @module @livematrix/gateway
 * The sender side of Live Matrix: `Gateway.start(...)`, then `gateway.stream(device, job, tx,
 * licence)` streams a signed job to a device as hints and resolves with a report.
 */
export { Gateway, type GatewayOptions } from './gateway.js';
export { GatewayStream } from './stream.js';
export { Control, type ControlOpId, type FleetAlarm, type GatewayEvents, type GatewayStreamEvents, type StreamAlarm, type StreamOptions, type StreamProgress, type StreamReport } from './types.js';
export { DeviceOfflineError, DeviceSilentError, HelloTimeoutError, OfferRefusedError, OfferTimeoutError, GatewayStoppedError, StreamAbortedError, StreamBusyError } from './errors.js';
export { BytesSource, StreamSource, type JobSource, type JobStream, type StreamSourceOptions } from './source.js';
// durable licence state: print counts, sessions, tickets, the receipt ledger (SPEC §11.6), the revocation list
export { DEFAULT_LICENCE_DB, isPostgresUrl, openLicenceDb, type LicenceDb, type NewSession, type ReceiptAppend, type SessionRecord, type SessionState } from './db/index.js';
export { ProtectedSource, type KeyRelease, type PlaybookView, type ProtectedServices, type ReleaseRequest, type SegmentSource } from './protected.js';
