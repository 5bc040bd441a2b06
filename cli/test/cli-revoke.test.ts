/**
 * `livematrix revoke` as an operator runs it ([LM-REVOKE-1] .. [LM-REVOKE-4]): a list signed with
 * the operator's identity file, published retained by a gateway identity through
 * `livematrix broker --registry` (a child process), read by a device and verified; written to a
 * file; refused where it must be. Runs the built CLI; every wait is on an event.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Reason, Revocations, Role, decodeTx, fromHex, toHex, topics, verifyRevocation, type RevokeBody } from '@livematrix/spec';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { FrameLink } from '@livematrix/spec/transport';
import { mosquittoPath, startMosquitto } from '@livematrix/testkit';
import { type Running, cli, keys, publicKey, signJob } from './cli-harness.js';

const JOB = join(import.meta.dirname, '..', '..', 'examples', 'calib_cube.gcode');
const TOPIC = topics.revocation('default');

/** The retained message on the revocation topic, read as a registered device with a connect token. */
async function retainedAsDevice(url: string, devFile: string): Promise<{ payload: Uint8Array; retain: boolean }> {
  const dev = readIdentityFile(devFile);
  const link = await FrameLink.connect({ url, clientId: `lm-dev-${dev.id}-t`, reconnectPeriod: 0, token: { id: dev.id, role: Role.device, secretKey: dev.secretKey } });
  try {
    const got = new Promise<{ payload: Uint8Array; retain: boolean }>((res) => link.client.once('message', (_t, payload, packet) => res({ payload: new Uint8Array(payload), retain: packet.retain })));
    await link.subscribe(TOPIC);
    return await got;
  } finally {
    await link.close();
  }
}

/** Runs `livematrix broker --registry` on a free port with printer-1, gw-1 and (in fleet "other") gw-2. */
async function broker(dir: string, k: { gw: string; dev: string }, gw2: string): Promise<{ proc: Running; url: string }> {
  writeFileSync(join(dir, 'registry.json'), JSON.stringify({
    clients: [
      { id: 'printer-1', role: 'device', fleet: 'default', publicKey: k.dev },
      { id: 'gw-1', role: 'gateway', fleet: 'default', publicKey: k.gw, devices: ['printer-1'] },
      { id: 'gw-2', role: 'gateway', fleet: 'other', publicKey: gw2 },
    ],
  }));
  const proc = cli(['broker', '--port', '0', '--registry', join(dir, 'registry.json')]);
  const port = (await proc.waitFor(/mqtt (\d+)/, 'out'))[1]!;
  return { proc, url: `mqtt://127.0.0.1:${port}` };
}

