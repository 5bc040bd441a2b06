/**
 * Revocation on the sender side ([LM-REVOKE-2], [LM-REVOKE-3]): a gateway takes the fleet's
 * retained, operator-signed list, keeps it in its database across a restart, refuses to stream a
 * revoked transaction or to a revoked device, ignores an older list, and refuses everything once
 * the list it holds is stale.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { type IdentityKeyPair, LmError, Reason, identityKeyPair, signRevocation, topics } from '@livematrix/spec';
import { Gateway } from '@livematrix/gateway';
import { GCODE, aedes, sign } from './harness.js';

const data = new Uint8Array(readFileSync(join(GCODE, 'calib_cube.gcode')));

/** Publishes a REVOKE retained on the fleet's revocation topic, as a gateway relays one. */
async function publish(url: string, frame: Uint8Array): Promise<void> {
  const c = await mqtt.connectAsync(url, { clientId: `lm-gw-relay-${Math.random().toString(16).slice(2, 8)}` });
  try {
    await c.publishAsync(topics.revocation('f1'), Buffer.from(frame), { qos: 1, retain: true });
  } finally {
    await c.endAsync();
  }
}

/** The reason code `stream()` fails with, or undefined once it starts a stream (which is then stopped). */
async function refusal(gw: Gateway, tx: Uint8Array, licence: Uint8Array): Promise<number | undefined> {
  try {
    const s = await gw.stream('p1', data, tx, licence, { helloTimeout: 300 });
    s.fail(new LmError(Reason.aborted, 'test over'));
    return undefined;
  } catch (e) {
    return e instanceof LmError ? e.code : -1;
  }
}

/** Polls `stream()` until it fails with `code` (the list arrives asynchronously), up to 5 s. */
async function refusedWith(gw: Gateway, tx: Uint8Array, licence: Uint8Array, code: number): Promise<void> {
  const until = Date.now() + 5000;
  let last: number | undefined;
  while (Date.now() < until) {
    last = await refusal(gw, tx, licence);
    if (last === code) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`stream() did not fail with ${code}; last: ${String(last)}`);
}

describe('a gateway holds the fleet\'s revocation list [LM-REVOKE-2] [LM-REVOKE-3]', () => {
  it('refuses a revoked transaction and a revoked device, keeps the list across a restart, ignores an older one, and refuses all once it is stale', async () => {
    const broker = await aedes();
    const operator: IdentityKeyPair = identityKeyPair();
    const keys = { operator, deviceKeys: identityKeyPair(), gatewayKeys: identityKeyPair() };
    let skew = 0;
    const dbPath = join(mkdtempSync(join(tmpdir(), 'lm-revoke-')), 'gateway.db');
    const start = () => Gateway.start({ url: broker.url, fleet: 'f1', id: 'gw1', identity: keys.gatewayKeys, trustedOperators: [operator.publicKey], workers: 1, clock: () => Date.now() + skew, db: dbPath });
    let gw = await start();
    try {
      const revoked = sign(keys, data);
      const other = sign(keys, data);
      // no list yet: the transaction passes every check (no device answers, so it fails waiting for its HELLO)
      expect(await refusal(gw, revoked.tx.bytes, revoked.licence)).toBe(Reason.timeout);
      const now = Date.now();
      await publish(broker.url, signRevocation({ seq: 10, time: now, next: now + 3_600_000, txs: [revoked.tx.hash], operatorSecret: operator.secretKey, operatorPublic: operator.publicKey }));
      await refusedWith(gw, revoked.tx.bytes, revoked.licence, Reason.txRevoked);
      expect(await refusal(gw, other.tx.bytes, other.licence)).toBe(Reason.timeout);

      // restarted, with the retained message gone, it still holds the list (its database)
      await gw.stop();
      await publish(broker.url, new Uint8Array(0)).catch(() => undefined);
      gw = await start();
      expect(await refusal(gw, revoked.tx.bytes, revoked.licence)).toBe(Reason.txRevoked);

      // an older list (seq 9, revoking nothing) is a rollback and changes nothing
      await publish(broker.url, signRevocation({ seq: 9, time: now, next: now + 3_600_000, operatorSecret: operator.secretKey, operatorPublic: operator.publicKey }));
      // a newer one revoking the device: every transaction to it is refused
      await publish(broker.url, signRevocation({ seq: 11, time: now, next: now + 3_600_000, txs: [revoked.tx.hash], devices: ['p1'], operatorSecret: operator.secretKey, operatorPublic: operator.publicKey }));
      await refusedWith(gw, other.tx.bytes, other.licence, Reason.txRevoked);
      expect(await refusal(gw, revoked.tx.bytes, revoked.licence)).toBe(Reason.txRevoked);

      // stale: past `next`, no transaction is honoured until a newer list arrives
      await publish(broker.url, signRevocation({ seq: 12, time: now, next: now + 3_600_000, operatorSecret: operator.secretKey, operatorPublic: operator.publicKey }));
      await refusedWith(gw, other.tx.bytes, other.licence, Reason.timeout);
      skew = 3_600_001;
      const fresh = sign(keys, data, { notAfter: Date.now() + 2 * 3_600_000 });
      const code = await refusal(gw, fresh.tx.bytes, fresh.licence);
      expect(code).toBe(Reason.txRevoked);
    } finally {
      await gw.stop();
      await broker.close();
    }
  }, 60_000);
});
