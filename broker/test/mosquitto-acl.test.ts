/**
 * Gateways kept to their devices ([LM-BRK-9]) on Mosquitto 2, with the ACL file generated from the
 * registry (`mosquittoAcl`) and a password file. Without mosquitto installed the suite says so and
 * is skipped locally; under CI (CI=true) its absence is a failure.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { FrameType, Reason, decodeFrame, encodeFrame, identityKeyPair, signRevocation, topics, verifyRevocation } from '@livematrix/spec';
import { mosquittoPath, startMosquitto } from '@livematrix/testkit';
import { Registry, mosquittoAcl } from '../src/index.js';

const have = mosquittoPath() !== undefined && spawnSync('mosquitto_passwd', ['-h']).error === undefined;
const inCI = process.env['CI'] === 'true';
if (!have) console.warn(inCI ? 'mosquitto is not installed, and CI requires it: the Mosquitto ACL test will fail' : 'mosquitto is not installed: skipping the Mosquitto ACL test (apt-get install mosquitto)');

const bye = (who: string) => Buffer.from(encodeFrame(FrameType.BYE, { who, reason: Reason.offline }, { kind: 'none' }));
const whoOf = (p: Buffer) => (decodeFrame(new Uint8Array(p)).body as { who: string }).who;

/** Collects a client's messages; `next(n)` resolves once n have arrived. */
function inbox(c: MqttClient) {
  const got: string[] = [];
  const waiting: { n: number; res: () => void }[] = [];
  c.on('message', (_t, p) => {
    got.push(whoOf(p));
    for (const w of waiting.filter((x) => got.length >= x.n)) w.res();
  });
  return { got, next: (n: number) => new Promise<void>((res) => (got.length >= n ? res() : waiting.push({ n, res }))) };
}

const key = () => identityKeyPair().publicKey;
const limits = { framesPerSecond: 100, bytesPerSecond: 1e6 };

/** Mosquitto with a password file (password `pw-{id}`) and the ACL file generated from `registry`; `as(id)` connects as one of its clients. */
async function mosquittoFor(registry: Registry) {
  const dir = mkdtempSync(join(tmpdir(), 'lm-mosq-assign-'));
  chmodSync(dir, 0o755); // mosquitto started as root reads its files as the user "mosquitto"
  writeFileSync(join(dir, 'acl'), mosquittoAcl(registry));
  const pw = join(dir, 'passwd');
  writeFileSync(pw, '');
  for (const { id: u } of registry.all()) {
    const r = spawnSync('mosquitto_passwd', ['-b', pw, u, `pw-${u}`]);
    if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr.toString()}`);
  }
  chmodSync(pw, 0o644);
  const m = await startMosquitto([`password_file ${pw}`, `acl_file ${join(dir, 'acl')}`]);
  const clients: MqttClient[] = [];
  const as = async (u: string) => {
    const c = await mqtt.connectAsync(m.url, { clientId: `lm-${registry.get(u)?.role === 'gateway' ? 'gw' : 'dev'}-${u}-1`, username: u, password: `pw-${u}`, protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };
  const close = async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await m.close();
  };
  return { as, close };
}

describe.runIf(have || inCI)('Mosquitto with the generated ACL [LM-BRK-9]', () => {
  it('[LM-BRK-9] gw2, not assigned p1, cannot reach p1\'s in topic nor read its state; gw1, assigned, can', async () => {
    const registry = new Registry([
      { id: 'p1', role: 'device', fleet: 'f1', publicKey: key(), limits },
      { id: 'p2', role: 'device', fleet: 'f1', publicKey: key(), limits },
      { id: 'gw1', role: 'gateway', fleet: 'f1', publicKey: key(), limits, devices: ['p1'] },
      { id: 'gw2', role: 'gateway', fleet: 'f1', publicKey: key(), limits, devices: ['p2'] },
    ]);
    const { as, close } = await mosquittoFor(registry);
    try {
      const [p1, p2, gw1, gw2] = [await as('p1'), await as('p2'), await as('gw1'), await as('gw2')];
      await p1.subscribeAsync(topics.deviceIn('f1', 'p1'), { qos: 1 });
      const toP1 = inbox(p1);
      // Mosquitto acknowledges a denied QoS 1 publish and drops it; it would be queued to p1
      // before the PUBACK, so ahead of gw1's
      await gw2.publishAsync(topics.deviceIn('f1', 'p1'), bye('gw2'), { qos: 1 });
      await gw1.publishAsync(topics.deviceIn('f1', 'p1'), bye('gw1'), { qos: 1 });
      await toP1.next(1);
      expect(toP1.got).toEqual(['gw1']);
      // a fleet-wide subscription of gw2 carries p2's state, not p1's
      await gw2.subscribeAsync('lm/1/f1/d/+/state', { qos: 1 }).catch(() => undefined);
      await gw1.subscribeAsync('lm/1/f1/d/+/state', { qos: 1 }).catch(() => undefined);
      const [to2, to1] = [inbox(gw2), inbox(gw1)];
      await p1.publishAsync(topics.deviceState('f1', 'p1'), bye('p1'), { qos: 1 });
      await p2.publishAsync(topics.deviceState('f1', 'p2'), bye('p2'), { qos: 1 });
      await Promise.all([to2.next(1), to1.next(1)]);
      expect(to2.got).toEqual(['p2']);
      expect(to1.got).toEqual(['p1']);
    } finally {
      await close();
    }
  });

  it('[LM-REVOKE-4] a gateway\'s REVOKE is retained and reaches a device; a device\'s publish there is denied', async () => {
    const operator = identityKeyPair();
    const registry = new Registry([
      { id: 'p1', role: 'device', fleet: 'f1', publicKey: key(), limits },
      { id: 'gw1', role: 'gateway', fleet: 'f1', publicKey: key(), limits, devices: ['p1'] },
    ]);
    const list = (seq: number) => Buffer.from(signRevocation({ seq, time: Date.now(), next: Date.now() + 3_600_000, devices: ['p9'], operatorSecret: operator.secretKey, operatorPublic: operator.publicKey }));
    const seqOf = (p: Buffer) => verifyRevocation(new Uint8Array(p), [operator.publicKey]).seq;
    const { as, close } = await mosquittoFor(registry);
    try {
      const [p1, gw1] = [await as('p1'), await as('gw1')];
      await gw1.publishAsync(topics.revocation('f1'), list(3), { qos: 1, retain: true });
      // Mosquitto acknowledges a denied QoS 1 publish and drops it: had it let p1 publish, p1's
      // list would have replaced the retained one
      await p1.publishAsync(topics.revocation('f1'), list(99), { qos: 1, retain: true });
      const got = new Promise<{ payload: Buffer; retain: boolean }>((res) => p1.once('message', (_t, payload, packet) => res({ payload, retain: packet.retain })));
      await p1.subscribeAsync(topics.revocation('f1'), { qos: 1 });
      const m = await got;
      expect(m.retain).toBe(true);
      expect(seqOf(m.payload)).toBe(3);
    } finally {
      await close();
    }
  });
});
