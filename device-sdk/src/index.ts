/**
 * @module @livematrix/device-sdk
 * The machine side of Live Matrix: `Device.start(...)` connects to any MQTT 3.1.1 or 5 broker,
 * announces the device, accepts signed streams and hands their bytes to the machine in order.
 * Phase implementations, for advanced use (`DeviceOptions.phases`), are in
 * `@livematrix/device-sdk/phases`. The machine link, a stream into a Marlin-style firmware over
 * a serial port, is in `@livematrix/device-sdk/machine` (it loads the `serialport` package).
 */
export { Device, SOFTWARE, type DeviceOptions, type DeviceEvents } from './device.js';
export { IncomingStream, type StreamEvents, type ProgressEvent, type RejectEvent } from './stream.js';
export type { ResumePoint } from './offer.js';
export { fileLicenceStore, memoryLicenceStore, type LicenceRecord, type LicenceStore, type StoredTicket } from './licences.js';
export type { PhaseFactories } from './phases.js';
export type { Clock } from './clock.js';
export { Control, type ControlOpId } from './frames.js';
export { NoSessionError, StatusReportError, StreamReadError } from './errors.js';
export { STATUS_INTERVAL_MS, type MachineCondition, type StatusReport } from './status.js';
// the transport, key files and key stores live in the shared layer: @livematrix/spec/transport,
// @livematrix/spec/keyfile (fileKeyStore), @livematrix/spec/keystore
export type { BrokerAuth, TlsOptions } from '@livematrix/spec/transport';
export type { IdentityKeyStore } from '@livematrix/spec/keystore';
