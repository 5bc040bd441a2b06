/**
 * Protected jobs end to end (SPEC.md §16), the sender side split into its nodes, each on its own
 * state (real SQLite), over a real broker: the owner uploads ciphertext among decoys to the store
 * and an envelope to the keys service; the gateway streams what it cannot read; the device prints
 * the job byte-identical ([LM-PROT-1]..[LM-SVC-5]).
 */
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Device, type IncomingStream, memoryLicenceStore } from '@livematrix/device-sdk';
import { Gateway, type KeyRelease, type SegmentSource } from '@livematrix/gateway';
import { type KeysService, openKeysService } from '@livematrix/gateway/keys-service';
import { type ProtectedStore, openStore } from '@livematrix/gateway/store';
import { LmError, createTx, digest, openOuter, identityKeyPair, sealUpload, signDelete, verifyDeletionReceipt } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { CAPS, GCODE, aedes } from './harness.js';

const engine = new MatrixEngine({ workers: 1 });
const data = new Uint8Array(readFileSync(join(GCODE, 'cylinder_annular.gcode')));

interface Fleet {
  ks: KeysService;
  store: ProtectedStore;
  gw: Gateway;
  device: Device;
  tx: Uint8Array;
  jid: Uint8Array;
  segmentIds: Uint8Array[];
  payloads: Buffer[];
  owner: ReturnType<typeof identityKeyPair>;
  /** closes a service and opens it again on its state */
  restart: { keys(): Promise<void>; store(): Promise<void> };
}

/** Owner, store, keys service, gateway and device, as separate parts on their own state. */
async function withFleet(run: (f: Fleet) => Promise<void>, o: { prot?: boolean } = {}): Promise<void> {
  const broker = await aedes();
  const payloads: Buffer[] = [];
  broker.aedes.on('publish', (packet) => {
    if (packet.topic.startsWith('lm/')) payloads.push(Buffer.from(packet.payload as Buffer));
  });
  const dir = mkdtempSync(join(tmpdir(), 'lm-protected-'));
  const [owner, operator, deviceKeys, gatewayKeys, ksIdentity] = [identityKeyPair(), identityKeyPair(), identityKeyPair(), identityKeyPair(), identityKeyPair()];
  const openKs = () => openKeysService({ dir: join(dir, 'keys'), identity: ksIdentity, trustedOwners: [owner.publicKey], trustedOperators: [operator.publicKey] });
  let ks = openKs();
  let store = await openStore({ dir: join(dir, 'store'), epochs: ks, epochMs: 0 });
  // the gateway reaches the services through these, as a client reaches a service that restarts
  const keysVia: KeyRelease = {
    playbook: (jid) => ks.playbook(jid),
    release: (r) => ks.release(r),
    endSession: (sid) => ks.endSession(sid),
  };
  const storeVia: SegmentSource = { get: (ids) => store.get(ids) };
  const restart = {
    keys: async () => {
      await ks.close();
      ks = openKs();
    },
    store: async () => {
      await store.close();
      store = await openStore({ dir: join(dir, 'store'), epochs: ks, epochMs: 0 });
    },
  };
  // the owner's machine: only ciphertext and a sealed envelope leave it ([LM-PROT-1]..[LM-SVC-2])
  const up = sealUpload(data, { owner, keysService: ks.x25519Public, now: Date.now() });
  await store.put(up.segments);
  await ks.register(up.upload.bytes, up.envelope);
  // the operator: a transaction naming the protected job; its licence goes to the keys service, not the gateway
  const now = Date.now();
  const { tx, licence } = createTx({
    job: 'protected-job', plaintext: { digest: up.upload.body.jd, size: up.upload.body.size }, device: 'p1', devicePublic: deviceKeys.publicKey,
    operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: now - 60_000, notAfter: now + 3_600_000,
    rate: 100_000_000, burst: 100_000_000, prints: 3, gatewayPublic: gatewayKeys.publicKey, protectedJob: { jid: up.jid, uh: up.upload.hash },
  });
  await ks.grant(tx.bytes, licence);
  licence.fill(0);
  const device = await Device.start({ url: broker.url, fleet: 'f1', id: 'p1', identity: deviceKeys, trustedOperators: [operator.publicKey], caps: { ...CAPS, ...(o.prot === false ? { prot: false } : {}) }, licences: memoryLicenceStore() }, engine);
  const gw = await Gateway.start({ url: broker.url, fleet: 'f1', id: 'gw1', identity: gatewayKeys, trustedOperators: [operator.publicKey], workers: 1, protected: { keys: keysVia, store: storeVia } });
  try {
    await run({ get ks() { return ks; }, get store() { return store; }, gw, device, tx: tx.bytes, jid: up.jid, segmentIds: up.segments.map((s) => s.id), payloads, owner, restart });
  } finally {
    await device.stop();
    await gw.stop();
    await store.close();
    await ks.close();
    await broker.close();
  }
}

async function readAll(s: IncomingStream, during?: (bytes: number) => Promise<void> | void): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let n = 0;
  let once = false;
  for await (const b of s.bytes()) {
    parts.push(b.slice());
    n += b.length;
    if (during && !once && n > data.length / 3) {
      once = true;
      await during(n);
    }
  }
  return Buffer.concat(parts);
}

