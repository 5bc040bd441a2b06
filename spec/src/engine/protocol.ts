/**
 * @module engine/protocol
 * Messages between the engine and its worker threads.
 */
import type { SuiteId } from '../params.js';

export type Task =
  | { op: 'hash'; suite: SuiteId; w: number; hk: Uint8Array; start: number; end: number; keys: SharedArrayBuffer; hist: SharedArrayBuffer; histOffset: number; b: number }
  | { op: 'scatter'; w: number; fine: number; start: number; end: number; keys: SharedArrayBuffer; cursor: SharedArrayBuffer; cursorOffset: number; entries: SharedArrayBuffer }
  | { op: 'sort'; entries: SharedArrayBuffer; offsets: SharedArrayBuffer; bStart: number; bEnd: number }
  | { op: 'wipe'; buffer: SharedArrayBuffer; start: number; end: number }
  | { op: 'scan'; suite: SuiteId; w: number; hk: Uint8Array; start: number; end: number; wanted: Uint32Array; mask: number }
  | { op: 'bench'; suite: SuiteId; ms: number };

export type Reply =
  | { ok: true; matches?: number[]; hashes?: number; seconds?: number }
  | { ok: false; error: string };

export interface Envelope<T> {
  id: number;
  msg: T;
}
