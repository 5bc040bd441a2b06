/**
 * @module fleet/db/common
 * What both FleetDb backends share: the schema (one text, two dialects), the argument checks,
 * the rows read back as records, and the store's logic itself, written once as generators of
 * SQL statements ({@link Op}). The SQLite backend runs an op synchronously inside one
 * `BEGIN IMMEDIATE` transaction; the PostgreSQL backend awaits each statement on one connection
 * inside one transaction, where the dialect's row locks (`FOR UPDATE [SKIP LOCKED]`) keep
 * instances apart ([LM-FLEET-2], [LM-FLEET-3]).
 */
import { ConfigError, LmError, Reason } from '@livematrix/spec';
import { hexId, uint } from '../../db/common.js';
import { BadRequestError, JobTransitionError, NotFoundError } from '../errors.js';
import {
  JOB_STATES, TRANSITIONS,
  type AlarmRecord, type ApiKeyRecord, type DeviceRecord, type FleetDb, type JobEvent, type JobRecord, type JobSourceSpec, type JobState, type NewJob, type Transition,
} from '../types.js';

/** Version of the schema the backends create; a database of a newer version is refused. */
export const FLEET_SCHEMA_VERSION = 1;

/** A statement parameter; an array is a list of strings for {@link Dialect.inList}. */
export type Param = string | number | boolean | null | readonly string[];
/** One SQL statement with PostgreSQL-style placeholders ($1, $2, ...). */
export interface Statement { sql: string; params: readonly Param[] }
/** The store's logic: yields statements, receives their rows, returns the result. */
export type Op<T> = Generator<Statement, T, unknown[]>;

/** What differs between the two SQL dialects. */
export interface Dialect {
  /** column types: a time or size, an autoincrement primary key, a boolean */
  readonly int: string;
  readonly serial: string;
  readonly bool: string;
  /** `x ${inList('$1')}`: x is one of the strings of parameter $1 */
  inList(param: string): string;
  /** row locks; empty in SQLite, whose write transactions hold the whole file */
  readonly forUpdate: string;
  readonly skipLocked: string;
}

/** The tables, prefixed lm_fleet_ so they may share a database with the licence tables. */
export function fleetSchema(d: Dialect): string[] {
  const I = d.int;
  const states = JOB_STATES.map((s) => `'${s}'`).join(', ');
  return [
    'CREATE TABLE IF NOT EXISTS lm_fleet_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
    `CREATE TABLE IF NOT EXISTS lm_fleet_jobs (id TEXT PRIMARY KEY, device TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN (${states})),
      source TEXT NOT NULL, size ${I} NOT NULL, tx TEXT NOT NULL, txh TEXT NOT NULL, licence TEXT, reason TEXT NOT NULL,
      attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL, timeout_ms ${I} NOT NULL, not_before ${I} NOT NULL, progress ${I} NOT NULL,
      lease_owner TEXT, lease_until ${I}, started_at ${I}, created ${I} NOT NULL, updated ${I} NOT NULL, ledger_seq ${I})`,
    'CREATE INDEX IF NOT EXISTS lm_fleet_jobs_device ON lm_fleet_jobs (device, state, created, id)',
    'CREATE INDEX IF NOT EXISTS lm_fleet_jobs_created ON lm_fleet_jobs (created, id)',
    `CREATE TABLE IF NOT EXISTS lm_fleet_events (seq ${d.serial}, job TEXT NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
      reason TEXT NOT NULL, ts ${I} NOT NULL, actor TEXT NOT NULL)`,
    'CREATE INDEX IF NOT EXISTS lm_fleet_events_job ON lm_fleet_events (job, seq)',
    `CREATE TABLE IF NOT EXISTS lm_fleet_devices (id TEXT PRIMARY KEY, quarantined ${d.bool} NOT NULL DEFAULT FALSE, reason TEXT, since ${I})`,
    `CREATE TABLE IF NOT EXISTS lm_fleet_alarms (seq ${d.serial}, device TEXT NOT NULL, code INTEGER NOT NULL, detail TEXT NOT NULL,
      ts ${I} NOT NULL, origin TEXT NOT NULL CHECK (origin IN ('stream', 'fleet')), job TEXT)`,
    `CREATE TABLE IF NOT EXISTS lm_fleet_api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created ${I} NOT NULL,
      revoked ${d.bool} NOT NULL DEFAULT FALSE)`,
  ];
}

