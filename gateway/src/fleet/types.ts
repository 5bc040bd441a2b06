/**
 * @module fleet/types
 * The fleet service's vocabulary (SPEC §17): jobs and their state machine in the manner of AWS
 * IoT Jobs, the events of each job, devices with their quarantine, alarms, API keys, and the
 * durable store behind them all ({@link FleetDb}), with two backends (SQLite, PostgreSQL) that
 * pass one suite (gateway/test/fleet-db-suite.ts).
 */

/**
 * Where a job stands ([LM-FLEET-1]). QUEUED, IN_PROGRESS and PAUSED are open; the others are
 * final and never change again.
 */
export type JobState = 'QUEUED' | 'IN_PROGRESS' | 'PAUSED' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'REJECTED' | 'CANCELED';

export const JOB_STATES: readonly JobState[] = ['QUEUED', 'IN_PROGRESS', 'PAUSED', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'CANCELED'];

/** States a job never leaves. */
export const FINAL_STATES: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'CANCELED'];

/**
 * The transitions the state machine allows ([LM-FLEET-1]); every other one is refused with
 * {@link JobTransitionError}. IN_PROGRESS -> QUEUED is a retry after a transient failure.
 */
export const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  QUEUED: ['IN_PROGRESS', 'PAUSED', 'CANCELED'],
  IN_PROGRESS: ['QUEUED', 'PAUSED', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'CANCELED'],
  PAUSED: ['QUEUED', 'IN_PROGRESS', 'CANCELED', 'TIMED_OUT'],
  SUCCEEDED: [],
  FAILED: [],
  TIMED_OUT: [],
  REJECTED: [],
  CANCELED: [],
};

/** What a job streams: a file the service keeps (by SHA-256), or a protected job of the store (SPEC §16). */
export type JobSourceSpec =
  | { kind: 'file'; /** lower-case hex SHA-256 of the file, its name in the service's files directory */ sha256: string; /** the name the operator gave it */ name: string }
  | { kind: 'stored'; /** the protected job's id (hex) */ jid: string };

/** A job as the database holds it. Times are ms since the epoch of the service's clock. */
export interface JobRecord {
  /** the service's id for the job, e.g. "j-000042" style; unique */
  id: string;
  device: string;
  state: JobState;
  source: JobSourceSpec;
  /** plaintext size in bytes */
  size: number;
  /** the signed transaction's bytes (hex) */
  tx: string;
  /** its SHA-256 (hex) */
  txh: string;
  /**
   * the licence secret of an unprotected job's transaction (hex), which the sender side needs to
   * seal to the device ([LM-TX-1]); never present for a stored job, whose licence only the keys
   * service holds ([LM-SVC-4])
   */
  licence?: string;
  /** the reason of the last transition, for people */
  reason: string;
  /** runs started (0 while first queued) */
  attempts: number;
  /** runs allowed, the first included, before a transient failure ends the job FAILED */
  maxAttempts: number;
  /** ms a run may stay IN_PROGRESS or PAUSED before the job is TIMED_OUT; 0: no limit */
  timeoutMs: number;
  /** earliest time a QUEUED job may start (back-off after a transient failure) */
  notBefore: number;
  /** plaintext bytes the device acknowledged as consumed ([LM-DLV-5]) */
  progress: number;
  /** the service instance holding the job's lease, and until when ([LM-FLEET-3]) */
  leaseOwner?: string;
  leaseUntil?: number;
  /** when the current run started (IN_PROGRESS), for the timeout */
  startedAt?: number;
  created: number;
  updated: number;
  /** the receipt's ledger sequence number once SUCCEEDED ([LM-LEDGER-1]) */
  ledgerSeq?: number;
}

/** One transition of a job: the audit trail. */
export interface JobEvent {
  job: string;
  /** null for the job's creation */
  from: JobState | null;
  to: JobState;
  reason: string;
  time: number;
  /** which instance (or "api:<who>") made it */
  by: string;
}

/** A job to queue. */
export interface NewJob {
  id: string;
  device: string;
  source: JobSourceSpec;
  size: number;
  tx: string;
  txh: string;
  licence?: string;
  maxAttempts: number;
  timeoutMs: number;
  time: number;
  by: string;
}

/** A device as the fleet service keeps it: its quarantine ([LM-FLEET-4]). Presence is not stored: it is what the broker says now. */
export interface DeviceRecord {
  id: string;
  quarantined: boolean;
  /** why, when quarantined */
  reason?: string;
  /** when it was quarantined or last cleared */
  since?: number;
}

