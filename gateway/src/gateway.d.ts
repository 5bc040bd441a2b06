/**
 * @module gateway
 * The sender side of Live Matrix: signed jobs to devices as hints, paced by the device's
 * acknowledgements in a window, re-sent on NACK and timeout in a current revision, chunk keys
 * just in time, alarms, telemetry in, a report per stream.
 */
import { EventEmitter } from 'node:events';
import { type AnyFrame, type Caps, LmError, MatrixEngine, type NegotiationPolicy, type SessionParams, type SignedTx, type IdentityKeyPair, type HelloBody } from '@livematrix/spec';
import { type BrokerAuth, FrameLink } from '@livematrix/device-sdk';
export interface GatewayOptions {
    url: string;
    fleet: string;
    id: string;
    identity: IdentityKeyPair;
    /** operator keys whose transactions this gateway honours ([LM-TX-3]) */
    trustedOperators: readonly Uint8Array[];
    /** hashing workers for telemetry; default one per core */
    workers?: number;
    protocolVersion?: 4 | 5;
    clock?: () => number;
    /** how to authenticate to the broker: 'token' for a broker with the Live Matrix plugin, or a user name and password */
    brokerAuth?: BrokerAuth;
}
export interface StreamOptions {
    /** negotiation policy ([LM-CAP-2]); `w` forces a width */
    policy?: NegotiationPolicy & {
        w?: number;
    };
    /** ms to wait for the device's HELLO; default 10000 */
    helloTimeout?: number;
    /** frames in flight at once on the MQTT client; default 64 */
    concurrency?: number;
    /** metrics hook: a HINTS frame went out (benchmarks measure hint latency with it) */
    onFrameSent?: (seq: number, resend: boolean) => void;
}
export interface StreamReport {
    device: string;
    job: string;
    bytes: number;
    frames: number;
    framesSent: number;
    resends: number;
    symbolsResent: number;
    wireBytes: number;
    revisions: number;
    seconds: number;
    params: SessionParams;
    alarms: number;
    receipt: {
        digest: string;
        bytes: number;
    };
}
export interface GatewayStreamEvents {
    progress: [{
        consumed: number;
        total: number;
        sent: number;
        revision: number;
    }];
    telemetry: [Record<string, unknown>];
    alarm: [{
        code: number;
        detail: string;
        observed?: number;
        limit?: number;
    }];
    error: [LmError];
    done: [StreamReport];
}
/** One stream from this gateway to one device. */
export declare class GatewayStream extends EventEmitter<GatewayStreamEvents> {
    private readonly gw;
    readonly device: string;
    private readonly plaintext;
    readonly tx: SignedTx;
    private readonly licence;
    private readonly opts;
    readonly sid: Uint8Array<ArrayBufferLike> & Uint8Array<ArrayBuffer>;
    params: SessionParams;
    private keys;
    private g2d;
    private d2g;
    private sendKeys;
    private readonly telemetryKeys;
    private readonly frames;
    private readonly chunks;
    private nextChunk;
    private consumed;
    private credit;
    private started;
    private firstAck;
    private paused;
    private alarmed;
    private ended;
    private endSent;
    private resends;
    private symbolsResent;
    private framesSent;
    private wireBytes;
    private readonly revisionsUsed;
    private timer;
    private readonly queue;
    private resolveDone;
    private rejectDone;
    readonly done: Promise<StreamReport>;
    private offerBytes;
    private ephemeral;
    private t0;
    private pump;
    private readonly kernel;
    constructor(gw: Gateway, device: string, plaintext: Uint8Array, tx: SignedTx, licence: Uint8Array, opts: StreamOptions);
    private get inTopic();
    /** Offer, then stream. @internal */
    begin(hello: HelloBody): Promise<void>;
    /** @internal */
    onFrame(f: AnyFrame, raw: Uint8Array): Promise<void>;
    private onAccept;
    private keysNow;
    /** Cuts chunks into frames while the window allows ([LM-DLV-5]) and sends them. */
    private kick;
    private fill;
    private sendHints;
    private onAck;
    private ackedUpTo;
    private wiped;
    /** NACKed frames waiting for a later revision: seq -> symbols (all when undefined) */
    private readonly retry;
    private flushRetries;
    private sendKey;
    private maybeEnd;
    private onTimer;
    private lastEnd;
    private onTelemetry;
    private onReceipt;
    private alarm;
    /** Pauses, resumes or aborts from the gateway side ([LM-DLV-9]). */
    control(op: number): Promise<void>;
    private send;
    fail(e: LmError, tell?: boolean): void;
    private finish;
}
export interface GatewayEvents {
    reject: [{
        code: number;
        detail: string;
    }];
    log: [string];
}
/**
 * A gateway: verifies transactions, negotiates with devices and streams jobs to them.
 *
 * @example
 * const gw = await Gateway.start({ url, fleet: 'f1', id: 'gw-1', identity, trustedOperators: [opk] });
 * const s = await gw.stream('printer-1', gcode, tx, licence); const report = await s.done;
 */
export declare class Gateway extends EventEmitter<GatewayEvents> {
    readonly o: GatewayOptions;
    link: FrameLink;
    readonly engine: MatrixEngine;
    readonly clock: () => number;
    private readonly hellos;
    private readonly helloWaiters;
    private readonly streams;
    private readonly prints;
    private constructor();
    static start(o: GatewayOptions): Promise<Gateway>;
    log(line: string): void;
    private onPayload;
    /** The device's latest HELLO (waits for it up to timeout ms). */
    hello(device: string, timeout?: number): Promise<HelloBody>;
    /**
     * Streams a job to a device under a signed transaction ([LM-TX-2]..[LM-TX-7]). Resolves with
     * the running stream; its `done` resolves with the report after the device's signed receipt.
     */
    stream(device: string, plaintext: Uint8Array, txBytes: Uint8Array, licence: Uint8Array, opts?: StreamOptions): Promise<GatewayStream>;
    /** @internal */
    streamEnded(s: GatewayStream): void;
    stop(): Promise<void>;
}
export type { Caps };
//# sourceMappingURL=gateway.d.ts.map