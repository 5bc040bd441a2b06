/**
 * Scale-out: two aedes instances with the plugin sharing one Redis server (mqemitter-redis,
 * aedes-persistence-redis). A device on one instance and the gateway on the other complete a
 * stream; stopping the device's instance mid-stream and reconnecting the device to the other
 * still ends with byte-identical output. Needs redis-server (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry, runBroker } from '@livematrix/broker';
import { Device } from '@livematrix/device-sdk';
import { identityKeyPair } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { Gateway } from '@livematrix/gateway';
import { CAPS, GCODE, freePort, sign, waitForPort } from './harness.js';

const redisBin = ['/usr/bin/redis-server', '/usr/sbin/redis-server'].find((p) => spawnSync(p, ['--version']).status === 0);
const inCI = process.env['CI'] === 'true';
if (!redisBin) console.warn(inCI ? 'redis-server is not installed, and CI requires it: the cluster test will fail' : 'redis-server is not installed: skipping the Redis cluster test (apt-get install redis-server; .ci/run installs it)');

describe.runIf(redisBin !== undefined || inCI)('two plugin brokers sharing Redis', () => {
  let redis: ChildProcess;
  let redisPort: number;
  let engine: MatrixEngine;
  beforeAll(async () => {
    if (!redisBin) throw new Error('redis-server is not installed (apt-get install redis-server)');
    redisPort = await freePort();
    redis = spawn(redisBin, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', mkdtempSync(join(tmpdir(), 'lm-redis-'))], { stdio: 'ignore' });
    await waitForPort(redisPort, () => (redis.exitCode !== null ? 'redis-server exited' : undefined));
    engine = new MatrixEngine({ workers: 2 });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    redis?.kill('SIGTERM');
  });

  it('device on A, gateway on B; A stops mid-stream and the device fails over to B: byte-identical', async () => {
    const operator = identityKeyPair();
    const deviceKeys = identityKeyPair();
    const gatewayKeys = identityKeyPair();
    const dir = mkdtempSync(join(tmpdir(), 'lm-cluster-'));
    const reg = join(dir, 'registry.json');
    new Registry([
      { id: 'p1', role: 'device', fleet: 'f1', publicKey: deviceKeys.publicKey, limits: { framesPerSecond: 20000, bytesPerSecond: 200e6 } },
      { id: 'gw1', role: 'gateway', fleet: 'f1', publicKey: gatewayKeys.publicKey, limits: { framesPerSecond: 20000, bytesPerSecond: 200e6 } },
    ]).save(reg);
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const a = await runBroker({ port: await freePort(), registry: reg, redis: redisUrl });
    const b = await runBroker({ port: await freePort(), registry: reg, redis: redisUrl });
    const device = await Device.start({
      url: `mqtt://127.0.0.1:${a.ports.tcp}`, servers: [{ host: '127.0.0.1', port: a.ports.tcp }, { host: '127.0.0.1', port: b.ports.tcp }],
      fleet: 'f1', id: 'p1', identity: deviceKeys, trustedOperators: [operator.publicKey], caps: CAPS, brokerAuth: 'token',
    }, engine);
    const gateway = await Gateway.start({ url: `mqtt://127.0.0.1:${b.ports.tcp}`, fleet: 'f1', id: 'gw1', identity: gatewayKeys, trustedOperators: [operator.publicKey], workers: 1, brokerAuth: 'token' });
    let aClosed = false;
    try {
      const data = new Uint8Array(readFileSync(join(GCODE, 'cylinder_annular.gcode')));
      const { tx, licence } = sign({ operator, deviceKeys, gatewayKeys }, data);
      const incoming = device.nextStream();
      const gs = await gateway.stream('p1', data, tx.bytes, licence, { policy: { w: 16 }, helloTimeout: 10_000 });
      const s = await incoming;
      const parts: Uint8Array[] = [];
      let n = 0;
      const t0 = Date.now();
      const reading = (async () => {
        for await (const x of s.bytes()) {
          parts.push(x.slice());
          n += x.length;
          const ahead = (n / 1_000_000) * 1000 - (Date.now() - t0); // a 1 MB/s machine
          if (ahead > 2) await new Promise((r) => setTimeout(r, ahead));
        }
      })();
      await new Promise((r) => setTimeout(r, 700));
      expect(n).toBeLessThan(data.length);
      await a.close(); // the device's instance goes away mid-stream
      aClosed = true;
      await Promise.all([gs.done, reading]);
      expect(Buffer.concat(parts).equals(Buffer.from(data))).toBe(true);
    } finally {
      await device.stop();
      await gateway.stop();
      if (!aClosed) await a.close();
      await b.close();
    }
  });
});