function* rows<R>(sql: string, ...params: Param[]): Op<R[]> {
  return (yield { sql, params }) as R[];
}
function* row<R>(sql: string, ...params: Param[]): Op<R | undefined> {
  return (yield* rows<R>(sql, ...params))[0];
}

/** Creates the tables, or checks that the database's schema is not newer than this one (ConfigError naming `location`). */
export function* migrate(d: Dialect, location: string): Op<void> {
  for (const s of fleetSchema(d)) yield* rows(s);
  const v = yield* row<{ value: string }>("SELECT value FROM lm_fleet_meta WHERE key = 'schema'");
  if (!v) yield* rows("INSERT INTO lm_fleet_meta (key, value) VALUES ('schema', $1)", String(FLEET_SCHEMA_VERSION));
  else if (Number(v.value) > FLEET_SCHEMA_VERSION) throw new ConfigError(`${location}: fleet database schema version ${v.value} is newer than this service's (${FLEET_SCHEMA_VERSION})`);
}

// ---- argument checks: LmError `schema`, as the licence database's hexId and uint

/** A non-empty string of at most `max` characters (an id, a name, an owner). */
export function text(label: string, s: unknown, max = 128, empty = false): string {
  if (typeof s !== 'string' || (s.length === 0 && !empty) || s.length > max) throw new LmError(Reason.schema, `"${label}" expected a string of ${empty ? 0 : 1}-${max} characters, got ${JSON.stringify(s)?.slice(0, 80)}`);
  return s;
}

/** One of the job states. */
export function jobState(s: unknown): JobState {
  const found = JOB_STATES.find((x) => x === s);
  if (!found) throw new LmError(Reason.schema, `"state" expected one of ${JOB_STATES.join(', ')}, got ${String(s)}`);
  return found;
}

/** A lower-case hex string of any even length (a signed transaction's bytes). */
function hex(label: string, s: unknown): string {
  const v = typeof s === 'string' ? s.toLowerCase() : '';
  if (!/^(?:[0-9a-f]{2})+$/.test(v)) throw new LmError(Reason.schema, `"${label}" expected bytes as hex`);
  return v;
}

function source(s: unknown): JobSourceSpec {
  const o = (typeof s === 'object' && s !== null ? s : {}) as Record<string, unknown>;
  if (o['kind'] === 'file') return { kind: 'file', sha256: hexId('source.sha256', o['sha256'], 32), name: text('source.name', o['name'], 255) };
  if (o['kind'] === 'stored') return { kind: 'stored', jid: hexId('source.jid', o['jid']) };
  throw new LmError(Reason.schema, `"source" expected {kind: 'file' | 'stored', ...}, got ${JSON.stringify(s)?.slice(0, 80)}`);
}

function checkNewJob(j: NewJob): NewJob {
  const n: NewJob = {
    id: text('id', j.id), device: text('device', j.device, 64), source: source(j.source), size: uint('size', j.size), tx: hex('tx', j.tx),
    txh: hexId('txh', j.txh, 32), maxAttempts: uint('maxAttempts', j.maxAttempts), timeoutMs: uint('timeoutMs', j.timeoutMs), time: uint('time', j.time), by: text('by', j.by),
  };
  if (j.licence !== undefined) n.licence = hexId('licence', j.licence);
  return n;
}

function checkTransition(t: Transition): Transition {
  if (!Array.isArray(t.from)) throw new LmError(Reason.schema, '"from" expected a list of job states');
  const c: Transition = {
    job: text('job', t.job), from: t.from.map(jobState), to: jobState(t.to), reason: text('reason', t.reason, 1024, true), time: uint('time', t.time), by: text('by', t.by),
  };
  if (t.notBefore !== undefined) c.notBefore = uint('notBefore', t.notBefore);
  if (t.ledgerSeq !== undefined) c.ledgerSeq = uint('ledgerSeq', t.ledgerSeq);
  if (t.release !== undefined) c.release = t.release === true;
  if (t.progress !== undefined) c.progress = uint('progress', t.progress);
  return c;
}

function ids(label: string, list: unknown): string[] {
  if (!Array.isArray(list)) throw new LmError(Reason.schema, `"${label}" expected a list of ids`);
  return list.map((x: unknown) => text(label, x));
}

// ---- rows: integers may come back as strings from PostgreSQL (BIGINT), booleans as 0/1 from SQLite

type Int = number | string;
const num = (v: Int | null): number | undefined => (v === null ? undefined : Number(v));
const bool = (v: boolean | number): boolean => v === true || v === 1;

