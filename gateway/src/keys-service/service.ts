/**
 * @module keys-service/service
 * The keys service of protected jobs (SPEC §16): it holds the chunk keys and the playbook of
 * each upload ([LM-SVC-2]), the licence secrets of streaming transactions, and the store's
 * epoch chain ([LM-SVC-3]); it releases each chunk key wrapped for one device session, paced
 * by the transaction ([LM-PROT-2]), and deletes a job on its owner's signed request
 * ([LM-SVC-5]). Every secret it keeps is sealed at rest (at-rest.ts).
 */
import type { PlaybookView } from '../protected.js';
import {
  ConfigError, LmError, Reason, type IdentityKeyPair, concatBytes, decodeTx, edPublicToX25519, edSecretToX25519, equalBytes, fromHex,
  jobDigestKey, keyedJobDigest, openEnvelope, signDeletionReceipt, toHex, verifyDelete, verifyTx, verifyUpload, wipe, wrapChunkKey, x25519KeyPair,
} from '@livematrix/spec';
import { AtRest, u64be } from './at-rest.js';
import { type Db, type JobRow, type LicenceRow, openKeysDb, scrub } from './db.js';
import { EpochChain, type EpochKey, type EpochSource } from './epochs.js';
import { NoGrantError, ReleaseWithheldError, UnknownJobError } from './errors.js';
import { ReleaseSession } from './session.js';

/** A job id (16 bytes) or transaction hash (32 bytes), as bytes or lower-case hex. */
export type Id = Uint8Array | string;

export interface KeysServiceOptions {
  /** directory of `keys.db` (created owner-only when missing) */
  dir: string;
  /** Ed25519: signs deletion receipts; its X25519 form opens envelopes and keys the secrets at rest */
  identity: IdentityKeyPair;
  /** ms since the Unix epoch; default `Date.now` */
  clock?: () => number;
  /** when given, only uploads signed by one of these Ed25519 keys are registered ([LM-PROT-1]) */
  trustedOwners?: Uint8Array[];
  /** operator keys, besides the job's owner, whose transactions may be granted a job's chunk keys */
  trustedOperators?: Uint8Array[];
  /** the `service` of deletion receipts; default "keys-service" */
  name?: string;
}

/** What the gateway needs to fetch and trim a job's segments: ids and lengths, no key ([LM-SVC-2]); the gateway's own view of it. */
export type JobPlaybook = PlaybookView;

/** One chunk key asked for one device session ([LM-PROT-2]). */
export interface ReleaseRequest {
  /** the streaming transaction's hash (granted before) */
  txh: Id;
  /** the session id (16 bytes) */
  sid: Uint8Array;
  /** the session's transcript hash */
  th: Uint8Array;
  /** the session's first revision */
  r0: number;
  /** chunk index */
  j: number;
  /** revision whose wrap key W_r wraps the chunk key */
  r: number;
  /** ms; default the service's clock */
  now?: number;
}

export interface DeleteResult {
  /** the service's signed deletion receipt ([LM-SVC-5]); its `removed` counts the chunk keys and licence secrets removed */
  receipt: Uint8Array;
  /** every segment id of the upload, real and decoy, sorted (so the order reveals nothing) */
  segments: Uint8Array[];
}

