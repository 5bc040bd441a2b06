/**
 * A device under test built on the device SDK: it consumes every stream at a set rate and sends
 * telemetry while it streams, as the conformance README asks of a DUT.
 */
import { describe, expect, it } from 'vitest';
import { Device, type PhaseFactories } from '@livematrix/device-sdk';
import { type Caps, type IdentityKeyPair, identityKeyPair } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { type BrokenDevice, brokenDevices } from './broken-devices.js';

/** the DUT's status interval, told to the suite ([LM-STATE-1]): short, so that device/status takes a few seconds */
export const STATUS_MS = 1000;

export const CAPS: Caps = { suites: [[3, 40_000_000], [2, 5_000_000], [1, 5_000_000]], mem: 2 ** 30, wmax: 24, workers: 2 };

export interface Dut {
  device: Device;
  stop(): Promise<void>;
}

export async function startDut(url: string, identity: IdentityKeyPair, operator: Uint8Array, engine: MatrixEngine, o: { rate: number; phases?: Partial<PhaseFactories>; protocolVersion?: 4 | 5 }): Promise<Dut> {
  const device = await Device.start({ url, fleet: 'conf', id: 'dut', identity, trustedOperators: [operator], caps: CAPS, statusInterval: STATUS_MS, ...(o.phases ? { phases: o.phases } : {}), ...(o.protocolVersion ? { protocolVersion: o.protocolVersion } : {}) }, engine);
  device.on('error', () => undefined);
  const reading = new Set<Promise<void>>();
  device.on('stream', (s) => {
    const p = (async () => {
      const tel = setInterval(() => void device.telemetry({ nozzle_mC: 215000, bed_mC: 60000 }).catch(() => undefined), 300);
      const t0 = Date.now();
      let n = 0;
      try {
        for await (const b of s.bytes()) {
          n += b.length;
          const ahead = (n / o.rate) * 1000 - (Date.now() - t0);
          if (ahead > 1) await new Promise((r) => setTimeout(r, ahead));
        }
      } catch {
        // the suite ends streams on purpose
      } finally {
        clearInterval(tel);
      }
    })();
    reading.add(p);
    void p.finally(() => reading.delete(p));
  });
  return {
    device,
    stop: async () => {
      await device.stop();
      await Promise.all(reading);
    },
  };
}

/**
 * Scenarios every broken device also runs, so that a broken device is seen to work otherwise:
 * announcing itself, a plain delivery, a plain refusal, liveness.
 */
export const SMOKE = ['device/hello', 'device/deliver-w16-blake3', 'device/tx-expired', 'device/refusal-signed'];

/**
 * The whole profile against every broken device (about 9 minutes on 2 cores) instead of the
 * aimed scenarios plus SMOKE: LM_CONFORMANCE_MATRIX=full (npm run test:matrix).
 */
export const FULL_MATRIX = process.env['LM_CONFORMANCE_MATRIX'] === 'full';

/**
 * Runs the device profile (or the scenarios `only` names) against a device with one deliberate
 * fault and returns the ids of the scenarios that failed.
 */
export async function failuresWith(broken: BrokenDevice, only?: readonly string[]): Promise<{ ids: string[]; why: string; ran: number }> {
  const { startBroker } = await import('@livematrix/broker');
  const { identityKeyPair } = await import('@livematrix/spec');
  const { runDeviceProfile } = await import('../src/index.js');
  const broker = await startBroker();
  const operator = identityKeyPair();
  const keys = identityKeyPair();
  const engine = new MatrixEngine({ workers: 1 });
  await engine.start();
  const dut = await startDut(broker.url, keys, operator.publicKey, engine, { rate: 64_000, phases: brokenDevices[broken] });
  try {
    const results = await runDeviceProfile({ url: broker.url, fleet: 'conf', deviceId: 'dut', devicePublic: keys.publicKey, operator, consumeRate: 64_000, statusInterval: STATUS_MS }, only ? { only: (s) => only.includes(s.id) } : {});
    const failed = results.filter((r) => r.status === 'fail');
    // the messages go into the assertion, so that an unexpected failure says what happened
    return { ids: failed.map((r) => r.id), why: failed.map((r) => `${r.id}: ${r.message ?? ''}`).join('\n'), ran: results.length };
  } finally {
    await dut.stop();
    await engine.stop();
    await broker.close();
  }
}

/**
 * Registers one test per case: a device with that single fault fails exactly the scenarios
 * listed for it and passes the others it runs: the smoke set by default, the whole profile with
 * FULL_MATRIX (the split into files only spreads the runs over workers).
 */
export function brokenDeviceTests(cases: readonly [BrokenDevice, string[]][]): void {
  describe('broken devices fail exactly what is aimed at them', () => {
    for (const [broken, aimed] of cases) {
      const only = FULL_MATRIX ? undefined : [...new Set([...aimed, ...SMOKE])];
      it(`${broken} fails ${aimed.join(', ')} and ${FULL_MATRIX ? 'nothing else of the profile' : `passes ${SMOKE.length} smoke scenarios`}`, async () => {
        const { ids, why, ran } = await failuresWith(broken, only);
        expect(ids, why).toEqual(aimed);
        expect(ran).toBe(only?.length ?? ran); // every scenario named exists and ran
      }, 180_000);
    }
  });
}
