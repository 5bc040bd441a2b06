/**
 * Test harness: a real broker on loopback, a gateway and a device from this repository, and a
 * signed transaction. No mocks.
 */
import { join } from 'node:path';
import { startBroker, type RunningBroker } from '@livematrix/broker';
import { freePort, mosquittoPath, startMosquitto, waitForPort } from '@livematrix/testkit';
import { Device, type DeviceOptions, type IncomingStream, type LicenceStore, memoryLicenceStore } from '@livematrix/device-sdk';
import { type Caps, createTx, digest, identityKeyPair, type IdentityKeyPair } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { Gateway, type GatewayStream, type StreamOptions } from '@livematrix/gateway';

/** Slicer output kept in the repository (examples/README.md says where it comes from). */
export const GCODE = join(import.meta.dirname, '..', '..', 'examples');

/**
 * A large, deterministic G-code job of about `bytes` bytes (spiral moves with extrusion), for
 * tests that need more than the window and read-ahead: the repository keeps no 20 MB file.
 */
export function syntheticGcode(bytes: number): Uint8Array {
  const lines = ['; livematrix synthetic test job', 'G28', 'M104 S215', 'M140 S60', 'G90', 'M82', 'G1 Z0.3 F3000'];
  let size = lines.join('\n').length;
  for (let i = 0; size < bytes; i++) {
    const a = i * 0.013;
    const r = 20 + (i % 977) * 0.01;
    const l = `G1 X${(100 + r * Math.cos(a)).toFixed(3)} Y${(100 + r * Math.sin(a)).toFixed(3)} E${(i * 0.00731).toFixed(5)}${i % 50 === 0 ? ` F${1200 + (i % 7) * 300}` : ''}`;
    lines.push(l);
    size += l.length + 1;
  }
  return new TextEncoder().encode(lines.join('\n') + '\n');
}
export const CAPS: Caps = { suites: [[3, 40_000_000], [2, 5_000_000], [1, 5_000_000]], mem: 2 ** 30, wmax: 24, workers: 2 };

export interface Rig {
  url: string;
  engine: MatrixEngine;
  operator: IdentityKeyPair;
  deviceKeys: IdentityKeyPair;
  gatewayKeys: IdentityKeyPair;
  device: Device;
  /** the device's licence state ([LM-LIC-2]): a device started again on it keeps its counts and tickets */
  licences: LicenceStore;
  gateway: Gateway;
  close(): Promise<void>;
}

export async function rig(url: string, engine: MatrixEngine, dev: Partial<DeviceOptions> = {}, protocolVersion: 4 | 5 = 4): Promise<Rig> {
  const operator = identityKeyPair();
  const deviceKeys = identityKeyPair();
  const gatewayKeys = identityKeyPair();
  const fleet = 'f1';
  const licences = dev.licences ?? memoryLicenceStore();
  const device = await Device.start({ url, fleet, id: 'p1', identity: deviceKeys, trustedOperators: [operator.publicKey], caps: CAPS, protocolVersion, ...dev, licences }, engine);
  const gateway = await Gateway.start({ url, fleet, id: 'gw1', identity: gatewayKeys, trustedOperators: [operator.publicKey], workers: 1, protocolVersion });
  return {
    url, engine, operator, deviceKeys, gatewayKeys, device, gateway, licences,
    close: async () => {
      await device.stop();
      await gateway.stop();
    },
  };
}

export function sign(r: Pick<Rig, 'operator' | 'deviceKeys' | 'gatewayKeys'>, data: Uint8Array, o: { rate?: number; burst?: number; notAfter?: number } = {}) {
  const now = Date.now();
  return createTx({
    job: 'test-job', plaintext: { digest: digest(data), size: data.length }, device: 'p1', devicePublic: r.deviceKeys.publicKey,
    operatorSecret: r.operator.secretKey, operatorPublic: r.operator.publicKey, notBefore: now - 60_000, notAfter: o.notAfter ?? now + 3600_000,
    rate: o.rate ?? 1e9, burst: o.burst ?? 1e9, gatewayPublic: r.gatewayKeys.publicKey,
  });
}

export interface Run {
  gs: GatewayStream;
  stream: IncomingStream;
  output: Promise<Uint8Array>;
}

/**
 * Starts a stream of `data` (or of `job`, a stream source, under a transaction signed for
 * `data`); the device's consumer reads at most `rate` bytes/s (default: as fast as it can).
 */
export async function run(r: Rig, data: Uint8Array, opts: StreamOptions & { rate?: number; txRate?: number; burst?: number; job?: AsyncIterable<Uint8Array> } = {}): Promise<Run> {
  const { tx, licence } = sign(r, data, { ...(opts.txRate ? { rate: opts.txRate } : {}), ...(opts.burst ? { burst: opts.burst } : {}) });
  const incoming = r.device.nextStream();
  const gs = await r.gateway.stream('p1', opts.job ?? data, tx.bytes, licence, opts);
  const stream = await incoming;
  const output = (async () => {
    const parts: Uint8Array[] = [];
    const t0 = Date.now();
    let n = 0;
    for await (const b of stream.bytes()) {
      parts.push(b.slice());
      n += b.length;
      if (opts.rate) {
        const ahead = (n / opts.rate) * 1000 - (Date.now() - t0);
        if (ahead > 2) await new Promise((res) => setTimeout(res, ahead));
      }
    }
    return Buffer.concat(parts);
  })();
  output.catch(() => undefined);
  return { gs, stream, output };
}

/** Runs fn with a fresh aedes broker and a rig on it, and closes both whatever happens. */
export async function withRig(engine: MatrixEngine, dev: Partial<DeviceOptions>, fn: (x: { r: Rig; broker: RunningBroker }) => Promise<void>): Promise<void> {
  const broker = await aedes();
  const r = await rig(broker.url, engine, dev);
  try {
    await fn({ r, broker });
  } finally {
    await r.close();
    await broker.close();
  }
}

export async function aedes(port = 0): Promise<RunningBroker> {
  return startBroker({ host: '127.0.0.1', port });
}

/** Starts Mosquitto on a free loopback port with a config of its own. */
export const mosquitto = (): ReturnType<typeof startMosquitto> => startMosquitto();
export { freePort, mosquittoPath, waitForPort };
