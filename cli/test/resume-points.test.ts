/**
 * Resume without the plaintext, end to end over a real aedes broker with a real gateway sender
 * ([LM-DLV-20], [LM-DLV-10], [LM-DLV-6]): the device process dies mid-job (its licence file stops
 * where the process stopped) or drops off, a new process on the same state directory resumes
 * with nothing but the count of bytes its consumer took (`{ bytes }`, no `read`), the consumer
 * skips what it already has, and the machine's output equals the job, for a job the gateway
 * seals and for a protected job ([LM-PROT-4]: its digest is keyed). A kept point that was altered
 * fails its tag and is skipped, reported as 'reject': the job resumes from 0 and its output is
 * still the job ([LM-DLV-22]). The devices write a point a second (`resumePointInterval`; the
 * default is 10 s).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Device, type IncomingStream, type LicenceRecord, type LicenceStore, fileLicenceStore } from '@livematrix/device-sdk';
import { Gateway, type GatewayStream } from '@livematrix/gateway';
import { openKeysService } from '@livematrix/gateway/keys-service';
import { openStore } from '@livematrix/gateway/store';
import { createTx, fromHex, identityKeyPair, sealUpload, toHex } from '@livematrix/spec';
import { testEngine } from '@livematrix/testkit';
import { CAPS, GCODE, aedes, rig, sign } from './harness.js';
import { crash } from './kit.js';

const engine = testEngine();
const data = new Uint8Array(readFileSync(join(GCODE, 'cylinder_annular.gcode')));
/** the devices' interval between two writes of a point ([LM-DLV-20]), short for the test */
const INTERVAL = 1000;
/** the consumer's pace: a machine, so that the device writes a few points on the way ([LM-DLV-20]: at most one per INTERVAL) */
const RATE = 400_000;
const CUT = 900_000;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The device's state directory, and a store on it that stops writing when the process "dies" (kill -9). */
function stateDir(): { dir: string; store: LicenceStore; kill(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'lm-resume-points-'));
  dirs.push(dir);
  const file = fileLicenceStore(dir);
  let dead = false;
  return { dir, store: { load: () => file.load(), save: (r) => void (dead || file.save(r)) }, kill: () => void (dead = true) };
}

/** Flips one bit of every kept point in the state directory's licence file. */
function tamper(dir: string): number {
  const path = join(dir, 'licences.json');
  const r = JSON.parse(readFileSync(path, 'utf8')) as LicenceRecord;
  let n = 0;
  for (const list of Object.values(r.points ?? {})) {
    for (const p of list) {
      p.h = toHex(fromHex(p.h).map((x, i) => (i === 0 ? x ^ 0x80 : x)));
      n++;
    }
  }
  writeFileSync(path, JSON.stringify(r));
  return n;
}

/**
 * The machine: makes each piece, at `rate` bytes/s (RATE: slow enough for the SDK to keep points,
 * at most one a second), until it has more than `cut` bytes (then its host dies).
 */
async function print(s: IncomingStream, out: Uint8Array[], cut = Infinity, skip = 0, rate = RATE): Promise<number> {
  const t0 = Date.now();
  let took = 0;
  for await (const b of s.bytes()) {
    // a resumed stream starts at its offset: what the machine already made is skipped ([LM-DLV-20])
    const keep = b.subarray(Math.min(skip, b.length));
    skip -= b.length - keep.length;
    if (keep.length) out.push(keep.slice());
    took += b.length;
    const ahead = (took / rate) * 1000 - (Date.now() - t0);
    if (ahead > 2) await new Promise((res) => setTimeout(res, ahead));
    if (took > cut) break;
  }
  return took;
}

interface Cut {
  /** bytes the machine made before its host died */
  took: number;
  /** what it made */
  made: Uint8Array[];
  gs: GatewayStream;
}

/**
 * The second process on the same state: resumes with `{ bytes }` alone; its consumer skips what
 * the machine made beyond the stream's offset and makes the rest.
 */
