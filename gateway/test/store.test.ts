/**
 * The protected-job store ([LM-SVC-1], [LM-SVC-3], [LM-SVC-4], [LM-SVC-5]): a contract run
 * against SQLite (a directory) and PostgreSQL (a throw-away cluster from the testkit), then what
 * only files show (SQLite: no plaintext at rest, a copy of the files from an earlier epoch opens
 * nothing, removed segments gone from the file, a rotation killed with SIGKILL finished at the
 * next open) and what only a shared database shows (PostgreSQL: two instances serve the same
 * segments and rotate together). Each property is checked against a control that shows the
 * check can fail. Without PostgreSQL installed its part is skipped locally and fails under CI.
 * The crash test runs the built gateway (`npx tsc -b gateway` first).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LmError, Reason, concatBytes, epochKey, equalBytes, identityKeyPair, nextEpochChain, openEnvelope, openOuter, openProtectedChunk, randomBytes,
  sealUpload, signDelete, toHex, verifyDeletionReceipt, x25519KeyPair, type Segment,
} from '@livematrix/spec';
import { ManualClock } from '@livematrix/testkit';
import { STORE_FILE, openStore, type ProtectedStore, type StoreEvent, type StoreOptions } from '../src/store/index.js';
import { postgresHere, postgresSchemas } from './postgres-schemas.js';
import { TestEpochs } from './store-epochs.js';

const tmp = mkdtempSync(join(tmpdir(), 'lm-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
const newDir = () => join(tmp, `store-${++dirs}`);

const gcode = readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'cylinder_annular.gcode'));
const owner = identityKeyPair();
const ks = x25519KeyPair();

/** An owner's upload of `plaintext` (SPEC §16) and what the keys service learns from it. */
function upload(plaintext: Uint8Array, C?: number) {
  const u = sealUpload(plaintext, { owner, keysService: ks.publicKey, now: 1_800_000_000_000, ...(C === undefined ? {} : { C }) });
  const playbook = openEnvelope(u.envelope, ks, u.upload);
  return { ...u, playbook, ids: u.segments.map((s) => s.id) };
}
type Upload = ReturnType<typeof upload>;

/** The gateway's side: segments in playbook order, the last trimmed to `last`, each opened with its chunk key. */
async function reassemble(store: ProtectedStore, u: Upload): Promise<Uint8Array> {
  const segs = await store.get(u.playbook.order);
  const chunks = segs.map((s, j) => {
    const ct = j === segs.length - 1 ? s.subarray(0, u.playbook.last) : s;
    return openProtectedChunk(u.playbook.keys[j] as Uint8Array, u.jid, j, ct);
  });
  return concatBytes(...chunks);
}

/** `n` random segments of `size` bytes. */
const randomSegments = (n: number, size = 272): Segment[] => Array.from({ length: n }, () => ({ id: randomBytes(16), bytes: randomBytes(size) }));

/** Resolves with the first event `pick` accepts (events are collected from the store's onEvent). */
function events() {
  const seen: StoreEvent[] = [];
  const waiters: { pick: (e: StoreEvent) => boolean; res: (e: StoreEvent) => void }[] = [];
  const on = (ev: StoreEvent) => {
    seen.push(ev);
    for (const w of [...waiters]) if (w.pick(ev)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.res(ev);
    }
  };
  const next = (pick: (e: StoreEvent) => boolean) => new Promise<StoreEvent>((res) => waiters.push({ pick, res }));
  return { seen, on, next };
}

async function expectLmError(p: Promise<unknown>, code: number, message: RegExp): Promise<void> {
  const e: unknown = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(LmError);
  expect((e as LmError).code).toBe(code);
  expect((e as LmError).message).toMatch(message);
}

type Where = Pick<StoreOptions, 'dir' | 'url'>;

