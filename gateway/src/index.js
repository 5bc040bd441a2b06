/**
 * @module @livematrix/gateway
 * The sender side of Live Matrix: `Gateway.start(...)`, then `gateway.stream(device, job, tx,
 * licence)` streams a signed job to a device as hints and resolves with a report.
 */
export { Gateway, GatewayStream } from './gateway.js';
//# sourceMappingURL=index.js.map