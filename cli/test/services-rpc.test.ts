/**
 * The services of protected jobs over a real broker with the Live Matrix plugin (SPEC §16.1), in
 * one process: the keys service and the store each on an inbox of its own, their clients on
 * others, every party connected with its own identity and role ([LM-SVC-7]). What crosses the
 * broker in parts (an envelope staged, a playbook in pages, segments in batches and, when one is
 * larger than a request, staged and fetched in pieces) arrives whole; a chunk key released over
 * the broker opens its chunk as a device would; the store rotates on keys from the remote keys
 * service ([LM-SVC-3]); and the message-level rules of [LM-SVC-6] hold: an untrusted key is
 * refused and changes nothing, a replayed or stale request is refused, an answer signed by
 * another key is not taken, and nothing secret crosses the broker in the clear.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry, type RunningBroker, livematrixPlugin, startBroker } from '@livematrix/broker';
import {
  FrameType, type IdentityKeyPair, LmError, Ratchet, Reason, type RoleName, SvcOp, contentChain, createTx, decodeFrame, digest, encodeFrame, equalBytes,
  identityKeyPair, openProtectedChunk, randomBytes, sealUpload, signDelete, svcKey, svcSealValue, svcShared, toHex, topics, unwrapChunkKey, verifyDeletionReceipt,
} from '@livematrix/spec';
import { type KeysService, openKeysService } from '@livematrix/gateway/keys-service';
import { type ProtectedStore, openStore } from '@livematrix/gateway/store';
import { IDS_PER_PAGE, type KeysClient, type RemoteEpochs, ServiceEndpoint, type StoreClient, cmap, keysClient, remoteEpochs, serveKeys, serveStore, storeClient } from '@livematrix/gateway/services';
import { syntheticGcode } from './harness.js';

const FLEET = 'f1';
const parties = { 'keys-1': 'keys', 'store-1': 'store', 'owner-1': 'owner', 'operator': 'owner', 'gw-1': 'gateway', 'stranger': 'owner' } as const satisfies Record<string, RoleName>;
type Party = keyof typeof parties;
const ids = Object.fromEntries(Object.keys(parties).map((p) => [p, identityKeyPair()])) as Record<Party, IdentityKeyPair>;
const peer = (p: Party) => ({ id: p, publicKey: ids[p].publicKey });

let broker: RunningBroker;
let dir: string;
let ks: KeysService;
let store: ProtectedStore;
let epochs: RemoteEpochs;
const eps = new Map<Party, ServiceEndpoint>();
const logs = new Map<Party, string[]>();
/** every payload the broker carried on a protocol topic */
const wire: Buffer[] = [];

async function connect(p: Party): Promise<ServiceEndpoint> {
  const lines: string[] = [];
  logs.set(p, lines);
  const ep = await ServiceEndpoint.connect({ url: broker.url, fleet: FLEET, id: p, role: parties[p], identity: ids[p], auth: 'token', log: (l) => lines.push(l) });
  eps.set(p, ep);
  return ep;
}

const owner = () => ({ keys: keysClient(eps.get('owner-1')!, peer('keys-1')), store: storeClient(eps.get('owner-1')!, peer('store-1')) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lm-services-rpc-'));
  const registry = new Registry((Object.keys(parties) as Party[]).map((p) => ({
    id: p, role: parties[p], fleet: FLEET, publicKey: ids[p].publicKey, limits: { framesPerSecond: 5000, bytesPerSecond: 50_000_000 },
  })));
  broker = await startBroker({ setup: (a) => void livematrixPlugin(a, { registry }) });
  broker.aedes.on('publish', (packet) => {
    if (packet.topic.startsWith('lm/')) wire.push(Buffer.from(packet.payload as Buffer));
  });
  ks = openKeysService({ dir: join(dir, 'keys'), identity: ids['keys-1'], trustedOwners: [ids['owner-1'].publicKey], trustedOperators: [ids.operator.publicKey] });
  serveKeys(await connect('keys-1'), ks, { gateways: [ids['gw-1'].publicKey], stores: [ids['store-1'].publicKey], owners: [ids['owner-1'].publicKey], operators: [ids.operator.publicKey] });
  const stEp = await connect('store-1');
  epochs = remoteEpochs(keysClient(stEp, peer('keys-1')));
  await epochs.prepare();
  store = await openStore({ dir: join(dir, 'store'), epochs, epochMs: 0 });
  serveStore(stEp, store, { gateways: [ids['gw-1'].publicKey], owners: [ids['owner-1'].publicKey] }, { keysService: ids['keys-1'].publicKey, name: 'store-1' });
  for (const p of ['owner-1', 'operator', 'gw-1', 'stranger'] as const) await connect(p);
});