interface JobRow {
  id: string; device: string; state: string; source: string; size: Int; tx: string; txh: string; licence: string | null; reason: string;
  attempts: Int; max_attempts: Int; timeout_ms: Int; not_before: Int; progress: Int; lease_owner: string | null; lease_until: Int | null;
  started_at: Int | null; created: Int; updated: Int; ledger_seq: Int | null;
}
interface EventRow { job: string; from_state: string | null; to_state: string; reason: string; ts: Int; actor: string }
interface DeviceRow { id: string; quarantined: boolean | number; reason: string | null; since: Int | null }
interface AlarmRow { seq: Int; device: string; code: Int; detail: string; ts: Int; origin: string; job: string | null }
interface KeyRow { id: string; name: string; hash: string; created: Int; revoked: boolean | number }

/** Copies the defined values of `extra` onto `o` (optional fields stay absent rather than undefined). */
function withDefined<T extends object>(o: T, extra: Partial<T>): T {
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) Object.assign(o, { [k]: v });
  return o;
}

function toJob(r: JobRow): JobRecord {
  return withDefined<JobRecord>({
    id: r.id, device: r.device, state: jobState(r.state), source: source(JSON.parse(r.source)), size: Number(r.size), tx: r.tx, txh: r.txh,
    reason: r.reason, attempts: Number(r.attempts), maxAttempts: Number(r.max_attempts), timeoutMs: Number(r.timeout_ms), notBefore: Number(r.not_before),
    progress: Number(r.progress), created: Number(r.created), updated: Number(r.updated),
  }, { licence: r.licence ?? undefined, leaseOwner: r.lease_owner ?? undefined, leaseUntil: num(r.lease_until), startedAt: num(r.started_at), ledgerSeq: num(r.ledger_seq) });
}
const toEvent = (r: EventRow): JobEvent => ({ job: r.job, from: r.from_state === null ? null : jobState(r.from_state), to: jobState(r.to_state), reason: r.reason, time: Number(r.ts), by: r.actor });
const toDevice = (r: DeviceRow): DeviceRecord => withDefined<DeviceRecord>({ id: r.id, quarantined: bool(r.quarantined) }, { reason: r.reason ?? undefined, since: num(r.since) });
const toAlarm = (r: AlarmRow): AlarmRecord => withDefined<AlarmRecord>(
  { seq: Number(r.seq), device: r.device, code: Number(r.code), detail: r.detail, time: Number(r.ts), origin: r.origin === 'fleet' ? 'fleet' : 'stream' }, { job: r.job ?? undefined },
);
const toKey = (r: KeyRow): ApiKeyRecord => ({ id: r.id, name: r.name, hash: r.hash, created: Number(r.created), revoked: bool(r.revoked) });

/** QUEUED candidates the lease looks at per call; a device another instance is leasing for is skipped. */
const LEASE_CANDIDATES = 16;
const NOT_QUARANTINED = 'NOT EXISTS (SELECT 1 FROM lm_fleet_devices d WHERE d.id = j.device AND d.quarantined)';
/** j is the oldest QUEUED job of its device, which has no open job and is not quarantined ([LM-FLEET-3]). */
const QUEUED_HEAD = `j.state = 'QUEUED' AND ${NOT_QUARANTINED} AND NOT EXISTS (SELECT 1 FROM lm_fleet_jobs o WHERE o.device = j.device AND o.id <> j.id
  AND (o.state IN ('IN_PROGRESS', 'PAUSED') OR (o.state = 'QUEUED' AND (o.created < j.created OR (o.created = j.created AND o.id < j.id)))))`;

/**
 * The FleetDb contract implemented once over {@link Op}s; a backend supplies how to run one
 * (`read`: without a transaction; `write`: in one transaction, `op` made again for a retry).
 */
export abstract class FleetDbBase implements FleetDb {
  abstract readonly kind: 'sqlite' | 'postgres';
  private closed = false;

  /** `location`: for messages (a PostgreSQL URL without its password) */
  protected constructor(private readonly d: Dialect, readonly location: string) {}

  protected abstract read<T>(op: Op<T>): Promise<T>;
  protected abstract write<T>(op: () => Op<T>): Promise<T>;
  /** Releases the backend's file or pool, once. */
  protected abstract shut(): Promise<void>;

