/**
 * `livematrix device` against an active attacker on its broker: a forged OFFER (one flipped
 * signature byte) and a flood of 100,000 mutated frames. The device process must log each
 * refusal (rate-limited), stay alive with bounded memory, and still deliver a real job
 * byte-identical. Runs the built CLI over a real aedes broker on loopback.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import {
  ControlOp, FrameType, Reason, createTx, digest, encodeFrame, fromHex, negotiate, randomBytes, topics, x25519KeyPair,
} from '@livematrix/spec';
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { type Running, cli, keys, memory, report, signJob } from './cli-harness.js';
import { CAPS, GCODE, aedes } from './harness.js';
import { mulberry32 } from '@livematrix/testkit';

const FLEET = 'default';
const JOB = join(GCODE, 'calib_cube.gcode');

/** A genuine OFFER of gw.json to printer-1 under a transaction signed with op.json (as Gateway.begin builds it). */
function genuineOffer(dir: string, devicePublic: string): Uint8Array {
  const op = readIdentityFile(join(dir, 'op.json'));
  const gw = readIdentityFile(join(dir, 'gw.json'));
  const data = readFileSync(JOB);
  const now = Date.now();
  const { tx } = createTx({
    job: 'forged-job', plaintext: { digest: digest(data), size: data.length }, device: 'printer-1', devicePublic: fromHex(devicePublic),
    operatorSecret: op.secretKey, operatorPublic: op.publicKey, notBefore: now - 60_000, notAfter: now + 3600_000, rate: 1e8, burst: 1e8,
    gatewayPublic: gw.publicKey,
  });
  return encodeFrame(FrameType.OFFER, {
    sid: randomBytes(16), tx: tx.bytes, epk: x25519KeyPair().publicKey, params: negotiate(CAPS, now, { w: 16 }), gwpk: gw.publicKey, time: now,
  }, { kind: 'sig', secretKey: gw.secretKey });
}

