/**
 * @module @livematrix/gateway
 * The sender side of Live Matrix: `Gateway.start(...)`, then `gateway.stream(device, job, tx,
 * licence)` streams a signed job to a device as hints and resolves with a report.
 */
export { Gateway, GatewayStream, type GatewayOptions, type StreamOptions, type StreamReport, type GatewayEvents, type GatewayStreamEvents } from './gateway.js';
export { BytesSource, StreamSource, type JobSource, type JobStream, type StreamSourceOptions } from './source.js';
