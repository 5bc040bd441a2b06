/**
 * Streams through brokers that isolate clients: aedes with the Live Matrix plugin (connect
 * tokens), and Mosquitto with an ACL file generated from the same registry ([LM-BRK-2]).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '@livematrix/testkit';
import { Registry, livematrixPlugin, mosquittoAcl, runBroker, startBroker } from '@livematrix/broker';
import { identityKeyPair, makeConnectToken, topics } from '@livematrix/spec';
import { Device } from '@livematrix/device-sdk';
import { Gateway } from '@livematrix/gateway';
import { CAPS, GCODE, freePort, mosquittoPath, sign, waitForPort } from './harness.js';

const inCI = process.env['CI'] === 'true';
const engine = testEngine();

function parties() {
  const operator = identityKeyPair();
  const deviceKeys = identityKeyPair();
  const gatewayKeys = identityKeyPair();
  const registry = new Registry([
    { id: 'p1', role: 'device', fleet: 'f1', publicKey: deviceKeys.publicKey, limits: { framesPerSecond: 20000, bytesPerSecond: 200e6 } },
    { id: 'p2', role: 'device', fleet: 'f1', publicKey: identityKeyPair().publicKey, limits: { framesPerSecond: 100, bytesPerSecond: 1e6 } },
    { id: 'gw1', role: 'gateway', fleet: 'f1', publicKey: gatewayKeys.publicKey, limits: { framesPerSecond: 20000, bytesPerSecond: 200e6 } },
  ]);
  return { operator, deviceKeys, gatewayKeys, registry };
}

async function streamThrough(url: string, p: ReturnType<typeof parties>, auth: { device: 'token' | { username: string; password: string }; gateway: 'token' | { username: string; password: string } }, v: 4 | 5 = 4) {
  const device = await Device.start({ url, fleet: 'f1', id: 'p1', identity: p.deviceKeys, trustedOperators: [p.operator.publicKey], caps: CAPS, brokerAuth: auth.device, protocolVersion: v }, engine());
  const gateway = await Gateway.start({ url, fleet: 'f1', id: 'gw1', identity: p.gatewayKeys, trustedOperators: [p.operator.publicKey], workers: 1, brokerAuth: auth.gateway, protocolVersion: v });
  try {
    const data = new Uint8Array(readFileSync(join(GCODE, 'cylinder_annular.gcode')));
    const { tx, licence } = sign(p, data);
    const incoming = device.nextStream();
    const gs = await gateway.stream('p1', data, tx.bytes, licence, { policy: { w: 16 } });
    const s = await incoming;
    const parts: Uint8Array[] = [];
    const reading = (async () => {
      for await (const b of s.bytes()) parts.push(b.slice());
    })();
    await Promise.all([gs.done, reading]);
    return Buffer.concat(parts).equals(Buffer.from(data));
  } finally {
    await device.stop();
    await gateway.stop();
  }
}

describe('aedes with the Live Matrix plugin [LM-BRK-1] [LM-BRK-2] [LM-BRK-3]', () => {
  it('a registered device and gateway stream byte-identical through it', async () => {
    const p = parties();
    let drops = 0;
    const broker = await startBroker({ setup: (a) => void livematrixPlugin(a, { registry: p.registry, log: (l) => (l.startsWith('refused') ? drops++ : undefined) }) });
    try {
      expect(await streamThrough(broker.url, p, { device: 'token', gateway: 'token' })).toBe(true);
      expect(drops).toBe(0);
    } finally {
      await broker.close();
    }
  });

  it('the standalone broker (config as the CLI builds it) serves TCP, WebSocket and metrics', async () => {
    const p = parties();
    const dir = mkdtempSync(join(tmpdir(), 'lm-bcfg-'));
    const reg = join(dir, 'registry.json');
    p.registry.save(reg);
    const b = await runBroker({ host: '127.0.0.1', port: 0, registry: reg, ws: { port: 0 }, metrics: { port: 0 } });
    try {
      expect(await streamThrough(`mqtt://127.0.0.1:${b.ports.tcp}`, p, { device: 'token', gateway: 'token' })).toBe(true);
      // a device over WebSocket
      const ws = await mqtt.connectAsync(`ws://127.0.0.1:${b.ports.ws}`, { clientId: 'lm-dev-p1-ws', username: 'p1', password: Buffer.from(makeConnectToken('p1', 1, p.deviceKeys.secretKey)), protocolVersion: 4, reconnectPeriod: 0 });
      expect(ws.connected).toBe(true);
      await ws.endAsync();
      const text = await (await fetch(`http://127.0.0.1:${b.ports.metrics}/metrics`)).text();
      expect(text).toMatch(/livematrix_frames_total\{type="6"\} \d+/);
    } finally {
      await b.close();
    }
  });
});

describe('standalone broker over TLS', () => {
  const openssl = spawnSync('openssl', ['version']).status === 0;
  if (!openssl) console.warn('openssl is not installed: skipping the TLS listener test');
  it.runIf(openssl || inCI)('accepts MQTT over TLS from a client that verifies the certificate, refuses one that does not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-tls-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    if (r.status !== 0) throw new Error(`openssl: ${r.stderr.toString()}`);
    const p = parties();
    const reg = join(dir, 'registry.json');
    p.registry.save(reg);
    const b = await runBroker({ host: '127.0.0.1', port: 0, registry: reg, tls: { port: 0, cert, key } });
    try {
      const ca = readFileSync(cert);
      const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${b.ports.tls}`, { ca, clientId: 'lm-dev-p1-tls', username: 'p1', password: Buffer.from(makeConnectToken('p1', 1, p.deviceKeys.secretKey)), protocolVersion: 4, reconnectPeriod: 0 });
      expect(c.connected).toBe(true);
      await c.endAsync();
      // a client that does not trust the certificate is refused by TLS itself
      await expect(mqtt.connectAsync(`mqtts://127.0.0.1:${b.ports.tls}`, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 2000 })).rejects.toThrow();
    } finally {
      await b.close();
    }
  });
});

const have = mosquittoPath() !== undefined;
describe.runIf(have || inCI)('Mosquitto with the ACL generated from the registry [LM-BRK-2]', () => {
  it('streams byte-identical, and a device cannot read another device\'s topic', async () => {
    const p = parties();
    const dir = mkdtempSync(join(tmpdir(), 'lm-mosq-acl-'));
    chmodSync(dir, 0o755); // mosquitto started as root reads its files as the user "mosquitto"
    writeFileSync(join(dir, 'acl'), mosquittoAcl(p.registry));
    const pw = join(dir, 'passwd');
    writeFileSync(pw, '');
    for (const u of ['p1', 'p2', 'gw1']) {
      const r = spawnSync('mosquitto_passwd', ['-b', pw, u, `pw-${u}`]);
      if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr.toString()}`);
    }
    chmodSync(pw, 0o644);
    const port = await freePort();
    writeFileSync(join(dir, 'm.conf'), `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${pw}\nacl_file ${join(dir, 'acl')}\npersistence false\n`);
    let log = '';
    const proc = spawn(mosquittoPath()!, ['-c', join(dir, 'm.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await waitForPort(port, () => (proc.exitCode !== null ? `mosquitto exited: ${log}` : undefined));
      const url = `mqtt://127.0.0.1:${port}`;
      // p2 subscribes to p1's in topic: Mosquitto accepts the SUBSCRIBE but delivers nothing
      const spy = await mqtt.connectAsync(url, { username: 'p2', password: 'pw-p2', protocolVersion: 4, reconnectPeriod: 0 });
      const stolen: Buffer[] = [];
      spy.on('message', (_t, m) => stolen.push(m));
      await spy.subscribeAsync(topics.deviceIn('f1', 'p1'), { qos: 1 }).catch(() => undefined);
      const ok = await streamThrough(url, p, { device: { username: 'p1', password: 'pw-p1' }, gateway: { username: 'gw1', password: 'pw-gw1' } }, 5);
      expect(ok).toBe(true);
      expect(stolen.length).toBe(0);
      await spy.endAsync();
    } finally {
      proc.kill('SIGTERM');
    }
  });
});

