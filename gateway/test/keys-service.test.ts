/**
 * The keys service of protected jobs ([LM-SVC-2], [LM-SVC-3], [LM-PROT-2], [LM-SVC-5])
 * against a real SQLite file: an owner's upload registered, its chunk keys released wrapped for
 * one device session and opened as a device would; nothing secret in the database files (and
 * the scan that says so finds a key where one was written); the epoch chain erased on
 * rotation, in the files as well as in memory; pacing and alarms on an injected clock; a
 * deletion that leaves no key behind; and a restart that keeps jobs, grants, alarms and the
 * epoch. Each property is shown failing where it could fail.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes as nodeRandom } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError, LmError, Ratchet, Reason, contentChain, createTx, edSecretToX25519, epochKey, equalBytes, identityKeyPair, nextEpochChain, openEnvelope,
  openProtectedChunk, sealUpload, signDelete, toHex, unwrapChunkKey, verifyDeletionReceipt, type IdentityKeyPair, type RevisionKeys, type SignedTx,
} from '@livematrix/spec';
import { type KeysService, ReleaseBusyError, ReleaseWithheldError, UnknownJobError, openKeysService } from '../src/keys-service/index.js';
import { AtRest, u64be } from '../src/keys-service/at-rest.js';
import type { EpochSource as StoreEpochSource } from '../src/store/index.js';
import type { KeyRelease } from '../src/protected.js';

const tmp = mkdtempSync(join(tmpdir(), 'lm-keys-service-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
const newDir = () => join(tmp, `ks-${++dirs}`);

const T0 = 1_800_000_000_000;
const C = 1024;
const FILES = ['keys.db', 'keys.db-wal', 'keys.db-shm'];

/** An injected clock: `clock.t` is the time. */
function manualClock(t = T0) {
  const c = { t, now: () => c.t };
  return c;
}

/** A job of `chunks` chunks, the last one short, sealed to the keys service. */
function upload(ks: KeysService, owner: IdentityKeyPair, chunks = 5) {
  const plaintext = new Uint8Array(nodeRandom(C * (chunks - 1) + 300));
  return { plaintext, ...sealUpload(plaintext, { C, owner, keysService: ks.x25519Public, now: T0 }) };
}

type Job = ReturnType<typeof upload>;

/** A streaming transaction naming the job (body fields 16 jid, 17 uh), signed by `operator`, and its licence secret. */
function transaction(job: Job, operator: IdentityKeyPair, o: { rate?: number; burst?: number; names?: { jid: Uint8Array; uh: Uint8Array } | 'none' } = {}) {
  const device = identityKeyPair();
  return createTx({
    job: 'protected part', plaintext: { digest: job.upload.body.jd, size: job.upload.body.size }, device: 'printer-1', devicePublic: device.publicKey,
    operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: T0, notAfter: T0 + 3_600_000, rate: o.rate ?? 1e9, burst: o.burst ?? 1e9,
    ...(o.names === 'none' ? {} : { protectedJob: o.names ?? { jid: job.jid, uh: job.upload.hash } }),
  });
}

/** The chunk keys, as the test (not the service) reads them out of the envelope. */
function chunkKeys(job: Job, identity: IdentityKeyPair, ks: KeysService): Uint8Array[] {
  return openEnvelope(job.envelope, { secretKey: edSecretToX25519(identity.secretKey), publicKey: ks.x25519Public }, job.upload).keys;
}