/** Valid encoded frames of the types a device receives; sessions the device does not hold. */
function templates(offer: Uint8Array): Uint8Array[] {
  const sid = randomBytes(16);
  const mac = { kind: 'mac' as const, key: randomBytes(32) };
  const none = { kind: 'none' as const };
  return [
    offer,
    encodeFrame(FrameType.HINTS, { sid, seq: 7, rev: 3, chunk: 0, off: 0, ctlen: 64, hints: randomBytes(96) }, mac),
    encodeFrame(FrameType.HINTS, { sid, seq: 8, rev: 3, chunk: 1, off: 0, ctlen: 40, hints: randomBytes(30), idx: [1, 4, 9], sh: 5 }, mac),
    encodeFrame(FrameType.KEY, { sid, chunk: 2, rev: 3, wrapped: randomBytes(48) }, mac),
    encodeFrame(FrameType.ERROR, { sid, code: Reason.busy, detail: 'busy' }, none),
    encodeFrame(FrameType.ERROR, { code: Reason.auth, detail: 'no session' }, mac),
    encodeFrame(FrameType.ALARM, { sid, code: Reason.rate, detail: 'too fast', time: Date.now(), observed: 10, limit: 5 }, none),
    encodeFrame(FrameType.CONTROL, { sid, op: ControlOp.abort, reason: Reason.aborted }, mac),
    encodeFrame(FrameType.END, { sid, bytes: 1000, chunks: 1, frames: 3, digest: randomBytes(32) }, mac),
  ];
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** One mutation of a random template: flipped bytes, truncated, extended or spliced with another; never a template itself. */
function mutant(t: Uint8Array[], rnd: () => number): Uint8Array {
  const int = (n: number) => Math.floor(rnd() * n);
  for (;;) {
    const src = t[int(t.length)]!;
    let m: Uint8Array;
    switch (int(4)) {
      case 0: {
        m = src.slice();
        for (let k = 1 + int(4); k > 0; k--) {
          const i = int(m.length);
          m[i] = (m[i] ?? 0) ^ (1 + int(255));
        }
        break;
      }
      case 1:
        m = src.slice(0, int(src.length));
        break;
      case 2: {
        const extra = new Uint8Array(1 + int(64)).map(() => int(256));
        m = new Uint8Array([...src, ...extra]);
        break;
      }
      default: {
        const other = t[int(t.length)]!;
        m = new Uint8Array([...src.subarray(0, int(src.length + 1)), ...other.subarray(int(other.length + 1))]);
      }
    }
    if (!t.some((x) => same(x, m))) return m;
  }
}

async function client(url: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId: `attacker-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 0 });
}

/** Streams the job with `livematrix stream` and checks the device wrote it byte-identical. */
async function streamJob(dir: string, url: string, k: { op: string; gw: string; dev: string }, device: Running, out: string): Promise<void> {
  const tx = await signJob(dir, k, JOB);
  const streamed = await cli(['stream', JOB, '--device', 'printer-1', '--tx', tx, '--identity', join(dir, 'gw.json'), '--operator-key', k.op, '--url', url, '--w', '16']);
  expect(streamed.code, streamed.err).toBe(0);
  expect(report(streamed).receipt.bytes).toBe(readFileSync(JOB).length);
  await device.waitFor(/^wrote /m);
  expect(readFileSync(out).equals(readFileSync(JOB))).toBe(true);
}

/** Lines of refusals, and how many more the summaries counted. */
function refusals(err: string): { lines: number; held: number } {
  const lines = err.split('\n').filter((l) => /^(refused|dropped) /.test(l)).length;
  const held = [...err.matchAll(/^\.\.\. and (\d+) more refusals in the last 10 s$/gm)].reduce((n, m) => n + Number(m[1]), 0);
  return { lines, held };
}

describe('livematrix device against hostile frames', () => {
  it('an OFFER with one flipped signature byte is logged and refused; the device keeps serving', async () => {
    const broker = await aedes();
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-hostile-'));
    const out = join(dir, 'out.gcode');
    let device: Running | undefined;
    const attacker = await client(broker.url);
    try {
      const k = await keys(dir);
      device = cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--out', out, '--once', '--url', broker.url]);
      await device.waitFor(/online/);
      const offer = genuineOffer(dir, k.dev);
      const at = offer.length - 1 - Math.floor(Math.random() * 64); // one byte of the Ed25519 signature
      offer[at] = (offer[at] ?? 0) ^ 0x20;
      await attacker.publishAsync(topics.deviceIn(FLEET, 'printer-1'), Buffer.from(offer), { qos: 1 });
      const line = await device.waitFor(/^refused OFFER.*$/m);
      console.log(`device logged: ${line[0]}`);
      expect(line[0]).toContain(`from gateway key ${k.gw.slice(0, 16)}`);
      expect(line[0]).toMatch(/auth \(9\): .*signature does not verify/);
      expect(device.err).not.toMatch(/\n\s+at /); // no stack trace
      await streamJob(dir, broker.url, k, device, out);
      const d = await device;
      expect(d.code, d.err).toBe(0);
      expect(refusals(d.err).lines).toBe(1);
    } finally {
      device?.kill();
      await attacker.endAsync(true);
      await broker.close();
    }
  }, 60_000);

  it('100,000 mutated frames: the device stays alive, its log and memory stay bounded, a real job still arrives', async () => {
    const N = 100_000;
    const BATCH = 500;
    const seed = Number(process.env['LM_FUZZ_SEED'] ?? 20240611);
    const broker = await aedes();
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-fuzz-'));
    const out = join(dir, 'out.gcode');
    let device: Running | undefined;
    const attacker = await client(broker.url);
    try {
      const k = await keys(dir);
      device = cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--out', out, '--url', broker.url]);
      await device.waitFor(/online/);
      const pid = device.child.pid!;
      const before = memory(pid);
      const t = templates(genuineOffer(dir, k.dev));
      const rnd = mulberry32(seed);
      const topic = topics.deviceIn(FLEET, 'printer-1');
      const t0 = Date.now();
      for (let sent = 0; sent < N; sent += BATCH) {
        // a batch at QoS 0, then wait until the client wrote it out (its callbacks wait for drain)
        await Promise.all(Array.from({ length: Math.min(BATCH, N - sent) }, () => new Promise<void>((res, rej) => {
          attacker.publish(topic, Buffer.from(mutant(t, rnd)), { qos: 0 }, (e) => (e ? rej(e) : res()));
        })));
        if (device.child.exitCode !== null) throw new Error(`device died after ${sent} frames:\n${device.err}`);
      }
      const published = Date.now() - t0;
      await streamJob(dir, broker.url, k, device, out); // queued behind the flood on the device's connection
      const after = memory(pid);
      const elapsed = Date.now() - t0;
      device.kill('SIGTERM');
      const d = await device;
      expect(d.code, d.err).toBe(0);
      const r = refusals(d.err);
      console.log(`fuzz (seed ${seed}): ${N} frames published in ${(published / 1000).toFixed(1)} s, job streamed after them; `
        + `${((Date.now() - t0) / 1000).toFixed(1)} s in all. Device VmRSS ${before.rss.toFixed(1)} -> ${after.rss.toFixed(1)} MB, `
        + `VmHWM ${before.hwm.toFixed(1)} -> ${after.hwm.toFixed(1)} MB. Log: ${r.lines} refusal lines, ${r.held} more counted in summaries:\n`
        + d.err.split('\n').filter((l) => /^(refused|dropped|\.\.\. and)/.test(l)).join('\n'));
      expect(after.hwm - before.hwm).toBeLessThan(150);
      expect(after.rss - before.rss).toBeLessThan(150);
      // at most 10 lines per 10 s window (a window opens with its first line)
      expect(r.lines).toBeLessThanOrEqual(10 * (Math.ceil(elapsed / 10_000) + 1));
      // what was held back is counted, not lost: (nearly) every frame is accounted for
      expect(r.lines + r.held).toBeGreaterThanOrEqual(N * 0.9);
      expect(d.err).not.toMatch(/\n\s+at /);
    } finally {
      device?.kill();
      await attacker.endAsync(true);
      await broker.close();
    }
  }, 120_000);
});
