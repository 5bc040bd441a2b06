/**
 * [LM-LIC-6]: a gateway that stops after the device has every key, before the device's RECEIPT
 * reaches it. The device completes the print; its RECEIPT is lost with that gateway (here: the
 * broker drops it). A gateway on the same licence database offers the transaction again: the
 * device refuses to print again and hands the receipt back; the gateway verifies it, appends it for
 * the cut session and ends the stream delivered, counting no print. A further stream is refused,
 * and the ledger keeps one record.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker } from '@livematrix/broker';
import { Device, memoryLicenceStore } from '@livematrix/device-sdk';
import { FrameType, Reason, decodeFrame, identityKeyPair, toHex, verifyLedger } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { Gateway, openLicenceDb } from '@livematrix/gateway';
import { CAPS, GCODE, sign } from './harness.js';

const engine = new MatrixEngine({ workers: 1 });
const data = new Uint8Array(readFileSync(join(GCODE, 'calib_cube.gcode')));
const dir = mkdtempSync(join(tmpdir(), 'lm-lost-receipt-'));
afterAll(async () => {
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a receipt that reached no ledger [LM-LIC-6]', () => {
  it('is handed back by the device when offered again, appended once for its session, and counts no second print', async () => {
    await engine.start();
    let drop = true;
    let dropped: () => void = () => undefined;
    const receiptDropped = new Promise<void>((r) => (dropped = r));
    const broker = await startBroker({
      host: '127.0.0.1', port: 0,
      setup: (a) => {
        a.authorizePublish = (_client, packet, cb) => {
          if (drop && packet.topic.endsWith('/out')) {
            try {
              if (decodeFrame(new Uint8Array(packet.payload as Buffer)).type === FrameType.RECEIPT) {
                packet.topic = '$LM/dropped'; // never forwarded: the gateway that streamed never sees it
                dropped();
              }
            } catch {
              // not a frame: passed on as it is
            }
          }
          cb(null);
        };
      },
    });
    const operator = identityKeyPair();
    const deviceKeys = identityKeyPair();
    const gatewayKeys = identityKeyPair();
    const keys = { operator, deviceKeys, gatewayKeys };
    const dbPath = join(dir, 'gateway.db');
    const device = await Device.start({ url: broker.url, fleet: 'f1', id: 'p1', identity: deviceKeys, trustedOperators: [operator.publicKey], caps: CAPS, licences: memoryLicenceStore() }, engine);
    const gwOptions = { url: broker.url, fleet: 'f1', id: 'gw1', identity: gatewayKeys, trustedOperators: [operator.publicKey], workers: 1, db: dbPath };
    try {
      const { tx, licence } = sign(keys, data); // prints = 1, keys not paced (rate 1e9)
      const first = await Gateway.start(gwOptions);
      const incoming = device.nextStream();
      const gs = await first.stream('p1', data, tx.bytes, licence, { policy: { w: 16 } });
      const s = await incoming;
      const parts: Uint8Array[] = [];
      for await (const b of s.bytes()) parts.push(b.slice());
      expect(Buffer.concat(parts).equals(Buffer.from(data))).toBe(true); // the print completed on the device
      await receiptDropped;
      gs.done.catch(() => undefined);
      await first.stop(); // it never got the receipt
      drop = false;

      const second = await Gateway.start(gwOptions);
      try {
        const again = await second.stream('p1', data, tx.bytes, licence, { policy: { w: 16 } });
        const report = await again.done;
        expect(report.ledger?.seq).toBe(1);
        expect(report.receipt.bytes).toBe(data.length);
        const db = second.db;
        expect(await db.printsUsed(toHex(tx.hash))).toBe(1); // counted once, when the first session started
        const ledger = await verifyLedger(db.ledger());
        expect(ledger).toMatchObject({ ok: true, count: 1 });
        // streamed once more: the print is counted and its receipt in the ledger, so it is refused
        const third = await second.stream('p1', data, tx.bytes, licence, { policy: { w: 16 } }).then((x) => x.done).then(() => undefined, (e: unknown) => e);
        expect(third).toMatchObject({ code: Reason.txCount });
        expect((await verifyLedger(db.ledger())).count).toBe(1);
      } finally {
        await second.stop();
      }
      // the database file as the next gateway finds it: one record
      const reopened = await openLicenceDb(dbPath);
      expect((await verifyLedger(reopened.ledger())).count).toBe(1);
      await reopened.close();
    } finally {
      await device.stop();
      await broker.close();
    }
  });
});
