/**
 * What the TLS tests share: a test PKI made with openssl (the broker's CA with a server
 * certificate for 127.0.0.1 and client certificates for p1, gw1 and p2; another
 * CA with its own p1), a broker registry of p1 and gw1, a device and a gateway
 * from this repository started with TLS options, and the skip rule for a missing openssl.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from '@livematrix/broker';
import { Device, memoryLicenceStore } from '@livematrix/device-sdk';
import { Gateway } from '@livematrix/gateway';
import { identityKeyPair, type IdentityKeyPair } from '@livematrix/spec';
import type { MatrixEngine } from '@livematrix/spec/engine';
import type { BrokerAuth, TlsOptions } from '@livematrix/spec/transport';
import { type CertFiles, type TestCa, makeTestCa, opensslPath } from '@livematrix/testkit';
import { CAPS, type Rig } from './harness.js';

/** rate limits of the registry's clients: a job streams at full speed */
const LIMITS = { framesPerSecond: 20_000, bytesPerSecond: 200e6 };

export const haveOpenssl = opensslPath() !== undefined;
export const inCI = process.env['CI'] === 'true';
if (!haveOpenssl) console.warn(inCI ? 'openssl is not installed, and CI requires it: the TLS tests will fail' : 'openssl is not installed: skipping the TLS tests (apt-get install openssl; .ci/run installs it)');

export interface Pki {
  dir: string;
  ca: TestCa;
  other: TestCa;
  server: CertFiles;
  /** client certificates of the broker's CA, by CN */
  client: { p1: CertFiles; gw1: CertFiles; p2: CertFiles };
  /** a p1 certificate of the other CA */
  stranger: CertFiles;
  operator: IdentityKeyPair;
  deviceKeys: IdentityKeyPair;
  gatewayKeys: IdentityKeyPair;
  /** registry of p1 (device) and gw1 (gateway), fleet f1 */
  registry: string;
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'lm-tls-'));
  const ca = makeTestCa(dir, 'ca');
  const other = makeTestCa(dir, 'other');
  const deviceKeys = identityKeyPair();
  const gatewayKeys = identityKeyPair();
  const registry = join(dir, 'registry.json');
  new Registry([
    { id: 'p1', role: 'device', fleet: 'f1', publicKey: deviceKeys.publicKey, limits: LIMITS },
    { id: 'gw1', role: 'gateway', fleet: 'f1', publicKey: gatewayKeys.publicKey, limits: LIMITS },
  ]).save(registry);
  return {
    dir, ca, other, server: ca.server(),
    client: { p1: ca.client('p1'), gw1: ca.client('gw1'), p2: ca.client('p2') },
    stranger: other.client('p1'),
    operator: identityKeyPair(), deviceKeys, gatewayKeys, registry,
  };
}

/** TLS options of a client trusting the broker's CA, with `c` as its certificate. */
export const clientTls = (p: Pki, c?: CertFiles): TlsOptions => ({ ca: p.ca.cert, ...(c ? { cert: c.cert, key: c.key } : {}) });

/**
 * p1 and gw1 of the PKI on `url`, each with its own TLS options; `auth` 'token' for the
 * Live Matrix broker (the registry's keys), none for Mosquitto.
 */
export async function tlsRig(p: Pki, url: string, engine: MatrixEngine, o: { device?: TlsOptions; gateway?: TlsOptions; auth?: BrokerAuth } = {}): Promise<Rig> {
  const licences = memoryLicenceStore();
  const auth = o.auth ? { brokerAuth: o.auth } : {};
  const device = await Device.start({
    url, fleet: 'f1', id: 'p1', identity: p.deviceKeys, trustedOperators: [p.operator.publicKey], caps: CAPS, licences, ...auth, ...(o.device ? { tls: o.device } : {}),
  }, engine);
  let gateway: Gateway;
  try {
    gateway = await Gateway.start({
      url, fleet: 'f1', id: 'gw1', identity: p.gatewayKeys, trustedOperators: [p.operator.publicKey], workers: 1, ...auth, ...(o.gateway ? { tls: o.gateway } : {}),
    });
  } catch (e) {
    await device.stop();
    throw e;
  }
  return {
    url, engine, operator: p.operator, deviceKeys: p.deviceKeys, gatewayKeys: p.gatewayKeys, device, gateway, licences,
    close: async () => {
      await device.stop();
      await gateway.stop();
    },
  };
}
