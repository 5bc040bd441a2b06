/**
 * @module engine/protocol
 * Messages between the engine and its worker threads.
 */
import type { SuiteId } from '../params.js';
import type { BuildPlan } from './build.js';

export type Task =
  | { op: 'partition'; suite: SuiteId; hk: Uint8Array; plan: BuildPlan; wi: number; entries: SharedArrayBuffer; scratch: SharedArrayBuffer; marks: SharedArrayBuffer }
  | { op: 'finish'; plan: BuildPlan; entries: SharedArrayBuffer; scratch: SharedArrayBuffer; offsets: SharedArrayBuffer; marks: SharedArrayBuffer; starts: SharedArrayBuffer; ctl: SharedArrayBuffer }
  | { op: 'wipe'; buffer: SharedArrayBuffer; start: number; end: number }
  | { op: 'lookup'; suite: SuiteId; w: number; L: number; compact: boolean; hk?: Uint8Array; entries: SharedArrayBuffer; offsets: SharedArrayBuffer; hints: SharedArrayBuffer; out: SharedArrayBuffer; start: number; end: number }
  | { op: 'scan'; suite: SuiteId; w: number; hk: Uint8Array; start: number; end: number; wanted: Uint32Array; mask: number }
  | { op: 'bench'; suite: SuiteId; ms: number };

export type Reply =
  | { ok: true; matches?: number[]; hashes?: number; seconds?: number; overflow?: boolean }
  | { ok: false; error: string };

export interface Envelope<T> {
  id: number;
  msg: T;
}
