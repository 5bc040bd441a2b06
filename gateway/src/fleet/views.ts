/**
 * @module fleet/views
 * The service's records as the API shows them (api.ts), and the JSON schemas of those shapes,
 * from which fastify checks requests, writes responses and @fastify/swagger writes the OpenAPI
 * description ([LM-FLEET-5]).
 */
import { reasonName } from '@livematrix/spec';
import type { AlarmView, DeviceView, JobEventView, JobView } from './api.js';
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

/** A device as the service sees it now ([LM-FLEET-6]). */
export function deviceView(s: FleetService, id: string): DeviceView {
  const p = s.presence.get(id);
  const q = s.deviceRecord(id);
  const j = s.openJob(id);
  const state = deviceState(s, id);
  return {
    id, online: p.online, lastSeen: p.lastSeen, state, quarantined: q.quarantined, quarantineReason: q.quarantined ? q.reason ?? '' : null,
    job: j ? { id: j.id, state: j.state, name: jobView(j).name, progress: j.progress, size: j.size } : null,
    telemetry: p.telemetry, history: p.history,
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
    $id: 'DeviceView', type: 'object',
    properties: {
      id: str, online: { type: 'boolean' }, lastSeen: nullable(int), state: { type: 'string', enum: DEVICE_STATES },
      quarantined: { type: 'boolean' }, quarantineReason: nullable(str),
      job: nullable({ type: 'object', properties: { id: str, state, name: str, progress: int, size: int }, required: ['id', 'state', 'name', 'progress', 'size'] }),
      telemetry: nullable({ type: 'object', additionalProperties: true }),
      history: { type: 'array', items: { type: 'object', properties: { time: int, values: { type: 'object', additionalProperties: { type: 'number' } } }, required: ['time', 'values'] } },
    },
    required: ['id', 'online', 'lastSeen', 'state', 'quarantined', 'quarantineReason', 'job', 'telemetry', 'history'],
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
