/**
 * @module @livematrix/device-sdk
 * The machine side of Live Matrix: `Device.start(...)` connects to any MQTT 3.1.1 or 5 broker,
 * announces the device, accepts signed streams and hands their bytes to the machine in order.
 * Phase implementations, for advanced use (`DeviceOptions.phases`), are in
 * `@livematrix/device-sdk/phases`.
 */
export { Device, SOFTWARE, type DeviceOptions, type DeviceEvents } from './device.js';
export { IncomingStream, type StreamEvents, type ProgressEvent, type RejectEvent } from './stream.js';
export type { ResumePoint } from './offer.js';
export { fileLicenceStore, memoryLicenceStore, type LicenceRecord, type LicenceStore, type StoredTicket } from './licences.js';
export type { PhaseFactories } from './phases.js';
export type { Clock } from './clock.js';
export { Control, type ControlOpId } from './frames.js';
export { NoSessionError, StreamReadError } from './errors.js';
// the transport and key files live in the shared layer: @livematrix/spec/transport, @livematrix/spec/keyfile
export type { BrokerAuth } from '@livematrix/spec/transport';
