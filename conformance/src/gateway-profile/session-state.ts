/**
 * @module gateway-profile/session-state
 * The private state a {@link DeviceSession} shares with its phase modules (session-time,
 * session-ack, session-hints, session-chunks): what it knows of each HINTS frame and chunk, and
 * the bookkeeping its public fields do not show. Types only, and the suite's transit slack.
 */
import type { DeviceSession, HintsIn, SessionDevice, SessionInit } from './session.js';

export interface FrameState {
  seq: number;
  chunk: number;
  off: number;
  n: number;
  ctlen: number;
  known: Uint32Array;
  vals: Uint32Array;
  left: number;
  /** symbols NACKed as ambiguous or unknown, with the revision they failed in */
  failedIn: Map<number, number>;
  /** symbols whose latest failure was in a shifted re-send, with its revision ([LM-DLV-18]) */
  shiftFailed: Map<number, number>;
  /** the shifts that carried each symbol, by `${rev}:${symbol}` ([LM-DLV-18]) */
  shiftsUsed: Map<string, Set<number>>;
}

export interface ChunkState {
  j: number;
  ctlen: number;
  m: number;
  symbols: Uint32Array;
  have: Uint8Array;
  missing: number;
  frames: Set<number>;
  /** when an ACK first reported every frame of the chunk received */
  reportedAt?: number;
  key?: Uint8Array;
  keyAt?: number;
  opened: boolean;
  log: HintsIn[];
}

/** Time the suite allows a frame between the gateway and a device on top of δ/2 (ms). */
export const SLACK_MS = 250;

/** A session's private state; `session` is the session it belongs to (its public fields and methods). */
export interface SessionState {
  readonly session: DeviceSession;
  readonly dev: SessionDevice;
  readonly init: SessionInit;
  // time sync ([LM-TIME-4])
  /** TIME_REQs sent, by t1 → when they went out */
  readonly pendingTime: Map<number, number>;
  // delivery state
  readonly frames: Map<number, FrameState>;
  readonly chunks: Map<number, ChunkState>;
  readonly sendings: Map<number, number>;
  readonly pendingNacks: [number, number, number[]][];
  nextChunk: number;
  creditEdge: number;
  ackTimer: NodeJS.Timeout | undefined;
}