describe('livematrix revoke', () => {
  it('--help documents every option and the rules a list lives by', async () => {
    const h = await cli(['revoke', '--help']);
    expect(h.code).toBe(0);
    for (const s of ['--operator FILE', '--tx FILE', '--txh HEX', '--device ID', '--operator-key HEX', '--seq N', '--valid DURATION', '--out FILE', '--identity FILE', '--fleet', 'tx-revoked', 'stale', 'current time in seconds', 'at most 30d', 'lm/1/FLEET/revocation']) {
      expect(h.out, s).toContain(s);
    }
    expect((await cli(['--help'])).out).toMatch(/revoke\s+sign a revocation list/);
  });

  it('[LM-REVOKE-2] [LM-REVOKE-4] a gateway identity publishes the list retained; a device reads it back and it verifies [LM-REVOKE-1]; it revokes the transaction [LM-REVOKE-3]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-revoke-'));
    const k = await keys(dir);
    const [op2, gw2] = await Promise.all([cli(['keygen', '--id', 'operator-2', '--out', join(dir, 'op2.json')]), cli(['keygen', '--id', 'gw-2', '--out', join(dir, 'gw2.json')])]);
    const b = await broker(dir, k, publicKey(gw2));
    try {
      const txFile = await signJob(dir, k, JOB);
      const tx = decodeTx(fromHex((JSON.parse(readFileSync(txFile, 'utf8')) as { tx: string }).tx));
      const other = 'ab'.repeat(32);
      const before = Math.floor(Date.now() / 1000);
      const r = await cli(['revoke', '--operator', join(dir, 'op.json'), '--tx', txFile, '--txh', other, '--device', 'printer-13', '--device', 'printer-14',
        '--operator-key', publicKey(op2), '--valid', '2h', '--identity', join(dir, 'gw.json'), '--url', b.url, '--fleet', 'default', '--out', join(dir, 'list.bin')]);
      const after = Math.ceil(Date.now() / 1000);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain('revocation list seq ');
      expect(r.out).toContain('2 transactions, 2 devices, 1 operator key');
      expect(r.out).toContain(`published retained on ${TOPIC}`);

      const m = await retainedAsDevice(b.url, join(dir, 'dev.json'));
      expect(m.retain).toBe(true);
      expect(toHex(m.payload)).toBe(toHex(new Uint8Array(readFileSync(join(dir, 'list.bin')))));
      const list: RevokeBody = verifyRevocation(m.payload, [fromHex(k.op)]);
      expect(list.txs.map(toHex)).toEqual([toHex(tx.hash), other]);
      expect(list.devices).toEqual(['printer-13', 'printer-14']);
      expect(list.operators.map(toHex)).toEqual([publicKey(op2)]);
      expect(toHex(list.opk)).toBe(k.op);
      expect(list.next - list.time).toBe(2 * 3_600_000);
      // the default seq is the time in seconds, so that a later list always wins
      expect(list.seq).toBeGreaterThanOrEqual(before);
      expect(list.seq).toBeLessThanOrEqual(after);
      expect(() => verifyRevocation(m.payload, [fromHex(publicKey(op2))])).toThrow(/not trusted/);

      // what a device holding it does: the signed transaction is refused
      const held = new Revocations();
      held.offer(m.payload, [fromHex(k.op)]);
      expect(held.refusal(tx.body, tx.hash, list.time + 1000)?.code).toBe(Reason.txRevoked);

      // an older --seq is published all the same (a broker does not judge lists), and a verifier ignores it
      const old = await cli(['revoke', '--operator', join(dir, 'op.json'), '--seq', '5', '--identity', join(dir, 'gw.json'), '--url', b.url]);
      expect(old.code, old.err).toBe(0);
      const rolledBack = await retainedAsDevice(b.url, join(dir, 'dev.json'));
      expect(verifyRevocation(rolledBack.payload, [fromHex(k.op)]).seq).toBe(5);
      expect(held.offer(rolledBack.payload, [fromHex(k.op)])).toBeUndefined();
      expect(held.seq).toBe(list.seq);

      // a gateway of another fleet may not publish there: the broker closes its connection, and the command says why
      const stranger = await cli(['revoke', '--operator', join(dir, 'op.json'), '--identity', join(dir, 'gw2.json'), '--url', b.url, '--fleet', 'default']);
      expect(stranger.code).toBe(1);
      expect(stranger.err).toMatch(/closed the connection of "gw-2".*only a gateway of fleet "default" may publish on lm\/1\/default\/revocation/);
      // a device identity is no gateway: its connect token is refused
      const device = await cli(['revoke', '--operator', join(dir, 'op.json'), '--identity', join(dir, 'dev.json'), '--url', b.url]);
      expect(device.code).toBe(1);
      expect(device.err).toContain('refused the connect token of "printer-1"');
      expect(verifyRevocation((await retainedAsDevice(b.url, join(dir, 'dev.json'))).payload, [fromHex(k.op)]).seq).toBe(5);
    } finally {
      b.proc.kill('SIGTERM');
      await b.proc;
    }
  }, 60_000);

  it('--out alone writes the frame; the command refuses a list that revokes its own key, a bad duration and a list with nowhere to go', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-revoke-out-'));
    const k = await keys(dir);
    const out = join(dir, 'list.bin');
    const r = await cli(['revoke', '--operator', join(dir, 'op.json'), '--device', 'printer-1', '--seq', '42', '--valid', '90s', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const list = verifyRevocation(new Uint8Array(readFileSync(out)), [fromHex(k.op)]);
    expect([list.seq, list.next - list.time, list.devices, list.txs, list.operators]).toEqual([42, 90_000, ['printer-1'], [], []]);

    const self = await cli(['revoke', '--operator', join(dir, 'op.json'), '--operator-key', k.op, '--out', out]);
    expect(self.code).toBe(2);
    expect(self.err).toMatch(/cannot revoke the key that signs it/);
    const badValid = await cli(['revoke', '--operator', join(dir, 'op.json'), '--valid', 'soon', '--out', out]);
    expect(badValid.code).toBe(2);
    expect(badValid.err).toMatch(/--valid must be a duration/);
    const nowhere = await cli(['revoke', '--operator', join(dir, 'op.json')]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.err).toMatch(/--out FILE, or --identity FILE/);
    const badTxh = await cli(['revoke', '--operator', join(dir, 'op.json'), '--txh', 'xyz', '--out', out]);
    expect(badTxh.code).toBe(2);
    // nothing replaced the first list
    expect(verifyRevocation(new Uint8Array(readFileSync(out)), [fromHex(k.op)]).seq).toBe(42);
  }, 60_000);

  it.runIf(mosquittoPath() !== undefined && spawnSync('mosquitto_passwd', ['-h']).error === undefined)('[LM-REVOKE-4] on Mosquitto with the generated ACL a device\'s list is dropped, and the read-back says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-cli-revoke-mosq-'));
    chmodSync(dir, 0o755); // mosquitto started as root reads its files as the user "mosquitto"
    const k = await keys(dir);
    writeFileSync(join(dir, 'registry.json'), JSON.stringify({
      clients: [{ id: 'printer-1', role: 'device', fleet: 'default', publicKey: k.dev }, { id: 'gw-1', role: 'gateway', fleet: 'default', publicKey: k.gw }],
    }));
    const acl = await cli(['acl', '--registry', join(dir, 'registry.json'), '--out', join(dir, 'acl')]);
    expect(acl.code, acl.err).toBe(0);
    const pw = join(dir, 'passwd');
    writeFileSync(pw, '');
    for (const u of ['printer-1', 'gw-1']) expect(spawnSync('mosquitto_passwd', ['-b', pw, u, `pw-${u}`]).status).toBe(0);
    chmodSync(pw, 0o644);
    const m = await startMosquitto([`password_file ${pw}`, `acl_file ${join(dir, 'acl')}`]);
    const as = (u: string) => ({ LIVEMATRIX_MQTT_USERNAME: u, LIVEMATRIX_MQTT_PASSWORD: `pw-${u}` });
    try {
      const gw = await cli(['revoke', '--operator', join(dir, 'op.json'), '--seq', '1', '--identity', join(dir, 'gw.json'), '--url', m.url], { env: as('gw-1') });
      expect(gw.code, gw.err).toBe(0);
      const dev = await cli(['revoke', '--operator', join(dir, 'op.json'), '--seq', '2', '--identity', join(dir, 'dev.json'), '--url', m.url], { env: as('printer-1') });
      expect(dev.code).toBe(1);
      expect(dev.err).toMatch(/holds another message on lm\/1\/default\/revocation, not this list/);
    } finally {
      await m.close();
    }
  }, 60_000);
});