/** The device's side of [LM-PROT-2]: its own ratchet on the content chain, and the chunk it opens (segments found by the playbook's order). */
function device(licence: Uint8Array, th: Uint8Array, r0: number, sid: Uint8Array, job: Job, order: Uint8Array[]) {
  const ratchet = new Ratchet(contentChain(licence, th), r0);
  const revs = new Map<number, RevisionKeys>();
  const wk = (r: number) => {
    let k = revs.get(r);
    if (!k) revs.set(r, (k = ratchet.keysFor(r)));
    return k.wk;
  };
  return {
    open(j: number, r: number, wrap: Uint8Array, last: number): Uint8Array {
      const k = unwrapChunkKey(wk(r), sid, j, wrap);
      const id = order[j];
      const seg = id && job.segments.find((s) => equalBytes(s.id, id));
      if (!seg) throw new Error(`no segment for chunk ${j}`);
      const len = j === job.upload.body.n - 1 ? last : C + 16;
      return openProtectedChunk(k, job.jid, j, seg.bytes.subarray(0, len));
    },
  };
}

/** Occurrences of each needle in the keys service's database files: whole, or any `window`-byte piece of it. */
function scan(paths: string[], needles: Uint8Array[], window?: number): { file: string; needle: number }[] {
  const pieces = new Map<string, number>();
  const w = window ?? 0;
  needles.forEach((n, i) => {
    if (w === 0) return;
    for (let o = 0; o + w <= n.length; o++) pieces.set(toHex(n.subarray(o, o + w)), i);
  });
  const hits: { file: string; needle: number }[] = [];
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const bytes = new Uint8Array(readFileSync(p));
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    needles.forEach((n, i) => {
      if (buf.indexOf(Buffer.from(n)) >= 0) hits.push({ file: p, needle: i });
    });
    if (w > 0) {
      for (let o = 0; o + w <= bytes.length; o++) {
        const i = pieces.get(buf.toString('hex', o, o + w));
        if (i !== undefined) hits.push({ file: p, needle: i });
      }
    }
  }
  return hits;
}

const dbFiles = (dir: string) => FILES.map((f) => join(dir, f));

/** Reads rows straight from keys.db (a second connection, closed before the service writes again). */
function raw<T>(dir: string, sql: string, ...params: (Uint8Array | number)[]): T[] {
  const db = new Database(join(dir, 'keys.db'), { readonly: true });
  try {
    return db.prepare<(Uint8Array | number)[], T>(sql).all(...params);
  } finally {
    db.close();
  }
}

async function rejects(p: Promise<unknown>): Promise<LmError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LmError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

function throws(f: () => unknown): LmError {
  try {
    f();
  } catch (e) {
    if (e instanceof LmError) return e;
    throw e;
  }
  throw new Error('expected an LmError');
}

async function rig(o: { chunks?: number; rate?: number; burst?: number; dir?: string } = {}) {
  const dir = o.dir ?? newDir();
  const identity = identityKeyPair();
  const owner = identityKeyPair();
  const clock = manualClock();
  const ks = openKeysService({ dir, identity, clock: clock.now });
  const job = upload(ks, owner, o.chunks);
  const jid = await ks.register(job.upload.bytes, job.envelope);
  const pb = await ks.playbook(jid);
  const { tx, licence } = transaction(job, owner, o);
  expect(await ks.grant(tx.bytes, licence)).toBe(toHex(tx.hash));
  return { dir, identity, owner, clock, ks, job, jid, pb, tx, licence };
}

function session() {
  return { sid: new Uint8Array(nodeRandom(16)), th: new Uint8Array(nodeRandom(32)), r0: 1000 };
}

function release(ks: KeysService, tx: SignedTx, s: ReturnType<typeof session>, j: number, r: number) {
  return ks.release({ txh: tx.hash, sid: s.sid, th: s.th, r0: s.r0, j, r });
}