/** The properties every backend must have ([LM-SVC-4]). */
function storeContract(name: string, where: () => Promise<Where>): void {
  describe(`${name}: the store's contract`, () => {
    it('round trip: an upload put, got back in playbook order, trimmed and opened, is the plaintext [LM-SVC-1] [LM-SVC-4]', async () => {
      const pt = gcode.subarray(0, 10_000);
      const u = upload(pt);
      const store = await openStore({ ...(await where()), epochs: new TestEpochs(), epochMs: 0 });
      try {
        await store.put(u.segments);
        expect(await reassemble(store, u)).toEqual(new Uint8Array(pt));
        // the check is real: out of order, a chunk does not open
        const [s0, s1] = await store.get(u.playbook.order.slice(0, 2));
        expect(() => openProtectedChunk(u.playbook.keys[0] as Uint8Array, u.jid, 0, s1 as Uint8Array)).toThrow(LmError);
        expect(openProtectedChunk(u.playbook.keys[0] as Uint8Array, u.jid, 0, s0 as Uint8Array)).toEqual(new Uint8Array(pt.subarray(0, 4096)));
        const st = await store.stats();
        expect(st).toMatchObject({ segments: u.segments.length, bytes: u.segments.length * 4112, stored: u.segments.length * (4112 + 28), sizes: [{ size: 4112, count: u.segments.length }] });
      } finally {
        await store.close();
      }
    });

    it('refuses, storing nothing: segments of two sizes, an id stored already, an id twice, a size no chunk size gives; names an unknown id [LM-SVC-1]', async () => {
      const store = await openStore({ ...(await where()), epochs: new TestEpochs(), epochMs: 0 });
      try {
        const first = randomSegments(16);
        await store.put(first);
        const mixed = [...randomSegments(3), ...randomSegments(1, 4112)];
        await expectLmError(store.put(mixed), Reason.schema, /one size/);
        await expectLmError(store.put([...randomSegments(5), first[7] as Segment]), Reason.schema, new RegExp(`segment ${toHex((first[7] as Segment).id)} is stored already`));
        const twice = randomSegments(2);
        await expectLmError(store.put([...twice, twice[0] as Segment]), Reason.schema, /given twice/);
        await expectLmError(store.put(randomSegments(2, 100)), Reason.schema, /C \+ 16/);
        expect((await store.stats()).segments).toBe(16); // none of the refused puts stored anything
        const unknown = randomBytes(16);
        await expectLmError(store.get([(first[0] as Segment).id, unknown]), Reason.unknown, new RegExp(toHex(unknown)));
      } finally {
        await store.close();
      }
    });

    it('rotation never interrupts reads: gets during a rotation of 3000 segments all succeed with the right bytes [LM-SVC-3]', async () => {
      const epochs = new TestEpochs();
      const ev = events();
      const store = await openStore({ ...(await where()), epochs, epochMs: 0, batch: 128, onEvent: ev.on });
      try {
        const segs = randomSegments(3000);
        await store.put(segs);
        let reads = 0;
        let done = false;
        const readsAtBatch: number[] = [];
        const onBatch = ev.seen.length;
        const reader = (async () => {
          while (!done) {
            const pick = Array.from({ length: 16 }, () => segs[Math.floor(Math.random() * segs.length)] as Segment);
            const got = await store.get(pick.map((s) => s.id));
            got.forEach((g, i) => expect(equalBytes(g, (pick[i] as Segment).bytes)).toBe(true));
            reads++;
            await new Promise<void>((r) => setImmediate(r));
          }
        })();
        const seenBatches = ev.next((e) => {
          if (e.kind === 'batch') readsAtBatch.push(reads);
          return e.kind === 'rotated';
        });
        await store.rotate();
        await seenBatches;
        done = true;
        await reader;
        expect(ev.seen.slice(onBatch).filter((e) => e.kind === 'batch').length).toBe(Math.ceil(3000 / 128));
        // reads went on between batches, while rows of both epochs were stored
        const between = readsAtBatch.filter((r, i) => i > 0 && r > (readsAtBatch[i - 1] as number)).length;
        expect(between).toBeGreaterThan(readsAtBatch.length / 2);
        expect(await store.stats()).toMatchObject({ epoch: 1, segments: 3000, epochs: [{ epoch: 1, count: 3000 }] });
        expect(epochs.e).toBe(1);
      } finally {
        await store.close();
      }
    });

    it('delete: after deleting a job\'s ids (real and decoys) none reads back and no row remains; another job stays [LM-SVC-5]', async () => {
      const a = upload(gcode.subarray(0, 10_000));
      const b = upload(gcode.subarray(50_000, 60_000));
      const store = await openStore({ ...(await where()), epochs: new TestEpochs(), epochMs: 0 });
      try {
        await store.put(a.segments);
        await store.put(b.segments);
        expect(await store.delete([...a.playbook.order, ...a.playbook.decoys])).toBe(a.segments.length);
        expect(await store.delete(a.ids)).toBe(0);
        for (const id of a.ids) await expectLmError(store.get([id]), Reason.unknown, new RegExp(toHex(id)));
        expect((await store.stats()).segments).toBe(b.segments.length);
        expect(await reassemble(store, b)).toEqual(new Uint8Array(gcode.subarray(50_000, 60_000)));
      } finally {
        await store.close();
      }
    });

    it('an owner\'s delete: the store verifies it, removes the ids and signs a receipt; a forged delete removes nothing [LM-SVC-5]', async () => {
      const u = upload(gcode.subarray(0, 10_000));
      const clock = new ManualClock();
      const storeId = identityKeyPair();
      const signer = { identity: storeId, service: 'store-1' };
      const store = await openStore({ ...(await where()), epochs: new TestEpochs(), clock, epochMs: 0 });
      try {
        await store.put(u.segments);
        const del = signDelete(u.jid, owner, clock.now());
        const forged = del.slice();
        forged[forged.length - 1]! ^= 1; // the signature's last byte
        await expectLmError(store.deleteJob(forged, u.ids, signer), Reason.auth, /signature does not verify/);
        expect((await store.stats()).segments).toBe(u.segments.length);
        const { removed, receipt } = await store.deleteJob(del, u.ids, signer);
        expect(removed).toBe(u.segments.length);
        expect(verifyDeletionReceipt(receipt, storeId.publicKey)).toEqual({ jid: u.jid, service: 'store-1', removed, time: clock.now(), dh: new Uint8Array(createHash('sha256').update(del).digest()) });
        expect(() => verifyDeletionReceipt(receipt, owner.publicKey)).toThrow(LmError);
        expect((await store.stats()).segments).toBe(0);
      } finally {
        await store.close();
      }
    });

    it('the timer rotates every epochMs on the injected clock; close() stops it [LM-SVC-3]', async () => {
      const clock = new ManualClock();
      const epochs = new TestEpochs();
      const ev = events();
      const store = await openStore({ ...(await where()), epochs, clock, epochMs: 1000, onEvent: ev.on });
      await store.put(randomSegments(32));
      const first = ev.next((e) => e.kind === 'rotated' || e.kind === 'error');
      clock.advance(999);
      expect(ev.seen).toEqual([]);
      clock.advance(1);
      expect(await first).toMatchObject({ kind: 'rotated', epoch: 1, moved: 32 });
      const second = ev.next((e) => e.kind === 'rotated' || e.kind === 'error');
      clock.advance(1000);
      expect(await second).toMatchObject({ kind: 'rotated', epoch: 2, moved: 32 });
      expect(epochs.establishedLog).toEqual([1, 2]);
      expect(clock.pending).toBe(1);
      await store.close();
      expect(clock.pending).toBe(0);
    });
  });
}