  /** Throws once the database is closed. */
  protected live(): void {
    if (this.closed) throw new LmError(Reason.internal, `the fleet database ${this.location} is closed`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.shut();
  }

  private *event(job: string, from: JobState | null, to: JobState, reason: string, time: number, by: string): Op<void> {
    yield* rows('INSERT INTO lm_fleet_events (job, from_state, to_state, reason, ts, actor) VALUES ($1, $2, $3, $4, $5, $6)', job, from, to, reason, time, by);
  }

  async addJob(j: NewJob): Promise<JobRecord> {
    const n = checkNewJob(j);
    return this.write(() => this.addJobOp(n));
  }

  private *addJobOp(n: NewJob): Op<JobRecord> {
    const r = yield* row<JobRow>(`INSERT INTO lm_fleet_jobs (id, device, state, source, size, tx, txh, licence, reason, attempts, max_attempts, timeout_ms,
      not_before, progress, created, updated) VALUES ($1, $2, 'QUEUED', $3, $4, $5, $6, $7, 'queued', 0, $8, $9, $10, 0, $10, $10) ON CONFLICT (id) DO NOTHING RETURNING *`,
      n.id, n.device, JSON.stringify(n.source), n.size, n.tx, n.txh, n.licence ?? null, n.maxAttempts, n.timeoutMs, n.time);
    if (!r) throw new BadRequestError(`job ${n.id} exists already`);
    yield* this.event(n.id, null, 'QUEUED', 'queued', n.time, n.by);
    return toJob(r);
  }

  async job(id: string): Promise<JobRecord | undefined> {
    const r = await this.read(row<JobRow>('SELECT * FROM lm_fleet_jobs WHERE id = $1', text('id', id)));
    return r ? toJob(r) : undefined;
  }

  async jobs(filter: { device?: string; states?: readonly JobState[]; limit?: number } = {}): Promise<JobRecord[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (filter.device !== undefined) where.push(`device = $${params.push(text('device', filter.device, 64))}`);
    if (filter.states !== undefined) where.push(`state ${this.d.inList(`$${params.push(ids('states', filter.states).map(jobState))}`)}`);
    const limit = `$${params.push(uint('limit', filter.limit ?? 200))}`;
    const sql = `SELECT * FROM lm_fleet_jobs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created DESC, id DESC LIMIT ${limit}`;
    return (await this.read(rows<JobRow>(sql, ...params))).map(toJob);
  }

  async events(job: string): Promise<JobEvent[]> {
    return (await this.read(rows<EventRow>('SELECT * FROM lm_fleet_events WHERE job = $1 ORDER BY seq', text('job', job)))).map(toEvent);
  }

  async transition(tr: Transition): Promise<JobRecord | undefined> {
    const t = checkTransition(tr);
    return this.write(() => this.transitionOp(t));
  }

  private *transitionOp(t: Transition): Op<JobRecord | undefined> {
    const r = yield* row<JobRow>(`SELECT * FROM lm_fleet_jobs WHERE id = $1${this.d.forUpdate}`, t.job);
    if (!r) throw new NotFoundError(`no job ${t.job}`);
    const job = toJob(r);
    if (!t.from.includes(job.state)) return undefined; // another writer moved it first
    if (!TRANSITIONS[job.state].includes(t.to)) throw new JobTransitionError(t.job, job.state, t.to); // [LM-FLEET-1]
    // a paused run keeps its lease: its stream stays, paused, with the instance that holds it
    const open = (x: JobState) => x === 'IN_PROGRESS' || x === 'PAUSED';
    const release = t.release === true || (open(job.state) && !open(t.to));
    // a run starts (from QUEUED), or resumes (from PAUSED: its start stays, for the timeout)
    const started = t.to === 'IN_PROGRESS' && (job.state === 'QUEUED' || job.startedAt === undefined) ? t.time : job.startedAt;
    // a job SUCCEEDED only with its receipt, which covers every byte: its progress is its size;
    // otherwise progress given with the move goes in with it, never lower ([LM-DLV-5])
    const progress = t.to === 'SUCCEEDED' ? job.size : Math.max(job.progress, t.progress ?? 0);
    const u = yield* row<JobRow>(`UPDATE lm_fleet_jobs SET state = $2, reason = $3, updated = $4, not_before = $5, ledger_seq = $6, lease_owner = $7,
      lease_until = $8, started_at = $9, progress = $10 WHERE id = $1 RETURNING *`, t.job, t.to, t.reason, t.time, t.notBefore ?? job.notBefore, t.ledgerSeq ?? job.ledgerSeq ?? null,
      release ? null : job.leaseOwner ?? null, release ? null : job.leaseUntil ?? null, started ?? null, progress);
    yield* this.event(t.job, job.state, t.to, t.reason, t.time, t.by);
    return u ? toJob(u) : undefined;
  }

  async lease(owner: string, devices: readonly string[], now: number, leaseMs: number): Promise<JobRecord | undefined> {
    const o = text('owner', owner);
    const list = ids('devices', devices);
    const until = uint('now', now) + uint('leaseMs', leaseMs);
    if (list.length === 0) return undefined;
    return this.write(() => this.leaseOp(o, list, now, until));
  }

  private *leaseOp(o: string, list: readonly string[], now: number, until: number): Op<JobRecord | undefined> {
    const { inList, forUpdate, skipLocked } = this.d;
    // (a) a run whose instance died (lease expired), or this instance's own after a restart: it resumes
    const held = yield* row<JobRow>(`SELECT * FROM lm_fleet_jobs j WHERE j.state = 'IN_PROGRESS' AND j.device ${inList('$1')}
      AND (j.lease_until IS NULL OR j.lease_until < $2 OR j.lease_owner = $3) AND ${NOT_QUARANTINED} ORDER BY j.created, j.id LIMIT 1${skipLocked}`, list, now, o);
    if (held) {
      const reason = `lease taken over from ${held.lease_owner ?? '(nobody)'}`;
      const r = yield* row<JobRow>('UPDATE lm_fleet_jobs SET lease_owner = $2, lease_until = $3, updated = $4, reason = $5 WHERE id = $1 RETURNING *', held.id, o, until, now, reason);
      yield* this.event(held.id, 'IN_PROGRESS', 'IN_PROGRESS', reason, now, o);
      return r ? toJob(r) : undefined;
    }
    // (b) the oldest QUEUED job that may start, its device's row locked first: one leaser per device at a time
    const cands = yield* rows<{ id: string; device: string }>(`SELECT j.id, j.device FROM lm_fleet_jobs j WHERE ${QUEUED_HEAD}
      AND j.device ${inList('$1')} AND j.not_before <= $2 ORDER BY j.created, j.id LIMIT ${LEASE_CANDIDATES}`, list, now);
    for (const c of cands) {
      yield* rows('INSERT INTO lm_fleet_devices (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', c.device);
      if (!(yield* row(`SELECT id FROM lm_fleet_devices WHERE id = $1${skipLocked}`, c.device))) continue; // another instance is at it
      // again, under the device's lock: what another instance committed meanwhile is seen now
      const j = yield* row<JobRow>(`SELECT * FROM lm_fleet_jobs j WHERE j.id = $1 AND j.not_before <= $2 AND ${QUEUED_HEAD}${forUpdate}`, c.id, now);
      if (!j) continue;
      const reason = `started (attempt ${Number(j.attempts) + 1})`;
      const r = yield* row<JobRow>(`UPDATE lm_fleet_jobs SET state = 'IN_PROGRESS', attempts = attempts + 1, started_at = $2, updated = $2, lease_owner = $3,
        lease_until = $4, reason = $5 WHERE id = $1 RETURNING *`, j.id, now, o, until, reason);
      yield* this.event(j.id, 'QUEUED', 'IN_PROGRESS', reason, now, o);
      return r ? toJob(r) : undefined;
    }
    return undefined;
  }

  async renew(owner: string, jobs: readonly string[], until: number, progress?: ReadonlyMap<string, number>): Promise<JobRecord[]> {
    const list = ids('jobs', jobs);
    const args: Param[] = [text('owner', owner), list, uint('until', until)];
    if (list.length === 0) return [];
    const moved = [...(progress ?? [])].map(([job, bytes]) => [text('job', job), uint('bytes', bytes)] as const);
    const d = this.d;
    const r = await this.write(function* () {
      // progress of every run in the same transaction as the renewal: one commit a pass, not one a job
      for (const [job, bytes] of moved) yield* rows("UPDATE lm_fleet_jobs SET progress = $3 WHERE id = $1 AND lease_owner = $2 AND state IN ('IN_PROGRESS', 'PAUSED') AND progress < $3", job, args[0]!, bytes);
      return yield* rows<JobRow>(`UPDATE lm_fleet_jobs SET lease_until = $3 WHERE id ${d.inList('$2')} AND state IN ('IN_PROGRESS', 'PAUSED') AND lease_owner = $1 RETURNING *`, ...args);
    });
    return r.map(toJob).sort((a, b) => list.indexOf(a.id) - list.indexOf(b.id));
  }

  async progress(owner: string, job: string, bytes: number, time: number): Promise<void> {
    const args: Param[] = [text('job', job), text('owner', owner), uint('bytes', bytes), uint('time', time)];
    await this.write(() => rows("UPDATE lm_fleet_jobs SET progress = $3, updated = $4 WHERE id = $1 AND lease_owner = $2 AND state IN ('IN_PROGRESS', 'PAUSED') AND progress < $3", ...args));
  }

  async counts(): Promise<Record<JobState, number>> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const r of await this.read(rows<{ state: string; n: Int }>('SELECT state, count(*) AS n FROM lm_fleet_jobs GROUP BY state'))) out[jobState(r.state)] = Number(r.n);
    return out;
  }

  async device(id: string): Promise<DeviceRecord> {
    const r = await this.read(row<DeviceRow>('SELECT * FROM lm_fleet_devices WHERE id = $1', text('device', id, 64)));
    return r ? toDevice(r) : { id, quarantined: false };
  }

  async devices(): Promise<DeviceRecord[]> {
    return (await this.read(rows<DeviceRow>('SELECT * FROM lm_fleet_devices ORDER BY id'))).map(toDevice);
  }

  async quarantine(device: string, reason: string, time: number): Promise<void> {
    const args: Param[] = [text('device', device, 64), text('reason', reason, 1024, true), uint('time', time)];
    await this.write(() => rows(`INSERT INTO lm_fleet_devices (id, quarantined, reason, since) VALUES ($1, TRUE, $2, $3) ON CONFLICT (id)
      DO UPDATE SET quarantined = TRUE, reason = excluded.reason, since = excluded.since WHERE NOT lm_fleet_devices.quarantined`, ...args));
  }

  async clear(device: string, by: string, time: number): Promise<boolean> {
    const args: Param[] = [text('device', device, 64), uint('time', time)];
    text('by', by);
    return (await this.write(() => rows('UPDATE lm_fleet_devices SET quarantined = FALSE, reason = NULL, since = $2 WHERE id = $1 AND quarantined RETURNING id', ...args))).length === 1;
  }

  async addAlarm(a: Omit<AlarmRecord, 'seq'>): Promise<AlarmRecord> {
    if (a.origin !== 'stream' && a.origin !== 'fleet') throw new LmError(Reason.schema, `"origin" expected stream or fleet, got ${String(a.origin)}`);
    const args: Param[] = [text('device', a.device, 64), uint('code', a.code), text('detail', a.detail, 4096, true), uint('time', a.time), a.origin, a.job === undefined ? null : text('job', a.job)];
    const r = await this.write(() => row<AlarmRow>('INSERT INTO lm_fleet_alarms (device, code, detail, ts, origin, job) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *', ...args));
    if (!r) throw new Error('the alarm insert returned no row');
    return toAlarm(r);
  }

  async alarms(limit = 100): Promise<AlarmRecord[]> {
    return (await this.read(rows<AlarmRow>('SELECT * FROM lm_fleet_alarms ORDER BY seq DESC LIMIT $1', uint('limit', limit)))).map(toAlarm);
  }

  async addApiKey(k: ApiKeyRecord): Promise<void> {
    const args: Param[] = [text('id', k.id), text('name', k.name, 256), hexId('hash', k.hash, 32), uint('created', k.created), k.revoked === true];
    const r = await this.write(() => rows('INSERT INTO lm_fleet_api_keys (id, name, hash, created, revoked) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id', ...args));
    if (r.length === 0) throw new BadRequestError(`an API key with id ${k.id} or this hash exists already`);
  }

  async apiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const r = await this.read(row<KeyRow>('SELECT * FROM lm_fleet_api_keys WHERE hash = $1', hexId('hash', hash, 32)));
    return r ? toKey(r) : undefined;
  }

  async apiKeys(): Promise<ApiKeyRecord[]> {
    return (await this.read(rows<KeyRow>('SELECT * FROM lm_fleet_api_keys ORDER BY created, id'))).map(toKey);
  }

  async revokeApiKey(id: string): Promise<boolean> {
    const key = text('id', id);
    return (await this.write(() => rows('UPDATE lm_fleet_api_keys SET revoked = TRUE WHERE id = $1 RETURNING id', key))).length === 1;
  }
}