describe('register, playbook, release [LM-SVC-2] [LM-PROT-2]', () => {
  it('a device opens every chunk with the keys released for its session; the playbook has ids and lengths, no key', async () => {
    const { ks, job, jid, pb, tx, licence } = await rig({ chunks: 5 });
    expect(jid).toBe(toHex(job.jid));
    expect(pb).toEqual({ jid: job.jid, C, n: 5, size: job.plaintext.length, jd: job.upload.body.jd, uh: job.upload.hash, order: pb.order, last: 300 + 16 });
    const real = new Set(job.segments.map((s) => toHex(s.id)));
    expect(pb.order.every((id) => real.has(toHex(id)))).toBe(true);
    expect(new Set(pb.order.map(toHex)).size).toBe(5);

    const s = session();
    const dev = device(licence, s.th, s.r0, s.sid, job, pb.order);
    const revisions = [1000, 1000, 1001, 1004, 1004]; // two chunks in one revision, then a jump
    const out: Uint8Array[] = [];
    for (let j = 0; j < 5; j++) {
      const wrap = await release(ks, tx, s, j, revisions[j]!);
      expect(wrap.length).toBe(48);
      out.push(dev.open(j, revisions[j]!, wrap, pb.last));
    }
    expect(Buffer.concat(out).equals(Buffer.from(job.plaintext))).toBe(true);

    // it could fail: another licence's chain does not unwrap; a revision stepped past is gone;
    // a chunk past the end does not exist
    const wrap = await release(ks, tx, s, 4, 1004);
    expect(throws(() => device(new Uint8Array(32).fill(7), s.th, s.r0, s.sid, job, pb.order).open(4, 1004, wrap, pb.last)).code).toBe(Reason.auth);
    expect((await rejects(release(ks, tx, s, 0, 1001))).code).toBe(Reason.revExpired);
    expect((await rejects(release(ks, tx, s, 5, 1004))).code).toBe(Reason.schema);
    // one sid is one session: another transcript under it is refused
    expect((await rejects(ks.release({ txh: tx.hash, sid: s.sid, th: new Uint8Array(32), r0: s.r0, j: 0, r: 1004 }))).code).toBe(Reason.auth);
    await ks.close();
  });

  it('refuses a second register, an envelope for another service, and grants that do not fit the job', async () => {
    const { ks, job, jid, owner, licence } = await rig();
    expect((await rejects(ks.register(job.upload.bytes, job.envelope))).code).toBe(Reason.replay);
    const other = openKeysService({ dir: newDir(), identity: identityKeyPair() });
    expect((await rejects(other.register(job.upload.bytes, job.envelope))).code).toBe(Reason.auth);
    await other.close();
    // signed by a stranger
    const stranger = transaction(job, identityKeyPair());
    expect((await rejects(ks.grant(stranger.tx.bytes, stranger.licence, jid))).code).toBe(Reason.txOperator);
    // a transaction for another file, as if for this job
    const job2 = upload(ks, owner, 2);
    const wrongJob = transaction(job2, owner);
    const forged = transaction(job2, owner, { names: { jid: job.jid, uh: job.upload.hash } });
    expect((await rejects(ks.grant(forged.tx.bytes, forged.licence))).code).toBe(Reason.txSchema);
    // a job never uploaded
    const e = await rejects(ks.playbook(new Uint8Array(16)));
    expect(e).toBeInstanceOf(UnknownJobError);
    expect(e.code).toBe(Reason.unknown);
    expect(e.message).toMatch(/job 0{32} is not known to this keys service \(deleted or never uploaded\)/);
    // a transaction naming the job with another upload's hash, or naming no job at all
    const otherUpload = transaction(job, owner, { names: { jid: job.jid, uh: job2.upload.hash } });
    expect((await rejects(ks.grant(otherUpload.tx.bytes, otherUpload.licence))).code).toBe(Reason.txSchema);
    const unnamed = transaction(job, owner, { names: 'none' });
    expect((await rejects(ks.grant(unnamed.tx.bytes, unnamed.licence))).code).toBe(Reason.txSchema);
    // the job given beside it does not help: its digest is not keyed by the licence ([LM-PROT-4])
    expect((await rejects(ks.grant(unnamed.tx.bytes, unnamed.licence, jid))).code).toBe(Reason.txSchema);
    await ks.register(job2.upload.bytes, job2.envelope);
    expect((await rejects(ks.grant(wrongJob.tx.bytes, wrongJob.licence, jid))).code).toBe(Reason.txSchema); // names job2, given job
    // a second grant of one transaction with another secret
    const { tx, licence: its } = transaction(job, owner);
    expect((await rejects(ks.grant(tx.bytes, licence))).code).toBe(Reason.txSchema); // another transaction's licence: its keyed digest does not match ([LM-PROT-4])
    await ks.grant(tx.bytes, its);
    await ks.grant(tx.bytes, its); // the same again: nothing changes
    // another secret for the same transaction: its digest is not keyed by it ([LM-PROT-4])
    expect((await rejects(ks.grant(tx.bytes, new Uint8Array(32)))).code).toBe(Reason.txSchema);
    await ks.close();
  });
});