// ---- helpers on files --------------------------------------------------------------------------

/** Every 8-byte window of `b`, as numbers. */
function windows(...bs: Uint8Array[]): Set<bigint> {
  const s = new Set<bigint>();
  for (const b of bs) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i + 8 <= b.length; i++) s.add(dv.getBigUint64(i));
  }
  return s;
}

/** Files of `dir` holding any window of `w`, with the first offset. */
function scan(dir: string, w: Set<bigint>): { file: string; at: number }[] {
  const hits: { file: string; at: number }[] = [];
  for (const f of readdirSync(dir)) {
    const b = readFileSync(join(dir, f));
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i + 8 <= b.length; i++) {
      if (w.has(dv.getBigUint64(i))) {
        hits.push({ file: f, at: i });
        break;
      }
    }
  }
  return hits;
}

/** A second connection to a store's database, as anyone with the files has. */
function raw(dir: string, readonly = false): Database.Database {
  return new Database(join(dir, STORE_FILE), { readonly });
}

function rowsOf(dir: string): { id: Buffer; epoch: number; bytes: Buffer }[] {
  const db = raw(dir, true);
  try {
    return db.prepare<[], { id: Buffer; epoch: number; bytes: Buffer }>('SELECT id, epoch, bytes FROM lm_segments').all();
  } finally {
    db.close();
  }
}

