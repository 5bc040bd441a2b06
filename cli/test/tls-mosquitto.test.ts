/**
 * TLS and mutual TLS against Mosquitto 2 (a TLS listener with require_certificate beside its
 * plain one, testkit's startMosquitto), over a test PKI made with openssl (SPEC §10.1): a device
 * and a gateway stream a job over mutual TLS; a client certificate of another CA and a missing one
 * are refused with typed errors (Mosquitto answers with TLS alerts, unlike Node's server, which
 * closes); plain TCP still works. Without mosquitto or openssl the suite says so and is skipped
 * locally; under CI (CI=true) their absence is a failure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, toHex } from '@livematrix/spec';
import { FrameLink, TlsHandshakeError, type TlsOptions } from '@livematrix/spec/transport';
import { type RunningMosquitto, mosquittoPath, startMosquitto, testEngine } from '@livematrix/testkit';
import { GCODE, run } from './harness.js';
import { type Pki, clientTls, haveOpenssl, inCI, makePki, tlsRig } from './tls-kit.js';

const haveMosquitto = mosquittoPath() !== undefined;
if (!haveMosquitto) console.warn(inCI ? 'mosquitto is not installed, and CI requires it: these tests will fail' : 'mosquitto is not installed: skipping the Mosquitto TLS suite (apt-get install mosquitto)');

const connect = (url: string, tls: TlsOptions | undefined): Promise<FrameLink> =>
  FrameLink.connect({ url, clientId: `lm-test-${toHex(randomBytes(3))}`, reconnectPeriod: 200, ...(tls ? { tls } : {}) });

async function refusal(x: Promise<FrameLink>): Promise<TlsHandshakeError> {
  const e = await x.then(async (l) => {
    await l.close(true);
    throw new Error('connected, but should have been refused');
  }, (err: unknown) => err);
  expect(e).toBeInstanceOf(TlsHandshakeError);
  return e as TlsHandshakeError;
}

describe.runIf((haveOpenssl && haveMosquitto) || inCI)('mutual TLS to Mosquitto (SPEC §10.1)', () => {
  const engine = testEngine();
  let p: Pki;
  let m: RunningMosquitto;
  let tlsUrl: string;

  beforeAll(async () => {
    p = makePki();
    m = await startMosquitto([], { tls: { cert: p.server.cert, key: p.server.key, ca: p.ca.cert, requireClientCert: true } });
    tlsUrl = m.tlsUrl as string;
  });
  afterAll(async () => {
    await m?.close();
  });

  it('a device and a gateway stream a job over mutual TLS, byte-identical', async () => {
    const r = await tlsRig(p, tlsUrl, engine(), { device: clientTls(p, p.client.p1), gateway: clientTls(p, p.client.gw1) });
    try {
      const data = new Uint8Array(readFileSync(join(GCODE, 'cylinder_annular.gcode')));
      const { gs, output } = await run(r, data, { policy: { w: 16 } });
      const [report, out] = await Promise.all([gs.done, output]);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
      expect(report.receipt.bytes).toBe(data.length);
    } finally {
      await r.close();
    }
    expect(m.log()).toMatch(/New client connected from 127\.0\.0\.1:\d+ as lm-dev-p1-/);
  });

  it('a client certificate of another CA is refused with client-certificate-refused (alert unknown CA); one of the broker\'s CA connects', async () => {
    const e = await refusal(connect(tlsUrl, clientTls(p, p.stranger)));
    expect(e.failure).toBe('client-certificate-refused');
    expect(e.tlsCode).toBe('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA');
    const ok = await connect(tlsUrl, clientTls(p, p.client.p1));
    expect(ok.connected).toBe(true);
    await ok.close();
  });

  it('require_certificate: a client without a certificate is refused with client-certificate-required', async () => {
    const e = await refusal(connect(tlsUrl, clientTls(p)));
    expect(e.failure).toBe('client-certificate-required');
    expect(e.message).toMatch(/requires a client certificate/);
  });

  it('a broker certificate of a CA the client does not trust is refused (server-untrusted); plain TCP still works beside TLS', async () => {
    const e = await refusal(connect(tlsUrl, { ca: p.other.cert, cert: p.client.p1.cert, key: p.client.p1.key }));
    expect(e.failure).toBe('server-untrusted');
    const plain = await connect(m.url, undefined);
    expect(plain.connected).toBe(true);
    await plain.close();
    // and a TLS client at the plain port: Mosquitto resets the connection in the handshake
    const notTls = await refusal(connect(`mqtts://127.0.0.1:${m.port}`, clientTls(p, p.client.p1)));
    expect(notTls.failure).toBe('closed');
    expect(notTls.message).toMatch(/is this its TLS port \(not a plain MQTT one\)\?/);
  });
});