/** An alarm the service saw, on a stream of its own or on the fleet's alarm topic ([LM-FLEET-4]). */
export interface AlarmRecord {
  seq: number;
  device: string;
  /** reason code ([LM-ALARM-1], [LM-ALARM-3], [LM-BRK-4]) */
  code: number;
  detail: string;
  time: number;
  /** 'stream' (a stream of this service), 'fleet' (the fleet's alarm topic) */
  origin: 'stream' | 'fleet';
  job?: string;
}

/** An API key: only its SHA-256 is kept ([LM-FLEET-5]). */
export interface ApiKeyRecord {
  id: string;
  name: string;
  /** SHA-256 of the key (hex) */
  hash: string;
  created: number;
  revoked: boolean;
}

/** A change of state that a caller asks for; `expect` guards against a race with another writer. */
export interface Transition {
  job: string;
  /** the state the caller saw; the transition happens only from one of these */
  from: readonly JobState[];
  to: JobState;
  reason: string;
  time: number;
  by: string;
  /** for QUEUED after a failure: earliest next start */
  notBefore?: number;
  /** for SUCCEEDED: the receipt's ledger record */
  ledgerSeq?: number;
  /** acknowledged progress to record with the move (never lower than what is recorded; SUCCEEDED records the size) */
  progress?: number;
  /** release the lease (every move out of IN_PROGRESS does) */
  release?: boolean;
}

/**
 * The fleet service's durable state. Every method is async so both backends fit; every
 * state change of a job is one database transaction with its event ([LM-FLEET-2]).
 */
export interface FleetDb {
  readonly kind: 'sqlite' | 'postgres';
  addJob(j: NewJob): Promise<JobRecord>;
  job(id: string): Promise<JobRecord | undefined>;
  /** newest first; filters are optional */
  jobs(filter?: { device?: string; states?: readonly JobState[]; limit?: number }): Promise<JobRecord[]>;
  /** a job's transitions, oldest first */
  events(job: string): Promise<JobEvent[]>;
  /**
   * Moves a job from one of `t.from` to `t.to` and records the event, or returns undefined and
   * changes nothing when the job is in none of them. Throws JobTransitionError for a move the
   * state machine forbids.
   */
  transition(t: Transition): Promise<JobRecord | undefined>;
  /**
   * Leases the next job to run, if any, in one transaction ([LM-FLEET-3]): the oldest QUEUED job
   * whose `notBefore` has passed, of a device in `devices` that is not quarantined and has no
   * other job IN_PROGRESS or PAUSED; or an IN_PROGRESS job whose lease expired (an instance
   * died: it is taken over, and resumes) or is held by `owner` itself (this instance restarted).
   * The job becomes IN_PROGRESS with `owner`'s lease until `now + leaseMs`; a QUEUED job counts
   * an attempt. With PostgreSQL, two instances never lease the same job (row locks).
   */
  lease(owner: string, devices: readonly string[], now: number, leaseMs: number): Promise<JobRecord | undefined>;
  /**
   * Extends `owner`'s leases of these jobs (IN_PROGRESS or PAUSED), and records their acknowledged
   * progress (never lower) in the same transaction; returns the jobs it still holds (a job
   * canceled elsewhere, or taken over, drops out).
   */
  renew(owner: string, jobs: readonly string[], until: number, progress?: ReadonlyMap<string, number>): Promise<JobRecord[]>;
  /** Records acknowledged progress of a job `owner` holds. */
  progress(owner: string, job: string, bytes: number, time: number): Promise<void>;
  /** Counts of jobs by state (for metrics and the dashboard). */
  counts(): Promise<Record<JobState, number>>;

  device(id: string): Promise<DeviceRecord>;
  devices(): Promise<DeviceRecord[]>;
  /** Quarantines a device (idempotent; the first reason stays) ([LM-FLEET-4]). */
  quarantine(device: string, reason: string, time: number): Promise<void>;
  /** Lifts a quarantine; returns whether there was one. */
  clear(device: string, by: string, time: number): Promise<boolean>;

  addAlarm(a: Omit<AlarmRecord, 'seq'>): Promise<AlarmRecord>;
  /** newest first */
  alarms(limit?: number): Promise<AlarmRecord[]>;

  addApiKey(k: ApiKeyRecord): Promise<void>;
  apiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  apiKeys(): Promise<ApiKeyRecord[]>;
  revokeApiKey(id: string): Promise<boolean>;

  close(): Promise<void>;
}