function checkpoint(dir: string): void {
  const db = raw(dir);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** Pearson's chi-square of a byte histogram against the uniform distribution (255 degrees of freedom). */
function chiSquare(...bs: Uint8Array[]): number {
  const h = new Uint32Array(256);
  let n = 0;
  for (const b of bs) {
    for (const x of b) h[x] = (h[x] ?? 0) + 1;
    n += b.length;
  }
  const expected = n / 256;
  return h.reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
}
/** 255 + 6 standard deviations (sqrt(2·255)): a uniform source exceeds it with a probability far below 1e-6 */
const CHI_BOUND = 255 + 6 * Math.sqrt(510);

// ---- SQLite -------------------------------------------------------------------------------------

storeContract('SQLite', async () => ({ dir: newDir() }));

describe('SQLite: at rest', () => {
  it('no plaintext at rest: no 8-byte window of the job, nor of its inner segments, is in store.db, -wal or -shm; the same scan finds the job in a file that holds it [LM-SVC-3]', async () => {
    const pt = gcode.subarray(100_000, 140_000);
    const u = upload(pt);
    const dir = newDir();
    const store = await openStore({ dir, epochs: new TestEpochs(), epochMs: 0 });
    try {
      await store.put(u.segments);
      expect(await reassemble(store, u)).toEqual(new Uint8Array(pt));
      const job = windows(pt);
      const inner = windows(...u.segments.map((s) => s.bytes));
      expect(readdirSync(dir).sort()).toEqual([STORE_FILE, `${STORE_FILE}-shm`, `${STORE_FILE}-wal`]);
      expect(scan(dir, job)).toEqual([]); // in the WAL
      expect(scan(dir, inner)).toEqual([]);
      checkpoint(dir);
      expect(scan(dir, job)).toEqual([]); // in the database file
      expect(scan(dir, inner)).toEqual([]);
      // the check is real: the scan finds the job where it is, and the stored rows where they are
      const control = newDir();
      cpSync(dir, control, { recursive: true });
      writeFileSync(join(control, 'leak.bin'), concatBytes(randomBytes(1000), pt.subarray(20_000, 20_008), randomBytes(1000)));
      expect(scan(control, job)).toEqual([{ file: 'leak.bin', at: 1000 }]);
      expect(scan(dir, windows(...rowsOf(dir).map((r) => r.bytes))).map((h) => h.file)).toEqual([STORE_FILE]);
    } finally {
      await store.close();
    }
  });

  it('epochs: a copy of the files taken in epoch e opens under K_e only; after e+1 is established nothing the keys service holds opens it [LM-SVC-3]', async () => {
    const epochs = new TestEpochs();
    const dir = newDir();
    const u = upload(gcode.subarray(0, 30_000));
    const store = await openStore({ dir, epochs, epochMs: 0 });
    let snapshot = '';
    let kE: Uint8Array = new Uint8Array();
    try {
      await store.put(u.segments);
      await store.rotate(); // e = 1: rows written in epoch 0 re-encrypted
      kE = epochs.current().key; // captured before erasure, to show the check is real
      snapshot = newDir();
      cpSync(dir, snapshot, { recursive: true });
      await store.rotate(); // e = 2: c_1 erased
      expect(epochs.establishedLog).toEqual([1, 2]);
      expect(await reassemble(store, u)).toEqual(new Uint8Array(gcode.subarray(0, 30_000)));
    } finally {
      await store.close();
    }
    const rows = rowsOf(snapshot);
    expect(rows.length).toBe(u.segments.length);
    expect(new Set(rows.map((r) => r.epoch))).toEqual(new Set([1]));
    // what is left at the keys service: c_2, from which K_2, K_3, ... derive (and the chain value itself)
    const left: Uint8Array[] = [];
    let c = epochs.state().chain;
    for (let i = 0; i < 4; i++) {
      left.push(c, epochKey(c));
      c = nextEpochChain(c);
    }
    for (const r of rows) {
      for (const k of left) for (const e of [0, 1, 2, 3, 4, 5]) expect(() => openOuter(k, e, r.id, r.bytes)).toThrow(LmError);
      expect(openOuter(kE, 1, r.id, r.bytes).length).toBe(4112);
    }
    // and the store refuses the copy: its epoch's key is erased
    await expectLmError(openStore({ dir: snapshot, epochs, epochMs: 0 }), Reason.auth, /of epoch 1, write epoch 1, but the keys service is at epoch 2: their epoch keys are erased/);
  });

  it('decoys: jobs of 10 KB and 40 KB give counts that are multiples of 16, of one size; real and decoy bytes both look uniform [LM-SVC-1]', async () => {
    const sizes = [10 * 1024, 40 * 1024];
    for (const [i, size] of sizes.entries()) {
      const pt = gcode.subarray(i * 200_000, i * 200_000 + size);
      const u = upload(pt);
      const store = await openStore({ dir: newDir(), epochs: new TestEpochs(), epochMs: 0 });
      try {
        await store.put(u.segments);
        const st = await store.stats();
        expect(st.segments % 16).toBe(0);
        expect(st.segments).toBe(u.upload.body.segments);
        expect(st.segments).toBeGreaterThanOrEqual(2 * u.upload.body.n); // density 0.5: at least as many decoys as chunks
        expect(st.sizes).toEqual([{ size: 4096 + 16, count: st.segments }]);
        const real = await store.get(u.playbook.order);
        const decoys = await store.get(u.playbook.decoys);
        expect(chiSquare(...real)).toBeLessThan(CHI_BOUND);
        expect(chiSquare(...decoys)).toBeLessThan(CHI_BOUND);
        expect(chiSquare(...real, ...decoys)).toBeLessThan(CHI_BOUND);
        // the check is real: the plaintext's bytes are far from uniform
        expect(chiSquare(pt)).toBeGreaterThan(100 * CHI_BOUND);
      } finally {
        await store.close();
      }
    }
  });

  it('delete: the database file after VACUUM holds none of the removed segments\' bytes, inner or at rest [LM-SVC-5]', async () => {
    const dir = newDir();
    const a = upload(gcode.subarray(0, 20_000));
    const b = upload(gcode.subarray(30_000, 50_000));
    const store = await openStore({ dir, epochs: new TestEpochs(), epochMs: 0 });
    try {
      await store.put(a.segments);
      await store.put(b.segments);
      const aIds = new Set(a.ids.map(toHex));
      const atRest = rowsOf(dir).filter((r) => aIds.has(r.id.toString('hex'))).map((r) => r.bytes);
      expect(atRest.length).toBe(a.segments.length);
      const w = windows(...atRest);
      checkpoint(dir);
      expect(scan(dir, w).map((h) => h.file)).toEqual([STORE_FILE]); // the control: before the delete, they are there
      expect(await store.delete(a.ids)).toBe(a.segments.length);
      expect(rowsOf(dir).filter((r) => aIds.has(r.id.toString('hex')))).toEqual([]);
      expect(scan(dir, w)).toEqual([]); // secure_delete zeroed them, and the WAL was emptied
      await store.compact();
      expect(scan(dir, w)).toEqual([]);
      expect(scan(dir, windows(...a.segments.map((s) => s.bytes)))).toEqual([]);
      expect(await reassemble(store, b)).toEqual(new Uint8Array(gcode.subarray(30_000, 50_000)));
    } finally {
      await store.close();
    }
  });

  it('a rotation killed with SIGKILL after some batches is finished at the next open; every segment reads back [LM-SVC-3]', async () => {
    const dir = newDir();
    const chain = randomBytes(32);
    const epochs = new TestEpochs(chain, 5);
    const segs = randomSegments(2000);
    const s = await openStore({ dir, epochs, epochMs: 0 });
    await s.put(segs);
    await s.close();
    const child: ChildProcessWithoutNullStreams = spawn(
      process.execPath,
      [join(import.meta.dirname, '..', 'dist', 'test', 'store-rotator.js'), dir, toHex(chain), '5', '100', '7'],
      { stdio: 'pipe' },
    );
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const closed = new Promise<void>((res) => child.on('close', () => res()));
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('stopped\n')) res();
      });
      void closed.then(() => rej(new Error(`the rotator ended early: ${out} ${err}`)));
    });
    child.kill('SIGKILL');
    await closed;
    expect(child.signalCode).toBe('SIGKILL');
    expect(out).not.toMatch(/done/);
    // half-way: 700 rows in epoch 6, the rest in 5; the write epoch is 6; the source never heard of it
    const db = raw(dir, true);
    const tags = db.prepare<[], { epoch: number; n: number }>('SELECT epoch, count(*) AS n FROM lm_segments GROUP BY epoch ORDER BY epoch').all();
    const meta = db.prepare<[], { value: number }>("SELECT value FROM lm_store_meta WHERE key = 'epoch'").get();
    db.close();
    expect(tags).toEqual([{ epoch: 5, n: 1300 }, { epoch: 6, n: 700 }]);
    expect(meta?.value).toBe(6);
    expect(epochs.e).toBe(5);
    const ev = events();
    const store = await openStore({ dir, epochs, epochMs: 0, onEvent: ev.on });
    try {
      expect(ev.seen.at(-1)).toMatchObject({ kind: 'rotated', epoch: 6, moved: 1300 });
      expect(epochs.establishedLog).toEqual([6]);
      expect(await store.stats()).toMatchObject({ epoch: 6, epochs: [{ epoch: 6, count: 2000 }] });
      const got = await store.get(segs.map((x) => x.id));
      got.forEach((g, i) => expect(equalBytes(g, (segs[i] as Segment).bytes)).toBe(true));
    } finally {
      await store.close();
    }
  }, 60_000);

  it('refuses to open against a keys service behind the store (restored from an older copy) [LM-SVC-3]', async () => {
    const dir = newDir();
    const chain = randomBytes(32);
    const store = await openStore({ dir, epochs: new TestEpochs(chain), epochMs: 0 });
    await store.put(randomSegments(16));
    await store.rotate();
    await store.rotate();
    await store.close();
    await expectLmError(openStore({ dir, epochs: new TestEpochs(chain, 0), epochMs: 0 }), Reason.auth, /16 of epoch 2, write epoch 2, but the keys service is at epoch 0: the keys service is behind this store/);
    const again = await openStore({ dir, epochs: new TestEpochs(nextEpochChain(nextEpochChain(chain)), 2), epochMs: 0 });
    expect((await again.stats()).segments).toBe(16);
    await again.close();
  });

  it('close() during a rotation stops it at a batch; the next open finishes it [LM-SVC-3]', async () => {
    const dir = newDir();
    const epochs = new TestEpochs();
    const segs = randomSegments(1000);
    const ev = events();
    const store = await openStore({ dir, epochs, epochMs: 0, batch: 50, onEvent: ev.on });
    await store.put(segs);
    const rotating = store.rotate().then(() => undefined, (e: unknown) => e);
    await ev.next((e) => e.kind === 'batch' && e.total >= 200);
    await store.close();
    const e = await rotating;
    expect(e).toBeInstanceOf(LmError);
    expect((e as LmError).code).toBe(Reason.aborted);
    expect(epochs.e).toBe(0);
    const again = await openStore({ dir, epochs, epochMs: 0 });
    try {
      expect(epochs.e).toBe(1);
      expect((await again.get(segs.slice(0, 10).map((x) => x.id))).map(toHex)).toEqual(segs.slice(0, 10).map((x) => toHex(x.bytes)));
    } finally {
      await again.close();
    }
  });
});

