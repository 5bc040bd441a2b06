/**
 * @module fleet/views
 * The service's records as the API shows them (api.ts), and the JSON schemas of those shapes,
 * from which fastify checks requests, writes responses and @fastify/swagger writes the OpenAPI
 * description ([LM-FLEET-5]).
 */
import { type CborValue, DEVICE_STATE_NAMES, type DeviceStateId, type StatusBody, reasonName, toHex } from '@livematrix/spec';
import type { AlarmView, DeviceStatusView, DeviceView, JobEventView, JobView, Reading, ReportedState } from './api.js';
import type { FleetService } from './service.js';
import type { AlarmRecord, DeviceRecord, JobEvent, JobRecord } from './types.js';
import { JOB_STATES } from './types.js';

export function jobView(j: JobRecord): JobView {
  return {
    id: j.id, device: j.device, state: j.state, name: j.source.kind === 'file' ? j.source.name : `stored:${j.source.jid}`, kind: j.source.kind,
    size: j.size, progress: j.progress, attempts: j.attempts, maxAttempts: j.maxAttempts, reason: j.reason, txh: j.txh, created: j.created, updated: j.updated,
    startedAt: j.startedAt ?? null, ledgerSeq: j.ledgerSeq ?? null, leaseOwner: j.leaseOwner ?? null,
  };
}

export function eventView(e: JobEvent): JobEventView {
  return { from: e.from, to: e.to, reason: e.reason, time: e.time, by: e.by };
}

export function alarmView(a: AlarmRecord): AlarmView {
  return { seq: a.seq, device: a.device, code: a.code, reason: reasonName(a.code as never) ?? String(a.code), detail: a.detail, time: a.time, origin: a.origin, job: a.job ?? null };
}

/** Every state a device is shown in. */
export const DEVICE_STATES: readonly DeviceView['state'][] = ['idle', 'streaming', 'paused', 'offline', 'quarantined'];

/** A device's state now: quarantined, offline, or by its open job (here or on another instance). */
export function deviceState(s: FleetService, id: string): DeviceView['state'] {
  if (s.deviceRecord(id).quarantined) return 'quarantined';
  if (!s.presence.get(id).online) return 'offline';
  const j = s.openJob(id);
  return j?.state === 'PAUSED' ? 'paused' : j ? 'streaming' : 'idle';
}

/** Every state a device reports in its STATUS ([LM-STATE-2]). */
export const REPORTED_STATES: readonly ReportedState[] = ['idle', 'streaming', 'paused', 'error', 'offline'];

/** A status reading as JSON: byte strings in hex, map keys as text (the CBOR profile has no floats, [LM-CBOR-2]). */
function reading(v: CborValue): Reading {
  if (v instanceof Uint8Array) return toHex(v);
  if (v instanceof Map) return Object.fromEntries([...(v as ReadonlyMap<number | string, CborValue>)].map(([k, x]) => [String(k), reading(x)]));
  if (Array.isArray(v)) return (v as readonly CborValue[]).map(reading);
  return v as number | string | boolean | null;
}

/** A STATUS the gateway took (SPEC §10.2), as the API shows it. */
export function statusView(body: StatusBody, received: number): DeviceStatusView {
  return {
    state: DEVICE_STATE_NAMES[body.state as DeviceStateId], time: body.time, received, bd: body.bd, seq: body.seq, detail: body.detail ?? null,
    readings: Object.fromEntries([...(body.tel ?? new Map<string, CborValue>())].map(([k, v]) => [k, reading(v)])),
  };
}

/**
 * The machine's state as an operator reads it: what its latest STATUS says, but `offline` once its
 * Last Will came ([LM-STATE-5]: a crashed device leaves its last status retained), `unknown` with none.
 */
export function machineState(s: FleetService, id: string): ReportedState | 'unknown' {
  const p = s.presence.get(id);
  if (!p.status) return p.online ? 'unknown' : 'offline';
  return p.online ? DEVICE_STATE_NAMES[p.status.body.state as DeviceStateId] : 'offline';
}

/** A device as the service sees it now ([LM-FLEET-6]). */
export function deviceView(s: FleetService, id: string): DeviceView {
  const p = s.presence.get(id);
  const q = s.deviceRecord(id);
  const j = s.openJob(id);
  const state = deviceState(s, id);
  return {
    id, online: p.online, lastSeen: p.lastSeen, state, quarantined: q.quarantined, quarantineReason: q.quarantined ? q.reason ?? '' : null,
    job: j ? { id: j.id, state: j.state, name: jobView(j).name, progress: j.progress, size: j.size } : null,
    telemetry: p.telemetry, history: p.history, status: p.status ? statusView(p.status.body, p.status.received) : null,
  };
}

