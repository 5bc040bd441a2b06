/**
 * @module @livematrix/device-sdk
 * The machine side of Live Matrix: `Device.start(...)` connects to any MQTT 3.1.1 or 5 broker,
 * announces the device, accepts signed streams and hands their bytes to the machine in order.
 */
export { Device, IncomingStream, SOFTWARE, type DeviceOptions, type DeviceFaults, type ResumePoint, type DeviceEvents, type StreamEvents, type ProgressEvent, type RejectEvent } from './device.js';
// the transport and key files live in the shared layer: @livematrix/spec/transport, @livematrix/spec/keyfile
export type { BrokerAuth } from '@livematrix/spec/transport';
