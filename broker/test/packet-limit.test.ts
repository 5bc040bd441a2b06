/**
 * The maximum packet size, enforced before authentication ([LM-BRK-6]): the header scanner on
 * its own, the standalone broker in a process of its own under ten 250 MB CONNECTs (its memory
 * read from /proc), and packets either side of the limit over TCP and WebSocket.
 */
import { connect as tcpConnect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { FrameType, Reason, encodeFrame, identityKeyPair, makeConnectToken, topics } from '@livematrix/spec';
import { DEFAULT_MAX_PACKET_SIZE, PacketSizeScanner, Registry, runBroker } from '../src/index.js';
import { memoryOf, spawnBroker } from './spawn.js';

const MB = 1024 * 1024;
const d1 = identityKeyPair();

function registryFile(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'lm-limit-')), 'registry.json');
  new Registry([{ id: 'd1', role: 'device', fleet: 'f1', publicKey: d1.publicKey, limits: { framesPerSecond: 1000, bytesPerSecond: 100e6 } }]).save(path);
  return path;
}

const connectD1 = (url: string): Promise<MqttClient> =>
  mqtt.connectAsync(url, { clientId: `lm-dev-d1-${Math.random().toString(16).slice(2, 8)}`, username: 'd1', password: Buffer.from(makeConnectToken('d1', 1, d1.secretKey)), protocolVersion: 4, reconnectPeriod: 0 });

/** MQTT variable byte integer */
function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/**
 * Opens a TCP connection, sends a CONNECT fixed header declaring `declared` bytes and then streams
 * zeros as fast as the connection takes them; resolves when the broker closes it.
 */
function oversizedConnect(port: number, declared: number): Promise<{ sent: number; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = tcpConnect(port, '127.0.0.1');
    let sent = 0;
    let closed = false;
    const chunk = Buffer.alloc(64 * 1024);
    const pump = () => {
      while (!closed && sent < declared) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
    };
    s.on('error', () => undefined);
    s.on('close', () => {
      closed = true;
      resolve({ sent, ms: performance.now() - t0 });
    });
    s.on('connect', () => {
      s.write(Buffer.from([0x10, ...varint(declared)]));
      pump();
    });
  });
}

describe('the packet header scanner [LM-BRK-6]', () => {
  it('follows packets split anywhere, and flags an oversized one at its header', () => {
    const ok = [0x30, ...varint(300), ...new Array<number>(300).fill(7), 0xc0, 0x00, 0x10, ...varint(1000)];
    const s = new PacketSizeScanner(1000);
    // byte by byte: 1 + 2 + 300 (a PUBLISH), a PINGREQ, then a CONNECT header of 1 + 2 + 1000 bytes
    const results = ok.map((b) => s.scan(Uint8Array.of(b)));
    expect(results.slice(0, -1).every((r) => r === undefined)).toBe(true);
    expect(results.at(-1)).toEqual({ kind: 'too-large', size: 1003, limit: 1000 });
    expect(new PacketSizeScanner(1 << 20).scan(Uint8Array.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))).toEqual({ kind: 'malformed-length' });
    expect(new PacketSizeScanner(1003).scan(Uint8Array.from([0x10, ...varint(1000)]))).toBeUndefined();
  });
});

describe('maximum packet size before authentication [LM-BRK-6]', () => {
  it('ten 250 MB CONNECTs are each closed at their fixed header; the broker process stays under 200 MB', async () => {
    const b = await spawnBroker({ port: 0, registry: registryFile() });
    try {
      const before = memoryOf(b.proc.pid!);
      const attacks = await Promise.all(Array.from({ length: 10 }, () => oversizedConnect(b.port, 250_000_000)));
      const after = memoryOf(b.proc.pid!);
      console.log(`[LM-BRK-6] broker RSS ${(before.rss / MB).toFixed(1)} MB before, ${(after.rss / MB).toFixed(1)} MB after ten 250 MB CONNECTs (peak ${(after.hwm / MB).toFixed(1)} MB); each connection closed after ${Math.max(...attacks.map((a) => a.sent / MB)).toFixed(1)} MB at most, in ${Math.max(...attacks.map((a) => a.ms)).toFixed(0)} ms at most`);
      for (const a of attacks) expect(a.sent).toBeLessThan(32 * MB); // not the 250 MB the header declared
      expect(after.hwm).toBeLessThan(200 * MB);
      await b.logged(/dropped connection .* over the limit of 262144/);
      expect(b.log().match(/dropped connection/g)?.length).toBe(10);
      // still serving: a legitimate CONNECT is accepted
      const c = await connectD1(`mqtt://127.0.0.1:${b.port}`);
      expect(c.connected).toBe(true);
      await c.endAsync();
    } finally {
      await b.stop();
    }
  });

  it('a 200 KiB PUBLISH is read (and dropped by the frame check, client kept); a 300 KiB one closes the connection, over TCP and WebSocket', async () => {
    const b = await runBroker({ port: 0, registry: registryFile(), ws: { port: 0 } });
    try {
      expect(DEFAULT_MAX_PACKET_SIZE).toBe(256 * 1024);
      for (const url of [`mqtt://127.0.0.1:${b.ports.tcp}`, `ws://127.0.0.1:${b.ports.ws}`]) {
        const c = await connectD1(url);
        const dropped = b.plugin!.metrics.get('livematrix_frames_dropped_total', { reason: 'too-large' });
        await c.publishAsync(topics.deviceState('f1', 'd1'), Buffer.alloc(200 * 1024, 1), { qos: 1 });
        expect(b.plugin!.metrics.get('livematrix_frames_dropped_total', { reason: 'too-large' })).toBe(dropped + 1);
        expect(c.connected).toBe(true);
        const closed = new Promise<void>((r) => c.once('close', () => r()));
        c.publish(topics.deviceState('f1', 'd1'), Buffer.alloc(300 * 1024, 1), { qos: 1 });
        await closed;
        c.end(true);
      }
    } finally {
      await b.close();
    }
  });

  it('the limit is configurable (maxPacketSize), and a bad value is refused', async () => {
    await expect(runBroker({ port: 0, maxPacketSize: -1 })).rejects.toThrow(/maxPacketSize must be an integer/);
    const b = await runBroker({ port: 0, registry: registryFile(), maxPacketSize: 64 * 1024 });
    try {
      const c = await connectD1(`mqtt://127.0.0.1:${b.ports.tcp}`);
      const bye = Buffer.from(encodeFrame(FrameType.BYE, { who: 'd1', reason: Reason.offline }, { kind: 'none' }));
      await c.publishAsync(topics.deviceState('f1', 'd1'), bye, { qos: 1 });
      const closed = new Promise<void>((r) => c.once('close', () => r()));
      c.publish(topics.deviceState('f1', 'd1'), Buffer.alloc(100 * 1024, 1), { qos: 1 });
      await closed;
      c.end(true);
    } finally {
      await b.close();
    }
  });
});