describe('packaging', () => {
  /** Every module of gateway/src that `entry` reaches through relative imports (static and dynamic). */
  function reach(entry: string): Set<string> {
    const src = join(import.meta.dirname, '..', 'src');
    const seen = new Set<string>();
    const visit = (rel: string) => {
      if (seen.has(rel)) return;
      seen.add(rel);
      const text = readFileSync(join(src, rel), 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\(\s*)'(\.{1,2}\/[^']+)\.js'/g)) {
        visit(join(dirname(rel), `${m[1] as string}.ts`));
      }
    };
    visit(entry);
    return seen;
  }

  it('the streaming gateway never loads the store: it is @livematrix/gateway/store alone [LM-SVC-4]', () => {
    const gateway = reach('index.ts');
    expect(gateway.size).toBeGreaterThan(10);
    expect([...gateway].filter((f) => f.startsWith('store/'))).toEqual([]);
    // the check is real: from the store's entry it finds the store's modules
    expect([...reach('store/index.ts')].sort()).toEqual(expect.arrayContaining(['store/index.ts', 'store/postgres.ts', 'store/sqlite.ts', 'store/store.ts']));
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> };
    expect(pkg.exports['./store']?.default).toBe('./dist/src/store/index.js');
  });
});

// ---- PostgreSQL ---------------------------------------------------------------------------------