describe('nothing secret at rest [LM-SVC-2] [LM-PROT-2]', () => {
  it('no chunk key, no 8-byte piece of one, and no licence secret is in keys.db, -wal or -shm; the same scan finds one written into a file', async () => {
    const { dir, ks, job, identity, tx, licence } = await rig({ chunks: 8 });
    const s = session();
    for (let j = 0; j < 8; j++) await release(ks, tx, s, j, 1000 + j);
    const keys = chunkKeys(job, identity, ks);
    expect(keys).toHaveLength(8);
    const secrets = [...keys, licence];
    const files = dbFiles(dir);
    expect(files.filter(existsSync).length).toBeGreaterThanOrEqual(2);
    // the files do hold the job (its id is stored in the clear): the scan looks where the rows are
    expect(scan(files, [job.jid]).length).toBeGreaterThan(0);
    expect(scan(files, secrets, 8)).toEqual([]);

    // it could fail: one 8-byte piece of a chunk key, and a whole licence secret, in a file
    const planted = join(dir, 'planted.bin');
    writeFileSync(planted, Buffer.concat([nodeRandom(5000), keys[3]!.subarray(11, 19), nodeRandom(3000), licence, nodeRandom(100)]));
    const hits = scan([planted], secrets, 8);
    expect(hits).toContainEqual({ file: planted, needle: 3 });
    expect(hits).toContainEqual({ file: planted, needle: 8 });
    await ks.close();
    // closed (the WAL folded into keys.db): still nothing
    expect(scan(files, secrets, 8)).toEqual([]);
  });
});