describe('protected jobs [LM-PROT-1] [LM-PROT-2] [LM-SVC-4]', () => {
  it('the gateway streams a job it never holds in the clear: byte-identical, no plaintext on the wire, a rotation mid-stream', () => withFleet(async (f) => {
    const incoming = f.device.nextStream();
    const gs = await f.gw.streamProtected('p1', f.tx, { policy: { w: 16 } });
    const stream = await incoming;
    // the store changes epoch in the middle of the stream ([LM-SVC-3]): reads go on
    const out = await readAll(stream, () => f.store.rotate());
    const report = await gs.done;
    expect(out.equals(Buffer.from(data))).toBe(true);
    expect(report.receipt.bytes).toBe(data.length);
    expect(report.params.chunk).toBe(4096); // the upload's chunk size ([LM-PROT-1])
    expect((await f.store.stats()).epoch).toBeGreaterThan(0);
    const grams = new Set<string>();
    for (let i = 0; i + 8 <= data.length; i += 1) grams.add(Buffer.from(data.subarray(i, i + 8)).toString('latin1'));
    let hits = 0;
    for (const p of f.payloads) for (let i = 0; i + 8 <= p.length; i++) if (grams.has(p.subarray(i, i + 8).toString('latin1'))) hits++;
    expect(f.payloads.length).toBeGreaterThan(2 * Math.ceil(data.length / 4096));
    expect(hits).toBe(0);
  }), 60_000);

  it('the stream stays byte-identical across a rotation, a store restart and a keys service restart [LM-SVC-3] [LM-PROT-2]', () => withFleet(async (f) => {
    const incoming = f.device.nextStream();
    const gs = await f.gw.streamProtected('p1', f.tx, { policy: { w: 16 } });
    const stream = await incoming;
    const out = await readAll(stream, async () => {
      await f.store.rotate();
      await f.restart.store();
      await f.restart.keys();
    });
    await gs.done;
    expect(out.equals(Buffer.from(data))).toBe(true);
  }), 60_000);

  it('a copy of the store taken in epoch e opens with epoch e\'s key and with nothing the keys service holds after e + 1 [LM-SVC-3]', () => withFleet(async (f) => {
    const before = f.ks.current();
    const keyE = before.key.slice();
    // the copy: every row of the store's database, as a thief with its files would read them
    const copyDir = mkdtempSync(join(tmpdir(), 'lm-store-copy-'));
    await f.store.compact(); // its WAL folded into store.db
    cpSync(f.store.location.replace(/^sqlite:/, ''), join(copyDir, 'store.db'));
    const db = new Database(join(copyDir, 'store.db'), { readonly: true });
    const rows = db.prepare<[], { id: Buffer; epoch: number; bytes: Buffer }>('SELECT id, epoch, bytes FROM lm_segments').all();
    db.close();
    expect(rows.length).toBe(f.segmentIds.length);
    await f.store.rotate(); // e + 1 established: the keys service erased c_e
    const after = f.ks.current();
    expect(after.e).toBe(before.e + 1);
    const opens = (key: Uint8Array, r: (typeof rows)[number]) => {
      try {
        openOuter(key, r.epoch, new Uint8Array(r.id), new Uint8Array(r.bytes));
        return true;
      } catch {
        return false;
      }
    };
    expect(rows.filter((r) => opens(keyE, r)).length).toBe(rows.length); // the test is real
    expect(rows.filter((r) => opens(after.key, r) || opens(f.ks.next().key, r)).length).toBe(0);
  }), 60_000);

  it('an alarm at the keys service withholds every further key: the stream ends without the job [LM-PROT-2]', () => withFleet(async (f) => {
    const incoming = f.device.nextStream();
    const gs = await f.gw.streamProtected('p1', f.tx, { policy: { w: 16 } });
    const stream = await incoming;
    const failed = gs.done.then(() => undefined, (e: unknown) => e);
    const reading = readAll(stream, () => f.ks.alarm(digest(f.tx))).then(() => 'complete', (e: unknown) => e);
    const err = await failed;
    expect(err).toBeInstanceOf(LmError);
    expect(String((err as LmError).message)).toMatch(/keys service/);
    expect(await reading).not.toBe('complete');
  }), 60_000);

  it('a device that does not announce protected jobs is not offered one: the stream fails saying why [LM-PROT-3]', () => withFleet(async (f) => {
    const err = await f.gw.streamProtected('p1', f.tx, { policy: { w: 16 } }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(LmError);
    expect((err as LmError).message).toMatch(/does not open protected jobs/);
  }, { prot: false }), 60_000);

  it('delete: the keys service and the store remove the job, with signed receipts; a later stream fails clearly [LM-SVC-5]', () => withFleet(async (f) => {
    const del = signDelete(f.jid, f.owner, Date.now());
    const { receipt, segments } = await f.ks.delete(del);
    expect(verifyDeletionReceipt(receipt, f.ks.identityPublic).removed).toBeGreaterThan(0);
    expect(segments.length).toBe(f.segmentIds.length);
    expect(await f.store.delete(segments)).toBe(f.segmentIds.length);
    expect((await f.store.stats()).segments).toBe(0);
    await expect(f.gw.streamProtected('p1', f.tx, { policy: { w: 16 } })).rejects.toThrow(/not known to this keys service \(deleted or never uploaded\)/);
  }), 60_000);
});
