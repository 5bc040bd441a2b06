/**
 * @module types
 * The gateway's public vocabulary: stream options, the report, the event maps, and the CONTROL
 * operations a caller may send ([LM-DLV-9]).
 */
import type { HelloBody, LmError, NegotiationPolicy, SessionParams, StatusBody } from '@livematrix/spec';

export interface StreamOptions {
  /** negotiation policy ([LM-CAP-2]); `w` forces a width */
  policy?: NegotiationPolicy;
  /** ms to wait for the device's HELLO; default 10000 */
  helloTimeout?: number;
  /** frames in flight at once on the MQTT client; default 64 */
  concurrency?: number;
  /** bytes a stream job is read ahead of the device's window; default 8 MiB */
  readAhead?: number;
  /** metrics hook: a HINTS frame went out (benchmarks measure hint latency with it) */
  onFrameSent?: (seq: number, resend: boolean) => void;
  /** ms to wait for ACCEPT after an OFFER; default 10000 ([LM-FRAME-9]) */
  offerTimeout?: number;
  /** ms to keep offering to a device that refuses as `busy` (its previous session may be ending); default 15000 */
  busyWait?: number;
  /** ms without an authenticated frame from the device before the stream fails ([LM-DLV-13]); default 20000 */
  deviceTimeout?: number;
  /** ms after the device's Last Will before the stream fails unless the device is heard again or restarts ([LM-DLV-13]); default 10000 */
  offlineGrace?: number;
}

export interface StreamReport {
  device: string;
  job: string;
  bytes: number;
  frames: number;
  framesSent: number;
  resends: number;
  /** re-sends as shifted symbols within the revision ([LM-DLV-11]) */
  shiftedResends: number;
  /** re-sends of frames not acknowledged within 2 P */
  timeoutResends: number;
  symbolsResent: number;
  wireBytes: number;
  revisions: number;
  seconds: number;
  params: SessionParams;
  alarms: number;
  receipt: { digest: string; bytes: number };
  /** the receipt's record in the receipt ledger ([LM-LEDGER-1]): its sequence number and hash (hex) */
  ledger?: { seq: number; hash: string };
}

export interface StreamProgress {
  consumed: number;
  total: number;
  sent: number;
  revision: number;
}

export interface StreamAlarm {
  code: number;
  detail: string;
  observed?: number;
  limit?: number;
}

export interface GatewayStreamEvents {
  progress: [StreamProgress];
  telemetry: [Record<string, unknown>];
  alarm: [StreamAlarm];
  error: [LmError];
  done: [StreamReport];
}

/** An ALARM on the fleet's alarm topic ([LM-ALARM-6]): from a gateway or the broker. */
export interface FleetAlarm {
  /** the device it is about; undefined when the ALARM names none */
  device: string | undefined;
  code: number;
  detail: string;
  time: number;
}

export interface GatewayEvents {
  reject: [{ code: number; detail: string }];
  log: [string];
  /** a device's HELLO was accepted ([LM-MQTT-6]): it is online */
  hello: [string, HelloBody];
  /** a device's Last Will (BYE on its state topic): it is offline */
  offline: [string];
  /** a device's signed status, taken under [LM-STATE-6] (SPEC §10.2) */
  status: [string, StatusBody];
  /** an ALARM on the fleet's alarm topic (every one, this gateway's own included) */
  alarm: [FleetAlarm];
}

/** The CONTROL operations a gateway sends ([LM-DLV-9]): spec's ControlOp, under the name the gateway API has used. */
export { ControlOp as Control, type ControlOpId } from '@livematrix/spec';