describe('epochs [LM-SVC-3]', () => {
  /** c_e as the files hold it, opened with the service's K_rest (what a thief with its identity would get). */
  function chainAtRest(dir: string, identity: IdentityKeyPair): { e: number; sealed: Uint8Array; c: Uint8Array } {
    const [row] = raw<{ e: number; sealed: Buffer }>(dir, 'SELECT e, sealed FROM ks_epoch');
    if (!row) throw new Error('no epoch row');
    const sealed = new Uint8Array(row.sealed);
    return { e: row.e, sealed, c: new AtRest(edSecretToX25519(identity.secretKey)).open('ks_epoch', u64be(row.e), sealed) };
  }

  it('after next() and established(e + 1), neither the service nor its files can produce K_e', async () => {
    const dir = newDir();
    const identity = identityKeyPair();
    const ks = openKeysService({ dir, identity });
    const k0 = ks.current();
    expect(k0.e).toBe(0);
    const at0 = chainAtRest(dir, identity);
    expect(at0.e).toBe(0);
    expect(equalBytes(epochKey(at0.c), k0.key)).toBe(true); // the row is the chain the service uses
    // it could fail: before the rotation the files hold the sealed c_0 (which, with the identity, gives K_0)
    expect(scan(dbFiles(dir), [at0.sealed]).length).toBeGreaterThan(0);
    expect(scan(dbFiles(dir), [at0.c, k0.key], 8)).toEqual([]); // never in the clear

    const k1 = ks.next();
    expect(k1.e).toBe(1);
    expect(ks.next().key).toEqual(k1.key); // next() is stable until established
    expect(ks.current()).toEqual(k0); // and erases nothing: segments still under e = 0 stay readable
    expect(throws(() => ks.established(2)).code).toBe(Reason.schema);

    ks.established(1);
    const cur = ks.current();
    expect(cur.e).toBe(1);
    expect(cur.key).toEqual(k1.key);
    expect(equalBytes(cur.key, k0.key)).toBe(false);

    // the files: neither c_0 nor K_0, sealed or not, nor any 16-byte piece of the sealed row
    const files = dbFiles(dir);
    expect(existsSync(join(dir, 'keys.db-wal')) ? readFileSync(join(dir, 'keys.db-wal')).length : 0).toBe(0);
    expect(scan(files, [at0.sealed, at0.c, k0.key], 16)).toEqual([]);
    expect(ks.next().e).toBe(2);
    ks.established(1); // a repeat (another store instance confirming) changes nothing
    ks.established(0); // nor does an older one: there is no way back
    expect(ks.current()).toEqual(k1);
    expect(throws(() => ks.established(3)).code).toBe(Reason.schema);
    const at1 = chainAtRest(dir, identity);
    expect(at1.e).toBe(1);
    expect(scan(files, [at1.sealed]).length).toBeGreaterThan(0); // the scan does see the row
    // c_1 is one step of the one-way chain from c_0, and yields K_1, not K_0
    expect(at1.c).toEqual(nextEpochChain(at0.c));
    expect(epochKey(at1.c)).toEqual(k1.key);
    expect(equalBytes(epochKey(at1.c), k0.key)).toBe(false);
    await ks.close();

    // a fresh service on the same directory has epoch 1 only
    const again = openKeysService({ dir, identity });
    expect(again.current()).toEqual(k1);
    expect(again.next().e).toBe(2);
    // two services on one database: one establishes, the other follows
    const third = openKeysService({ dir, identity });
    again.established(2);
    expect(third.current().e).toBe(2);
    expect(third.current().key).toEqual(again.current().key);
    third.established(2);
    await third.close();
    await again.close();
    expect(scan(files, [at0.sealed, at0.c, k0.key], 16)).toEqual([]);
  });
});

