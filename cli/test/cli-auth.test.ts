/**
 * How the `livematrix` command authenticates to brokers, as an operator runs it: connect tokens
 * from the identity file against `livematrix broker --registry` (a child process), a password
 * from a credentials file or the environment against Mosquitto, and secrets that never show in
 * arguments or messages. Real brokers on loopback; runs the built CLI.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMosquitto } from '@livematrix/testkit';
import { FrameLink } from '@livematrix/spec/transport';
import { describe, expect, it } from 'vitest';
import { type Running, cli, keys, publicKey, report, signJob } from './cli-harness.js';
import { GCODE, freePort, mosquittoPath } from './harness.js';

const JOB = join(GCODE, 'calib_cube.gcode');
const SECRET = 'hunter2-Zq9xK';

/** sign, `device --once` and `stream` through `url` (extra device arguments, an environment for both); checks the job arrived byte-identical. */
async function roundTrip(dir: string, url: string, k: { op: string; gw: string; dev: string }, o: { device?: string[]; env?: Record<string, string> } = {}): Promise<void> {
  const tx = await signJob(dir, k, JOB);
  const out = join(dir, 'out.gcode');
  const device = cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--out', out, '--once', '--url', url, ...(o.device ?? [])], o.env ? { env: o.env } : {});
  try {
    await device.waitFor(/online/);
    const streamed = await cli(['stream', JOB, '--device', 'printer-1', '--tx', tx, '--identity', join(dir, 'gw.json'), '--operator-key', k.op, '--url', url, '--w', '16'],
      o.env ? { env: o.env } : {});
    expect(streamed.code, streamed.err).toBe(0);
    expect(report(streamed).receipt.bytes).toBe(readFileSync(JOB).length);
    const d = await device;
    expect(d.code, d.err).toBe(0);
    expect(readFileSync(out).equals(readFileSync(JOB))).toBe(true);
  } finally {
    device.kill();
  }
}

