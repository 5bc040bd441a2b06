/**
 * The services of protected jobs as processes of their own (SPEC §16.1), the way an operator runs
 * them: `livematrix broker --registry` with the roles store, keys and owner ([LM-SVC-7]),
 * `livematrix keys-service`, `livematrix store` and `livematrix device`; the owner's
 * `livematrix upload`, the operator's `livematrix sign --protected-jid` and `livematrix grant`,
 * and `livematrix stream --protected`, which holds no file and no licence ([LM-PROT-2],
 * [LM-SVC-4]). The device gets the file byte-identical; mid-stream, the gateway process holds no
 * 8-byte substring of the plaintext, neither in its heap snapshot nor anywhere in its memory,
 * while the device process does (so the scan can fail); a store killed mid-stream and started
 * again costs a pause, not the stream ([LM-SVC-3]); an untrusted key is refused and changes
 * nothing ([LM-SVC-6]); a device cannot publish to a service inbox ([LM-SVC-7]). Each property is
 * checked against what shows that it could fail. Synchronised on what the processes print and on
 * files they write, never on fixed sleeps.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameType, LmError, Reason, encodeFrame, randomBytes, toHex, topics } from '@livematrix/spec';
import { type IdentityFile, createIdentityFile } from '@livematrix/spec/keyfile';
import { FrameLink } from '@livematrix/spec/transport';
import { ServiceEndpoint, keysClient, storeClient } from '@livematrix/gateway/services';
import { type Running, cli } from './cli-harness.js';
import { GCODE, syntheticGcode } from './harness.js';
import { Grams, heapSnapshotIn, minus, scanHeapSnapshot, scanProcessMemory, scanProgramText } from './plaintext-scan.js';

const FLEET = 'default';
const NAMES = ['operator', 'gw-1', 'printer-1', 'printer-9', 'store-1', 'keys-1', 'owner-1', 'stranger'] as const;
type Name = (typeof NAMES)[number];

let dir: string;
let url: string;
let metricsUrl: string;
const id = {} as Record<Name, IdentityFile & { file: string; hex: string }>;
const procs: Running[] = [];
let keysService: Running;
let store: Running;
/** the first test's job and its gateway transaction file, deleted by the last test */
let cylinder: { jid: string; segments: number; tx: string } | undefined;
/** where each process that can be asked for a heap snapshot writes it (its working directory) */
const snaps = { gateway: '', device: '', keys: '' };
const snapshotOn = { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --heapsnapshot-signal=SIGUSR2`.trim() };

function start(args: string[], o: Parameters<typeof cli>[1] = {}): Running {
  const p = cli(args, o);
  procs.push(p);
  return p;
}

const conn = () => ['--url', url, '--fleet', FLEET];
const peers = () => ['--store', 'store-1', '--store-key', id['store-1'].hex, '--keys-service', 'keys-1', '--keys-service-key', id['keys-1'].hex];

function startStore(): Running {
  return start(['store', '--identity', id['store-1'].file, '--dir', join(dir, 'store'), '--keys-service', 'keys-1', '--keys-service-key', id['keys-1'].hex,
    '--trust-gateway', id['gw-1'].hex, '--trust-owner', id['owner-1'].hex, '--epoch', '4s', ...conn()]); // a new outer key while the jobs stream
}

/** `livematrix upload FILE` as owner-1; its JSON line. */
async function upload(file: string): Promise<{ jid: string; uh: string; size: number; jd: string; n: number; segments: number }> {
  const r = await start(['upload', file, '--owner', id['owner-1'].file, ...peers(), ...conn()]);
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out.trim().split('\n').pop()!) as { jid: string; uh: string; size: number; jd: string; n: number; segments: number };
}

/** The operator signs a protected transaction for printer-1 and grants its licence to the keys service; the gateway's file. */
async function signAndGrant(up: { jid: string; uh: string; size: number; jd: string }, name: string): Promise<string> {
  const tx = join(dir, `${name}.tx.json`);
  const licence = join(dir, `${name}.licence.json`);
  const s = await start(['sign', '--operator', id.operator.file, '--protected-jid', up.jid, '--upload-hash', up.uh, '--size', String(up.size), '--digest', up.jd,
    '--device', 'printer-1', '--device-key', id['printer-1'].hex, '--gateway-key', id['gw-1'].hex, '--rate', '100000000', '--burst', '100000000', '--prints', '2', '--out', tx, '--licence-out', licence]);
  expect(s.code, s.err).toBe(0);
  expect(readFileSync(tx, 'utf8')).not.toMatch(/licence/); // the gateway's file holds no licence ([LM-SVC-4])
  const g = await start(['grant', '--tx', licence, '--identity', id.operator.file, '--keys-service', 'keys-1', '--keys-service-key', id['keys-1'].hex, ...conn()]);
  expect(g.code, g.err).toBe(0);
  return tx;
}

function device(out: string, rate: number, o: Parameters<typeof cli>[1] = {}): Running {
  return start(['device', '--identity', id['printer-1'].file, '--operator-key', id.operator.hex, '--out', out, '--rate', String(rate), '--once', ...conn()], o);
}

function streamProtected(tx: string, o: Parameters<typeof cli>[1] = {}): Running {
  return start(['stream', '--protected', '--device', 'printer-1', '--tx', tx, '--identity', id['gw-1'].file, '--operator-key', id.operator.hex, '--w', '16', ...peers(), ...conn()], o);
}

/** A library client of the services as `who` (for what the processes do not print). */
async function client(who: Name) {
  const ep = await ServiceEndpoint.connect({ url, fleet: FLEET, id: who, role: 'owner', identity: id[who], auth: 'token' });
  return { ep, store: storeClient(ep, { id: 'store-1', publicKey: id['store-1'].publicKey }), keys: keysClient(ep, { id: 'keys-1', publicKey: id['keys-1'].publicKey }) };
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lm-cli-services-'));
  for (const n of NAMES) {
    const file = join(dir, `${n}.json`);
    const f = createIdentityFile(file, n);
    id[n] = { ...f, file, hex: toHex(f.publicKey) };
  }
  const role: Record<Name, string> = { operator: 'owner', 'gw-1': 'gateway', 'printer-1': 'device', 'printer-9': 'device', 'store-1': 'store', 'keys-1': 'keys', 'owner-1': 'owner', stranger: 'owner' };
  writeFileSync(join(dir, 'registry.json'), JSON.stringify({
    clients: NAMES.map((n) => ({ id: n, role: role[n], fleet: FLEET, publicKey: id[n].hex, ...(n === 'gw-1' ? { devices: ['printer-1'] } : {}) })),
  }));
  const broker = start(['broker', '--port', '0', '--metrics-port', '0', '--registry', join(dir, 'registry.json')]);
  const m = await broker.waitFor(/mqtt (\d+), metrics (http:\/\/\S+\/metrics)/, 'out');
  url = `mqtt://127.0.0.1:${m[1]}`;
  metricsUrl = m[2]!;
  for (const k of Object.keys(snaps) as (keyof typeof snaps)[]) mkdirSync((snaps[k] = join(dir, `heap-${k}`)));
  keysService = start(['keys-service', '--identity', id['keys-1'].file, '--dir', join(dir, 'keys'), '--trust-gateway', id['gw-1'].hex, '--trust-store', id['store-1'].hex,
    '--trust-owner', id['owner-1'].hex, '--operator-key', id.operator.hex, ...conn()], { env: snapshotOn, cwd: snaps.keys });
  await keysService.waitFor(/keys service keys-1 online/, 'out');
  store = startStore();
  await store.waitFor(/store store-1 online/, 'out');
}, 60_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs);
  rmSync(dir, { recursive: true, force: true }); // heap snapshots are tens of MB each
});