async function resume(url: string, ids: { deviceKeys: ReturnType<typeof identityKeyPair>; operator: ReturnType<typeof identityKeyPair> }, dir: string, c: Cut, asked: string[]) {
  const second = await Device.start({
    url, fleet: 'f1', id: 'p1', identity: ids.deviceKeys, trustedOperators: [ids.operator.publicKey], caps: CAPS, licences: fileLicenceStore(dir), resumePointInterval: INTERVAL,
    resume: (txh) => {
      asked.push(txh);
      return { bytes: c.took };
    },
  }, engine());
  const rejects: string[] = [];
  second.on('reject', (ev) => void rejects.push(ev.detail));
  const stream = await second.nextStream();
  const reading = print(stream, c.made, Infinity, c.took - stream.offset, Infinity).then(() => undefined, (e: unknown) => e);
  return { second, stream, reading, rejects };
}

describe('resume with only the consumer\'s count, over aedes with a real gateway [LM-DLV-20] [LM-DLV-10] [LM-DLV-6]', () => {
  for (const how of ['killed', 'dropped'] as const) {
    it(`a device ${how === 'killed' ? 'killed (its state stops with it)' : 'that drops off (it writes its newest point as it stops)'} resumes with { bytes }: the output equals the job`, async () => {
      const broker = await aedes();
      const st = stateDir();
      const r = await rig(broker.url, engine(), { licences: st.store, resumePointInterval: INTERVAL });
      const asked: string[] = [];
      let second: Device | undefined;
      try {
        const { tx, licence } = sign(r, data);
        const incoming = r.device.nextStream();
        const gs = await r.gateway.stream('p1', data, tx.bytes, licence, { policy: { w: 16 } });
        const first = await incoming;
        const made: Uint8Array[] = [];
        const took = await print(first, made, CUT);
        if (how === 'killed') st.kill();
        await crash(r.device);
        const res = await resume(broker.url, r, st.dir, { took, made, gs }, asked);
        second = res.second;
        const { stream } = res;
        const C = stream.params.chunk;
        expect(asked).toEqual([toHex(tx.hash)]);
        expect(stream.resumed).toBe(true);
        expect(stream.offset % C).toBe(0);
        expect(stream.offset).toBeLessThanOrEqual(took);
        expect(stream.offset).toBeGreaterThan(0); // from a kept point, not from the start
        // dropped: the newest point went out as the session was cut off, at the last multiple of lcm(C, 64) the SDK saw taken
        const step = (C * 64) / gcd(C, 64);
        if (how === 'dropped') expect(stream.offset).toBe(Math.floor((took - C) / step) * step);
        expect(await res.reading).toBeUndefined();
        const report = await gs.done;
        expect(Buffer.concat(made).equals(Buffer.from(data))).toBe(true);
        expect(report.receipt.bytes).toBe(data.length);
        // the print completed: its points are gone with its ticket ([LM-DLV-21])
        expect((JSON.parse(readFileSync(join(st.dir, 'licences.json'), 'utf8')) as LicenceRecord).points?.[toHex(tx.hash)]).toBeUndefined();
      } finally {
        await second?.stop();
        await r.close();
        await broker.close();
      }
    });
  }

  it('a kept point that was altered fails its tag: skipped and reported, the job resumes from 0 and the output equals the job [LM-DLV-22] [LM-DLV-6]', async () => {
    const broker = await aedes();
    const st = stateDir();
    const r = await rig(broker.url, engine(), { licences: st.store, resumePointInterval: INTERVAL });
    let second: Device | undefined;
    try {
      const { tx, licence } = sign(r, data);
      const incoming = r.device.nextStream();
      const gs = await r.gateway.stream('p1', data, tx.bytes, licence, { policy: { w: 16 } });
      const made: Uint8Array[] = [];
      const took = await print(await incoming, made, CUT);
      st.kill();
      await crash(r.device);
      expect(tamper(st.dir)).toBeGreaterThan(0);
      const res = await resume(broker.url, r, st.dir, { took, made, gs }, []);
      second = res.second;
      expect(res.stream.offset).toBe(0);
      expect(res.rejects.some((d) => d.includes('failed its tag'))).toBe(true);
      expect(await res.reading).toBeUndefined();
      expect((await gs.done).receipt.bytes).toBe(data.length);
      expect(Buffer.concat(made).equals(Buffer.from(data))).toBe(true);
    } finally {
      await second?.stop();
      await r.close();
      await broker.close();
    }
  });
});

function gcd(a: number, b: number): number {
  return b ? gcd(b, a % b) : a;
}

