/**
 * TLS on the command line, as an operator runs it (the built CLI as child processes, SPEC §10.1):
 * `livematrix broker --tls-only` with client certificates required and a registry; `device` and
 * `stream` with --ca, --cert and --key stream a job byte-identical; a device with a certificate
 * of another CA exits 1 with what to check; options that cannot work are refused before
 * connecting (exit 2 for usage, 1 for a file that is not there), and so is a broker that requires
 * client certificates with a plain listener beside TLS.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTestCa } from '@livematrix/testkit';
import { type Running, cli, keys, report, signJob } from './cli-harness.js';
import { GCODE } from './harness.js';
import { haveOpenssl, inCI } from './tls-kit.js';

const JOB = join(GCODE, 'calib_cube.gcode');

describe.runIf(haveOpenssl || inCI)('livematrix over mutual TLS', () => {
  it('broker --tls-only --require-client-cert; device and stream with --ca --cert --key stream a job; a certificate of another CA is refused with what to check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-tls-'));
    const ca = makeTestCa(dir, 'ca');
    const other = makeTestCa(dir, 'other');
    const server = ca.server();
    const [dev, gw, stranger] = [ca.client('printer-1'), ca.client('gw-1'), other.client('printer-1')];
    const k = await keys(dir);
    writeFileSync(join(dir, 'registry.json'), JSON.stringify({
      clients: [
        { id: 'printer-1', role: 'device', fleet: 'default', publicKey: k.dev },
        { id: 'gw-1', role: 'gateway', fleet: 'default', publicKey: k.gw },
      ],
    }));
    let broker: Running | undefined;
    let device: Running | undefined;
    try {
      broker = cli(['broker', '--port', '0', '--registry', join(dir, 'registry.json'), '--tls-port', '0', '--tls-cert', server.cert, '--tls-key', server.key,
        '--tls-ca', ca.cert, '--require-client-cert', '--tls-only']);
      const banner = await broker.waitFor(/no plain mqtt, mqtts (\d+) \(client certificates required\)/, 'out');
      const url = `mqtts://127.0.0.1:${banner[1]!}`;
      const tx = await signJob(dir, k, JOB);
      const out = join(dir, 'out.gcode');
      device = cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--out', out, '--once', '--url', url, '--ca', ca.cert, '--cert', dev.cert, '--key', dev.key]);
      await device.waitFor(/online/);
      const streamed = await cli(['stream', JOB, '--device', 'printer-1', '--tx', tx, '--identity', join(dir, 'gw.json'), '--operator-key', k.op, '--url', url, '--w', '16',
        '--ca', ca.cert, '--cert', gw.cert, '--key', gw.key]);
      expect(streamed.code, streamed.err).toBe(0);
      expect(report(streamed).receipt.bytes).toBe(readFileSync(JOB).length);
      const d = await device;
      expect(d.code, d.err).toBe(0);
      expect(readFileSync(out).equals(readFileSync(JOB))).toBe(true);

      const refused = await cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--out', join(dir, 'x.gcode'), '--url', url, '--ca', ca.cert, '--cert', stranger.cert, '--key', stranger.key]);
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/cannot connect to the MQTT broker at mqtts:\/\/127\.0\.0\.1:\d+: the broker refused this client certificate: is it issued by a CA the broker trusts/);
      expect(refused.err).not.toMatch(/\n\s+at /); // a message, not a stack
    } finally {
      device?.kill();
      broker?.kill();
    }
  }, 90_000);

  it('refuses TLS options that cannot work before connecting: --cert without --key, --ca with mqtt://, a missing file, --require-client-cert without --tls-ca', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-tls-bad-'));
    const k = await keys(dir);
    const base = ['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--out', join(dir, 'x.gcode')];
    const noKey = await cli([...base, '--url', 'mqtts://127.0.0.1:1', '--cert', join(dir, 'c.crt')]);
    expect(noKey.code).toBe(2);
    expect(noKey.err).toMatch(/mutual TLS needs both --cert and --key \(--key is missing\)/);
    const plain = await cli([...base, '--url', 'mqtt://127.0.0.1:1', '--ca', join(dir, 'ca.crt')]);
    expect(plain.code).toBe(2);
    expect(plain.err).toMatch(/--ca, --cert and --key are TLS options: give an mqtts:\/\/ \(or wss:\/\/\) --url/);
    const missing = await cli([...base, '--url', 'mqtts://127.0.0.1:1', '--ca', join(dir, 'nowhere.crt')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/TLS ca file .*nowhere\.crt: not found/);
    const b = await cli(['broker', '--port', '0', '--tls-cert', join(dir, 's.crt'), '--tls-key', join(dir, 's.key'), '--require-client-cert']);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--require-client-cert needs the CA that issues the client certificates: --tls-ca FILE/);
    // required client certificates with a plain listener beside TLS (which would refuse every client): a usage error, not a broker
    const tls = ['broker', '--port', '0', '--tls-port', '0', '--tls-cert', join(dir, 's.crt'), '--tls-key', join(dir, 's.key'), '--tls-ca', join(dir, 'ca.crt'), '--require-client-cert'];
    const plainBeside = await cli(tls);
    expect(plainBeside.code).toBe(2);
    expect(plainBeside.err).toMatch(/--require-client-cert refuses every client without a certificate, and the plain mqtt listener carries none: add --tls-only/);
    const wsBeside = await cli([...tls, '--tls-only', '--ws-port', '0']);
    expect(wsBeside.code).toBe(2);
    expect(wsBeside.err).toMatch(/the WebSocket listener \(--ws-port, ws in a --config file\) carries none: drop it/);
    const cfg = join(dir, 'broker.json');
    writeFileSync(cfg, JSON.stringify({ tls: { port: 0, cert: join(dir, 's.crt'), key: join(dir, 's.key'), ca: join(dir, 'ca.crt'), requireClientCert: true } }));
    const fromFile = await cli(['broker', '--config', cfg]);
    expect(fromFile.code).toBe(2);
    expect(fromFile.err).toMatch(/add --tls-only \(tcp: false in a --config file\)/);
    // (the accepted case, --require-client-cert --tls-only, is the first test)
    expect((await cli(['broker', '--help'])).out).toMatch(/it needs --tls-only and no\n--ws-port/);
    const h = await cli(['device', '--help']);
    expect(h.out).toContain('--cert FILE --key FILE');
    expect(h.out).toContain('--ca FILE');
  }, 60_000);
});