/** The keys service. Also the store's {@link EpochSource}. */
export interface KeysService extends EpochSource {
  /** the X25519 public key owners seal envelopes to (an upload's `kspk`) */
  readonly x25519Public: Uint8Array;
  /** the Ed25519 public key its deletion receipts verify under */
  readonly identityPublic: Uint8Array;
  /** Verifies an upload and opens its envelope ([LM-SVC-2]); returns the job id in hex. A job registered (or deleted) before is refused with `replay`. */
  register(upload: Uint8Array, envelope: Uint8Array): Promise<string>;
  /** Ids and lengths of a job's segments; {@link UnknownJobError} for a deleted or unknown job. */
  playbook(jid: Id): Promise<JobPlaybook>;
  /**
   * Keeps the licence secret of a streaming transaction for a registered job ([LM-PROT-2]);
   * returns its hash in hex. The job is the transaction's `jid` (body field 16; its `uh`, field
   * 17, must be the upload's), or the `jid` given for a transaction without one; when both are
   * present they must agree. The transaction must verify under its operator key, that key be
   * the job's owner or a trusted operator, and its digest and size be the upload's.
   */
  grant(tx: Uint8Array, licence: Uint8Array, jid?: Id): Promise<string>;
  /**
   * The 48-byte wrap of chunk key k_j under the session's W_r ([LM-PROT-2]). The first release
   * of a sid begins its session (within the transaction's validity window, else `tx-expired`);
   * throws {@link ReleaseBusyError} (`busy`, with `retryAt`) beyond the allowance,
   * {@link ReleaseWithheldError} (`rate`) after an alarm, `rev-expired` for a revision before the
   * latest it released, {@link UnknownJobError} once the job is deleted.
   */
  release(req: ReleaseRequest): Promise<Uint8Array>;
  /** Erases a session's ratchet ([LM-KEY-5]). */
  endSession(sid: Uint8Array): Promise<void>;
  /** Withholds every release of the transaction ([LM-PROT-2]) until {@link clearAlarm}; kept across restarts. */
  alarm(txh: Id): Promise<void>;
  clearAlarm(txh: Id): Promise<void>;
  /** Removes a job's keys, playbook and licences on its owner's signed delete ([LM-SVC-5]). */
  delete(deleteTx: Uint8Array): Promise<DeleteResult>;
  /** Erases every key in memory and closes the database. */
  close(): Promise<void>;
}

/**
 * Opens the keys service in `dir` (creating `keys.db` and a random `c_0` on the first open).
 *
 * @example
 * const ks = openKeysService({ dir, identity });
 * const jid = await ks.register(upload.bytes, envelope); await ks.grant(tx.bytes, licence, jid);
 * const wrap = await ks.release({ txh: tx.hash, sid, th, r0, j: 0, r: r0 });
 */
export function openKeysService(o: KeysServiceOptions): KeysService {
  const xSecret = edSecretToX25519(o.identity.secretKey);
  const xPublic = edPublicToX25519(o.identity.publicKey);
  if (!equalBytes(x25519KeyPair(xSecret).publicKey, xPublic)) {
    wipe(xSecret);
    throw new ConfigError('keys service identity: the Ed25519 public key does not belong to its secret key');
  }
  const rest = new AtRest(xSecret);
  let db: Db | undefined;
  try {
    db = openKeysDb(o.dir, toHex(xPublic));
    const epochs = db.transaction(() => EpochChain.load(db as Db, rest)).immediate();
    return new Service(o, db, rest, epochs, { secretKey: xSecret, publicKey: xPublic });
  } catch (e) {
    db?.close();
    rest.destroy();
    wipe(xSecret);
    throw e;
  }
}

const chunkRow = (jid: Uint8Array, j: number): Uint8Array => concatBytes(jid, u64be(j));

function id(label: string, v: Id, len: number): Uint8Array {
  const b = typeof v === 'string' ? fromHex(v) : v;
  if (!(b instanceof Uint8Array) || b.length !== len) throw new LmError(Reason.schema, `"${label}" expected ${len} bytes (or ${2 * len} hex digits)`);
  return b;
}

function uint(label: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new LmError(Reason.schema, `"${label}" expected a non-negative integer, got ${v}`);
  return v;
}

