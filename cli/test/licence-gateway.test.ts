/**
 * The gateway's side of a licence ([LM-LIC-1], [LM-LIC-4]), against two ways a device's owner
 * could stretch it (found in review of the first version, where both gave unlimited prints with
 * the gateway's count at 0): a forged resume ticket, and ACKs that never report consumption.
 */
import { describe, expect, it } from 'vitest';
import { Device, type LicenceRecord, memoryLicenceStore } from '@livematrix/device-sdk';
import { defaultPhases } from '@livematrix/device-sdk/phases';
import { LmError, Reason, randomBytes, signTicket, toHex } from '@livematrix/spec';
import { CAPS, GCODE, aedes, rig, sign, withRig } from './harness.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MatrixEngine } from '@livematrix/spec/engine';

const engine = new MatrixEngine({ workers: 1 });
const data = new Uint8Array(readFileSync(join(GCODE, 'calib_cube.gcode')));

async function drain(d: Device): Promise<void> {
  const s = await d.nextStream();
  for await (const b of s.bytes()) void b;
}

describe('the gateway counts what it cannot verify [LM-LIC-1] [LM-LIC-4]', () => {
  it('a resume under a ticket of a session this gateway never counted is a new print: a forged ticket gets one print, not many', async () => {
    const broker = await aedes();
    const store = memoryLicenceStore();
    const r = await rig(broker.url, engine, { licences: store });
    try {
      const { tx, licence } = sign(r, data); // prints = 1
      const txh = toHex(tx.hash);
      // the device's owner writes a held ticket, signed with the device's own key, for a session that never was
      await r.device.stop();
      const forged = signTicket({ v: 1, id: randomBytes(16), txh: tx.hash, sid: randomBytes(16), off: 0, exp: tx.body.naf, device: 'p1' }, r.deviceKeys.secretKey);
      const rec = store.load() ?? ({ v: 1, prints: {}, tickets: {}, sids: {} } as LicenceRecord);
      rec.tickets[toHex(forged.body.id)] = { bytes: toHex(forged.bytes), txh, sid: toHex(forged.body.sid), state: 'held', exp: forged.body.exp };
      store.save(rec);
      const device = await Device.start({ url: broker.url, fleet: 'f1', id: 'p1', identity: r.deviceKeys, trustedOperators: [r.operator.publicKey], caps: CAPS, licences: store }, engine);
      try {
        const got = drain(device);
        const gs = await r.gateway.stream('p1', data, tx.bytes, licence);
        await Promise.all([gs.done, got]);
        // the device resumed under its (forged) ticket, but this gateway counted the print
        expect(await r.gateway.db.printsUsed(txh)).toBe(1);
        const again = await r.gateway.stream('p1', data, tx.bytes, licence).then(() => undefined, (e: unknown) => e);
        expect(again).toBeInstanceOf(LmError);
        expect((again as LmError).code).toBe(Reason.txCount);
      } finally {
        await device.stop();
      }
    } finally {
      await r.gateway.stop();
      await broker.close();
    }
  }, 60_000);

  it('a device whose ACKs never report consumption is counted before its first chunk key', () => withRig(engine, {
    // a device that says it took nothing, ever
    phases: { acks: (ctx) => defaultPhases.acks({ ...ctx, progress: () => ({ ...ctx.progress(), consumed: ctx.progress().from }) }) },
  }, async ({ r }) => {
    const { tx, licence } = sign(r, data);
    const incoming = r.device.nextStream();
    const gs = await r.gateway.stream('p1', data, tx.bytes, licence);
    const s = await incoming;
    const it = s.bytes()[Symbol.asyncIterator]();
    const first = await it.next(); // a chunk opened: its key came
    expect(first.done).toBe(false);
    expect(await r.gateway.db.printsUsed(toHex(tx.hash))).toBe(1);
    gs.fail(new LmError(Reason.aborted, 'test over'));
  }), 60_000);
});