/** Devices whose view changed between two readings of the open jobs and quarantines. */
export function changedDevices(jobsBefore: ReadonlyMap<string, JobRecord>, jobsNow: ReadonlyMap<string, JobRecord>, qBefore: ReadonlyMap<string, DeviceRecord>, qNow: ReadonlyMap<string, DeviceRecord>): Set<string> {
  const changed = new Set<string>();
  for (const [id, j] of jobsNow) {
    const was = jobsBefore.get(id);
    if (!was || was.state !== j.state || was.progress !== j.progress) changed.add(j.device);
  }
  for (const [id, j] of jobsBefore) if (!jobsNow.has(id)) changed.add(j.device);
  for (const [id, d] of qNow) if (qBefore.get(id)?.quarantined !== d.quarantined) changed.add(id);
  return changed;
}

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const nullable = <T extends object>(t: T) => ({ anyOf: [t, { type: 'null' }] });
const state = { type: 'string', enum: JOB_STATES } as const;

/** Shared schemas, added to fastify by $id. */
export const SCHEMAS = [
  {
    $id: 'JobView', type: 'object',
    properties: {
      id: str, device: str, state, name: str, kind: { type: 'string', enum: ['file', 'stored'] }, size: int, progress: int, attempts: int, maxAttempts: int,
      reason: str, txh: str, created: int, updated: int, startedAt: nullable(int), ledgerSeq: nullable(int), leaseOwner: nullable(str),
    },
    required: ['id', 'device', 'state', 'name', 'kind', 'size', 'progress', 'attempts', 'maxAttempts', 'reason', 'txh', 'created', 'updated', 'startedAt', 'ledgerSeq', 'leaseOwner'],
  },
  {
    $id: 'JobDetail', type: 'object',
    allOf: [{ $ref: 'JobView#' }],
    properties: {
      events: { type: 'array', items: { type: 'object', properties: { from: nullable(state), to: state, reason: str, time: int, by: str }, required: ['from', 'to', 'reason', 'time', 'by'] } },
    },
    required: ['events'],
  },
  {
    $id: 'DeviceStatus', type: 'object',
    description: 'the latest signed STATUS the gateway took of the device (SPEC section 10.2, [LM-STATE-6]): time by the device\'s clock, received by the service\'s (ms since the epoch); readings are integers in the unit their names state (nozzle_mC: thousandths of a degree Celsius, progress_ppm: millionths), text, booleans, hex for byte strings',
    properties: {
      state: { type: 'string', enum: REPORTED_STATES }, time: int, received: int, bd: int, seq: int, detail: nullable(str),
      readings: { type: 'object', additionalProperties: true },
    },
    required: ['state', 'time', 'received', 'bd', 'seq', 'detail', 'readings'],
  },
  {
    $id: 'DeviceView', type: 'object',
    properties: {
      id: str, online: { type: 'boolean' }, lastSeen: nullable(int), state: { type: 'string', enum: DEVICE_STATES },
      quarantined: { type: 'boolean' }, quarantineReason: nullable(str),
      job: nullable({ type: 'object', properties: { id: str, state, name: str, progress: int, size: int }, required: ['id', 'state', 'name', 'progress', 'size'] }),
      telemetry: nullable({ type: 'object', additionalProperties: true }),
      history: { type: 'array', items: { type: 'object', properties: { time: int, values: { type: 'object', additionalProperties: { type: 'number' } } }, required: ['time', 'values'] } },
      status: nullable({ $ref: 'DeviceStatus#' }),
    },
    required: ['id', 'online', 'lastSeen', 'state', 'quarantined', 'quarantineReason', 'job', 'telemetry', 'history', 'status'],
  },
  {
    $id: 'AlarmView', type: 'object',
    properties: { seq: int, device: str, code: int, reason: str, detail: str, time: int, origin: { type: 'string', enum: ['stream', 'fleet'] }, job: nullable(str) },
    required: ['seq', 'device', 'code', 'reason', 'detail', 'time', 'origin', 'job'],
  },
  {
    $id: 'LedgerView', type: 'object',
    properties: { seq: int, hash: str, device: str, job: str, bytes: int, time: int },
    required: ['seq', 'hash', 'device', 'job', 'bytes', 'time'],
  },
  { $id: 'FileView', type: 'object', properties: { name: str, size: int, sha256: str }, required: ['name', 'size', 'sha256'] },
  { $id: 'Error', type: 'object', properties: { error: str, message: str }, required: ['error', 'message'] },
  {
    $id: 'SubmitJob', type: 'object', additionalProperties: false,
    properties: {
      device: str, file: str, jid: str, digest: str, size: int, uploadHash: str, prints: int, rate: int, burst: int, hours: int, tx: str, licence: str,
      maxAttempts: int, timeoutMs: int,
    },
    required: ['device'],
  },
] as const;
