/**
 * @module fleet/api
 * The shapes of the fleet service's HTTP API ([LM-FLEET-5]) and of its live events, as the
 * dashboard and other clients see them. Every route but `/api/health`, `/openapi.json`,
 * `/metrics` and the dashboard's static files needs `Authorization: Bearer <token>`: an API key
 * (`lmk_` + 64 hex digits, kept hashed by the service) or an operator token (`lmt.` ... signed
 * by a trusted operator key, see fleet/auth.ts).
 *
 * Routes (JSON in and out; errors are `{ error, message }` with 400, 401, 404, 409 or 503):
 * - GET  /api/health                      -> { ok: true, id }
 * - GET  /api/devices                     -> DeviceView[] (with each device's signed status, SPEC §10.2)
 * - POST /api/devices/:id/clear           -> DeviceView (lifts a quarantine)
 * - GET  /api/jobs?state=&device=&limit=  -> JobView[] (newest first)
 * - POST /api/jobs  SubmitJob             -> JobView (201)
 * - GET  /api/jobs/:id                    -> JobDetail
 * - POST /api/jobs/:id/cancel|pause|resume -> JobView (409 when the state machine forbids it)
 * - GET  /api/files                       -> FileView[] (job files the service holds)
 * - PUT  /api/files/:name  (body: the file's bytes, application/octet-stream) -> FileView (201)
 * - GET  /api/alarms                      -> AlarmView[] (newest first)
 * - GET  /api/ledger?limit=               -> LedgerView[] (newest first)
 * - GET  /api/events                      -> text/event-stream: first `snapshot` (Snapshot), then
 *                                            `device` (DeviceView), `job` (JobView), `alarm`
 *                                            (AlarmView), `ledger` (LedgerView) as they happen,
 *                                            and a `ping` comment every 15 s
 * - GET  /openapi.json                    -> the OpenAPI 3 description, generated from the route schemas
 * - GET  /metrics                         -> Prometheus text
 * - GET  /                                -> the dashboard (index.html, app.js, view.js, style.css)
 */
import type { JobState } from './types.js';

/** One telemetry sample of a device: numeric fields only (e.g. nozzle_mC, bed_mC, progress_ppm). */
export interface TelemetrySample {
  time: number;
  values: Record<string, number>;
}

/** A reading of a device's status as JSON: CBOR byte strings become lower-case hex, map keys text. */
export type Reading = number | string | boolean | null | Reading[] | { [key: string]: Reading };

/** The state a device reports in its STATUS ([LM-STATE-2]). */
export type ReportedState = 'idle' | 'streaming' | 'paused' | 'error' | 'offline';

/**
 * The latest signed STATUS the gateway took of a device (SPEC §10.2, [LM-STATE-6]): signed by the
 * device's key, of its current connection, newer than the one before. Retained on the broker, so a
 * service that starts again has it at once. It is what the device said: a device that crashed
 * leaves its last status (`streaming`, say) while `online` is false.
 */
export interface DeviceStatusView {
  state: ReportedState;
  /** ms since the epoch by the device's clock: when it published this status (one at least every status interval, [LM-STATE-1]) */
  time: number;
  /** ms since the epoch by the service's clock: when the service took it */
  received: number;
  /** the boot sequence of the connection it belongs to ([LM-STATE-3]) */
  bd: number;
  /** its number within that connection */
  seq: number;
  /** why the machine is paused or in error, as the device says it; null when it says nothing */
  detail: string | null;
  /** the readings it shows in clear: integers in the unit their names state (nozzle_mC in thousandths of a degree Celsius, progress_ppm in millionths), text, ... */
  readings: Record<string, Reading>;
}

export interface DeviceView {
  id: string;
  /** the device's HELLO is current and no Last Will followed it ([LM-FLEET-6]) */
  online: boolean;
  /** ms since the epoch of the last HELLO, Will or telemetry */
  lastSeen: number | null;
  /** 'idle' | 'streaming' | 'paused' | 'offline' | 'quarantined' */
  state: 'idle' | 'streaming' | 'paused' | 'offline' | 'quarantined';
  quarantined: boolean;
  quarantineReason: string | null;
  /** the device's open job (IN_PROGRESS or PAUSED), if any */
  job: { id: string; state: JobState; name: string; progress: number; size: number } | null;
  /** the latest telemetry (every field as the device sent it) */
  telemetry: Record<string, unknown> | null;
  /** the last 60 numeric telemetry samples, oldest first (sparklines) */
  history: TelemetrySample[];
  /** the device's latest signed status, outside sessions too (SPEC §10.2); null until one was taken */
  status: DeviceStatusView | null;
}

export interface JobView {
  id: string;
  device: string;
  state: JobState;
  /** file name, or "stored:<jid>" for a protected job of the store */
  name: string;
  kind: 'file' | 'stored';
  size: number;
  progress: number;
  attempts: number;
  maxAttempts: number;
  reason: string;
  txh: string;
  created: number;
  updated: number;
  startedAt: number | null;
  ledgerSeq: number | null;
  /** the instance holding the job's lease */
  leaseOwner: string | null;
}

export interface JobEventView {
  from: JobState | null;
  to: JobState;
  reason: string;
  time: number;
  by: string;
}

export interface JobDetail extends JobView {
  events: JobEventView[];
}

/**
 * A job to queue. Either `file` (the name of a file the service holds: PUT /api/files/:name,
 * or its files directory) or `jid` (a protected job in the store, SPEC §16). The service signs
 * the transaction with its operator key (prints, rate, burst, hours as given) unless `tx` is a
 * transaction the operator signed already (hex; with `licence` hex for a file job).
 */
export interface SubmitJob {
  device: string;
  file?: string;
  jid?: string;
  /** for a stored job signed here: the plaintext's SHA-256 (hex) and size, as `livematrix upload` printed them, and the upload hash */
  digest?: string;
  size?: number;
  uploadHash?: string;
  prints?: number;
  /** bytes/s the machine may consume; default 1 MB/s */
  rate?: number;
  burst?: number;
  hours?: number;
  tx?: string;
  licence?: string;
  /** default 5 */
  maxAttempts?: number;
  /** ms; default 0 (no limit) */
  timeoutMs?: number;
}

export interface FileView {
  name: string;
  size: number;
  sha256: string;
}

export interface AlarmView {
  seq: number;
  device: string;
  code: number;
  /** the reason's name: rate, tamper, ... */
  reason: string;
  detail: string;
  time: number;
  origin: 'stream' | 'fleet';
  job: string | null;
}

export interface LedgerView {
  seq: number;
  /** hex, first 16 digits */
  hash: string;
  device: string;
  job: string;
  bytes: number;
  time: number;
}

export interface Snapshot {
  id: string;
  devices: DeviceView[];
  jobs: JobView[];
  alarms: AlarmView[];
  ledger: LedgerView[];
  files: FileView[];
  /** whether the service can sign transactions itself (it holds an operator key) */
  canSign: boolean;
}