describe('pacing and alarms [LM-PROT-2]', () => {
  it('a chunk beyond rate·(now − t0)/1000 + burst is refused busy with when it will be allowed; an alarm withholds until cleared', async () => {
    const { ks, clock, tx } = await rig({ chunks: 8, rate: C, burst: C }); // one chunk a second, one ahead
    const s = session();
    await release(ks, tx, s, 0, 1000); // t0
    await release(ks, tx, s, 1, 1000); // 1·C ≤ burst
    const busy = await rejects(release(ks, tx, s, 2, 1000));
    expect(busy).toBeInstanceOf(ReleaseBusyError);
    expect(busy.code).toBe(Reason.busy);
    expect((busy as ReleaseBusyError).retryAt).toBe(T0 + 1000);
    clock.t = T0 + 999;
    expect(((await rejects(release(ks, tx, s, 2, 1000))) as ReleaseBusyError).retryAt).toBe(T0 + 1000);
    // a refused release does not step the ratchet: a later revision asked too early leaves revision 1000 usable
    expect((await rejects(release(ks, tx, s, 5, 1003))).code).toBe(Reason.busy);
    clock.t = T0 + 1000;
    expect((await release(ks, tx, s, 2, 1000)).length).toBe(48);
    clock.t = T0 + 4000;
    await release(ks, tx, s, 5, 1001);
    // an explicit `now` is the clock the request carries
    expect(((await rejects(ks.release({ txh: tx.hash, sid: s.sid, th: s.th, r0: s.r0, j: 7, r: 1001, now: T0 + 5000 }))) as ReleaseBusyError).retryAt).toBe(T0 + 6000);

    await ks.alarm(tx.hash);
    const withheld = await rejects(release(ks, tx, s, 3, 1001)); // within the allowance, yet withheld
    expect(withheld).toBeInstanceOf(ReleaseWithheldError);
    expect(withheld.code).toBe(Reason.rate);
    expect((await rejects(release(ks, tx, session(), 0, 1000))).code).toBe(Reason.rate); // every session of the transaction
    await ks.clearAlarm(tx.hash);
    expect((await release(ks, tx, s, 3, 1001)).length).toBe(48);
    await ks.close();
  });

  it('endSession erases the ratchet: the same sid begins a new session, from its own t0', async () => {
    const { ks, clock, tx } = await rig({ chunks: 4, rate: C, burst: 0 });
    const s = session();
    await release(ks, tx, s, 0, 1005);
    expect((await rejects(release(ks, tx, s, 0, 1000))).code).toBe(Reason.revExpired);
    await ks.endSession(s.sid);
    clock.t = T0 + 10_000;
    expect((await release(ks, tx, s, 0, 1000)).length).toBe(48); // a new ratchet from r0
    expect(((await rejects(release(ks, tx, s, 1, 1000))) as ReleaseBusyError).retryAt).toBe(T0 + 11_000);
    await ks.close();
  });

  it('a session begins only within the transaction\'s validity window', async () => {
    const { ks, clock, tx } = await rig({ chunks: 2 });
    clock.t = T0 - 1;
    expect((await rejects(release(ks, tx, session(), 0, 1000))).code).toBe(Reason.txExpired);
    clock.t = T0 + 3_600_001;
    expect((await rejects(release(ks, tx, session(), 0, 1000))).code).toBe(Reason.txExpired);
    clock.t = T0 + 3_600_000;
    expect((await release(ks, tx, session(), 0, 1000)).length).toBe(48);
    await ks.close();
  });
});

describe('delete [LM-SVC-5]', () => {
  it('removes the keys, playbook and licences; signs a receipt; names every segment; leaves no key in the files', async () => {
    const { dir, ks, job, jid, owner, identity, tx, licence } = await rig({ chunks: 6 });
    const keep = upload(ks, owner, 3); // a second job, which stays
    await ks.register(keep.upload.bytes, keep.envelope);
    const s = session();
    await release(ks, tx, s, 0, 1000);
    const keys = chunkKeys(job, identity, ks);
    const sealed = [
      ...raw<{ sealed: Buffer }>(dir, 'SELECT sealed FROM ks_chunk_keys WHERE jid = ?', job.jid),
      ...raw<{ sealed: Buffer }>(dir, 'SELECT sealed FROM ks_licences WHERE jid = ?', job.jid),
      ...raw<{ sealed: Buffer }>(dir, 'SELECT playbook AS sealed FROM ks_jobs WHERE jid = ?', job.jid),
    ].map((r) => new Uint8Array(r.sealed));
    expect(sealed).toHaveLength(6 + 1 + 1);
    const kept = raw<{ sealed: Buffer }>(dir, 'SELECT sealed FROM ks_chunk_keys WHERE jid = ?', keep.jid).map((r) => new Uint8Array(r.sealed));
    expect(scan(dbFiles(dir), sealed).length).toBeGreaterThan(0); // it could fail: they are there now

    // only the upload's owner deletes
    expect((await rejects(ks.delete(signDelete(job.jid, identityKeyPair(), T0)))).code).toBe(Reason.auth);
    const del = signDelete(job.jid, owner, T0 + 1);
    const { receipt, segments } = await ks.delete(del);

    const r = verifyDeletionReceipt(receipt, ks.identityPublic);
    expect(r).toEqual({ jid: job.jid, service: 'keys-service', removed: 6 + 1, time: T0, dh: new Uint8Array(createHash('sha256').update(del).digest()) });
    expect(throws(() => verifyDeletionReceipt(receipt, owner.publicKey)).code).toBe(Reason.auth);
    expect(segments.map(toHex)).toEqual(job.segments.map((x) => toHex(x.id)).sort()); // real and decoys, sorted: no hint which are real
    expect(segments).toHaveLength(job.upload.body.segments);

    for (const e of [await rejects(ks.playbook(jid)), await rejects(release(ks, tx, s, 1, 1000)), await rejects(release(ks, tx, session(), 0, 1000)), await rejects(ks.delete(del))]) {
      expect(e).toBeInstanceOf(UnknownJobError);
      expect(e.message).toContain(`job ${jid} is not known to this keys service (deleted or never uploaded)`);
    }
    expect((await rejects(ks.register(job.upload.bytes, job.envelope))).code).toBe(Reason.replay); // not again
    expect((await rejects(ks.grant(tx.bytes, licence))).code).toBe(Reason.unknown);

    const files = dbFiles(dir);
    expect(scan(files, [...keys, licence], 8)).toEqual([]);
    expect(scan(files, sealed, 16)).toEqual([]); // not even sealed, nor any 16-byte piece of them
    expect(scan(files, kept).length).toBe(kept.length); // the other job's rows are where the scan looks
    expect((await ks.playbook(keep.jid)).n).toBe(3);
    await ks.close();
  });
});