afterAll(async () => {
  for (const ep of eps.values()) await ep.close();
  await store?.close();
  epochs?.destroy();
  await ks?.close();
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An owner's upload over the broker: segments to the store, the envelope to the keys service. */
async function uploadJob(plaintext: Uint8Array, C: number) {
  const up = sealUpload(plaintext, { owner: ids['owner-1'], keysService: ks.x25519Public, now: Date.now(), C });
  const o = owner();
  let reported = 0;
  await o.store.put(up.segments, (n) => (reported = n));
  expect(reported).toBe(up.segments.length);
  expect(await o.keys.register(up.upload.bytes, up.envelope)).toBe(toHex(up.jid));
  return up;
}

/** The gateway's view: the playbook, then every real segment in chunk order. */
async function gatewayReads(jid: Uint8Array): Promise<{ order: Uint8Array[]; segs: Uint8Array[]; last: number }> {
  const gw = eps.get('gw-1')!;
  const pb = await keysClient(gw, peer('keys-1')).playbook(jid);
  const segs = await storeClient(gw, peer('store-1')).get(pb.order);
  return { order: pb.order, segs, last: pb.last };
}

describe('services over the broker [LM-SVC-6] [LM-SVC-7]', () => {
  it('an upload of 4096 chunks: the envelope staged, the playbook in pages, segments in batches, all whole', async () => {
    const plaintext = syntheticGcode(4096 * 256 - 100);
    const up = await uploadJob(plaintext, 256);
    expect(up.envelope.length).toBeGreaterThan(200_000); // staged: beyond one request
    const { order, segs } = await gatewayReads(up.jid);
    expect(order.length).toBeGreaterThan(IDS_PER_PAGE); // more than one page of ids
    const byId = new Map(up.segments.map((s) => [toHex(s.id), s.bytes]));
    segs.forEach((s, j) => expect(equalBytes(s, byId.get(toHex(order[j]!))!), `segment ${j}`).toBe(true));
  }, 120_000);

  it('segments larger than a request are staged in and fetched in pieces; a chunk key released over the broker opens its chunk', async () => {
    const plaintext = syntheticGcode(3 * 60_000 + 1000);
    const up = await uploadJob(plaintext, 60_000); // segments of 60016 bytes: more than one request holds
    const { order, segs, last } = await gatewayReads(up.jid);
    expect(segs.every((s) => s.length === 60_000 + 16)).toBe(true);
    // the operator grants the transaction's licence; the gateway asks for chunk keys; the device opens them
    const device = identityKeyPair();
    const now = Date.now();
    const { tx, licence } = createTx({
      job: 'big', plaintext: { digest: up.upload.body.jd, size: up.upload.body.size }, device: 'p1', devicePublic: device.publicKey, operatorSecret: ids.operator.secretKey,
      operatorPublic: ids.operator.publicKey, notBefore: now - 60_000, notAfter: now + 3_600_000, rate: 1e9, burst: 1e9, protectedJob: { jid: up.jid, uh: up.upload.hash },
    });
    expect(await keysClient(eps.get('operator')!, peer('keys-1')).grant(tx.bytes, licence)).toBe(toHex(tx.hash));
    const gwKeys = keysClient(eps.get('gw-1')!, peer('keys-1'));
    const sid = randomBytes(16);
    const th = randomBytes(32);
    const r0 = 1000;
    const wraps = await Promise.all(order.map((_, j) => gwKeys.release({ txh: tx.hash, sid, th, r0, j, r: r0, now: Date.now() }))); // one request
    const wk = new Ratchet(contentChain(licence, th), r0).keysFor(r0).wk;
    const opened = segs.map((s, j) => openProtectedChunk(unwrapChunkKey(wk, sid, j, wraps[j]!), up.jid, j, j === segs.length - 1 ? s.subarray(0, last) : s));
    expect(Buffer.concat(opened).equals(Buffer.from(plaintext))).toBe(true);
    await gwKeys.endSession!(sid);
    // nothing secret crossed the broker in the clear: no licence, no chunk of plaintext, no epoch key
    const secrets = [licence, plaintext.subarray(1000, 1032)];
    for (const p of wire) for (const s of secrets) expect(p.includes(Buffer.from(s))).toBe(false);
  }, 120_000);

  it('the store rotates on epoch keys from the remote keys service, which then erases the old chain [LM-SVC-3]', async () => {
    const before = ks.current().e;
    await epochs.prepare();
    await store.rotate();
    await epochs.flush();
    expect(ks.current().e).toBe(before + 1);
    expect((await store.stats()).epoch).toBe(before + 1);
    const up = await uploadJob(syntheticGcode(20_000), 4096);
    const { segs } = await gatewayReads(up.jid);
    expect(segs.length).toBe(up.upload.body.n);
    const wrapKey = Buffer.from(ks.current().key);
    for (const p of wire) expect(p.includes(wrapKey)).toBe(false); // epoch keys travel sealed to the store
  }, 60_000);

  it('a key trusted for nothing is refused, op by op, and changes nothing; a gateway cannot register, an owner cannot fetch epoch keys', async () => {
    const stranger = eps.get('stranger')!;
    const sKeys = keysClient(stranger, peer('keys-1'));
    const sStore: StoreClient = storeClient(stranger, peer('store-1'));
    const stats = await owner().store.stats();
    const epoch = ks.current().e;
    const refused = async (p: Promise<unknown>) => {
      const e = await p.then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(LmError);
      expect((e as LmError).code).toBe(Reason.auth);
      expect((e as LmError).message).toMatch(/does not trust key [0-9a-f]{64} for \w+ \(\[LM-SVC-6\]\)/);
    };
    await refused(sKeys.epochs());
    await refused(sKeys.established(epoch + 1));
    await refused(sStore.put([{ id: randomBytes(16), bytes: randomBytes(4112) }]));
    await refused(sStore.get([randomBytes(16)]));
    const up = sealUpload(syntheticGcode(5000), { owner: ids.stranger, keysService: ks.x25519Public, now: Date.now() });
    await refused(sKeys.register(up.upload.bytes, up.envelope));
    await refused(keysClient(eps.get('gw-1')!, peer('keys-1')).register(up.upload.bytes, up.envelope));
    await refused(owner().keys.epochs());
    expect(await owner().store.stats()).toEqual(stats);
    expect(ks.current().e).toBe(epoch);
    expect(logs.get('keys-1')!.some((l) => l.includes(`refused epoch of "stranger": key ${toHex(ids.stranger.publicKey)} is not trusted for it`))).toBe(true);
  }, 60_000);

  it('a replayed request, a stale one and one made before the service started are refused as replay; an answer signed by another key is not taken', async () => {
    const own = eps.get('owner-1')!;
    const answers = new Map<string, { code: number; detail: string }>();
    const waiters = new Map<string, () => void>();
    own.link.onPayload((topic, payload) => {
      if (topic !== own.inbox) return;
      const f = decodeFrame(payload);
      if (f.type !== FrameType.SVC_RESP) return;
      answers.set(toHex(f.body.id), { code: f.body.code, detail: f.body.detail });
      waiters.get(toHex(f.body.id))?.();
    });
    const send = async (id: Uint8Array, time: number) => {
      const key = svcKey(svcShared(ids['owner-1'], ids['store-1'].publicKey), id, 'req', ids['owner-1'].publicKey, ids['store-1'].publicKey);
      const frame = encodeFrame(FrameType.SVC_REQ, { id, op: SvcOp.stats, args: svcSealValue(key, id, cmap()), time, from: 'owner-1', pk: ids['owner-1'].publicKey }, { kind: 'sig', secretKey: ids['owner-1'].secretKey });
      const answered = new Promise<void>((r) => waiters.set(toHex(id), r));
      await own.link.send(topics.serviceIn(FLEET, 'store-1'), frame, FrameType.SVC_REQ);
      await answered;
      return answers.get(toHex(id))!;
    };
    const id = randomBytes(16);
    expect((await send(id, Date.now())).code).toBe(0);
    const again = await send(id, Date.now());
    expect(again.code).toBe(Reason.replay);
    expect(again.detail).toMatch(/seen before/);
    const stale = await send(randomBytes(16), Date.now() - 121_000);
    expect(stale.code).toBe(Reason.replay);
    expect(stale.detail).toMatch(/beyond 120 s/);
    const early = await send(randomBytes(16), eps.get('store-1')!.startedAt - 1);
    expect(early.code).toBe(Reason.replay);
    expect(early.detail).toMatch(/before the store started/);

    // a client configured with another key for the store takes none of its answers
    const wrong = storeClient(own, { id: 'store-1', publicKey: ids.stranger.publicKey }, { attemptMs: 500, deadlineMs: 1200 });
    const e = await wrong.stats().then(() => undefined, (x: unknown) => x);
    expect((e as LmError).code).toBe(Reason.timeout);
    expect(logs.get('owner-1')!.some((l) => /not signed by store-1's key/.test(l))).toBe(true);
  }, 60_000);

  it('delete: the keys service signs the job\'s segment list, the store deletes only under that signature; both receipts verify [LM-SVC-5]', async () => {
    const up = await uploadJob(syntheticGcode(30_000), 1024);
    const o: { keys: KeysClient; store: StoreClient } = owner();
    const del = signDelete(up.jid, ids['owner-1'], Date.now());
    const d = await o.keys.delete(del);
    expect(d.ids.length / 16).toBe(up.segments.length);
    // a list the keys service did not sign deletes nothing
    const before = (await o.store.stats()).segments;
    const forged = await o.store.delete(del, d.ids, new Uint8Array(64)).then(() => undefined, (x: unknown) => x);
    expect((forged as LmError).code).toBe(Reason.auth);
    expect((await o.store.stats()).segments).toBe(before);
    const receipt = await o.store.delete(del, d.ids, d.sig);
    expect(verifyDeletionReceipt(d.receipt, ids['keys-1'].publicKey).jid).toEqual(up.jid);
    const sr = verifyDeletionReceipt(receipt, ids['store-1'].publicKey);
    expect(sr.removed).toBe(up.segments.length);
    expect(sr.dh).toEqual(digest(del));
    expect((await o.store.stats()).segments).toBe(before - up.segments.length);
    const gone = await keysClient(eps.get('gw-1')!, peer('keys-1')).playbook(up.jid).then(() => undefined, (x: unknown) => x);
    expect(String((gone as Error).message)).toMatch(/not known to this keys service \(deleted or never uploaded\)/);
  }, 60_000);
});