describe('a protected job resumes with only the consumer\'s count [LM-DLV-20] [LM-PROT-4]', () => {
  /** Owner, store and keys service on SQLite, a gateway that never holds the job, a device on a state directory. */
  async function protectedFleet(url: string, store: LicenceStore) {
    const dir = mkdtempSync(join(tmpdir(), 'lm-resume-protected-'));
    dirs.push(dir);
    const [owner, operator, deviceKeys, gatewayKeys, ksIdentity] = [identityKeyPair(), identityKeyPair(), identityKeyPair(), identityKeyPair(), identityKeyPair()];
    const ks = openKeysService({ dir: join(dir, 'keys'), identity: ksIdentity, trustedOwners: [owner.publicKey], trustedOperators: [operator.publicKey] });
    const segments = await openStore({ dir: join(dir, 'store'), epochs: ks, epochMs: 0 });
    const up = sealUpload(data, { owner, keysService: ks.x25519Public, now: Date.now() });
    await segments.put(up.segments);
    await ks.register(up.upload.bytes, up.envelope);
    const now = Date.now();
    const { tx, licence } = createTx({
      job: 'protected-job', plaintext: { digest: up.upload.body.jd, size: up.upload.body.size }, device: 'p1', devicePublic: deviceKeys.publicKey,
      operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: now - 60_000, notAfter: now + 3_600_000,
      rate: 100_000_000, burst: 100_000_000, prints: 1, gatewayPublic: gatewayKeys.publicKey, protectedJob: { jid: up.jid, uh: up.upload.hash },
    });
    await ks.grant(tx.bytes, licence);
    licence.fill(0);
    const device = await Device.start({ url, fleet: 'f1', id: 'p1', identity: deviceKeys, trustedOperators: [operator.publicKey], caps: CAPS, licences: store, resumePointInterval: INTERVAL }, engine());
    const gw = await Gateway.start({
      url, fleet: 'f1', id: 'gw1', identity: gatewayKeys, trustedOperators: [operator.publicKey], workers: 1,
      protected: { keys: { playbook: (jid) => ks.playbook(jid), release: (q) => ks.release(q), endSession: (sid) => ks.endSession(sid) }, store: { get: (ids) => segments.get(ids) } },
    });
    return {
      device, gw, tx, deviceKeys, operator,
      close: async () => {
        await device.stop();
        await gw.stop();
        await segments.close();
        await ks.close();
      },
    };
  }

  for (const altered of [false, true]) {
    it(altered ? 'an altered point is skipped (its tag fails): resumed from 0, the keyed end digest verifies and the output equals the job [LM-DLV-22]' : 'killed mid-job, it resumes from a kept point: the keyed end digest verifies and the output equals the job', async () => {
      const broker = await aedes();
      const st = stateDir();
      const f = await protectedFleet(broker.url, st.store);
      let second: Device | undefined;
      try {
        const incoming = f.device.nextStream();
        const gs = await f.gw.streamProtected('p1', f.tx.bytes, { policy: { w: 16 } });
        const done = gs.done.then((rep) => rep, (e: unknown) => e);
        const made: Uint8Array[] = [];
        const took = await print(await incoming, made, CUT);
        st.kill();
        await crash(f.device);
        if (altered) expect(tamper(st.dir)).toBeGreaterThan(0);
        const res = await resume(broker.url, f, st.dir, { took, made, gs }, []);
        second = res.second;
        // an altered point fails its tag ([LM-DLV-22]): skipped and reported, the job resumes from 0
        if (altered) expect(res.stream.offset).toBe(0);
        else expect(res.stream.offset).toBeGreaterThan(0);
        expect(res.stream.offset % res.stream.params.chunk).toBe(0);
        expect(res.rejects.some((d) => d.includes('failed its tag'))).toBe(altered);
        expect(await res.reading).toBeUndefined();
        expect(Buffer.concat(made).equals(Buffer.from(data))).toBe(true);
        const report = await done;
        expect(report).not.toBeInstanceOf(Error);
        expect((report as Awaited<GatewayStream['done']>).receipt.bytes).toBe(data.length);
      } finally {
        await second?.stop();
        await f.close();
        await broker.close();
      }
    });
  }
});