describe('restart', () => {
  it('jobs, grants, alarms and the current epoch survive close and reopen; the keys.db of another identity is refused', async () => {
    const { dir, identity, ks, job, jid, pb, tx, licence, owner } = await rig({ chunks: 3 });
    ks.next();
    ks.established(1);
    const epoch = ks.current();
    const alarmed = transaction(job, owner);
    await ks.grant(alarmed.tx.bytes, alarmed.licence);
    await ks.alarm(alarmed.tx.hash);
    await ks.close();
    expect((await rejects(ks.playbook(jid))).code).toBe(Reason.internal);

    const again = openKeysService({ dir, identity, clock: () => T0 });
    expect(await again.playbook(jid)).toEqual(pb);
    expect(again.current()).toEqual(epoch);
    const s = session();
    const dev = device(licence, s.th, s.r0, s.sid, job, pb.order);
    const out: Uint8Array[] = [];
    for (let j = 0; j < 3; j++) out.push(dev.open(j, 1000, await release(again, tx, s, j, 1000), pb.last));
    expect(Buffer.concat(out).equals(Buffer.from(job.plaintext))).toBe(true);
    expect((await rejects(release(again, alarmed.tx, session(), 0, 1000))).code).toBe(Reason.rate);
    await again.clearAlarm(alarmed.tx.hash);
    await release(again, alarmed.tx, session(), 0, 1000);
    await again.close();

    expect(() => openKeysService({ dir, identity: identityKeyPair() })).toThrow(ConfigError);
  });
});

describe('packaging', () => {
  it('is what the store takes its epochs from and the gateway its key releases from (their interfaces, checked by the compiler)', async () => {
    const ks = openKeysService({ dir: newDir(), identity: identityKeyPair() });
    const epochs: StoreEpochSource = ks;
    const keys: KeyRelease = ks;
    expect(epochs.current().e).toBe(0);
    expect((await rejects(Promise.resolve(keys.playbook(new Uint8Array(16))))).code).toBe(Reason.unknown);
    await ks.close();
  });

  it('is the subpath @livematrix/gateway/keys-service, and no gateway module outside it (and its server in services/) imports it', async () => {
    const m = await import('@livematrix/gateway/keys-service');
    expect(typeof m.openKeysService).toBe('function');
    const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
    // services/ serves the keys service over the broker in its own process: the one place that may
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.startsWith('keys-service') && !f.startsWith('services'));
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) expect(readFileSync(join(src, f), 'utf8'), f).not.toMatch(/(from|import\()\s*['"][^'"]*keys-service/);
  });
});