describe('protected jobs, each service a process of its own [LM-SVC-6] [LM-SVC-7]', () => {
  it('upload, sign, grant, stream --protected: byte-identical; mid-stream the gateway holds no plaintext (heap snapshot and memory), the device does', async () => {
    const file = join(GCODE, 'cylinder_annular.gcode');
    const plaintext = new Uint8Array(readFileSync(file));
    const up = await upload(file);
    expect(up.size).toBe(plaintext.length);
    const tx = await signAndGrant(up, 'cylinder');
    cylinder = { jid: up.jid, segments: up.segments, tx };
    const out = join(dir, 'cylinder.out.gcode');
    const dev = device(out, 120_000, { env: snapshotOn, cwd: snaps.device }); // about 17 s: alive through the snapshots and scans
    await dev.waitFor(/online/);
    const gw = streamProtected(tx, { env: snapshotOn, cwd: snaps.gateway });
    await gw.waitFor(/printer-1: [1-9]\d*% /); // mid-stream: 10% or more of the job taken, most of it still to come
    for (const p of [gw, dev, keysService]) p.child.kill('SIGUSR2');
    const [gwSnap, devSnap, ksSnap] = await Promise.all([heapSnapshotIn(snaps.gateway), heapSnapshotIn(snaps.device), heapSnapshotIn(snaps.keys)]);
    const grams = new Grams(plaintext);
    // What a process of this command holds whatever it serves: its program's text (a process
    // holds the source of every module it loads, a slicer's comments share words with code) and
    // V8's own names, from the same scans of the keys service, which never sees a byte of plaintext.
    const program = scanProgramText(join(import.meta.dirname, '..', '..'), grams);
    const ksHeap = scanHeapSnapshot(ksSnap, grams);
    const ambient = new Set([...program.found, ...ksHeap.found, ...scanProcessMemory(keysService.child.pid!, grams).found]);
    const gwHeap = scanHeapSnapshot(gwSnap, grams);
    const gwMem = scanProcessMemory(gw.child.pid!, grams);
    const devHeap = scanHeapSnapshot(devSnap, grams);
    const devMem = scanProcessMemory(dev.child.pid!, grams);
    console.log(`plaintext: ${grams.size} distinct 8-byte substrings; ambient: ${ambient.size} (program text ${program.found.size} in ${program.files} files, the keys service the rest); `
      + `gateway: heap snapshot ${gwHeap.strings} strings, ${minus(gwHeap.found, ambient).length} found, memory ${(gwMem.bytes / 1e6).toFixed(0)} MB, ${minus(gwMem.found, ambient).length} found; `
      + `device: heap snapshot ${minus(devHeap.found, ambient).length} found, memory ${(devMem.bytes / 1e6).toFixed(0)} MB, ${minus(devMem.found, ambient).length} found`);
    expect(minus(gwHeap.found, ambient)).toEqual([]);
    expect(minus(gwMem.found, ambient)).toEqual([]);
    // the control: the device, which holds plaintext, shows it to the same scan (in Buffers,
    // whose contents a heap snapshot does not record: there its count is 0 or near it)
    expect(minus(devMem.found, ambient).length).toBeGreaterThan(100);
    const [g, d] = await Promise.all([gw, dev]);
    expect(g.code, g.err).toBe(0);
    expect(d.code, d.err).toBe(0);
    expect(readFileSync(out).equals(Buffer.from(plaintext))).toBe(true);
  }, 180_000);

  it('the store killed mid-stream and started again: the stream waits for it and completes byte-identical [LM-SVC-3]', async () => {
    const file = join(dir, 'synthetic.gcode');
    const plaintext = syntheticGcode(6 * 2 ** 20); // 1.5 times the device's window: the gateway needs the store to the end
    writeFileSync(file, plaintext);
    const t0 = Date.now();
    const up = await upload(file);
    console.log(`upload of ${(up.size / 2 ** 20).toFixed(0)} MiB: ${up.segments} segments to the store, the envelope to the keys service, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const tx = await signAndGrant(up, 'synthetic');
    const out = join(dir, 'synthetic.out.gcode');
    const dev = device(out, 2_000_000);
    await dev.waitFor(/online/);
    const gw = streamProtected(tx);
    await gw.waitFor(/printer-1: [1-9]\d*% /);
    store.kill('SIGKILL');
    await store.then(() => undefined);
    // the gateway asks again while the store is gone, then gets its answer from the new process
    await gw.waitFor(/no answer from store-1 to get within [\d.]+ s; asking again/);
    store = startStore();
    await store.waitFor(/store store-1 online/, 'out');
    const [g, d] = await Promise.all([gw, dev]);
    expect(g.code, g.err).toBe(0);
    expect(d.code, d.err).toBe(0);
    expect(readFileSync(out).equals(Buffer.from(plaintext))).toBe(true);
    console.log(`6 MiB streamed with the store killed and started again: ${((Date.now() - t0) / 1000).toFixed(1)} s from the start of the upload`);
    // the store started again changes its outer key on the keys service's keys, as before ([LM-SVC-3])
    await store.waitFor(/store store-1: epoch \d+, \d+ segments re-encrypted; keys service keys-1 confirmed/);
  }, 180_000);

  it('delete: both services remove the job and sign receipts; a later stream says the job is deleted [LM-SVC-5]', async () => {
    expect(cylinder).toBeDefined();
    const owner = await client('owner-1');
    try {
      const before = (await owner.store.stats()).segments;
      const r = await start(['delete', '--owner', id['owner-1'].file, '--jid', cylinder!.jid, ...peers(), ...conn()]);
      expect(r.code, r.err).toBe(0);
      const receipts = r.out.trim().split('\n').map((l) => JSON.parse(l) as { receipt: string; service: string; jid: string; removed: number });
      expect(receipts.map((x) => [x.receipt, x.service, x.jid])).toEqual([['keys service', 'keys-1', cylinder!.jid], ['store', 'store-1', cylinder!.jid]]);
      expect(receipts[1]!.removed).toBe(cylinder!.segments);
      expect((await owner.store.stats()).segments).toBe(before - cylinder!.segments);
      const again = await streamProtected(cylinder!.tx);
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/not known to this keys service \(deleted or never uploaded\)/);
    } finally {
      await owner.ep.close();
    }
  }, 60_000);

  it('a request signed by a key the service does not trust is refused and changes nothing; a device cannot publish to a service inbox', async () => {
    const owner = await client('owner-1');
    const stranger = await client('stranger');
    try {
      const before = await owner.store.stats();
      // the stranger is in the broker's registry (role owner), but neither service trusts its key
      const file = join(dir, 'stranger.gcode');
      writeFileSync(file, syntheticGcode(50_000));
      const r = await start(['upload', file, '--owner', id.stranger.file, ...peers(), ...conn()]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`store-1: the store store-1 does not trust key ${id.stranger.hex} for put ([LM-SVC-6])`);
      for (const ask of [() => stranger.keys.epochs(), () => stranger.keys.established(before.epoch + 1), () => stranger.store.get([randomBytes(16)])]) {
        const e = await ask().then(() => undefined, (x: unknown) => x);
        expect(e).toBeInstanceOf(LmError);
        expect((e as LmError).code).toBe(Reason.auth);
      }
      // no segment stored (the store's own 4 s rotation may move its epoch meanwhile; the stranger's
      // epoch request is refused, which the keys service's log below shows)
      const after = await owner.store.stats();
      expect({ segments: after.segments, bytes: after.bytes }).toEqual({ segments: before.segments, bytes: before.bytes });
      await expect(keysService.waitFor(/refused epoch of "stranger": key [0-9a-f]{64} is not trusted for it/)).resolves.toBeTruthy();

      // a device: the broker refuses its publish to an inbox (and closes its connection); the keys service never sees it
      const link = await FrameLink.connect({ url, clientId: `lm-dev-printer-9-${toHex(randomBytes(3))}`, token: { id: 'printer-9', role: 1, secretKey: id['printer-9'].secretKey }, reconnectPeriod: 0 });
      const closed = new Promise<void>((res) => link.client.once('close', () => res()));
      const req = encodeFrame(FrameType.SVC_REQ, { id: randomBytes(16), op: 24, args: randomBytes(40), time: Date.now(), from: 'printer-9', pk: id['printer-9'].publicKey }, { kind: 'sig', secretKey: id['printer-9'].secretKey });
      link.client.publish(topics.serviceIn(FLEET, 'keys-1'), Buffer.from(req), { qos: 0 });
      await closed;
      expect(await metric('livematrix_publish_denied_total', 'role="device"')).toBe(1);
      await link.close(true);
      expect(keysService.err).not.toMatch(/printer-9/);
    } finally {
      await owner.ep.close();
      await stranger.ep.close();
    }
  }, 60_000);
});