describe.runIf(postgresHere('store'))('PostgreSQL', () => {
  const { newUrl } = postgresSchemas('lm_store');

  storeContract('PostgreSQL', async () => ({ url: await newUrl() }));

  it('two store instances on one database serve the same segments, across a rotation by one of them and a delete by the other [LM-SVC-4]', async () => {
    const url = await newUrl();
    const epochs = new TestEpochs();
    const u = upload(gcode.subarray(0, 20_000));
    const a = await openStore({ url, epochs, epochMs: 0 });
    const b = await openStore({ url, epochs, epochMs: 0 });
    try {
      await a.put(u.segments);
      expect(await reassemble(b, u)).toEqual(new Uint8Array(gcode.subarray(0, 20_000)));
      await a.rotate();
      expect(epochs.e).toBe(1);
      expect(await reassemble(b, u)).toEqual(new Uint8Array(gcode.subarray(0, 20_000))); // b learns K_1 from the source
      await b.put(randomSegments(16, 4112)); // written under epoch 1
      expect(await b.delete(u.ids)).toBe(u.segments.length);
      await expectLmError(a.get([u.ids[0] as Uint8Array]), Reason.unknown, /no segment/);
      expect(await a.stats()).toMatchObject({ epoch: 1, segments: 16, epochs: [{ epoch: 1, count: 16 }] });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('instances whose timers are out of phase: the earliest rotates each period, the other skips, and takes over when it stops [LM-SVC-3]', async () => {
    const url = await newUrl();
    const epochs = new TestEpochs();
    const clock = new ManualClock();
    const [evA, evB] = [events(), events()];
    const a = await openStore({ url, epochs, clock, epochMs: 1000, onEvent: evA.on });
    clock.advance(600);
    const b = await openStore({ url, epochs, clock, epochMs: 1000, onEvent: evB.on });
    try {
      await a.put(randomSegments(64));
      const step = async (ms: number, ev: ReturnType<typeof events>, kind: StoreEvent['kind']) => {
        const got = ev.next((e) => e.kind === kind || e.kind === 'error' || e.kind === 'rotated' || e.kind === 'skipped');
        clock.advance(ms);
        return got;
      };
      expect(await step(400, evA, 'rotated')).toMatchObject({ kind: 'rotated', epoch: 1 }); // t = 1000: a
      expect(await step(600, evB, 'skipped')).toEqual({ kind: 'skipped', ago: 600 }); // t = 1600: b, 600 ms after a
      expect(await step(400, evA, 'rotated')).toMatchObject({ kind: 'rotated', epoch: 2 }); // t = 2000: a
      expect(await step(600, evB, 'skipped')).toEqual({ kind: 'skipped', ago: 600 });
      await a.close();
      expect(await step(1000, evB, 'rotated')).toMatchObject({ kind: 'rotated', epoch: 3 }); // t = 3600: b, a is gone
      expect(epochs.establishedLog).toEqual([1, 2, 3]);
      expect((await b.stats()).epochs).toEqual([{ epoch: 3, count: 64 }]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('two instances rotating at once move every row once; puts during the rotation land in the new epoch; reads go on [LM-SVC-3] [LM-SVC-4]', async () => {
    const url = await newUrl();
    const epochs = new TestEpochs();
    const ev = events();
    const a = await openStore({ url, epochs, epochMs: 0, batch: 64, onEvent: ev.on });
    const b = await openStore({ url, epochs, epochMs: 0, batch: 64 });
    try {
      const segs = randomSegments(2000);
      await a.put(segs);
      const late = randomSegments(64);
      const putDuring = ev.next((e) => e.kind === 'batch').then(() => b.put(late));
      let reads = 0;
      let done = false;
      const reader = (async () => {
        while (!done) {
          const pick = Array.from({ length: 8 }, () => segs[Math.floor(Math.random() * segs.length)] as Segment);
          const got = await b.get(pick.map((s) => s.id));
          got.forEach((g, i) => expect(equalBytes(g, (pick[i] as Segment).bytes)).toBe(true));
          reads++;
        }
      })();
      await Promise.all([a.rotate(), b.rotate(), putDuring]);
      done = true;
      await reader;
      expect(reads).toBeGreaterThan(0);
      expect(epochs.e).toBe(1);
      expect(epochs.establishedLog).toEqual([1]);
      expect(await a.stats()).toMatchObject({ epoch: 1, segments: 2064, epochs: [{ epoch: 1, count: 2064 }] });
      const all = [...segs, ...late];
      const got = await a.get(all.map((s) => s.id));
      got.forEach((g, i) => expect(equalBytes(g, (all[i] as Segment).bytes)).toBe(true));
    } finally {
      await a.close();
      await b.close();
    }
  });
});
