/**
 * Test harness: a real broker on loopback, a gateway and a device from this repository, and a
 * signed transaction. No mocks.
 */
import { type ChildProcess } from 'node:child_process';
import { type RunningBroker } from '@livematrix/broker';
import { Device, type DeviceOptions, type IncomingStream } from '@livematrix/device-sdk';
import { type Caps, MatrixEngine, type IdentityKeyPair } from '@livematrix/spec';
import { Gateway, type GatewayStream, type StreamOptions } from '../src/index.js';
export declare const GCODE: string;
export declare const CAPS: Caps;
export interface Rig {
    url: string;
    engine: MatrixEngine;
    operator: IdentityKeyPair;
    deviceKeys: IdentityKeyPair;
    gatewayKeys: IdentityKeyPair;
    device: Device;
    gateway: Gateway;
    close(): Promise<void>;
}
export declare function rig(url: string, engine: MatrixEngine, dev?: Partial<DeviceOptions>, protocolVersion?: 4 | 5): Promise<Rig>;
export declare function sign(r: Rig, data: Uint8Array, o?: {
    rate?: number;
    burst?: number;
    notAfter?: number;
}): {
    tx: import("@livematrix/spec").SignedTx;
    licence: Uint8Array;
};
export interface Run {
    gs: GatewayStream;
    stream: IncomingStream;
    output: Promise<Uint8Array>;
}
/** Starts a stream; the device's consumer reads at most `rate` bytes/s (default: as fast as it can). */
export declare function run(r: Rig, data: Uint8Array, opts?: StreamOptions & {
    rate?: number;
    txRate?: number;
    burst?: number;
}): Promise<Run>;
export declare function freePort(): Promise<number>;
export declare function aedes(port?: number): Promise<RunningBroker>;
/** Path of the mosquitto binary, or undefined. */
export declare function mosquittoPath(): string | undefined;
/** Starts Mosquitto on a free loopback port with a config of its own. */
export declare function mosquitto(): Promise<{
    url: string;
    proc: ChildProcess;
    close(): Promise<void>;
}>;
/** Waits until something listens on 127.0.0.1:port (about 5 s at most). */
export declare function waitForPort(port: number, failed?: () => string | undefined): Promise<void>;
//# sourceMappingURL=harness.d.ts.map