function split(ids: Uint8Array, count: number, label: string): Uint8Array[] {
  if (ids.length !== 16 * count) throw new LmError(Reason.internal, `${label}: ${ids.length} bytes for ${count} ids`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(ids.slice(16 * i, 16 * i + 16));
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

class Service implements KeysService {
  readonly x25519Public: Uint8Array;
  readonly identityPublic: Uint8Array;
  private readonly clock: () => number;
  private readonly sessions = new Map<string, ReleaseSession>();
  private closed = false;
  private readonly q;

  constructor(
    private readonly o: KeysServiceOptions,
    private readonly db: Db,
    private readonly rest: AtRest,
    private readonly epochs: EpochChain,
    private readonly x: { secretKey: Uint8Array; publicKey: Uint8Array },
  ) {
    this.x25519Public = x.publicKey.slice();
    this.identityPublic = o.identity.publicKey.slice();
    this.clock = o.clock ?? Date.now;
    this.q = {
      job: db.prepare<[Uint8Array], JobRow>('SELECT * FROM ks_jobs WHERE jid = ?'),
      deleted: db.prepare<[Uint8Array], { jid: Buffer }>('SELECT jid FROM ks_deleted WHERE jid = ?'),
      insertJob: db.prepare<[Uint8Array, Uint8Array, Uint8Array, number, Uint8Array, number, number, number, number, Uint8Array, Uint8Array, number]>(
        'INSERT INTO ks_jobs (jid, uh, okp, size, jd, chunk, n, segments, last, upload, playbook, registered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      insertKey: db.prepare<[Uint8Array, number, Uint8Array]>('INSERT INTO ks_chunk_keys (jid, j, sealed) VALUES (?, ?, ?)'),
      key: db.prepare<[Uint8Array, number], { sealed: Buffer }>('SELECT sealed FROM ks_chunk_keys WHERE jid = ? AND j = ?'),
      licence: db.prepare<[Uint8Array], LicenceRow>('SELECT * FROM ks_licences WHERE txh = ?'),
      insertLicence: db.prepare<[Uint8Array, Uint8Array, number, number, Uint8Array, Uint8Array]>('INSERT INTO ks_licences (txh, jid, rate, burst, tx, sealed) VALUES (?, ?, ?, ?, ?, ?)'),
      alarmed: db.prepare<[Uint8Array], { time: number }>('SELECT time FROM ks_alarms WHERE txh = ?'),
      setAlarm: db.prepare<[Uint8Array, number]>('INSERT INTO ks_alarms (txh, time) VALUES (?, ?) ON CONFLICT (txh) DO NOTHING'),
      clearAlarm: db.prepare<[Uint8Array]>('DELETE FROM ks_alarms WHERE txh = ?'),
      deletedTx: db.prepare<[Uint8Array], { jid: Buffer }>('SELECT jid FROM ks_deleted_tx WHERE txh = ?'),
      keepDeletedTx: db.prepare<[Uint8Array]>('INSERT OR IGNORE INTO ks_deleted_tx (txh, jid) SELECT txh, jid FROM ks_licences WHERE jid = ?'),
      dropAlarms: db.prepare<[Uint8Array]>('DELETE FROM ks_alarms WHERE txh IN (SELECT txh FROM ks_licences WHERE jid = ?)'),
      dropLicences: db.prepare<[Uint8Array]>('DELETE FROM ks_licences WHERE jid = ?'),
      dropKeys: db.prepare<[Uint8Array]>('DELETE FROM ks_chunk_keys WHERE jid = ?'),
      dropJob: db.prepare<[Uint8Array]>('DELETE FROM ks_jobs WHERE jid = ?'),
      tombstone: db.prepare<[Uint8Array, Uint8Array, number]>('INSERT INTO ks_deleted (jid, dh, time) VALUES (?, ?, ?)'),
    };
  }

  // ---- jobs [LM-SVC-2] ----------------------------------------------------------------------

  async register(uploadBytes: Uint8Array, envelope: Uint8Array): Promise<string> {
    this.live();
    const up = verifyUpload(uploadBytes, this.o.trustedOwners);
    const b = up.body;
    const known = () => {
      if (this.q.job.get(b.jid) || this.q.deleted.get(b.jid)) throw new LmError(Reason.replay, `job ${toHex(b.jid)} was registered with this keys service before`);
    };
    known();
    const pb = openEnvelope(envelope, this.x, up); // checks kspk, n, segment count and last
    try {
      const seen = new Set<string>();
      for (const s of [...pb.order, ...pb.decoys]) seen.add(toHex(s));
      if (seen.size !== b.segments) throw new LmError(Reason.schema, `envelope of job ${toHex(b.jid)}: its ${b.segments} segment ids are not distinct ([LM-SVC-1])`);
      const ids = concatBytes(...pb.order, ...pb.decoys);
      this.write(() => {
        known(); // again under the write lock: another process may have registered it meanwhile
        this.q.insertJob.run(b.jid, up.hash, b.okp, b.size, b.jd, b.C, b.n, b.segments, pb.last, up.bytes, this.rest.seal('ks_jobs', b.jid, ids), this.clock());
        pb.keys.forEach((k, j) => this.q.insertKey.run(b.jid, j, this.rest.seal('ks_chunk_keys', chunkRow(b.jid, j), k)));
      });
      wipe(ids);
    } finally {
      wipe(...pb.keys);
    }
    return toHex(b.jid);
  }

  async playbook(jidIn: Id): Promise<JobPlaybook> {
    this.live();
    const jid = id('jid', jidIn, 16);
    const row = this.jobRow(jid);
    const ids = this.rest.open('ks_jobs', jid, row.playbook);
    const order = split(ids.subarray(0, 16 * row.n), row.n, 'playbook');
    wipe(ids);
    return { jid: jid.slice(), C: row.chunk, n: row.n, size: row.size, jd: new Uint8Array(row.jd), uh: new Uint8Array(row.uh), order, last: row.last };
  }

  // ---- licences and release [LM-PROT-2] ------------------------------------------------------

  async grant(txBytes: Uint8Array, licence: Uint8Array, jidIn?: Id): Promise<string> {
    this.live();
    const tx = decodeTx(txBytes);
    const b = tx.body;
    verifyTx(txBytes, { now: b.nbf, trustedOperators: [b.opk] }); // canonical, its own signature, a window of at most 30 days
    if (!(licence instanceof Uint8Array) || licence.length !== 32) throw new LmError(Reason.schema, '"licence" expected Uint8Array of length 32');
    const given = jidIn === undefined ? undefined : id('jid', jidIn, 16);
    if (given && b.jid && !equalBytes(given, b.jid)) throw new LmError(Reason.txSchema, `transaction names job ${toHex(b.jid)}, not ${toHex(given)}`);
    const jid = b.jid ?? given;
    if (!jid) throw new LmError(Reason.txSchema, 'transaction names no protected job (body field 16 jid) and none was given');
    const job = this.jobRow(jid);
    if (!equalBytes(b.opk, job.okp) && !(this.o.trustedOperators ?? []).some((k) => equalBytes(k, b.opk))) {
      throw new LmError(Reason.txOperator, `transaction for job ${toHex(jid)} is signed neither by the job's owner nor by an operator this keys service trusts`);
    }
    if (b.uh && !equalBytes(b.uh, job.uh)) throw new LmError(Reason.txSchema, `transaction names upload ${toHex(b.uh)}, not job ${toHex(jid)}'s`);
    // a protected job's transaction carries its digest keyed by the licence ([LM-PROT-4])
    if (!equalBytes(b.jd, keyedJobDigest(jobDigestKey(licence), job.jd)) || b.size !== job.size) throw new LmError(Reason.txSchema, `transaction's digest and size are not those of job ${toHex(jid)} under this licence ([LM-PROT-4])`);
    this.write(() => {
      const had = this.q.licence.get(tx.hash);
      if (!had) {
        this.q.insertLicence.run(tx.hash, jid, b.rate, b.burst, tx.bytes, this.rest.seal('ks_licences', tx.hash, licence));
        return;
      }
      const old = this.rest.open('ks_licences', tx.hash, had.sealed);
      const same = equalBytes(old, licence);
      wipe(old);
      if (!same) throw new LmError(Reason.replay, `transaction ${toHex(tx.hash)} was granted before with another licence secret`);
    });
    return toHex(tx.hash);
  }

  async release(req: ReleaseRequest): Promise<Uint8Array> {
    this.live();
    const txh = id('txh', req.txh, 32);
    const sid = id('sid', req.sid, 16);
    const th = id('th', req.th, 32);
    const r0 = uint('r0', req.r0);
    const j = uint('j', req.j);
    const r = uint('r', req.r);
    const now = req.now ?? this.clock();
    if (this.q.alarmed.get(txh)) throw new ReleaseWithheldError(txh);
    const s = this.session(sid, txh, th, r0, now);
    const job = this.jobRow(s.terms.jid); // deleted since the session began: refused
    if (j >= job.n) throw new LmError(Reason.schema, `chunk ${j} of job ${toHex(job.jid)} does not exist (it has ${job.n})`);
    s.pace(j, now);
    const wk = s.wrapKey(r);
    const row = this.q.key.get(job.jid, j);
    if (!row) throw new UnknownJobError(s.terms.jid);
    const k = this.rest.open('ks_chunk_keys', chunkRow(job.jid, j), row.sealed);
    try {
      return wrapChunkKey(wk, sid, j, k);
    } finally {
      wipe(k);
    }
  }

  async endSession(sidIn: Uint8Array): Promise<void> {
    const sid = toHex(id('sid', sidIn, 16));
    this.sessions.get(sid)?.destroy();
    this.sessions.delete(sid);
  }

  async alarm(txhIn: Id): Promise<void> {
    this.live();
    const txh = id('txh', txhIn, 32);
    this.write(() => this.q.setAlarm.run(txh, this.clock()));
  }

  async clearAlarm(txhIn: Id): Promise<void> {
    this.live();
    const txh = id('txh', txhIn, 32);
    this.write(() => this.q.clearAlarm.run(txh));
  }

  private session(sid: Uint8Array, txh: Uint8Array, th: Uint8Array, r0: number, now: number): ReleaseSession {
    const key = toHex(sid);
    const had = this.sessions.get(key);
    if (had) {
      if (!had.matches(txh, th, r0)) throw new LmError(Reason.auth, `session ${key} was begun under another transaction, transcript or first revision`);
      return had;
    }
    const lic = this.q.licence.get(txh);
    if (!lic) {
      const gone = this.q.deletedTx.get(txh);
      throw gone ? new UnknownJobError(new Uint8Array(gone.jid)) : new NoGrantError(txh);
    }
    const jid = new Uint8Array(lic.jid);
    const job = this.jobRow(jid);
    const { nbf, naf } = decodeTx(new Uint8Array(lic.tx)).body;
    if (now < nbf || now > naf) {
      throw new LmError(Reason.txExpired, `transaction ${toHex(txh)} is valid from ${new Date(nbf).toISOString()} to ${new Date(naf).toISOString()}: no session begins at ${new Date(now).toISOString()} ([LM-PROT-2])`);
    }
    const licence = this.rest.open('ks_licences', txh, lic.sealed);
    try {
      const s = new ReleaseSession({ sid: sid.slice(), txh: txh.slice(), th: th.slice(), r0, jid, C: job.chunk, rate: lic.rate, burst: lic.burst }, licence, now);
      this.sessions.set(key, s);
      return s;
    } finally {
      wipe(licence); // the session keeps only its ratchet
    }
  }

  // ---- delete [LM-SVC-5] --------------------------------------------------------------------

  async delete(deleteTx: Uint8Array): Promise<DeleteResult> {
    this.live();
    const d = verifyDelete(deleteTx);
    const job = this.jobRow(d.jid);
    if (!equalBytes(d.okp, job.okp)) throw new LmError(Reason.auth, `delete of job ${toHex(d.jid)} is not signed by the owner of its upload ([LM-SVC-5])`);
    const ids = this.rest.open('ks_jobs', d.jid, job.playbook);
    const segments = split(ids, job.segments, 'playbook').sort(compareBytes);
    wipe(ids);
    const licences = this.write(() => {
      this.q.dropAlarms.run(d.jid);
      this.q.keepDeletedTx.run(d.jid); // a later release names the deleted job, not a missing grant
      const removed = this.q.dropLicences.run(d.jid).changes;
      this.q.dropKeys.run(d.jid);
      this.q.dropJob.run(d.jid);
      this.q.tombstone.run(d.jid, d.hash, this.clock());
      return removed;
    });
    for (const [k, s] of this.sessions) {
      if (equalBytes(s.terms.jid, d.jid)) {
        s.destroy();
        this.sessions.delete(k);
      }
    }
    scrub(this.db); // no page image of the removed rows stays in the WAL
    const receipt = signDeletionReceipt({ jid: d.jid, service: this.o.name ?? 'keys-service', removed: job.n + licences, time: this.clock(), dh: d.hash }, this.o.identity);
    return { receipt, segments };
  }

  // ---- epochs [LM-SVC-3] --------------------------------------------------------------------

  current(): EpochKey {
    this.live();
    return this.epochs.current();
  }

  next(): EpochKey {
    this.live();
    return this.epochs.next();
  }

  established(e: number): void {
    this.live();
    this.epochs.established(e);
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sessions.values()) s.destroy();
    this.sessions.clear();
    this.epochs.destroy();
    this.rest.destroy();
    wipe(this.x.secretKey);
    this.db.close();
  }

  private live(): void {
    if (this.closed) throw new LmError(Reason.internal, 'the keys service is closed');
  }

  private jobRow(jid: Uint8Array): JobRow {
    const row = this.q.job.get(jid);
    if (!row) throw new UnknownJobError(jid);
    return row;
  }

  /** Runs `f` in a write transaction taken at its start (BEGIN IMMEDIATE). */
  private write<T>(f: () => T): T {
    return this.db.transaction(f).immediate();
  }
}