describe('livematrix and broker authentication', () => {
  it('--help of device, stream and gateway documents the credentials, the environment and (device) signals', async () => {
    for (const cmd of ['device', 'stream', 'gateway']) {
      const h = await cli([cmd, '--help']);
      expect(h.code).toBe(0);
      for (const s of ['--credentials FILE', 'LIVEMATRIX_MQTT_USERNAME', 'LIVEMATRIX_MQTT_PASSWORD', 'connect token', 'livematrix broker --registry']) expect(h.out, `${cmd} --help`).toContain(s);
    }
    const d = await cli(['device', '--help']);
    expect(d.out).toMatch(/SIGTERM/);
    expect(d.out).toMatch(/Exit codes: 0 /);
  });

  it('device and stream authenticate to `livematrix broker --registry` with tokens from their identity files; a refused identity is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-registry-'));
    let broker: Running | undefined;
    try {
      const k = await keys(dir);
      const stranger = await cli(['keygen', '--id', 'printer-2', '--out', join(dir, 'stranger.json')]);
      expect(stranger.code).toBe(0);
      writeFileSync(join(dir, 'registry.json'), JSON.stringify({
        clients: [
          { id: 'printer-1', role: 'device', fleet: 'default', publicKey: k.dev },
          { id: 'gw-1', role: 'gateway', fleet: 'default', publicKey: k.gw },
        ],
      }, null, 2));
      broker = cli(['broker', '--port', '0', '--registry', join(dir, 'registry.json')]);
      const port = (await broker.waitFor(/mqtt (\d+)/, 'out'))[1]!;
      const url = `mqtt://127.0.0.1:${port}`;

      await roundTrip(dir, url, k);

      // an identity the registry does not hold: the message says which, and what to check
      const refused = await cli(['device', '--identity', join(dir, 'stranger.json'), '--operator-key', k.op, '--out', join(dir, 'x.gcode'), '--url', url]);
      console.log(`refused identity:\n${refused.err}`);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain(`refused the connect token of "printer-2"`);
      expect(refused.err).toContain(`Is printer-2 in the broker's registry with public key ${publicKey(stranger)} (role device, fleet default)?`);
      expect(refused.err).not.toMatch(/\n\s+at /);
      broker.kill('SIGTERM');
      expect((await broker).err).toMatch(/refused CONNECT: "printer-2" is not in the registry/);
    } finally {
      broker?.kill();
    }
  }, 60_000);

  it('a password in --url is refused without echoing it; a failed connection does not echo one either', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-secret-'));
    const k = await keys(dir);
    const port = await freePort(); // nothing listens there
    for (const args of [
      ['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--url', `mqtt://printer-1:${SECRET}@127.0.0.1:${port}`],
      ['stream', JOB, '--device', 'printer-1', '--tx', join(dir, 'tx.json'), '--identity', join(dir, 'gw.json'), '--operator-key', k.op, '--url', `mqtt://gw-1:${SECRET}@127.0.0.1:${port}`],
    ]) {
      const r = await cli(args);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(/--url must not carry a user name or password/);
      expect(r.err + r.out).not.toContain(SECRET);
    }

    // the password from a credentials file, a broker that is not there
    const creds = join(dir, 'mqtt.json');
    writeFileSync(creds, JSON.stringify({ username: 'printer-1', password: SECRET }), { mode: 0o600 });
    const down = await cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--url', `mqtt://127.0.0.1:${port}`, '--credentials', creds]);
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/cannot connect to the MQTT broker at mqtt:\/\/127\.0\.0\.1:\d+/);
    expect(down.err).not.toContain(SECRET);

    // a credentials file others can read is refused, like ssh refuses such a key
    chmodSync(creds, 0o644);
    const open = await cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--url', `mqtt://127.0.0.1:${port}`, '--credentials', creds]);
    expect(open.code).toBe(2);
    expect(open.err).toMatch(/mode 0644.*chmod 600/);
    expect(open.err).not.toContain(SECRET);

    // the library itself: a URL with user information is redacted in its error
    const e = await FrameLink.connect({ url: `mqtt://printer-1:${SECRET}@127.0.0.1:${port}`, clientId: 'x', reconnectPeriod: 0 }).then(() => undefined, (x: unknown) => x as Error);
    expect(e?.message).toMatch(/cannot connect to the MQTT broker at mqtt:\/\/\*\*\*@127\.0\.0\.1/);
    expect(e?.message).not.toContain(SECRET);
  }, 60_000);

  it.runIf(mosquittoPath() !== undefined)('Mosquitto with passwords: the device reads a credentials file, the gateway the environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-mosq-'));
    chmodSync(dir, 0o755); // mosquitto started as root reads its files as the user "mosquitto"
    const pw = join(dir, 'passwd');
    writeFileSync(pw, '');
    for (const [u, p] of [['printer-1', `${SECRET}-dev`], ['gw-1', `${SECRET}-gw`]] as const) {
      const r = spawnSync('mosquitto_passwd', ['-b', pw, u, p]);
      if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr.toString()}`);
    }
    chmodSync(pw, 0o644);
    const m = await startMosquitto([`password_file ${pw}`]);
    try {
      const k = await keys(dir);
      const creds = join(dir, 'device-mqtt.json');
      writeFileSync(creds, JSON.stringify({ username: 'printer-1', password: `${SECRET}-dev` }), { mode: 0o600 });
      // the device from its file (which wins over the environment), the gateway from the environment
      const env = { LIVEMATRIX_MQTT_USERNAME: 'gw-1', LIVEMATRIX_MQTT_PASSWORD: `${SECRET}-gw` };
      await roundTrip(dir, m.url, k, { device: ['--credentials', creds], env });

      // a wrong password: named where it came from, never echoed
      const wrong = await cli(['device', '--identity', join(dir, 'dev.json'), '--operator-key', k.op, '--url', m.url],
        { env: { LIVEMATRIX_MQTT_USERNAME: 'printer-1', LIVEMATRIX_MQTT_PASSWORD: `${SECRET}-wrong` } });
      expect(wrong.code).toBe(1);
      expect(wrong.err).toMatch(/refused the user name "printer-1" and password from LIVEMATRIX_MQTT_USERNAME and LIVEMATRIX_MQTT_PASSWORD/);
      expect(wrong.err).not.toContain(SECRET);
    } finally {
      await m.close();
    }
  }, 60_000);
});
