/**
 * TLS and mutual TLS against the Live Matrix broker (`livematrix broker`'s runBroker, in this
 * process) with its registry, over a test PKI made with openssl (SPEC §10.1): a device and a
 * gateway stream a job over mutual TLS; under requireClientCert a valid token without a certificate
 * is refused on the plain TCP and WebSocket listeners (SPEC §10.1: the identity key alone is not
 * enough); a client certificate of another CA, a missing one and an untrusted broker certificate end the first
 * connect with a typed TlsHandshakeError, not a silent reconnect loop; a certificate whose CN is
 * not the identity connecting is refused; unusable PEM files are TlsConfigErrors naming the file.
 * Every refusal has its accepted case beside it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBroker, type StandaloneBroker } from '@livematrix/broker';
import { ConfigError, Role, randomBytes, toHex } from '@livematrix/spec';
import { FrameLink, type LinkOptions, TlsConfigError, TlsHandshakeError, type TlsOptions } from '@livematrix/spec/transport';
import { testEngine } from '@livematrix/testkit';
import { GCODE, run } from './harness.js';
import { type Pki, clientTls, haveOpenssl, inCI, makePki, tlsRig } from './tls-kit.js';

/** A p1 link with its connect token over `url`; the first connect's error, or the link. */
function link(p: Pki, url: string, tls: TlsOptions | undefined, o: Partial<LinkOptions> = {}): Promise<FrameLink> {
  return FrameLink.connect({
    url, clientId: `lm-dev-p1-${toHex(randomBytes(3))}`, reconnectPeriod: 200,
    token: { id: 'p1', role: Role.device, secretKey: p.deviceKeys.secretKey }, ...(tls ? { tls } : {}), ...o,
  });
}

/** The rejection of a promise (fails the test when it resolves). */
async function refusal(x: Promise<FrameLink>): Promise<unknown> {
  return x.then(async (l) => {
    await l.close(true);
    throw new Error('connected, but should have been refused');
  }, (e: unknown) => e);
}

describe.runIf(haveOpenssl || inCI)('mutual TLS to the Live Matrix broker (SPEC §10.1)', () => {
  const engine = testEngine();
  let p: Pki;
  let b: StandaloneBroker;
  const logged: string[] = [];
  let tlsUrl: string;

  beforeAll(async () => {
    p = makePki();
    // the plain and WebSocket listeners stay open here to show that they refuse every CONNECT (the CLI refuses to open them)
    b = await runBroker({ port: 0, ws: { port: 0 }, registry: p.registry, tls: { port: 0, cert: p.server.cert, key: p.server.key, ca: p.ca.cert, requireClientCert: true } }, (l) => logged.push(l));
    tlsUrl = `mqtts://127.0.0.1:${b.ports.tls}`;
  });
  afterAll(async () => {
    await b?.close();
  });

  it('a device and a gateway stream a job over mutual TLS with connect tokens', async () => {
    const r = await tlsRig(p, tlsUrl, engine(), { device: clientTls(p, p.client.p1), gateway: clientTls(p, p.client.gw1), auth: 'token' });
    try {
      const data = new Uint8Array(readFileSync(join(GCODE, 'calib_cube.gcode')));
      const { gs, output } = await run(r, data, { policy: { w: 16 } });
      const [report, out] = await Promise.all([gs.done, output]);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
      expect(report.receipt.bytes).toBe(data.length);
      // both ends really are on the TLS listener, with their certificates
      expect(r.device.link.client.options.protocol).toBe('mqtts');
      expect(r.gateway.link.client.options.protocol).toBe('mqtts');
    } finally {
      await r.close();
    }
  });

  it('under requireClientCert a valid connect token without a certificate is refused (not authorized, certificate-required) on the plain TCP and WebSocket listeners; with its certificate on TLS it connects', async () => {
    expect(logged.join('\n')).toMatch(/WARNING: client certificates are required \(tls\.requireClientCert\), and the plain mqtt and WebSocket listener carries none: every CONNECT on it is refused/);
    for (const url of [`mqtt://127.0.0.1:${b.ports.tcp}`, `ws://127.0.0.1:${b.ports.ws ?? 0}`]) {
      const e = await refusal(link(p, url, undefined));
      expect(e, url).not.toBeInstanceOf(TlsHandshakeError);
      expect(String((e as Error).message), url).toMatch(/Not authorized/i);
    }
    expect(logged.join('\n')).toMatch(/refused CONNECT: "p1" \(client lm-dev-p1-[0-9a-f]+\) connects without a verified client certificate, which this broker requires/);
    expect(b.plugin?.metrics.render()).toMatch(/livematrix_connections_refused_total\{reason="certificate-required"\} 2/);
    const ok = await link(p, tlsUrl, clientTls(p, p.client.p1));
    expect(ok.connected).toBe(true);
    await ok.close();
    expect(b.plugin?.metrics.render()).toMatch(/livematrix_connections_refused_total\{reason="certificate-required"\} 2/);
  });

  it('a client certificate of another CA is refused with client-certificate-refused, at the first connect; the same identity with the broker CA\'s certificate connects', async () => {
    const t0 = Date.now();
    const e = await refusal(link(p, tlsUrl, clientTls(p, p.stranger)));
    expect(e).toBeInstanceOf(TlsHandshakeError);
    expect((e as TlsHandshakeError).failure).toBe('client-certificate-refused');
    expect((e as TlsHandshakeError).message).toMatch(/refused this client certificate: is it issued by a CA the broker trusts/);
    expect(Date.now() - t0).toBeLessThan(5000); // one attempt, no reconnect loop (reconnectPeriod 200 ms)
    const ok = await link(p, tlsUrl, clientTls(p, p.client.p1));
    expect(ok.connected).toBe(true);
    await ok.close();
  });

  it('under requireClientCert a client without a certificate is refused on TLS with client-certificate-required (in the handshake: MQTT never sees its token)', async () => {
    const e = await refusal(link(p, tlsUrl, clientTls(p)));
    expect(e).toBeInstanceOf(TlsHandshakeError);
    expect((e as TlsHandshakeError).failure).toBe('client-certificate-required');
    expect((e as TlsHandshakeError).tlsCode).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    expect((e as TlsHandshakeError).message).toMatch(/requires a client certificate \(mutual TLS\)/);
  });

  it('a broker certificate the client cannot verify: server-untrusted (another CA), server-name (another name); the broker CA and 127.0.0.1 or localhost verify', async () => {
    const untrusted = await refusal(link(p, tlsUrl, { ca: p.other.cert, cert: p.client.p1.cert, key: p.client.p1.key }));
    expect((untrusted as TlsHandshakeError).failure).toBe('server-untrusted');
    const named = await refusal(link(p, tlsUrl, { ...clientTls(p, p.client.p1), servername: 'broker.example' }));
    expect((named as TlsHandshakeError).failure).toBe('server-name');
    for (const url of [tlsUrl, `mqtts://localhost:${b.ports.tls}`]) {
      const ok = await link(p, url, clientTls(p, p.client.p1));
      expect(ok.connected).toBe(true);
      await ok.close();
    }
  });

  it('a client certificate names its identity: p1\'s token over a p2 certificate is refused (not authorized) and counted; over a p1 certificate it is accepted', async () => {
    const e = await refusal(link(p, tlsUrl, clientTls(p, p.client.p2)));
    expect(e).not.toBeInstanceOf(TlsHandshakeError); // the handshake passed: MQTT refused the CONNECT
    expect(String((e as Error).message)).toMatch(/Not authorized/i);
    expect(logged.join('\n')).toMatch(/refused CONNECT: client certificate CN "p2" is not the identity "p1"/);
    expect(b.plugin?.metrics.render()).toMatch(/livematrix_connections_refused_total\{reason="certificate-identity"\} 1/);
    const ok = await link(p, tlsUrl, clientTls(p, p.client.p1));
    expect(ok.connected).toBe(true);
    await ok.close();
  });

  it('a TLS option with an mqtt:// URL, and PEM files that cannot be used, fail before any connection, naming the file', async () => {
    const c = p.client.p1;
    const cases: [TlsOptions, RegExp, string?][] = [
      [{ ca: join(p.dir, 'nowhere.crt') }, /TLS ca file .*nowhere\.crt: not found/, 'ca'],
      [{ ca: p.ca.cert, cert: c.key, key: c.cert }, /holds no PEM certificate .*did you swap the certificate and the key\?/, 'cert'],
      [{ ca: p.ca.cert, cert: c.cert, key: p.client.gw1.key }, /is not the key of the cert file .*client-p1\.crt \(subject CN=p1\)/, 'key'],
      [{ ca: p.ca.cert, cert: c.cert }, /needs both a client certificate and its key: the key \(--key\) is missing/, 'key'],
    ];
    const garbage = join(p.dir, 'garbage.pem');
    writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    cases.push([{ ca: garbage }, /garbage\.pem: certificate 1 does not parse/, 'ca']);
    for (const [tls, re, field] of cases) {
      const e = await refusal(link(p, tlsUrl, tls));
      expect(e, String(re)).toBeInstanceOf(TlsConfigError);
      expect((e as TlsConfigError).message).toMatch(re);
      expect((e as TlsConfigError).field).toBe(field);
    }
    const scheme = await refusal(link(p, `mqtt://127.0.0.1:${b.ports.tls}`, clientTls(p, c)));
    expect(scheme).toBeInstanceOf(ConfigError);
    expect((scheme as Error).message).toMatch(/TLS options need an mqtts:\/\/ \(or wss:\/\/\) broker URL/);
    // the same files as PEM text in memory are accepted
    const ok = await link(p, tlsUrl, { ca: readFileSync(p.ca.cert, 'utf8'), cert: readFileSync(c.cert), key: readFileSync(c.key, 'utf8') });
    expect(ok.connected).toBe(true);
    await ok.close();
  });
});

describe.runIf(haveOpenssl || inCI)('optional client certificates and a TLS-only broker (SPEC §10.1)', () => {
  it('with a CA but no requireClientCert: no certificate connects, one of the CA connects, one of another CA is refused in the handshake', async () => {
    const p = makePki();
    const logged: string[] = [];
    const b = await runBroker({ port: 0, registry: p.registry, tls: { port: 0, cert: p.server.cert, key: p.server.key, ca: p.ca.cert } }, (l) => logged.push(l));
    try {
      const url = `mqtts://127.0.0.1:${b.ports.tls}`;
      for (const tls of [clientTls(p), clientTls(p, p.client.p1)]) {
        const ok = await link(p, url, tls);
        expect(ok.connected).toBe(true);
        await ok.close();
      }
      const e = await refusal(link(p, url, clientTls(p, p.stranger)));
      expect((e as TlsHandshakeError).failure).toBe('client-certificate-refused');
      expect(logged.join('\n')).toMatch(/refused TLS client .*its certificate does not verify/);
      // optional certificates bind no client that presents none, and the broker says so at start
      expect(logged.join('\n')).toMatch(/client certificates are optional .*: a client without one authenticates by its connect token alone/);
      expect(logged.join('\n')).not.toMatch(/certificate-required|WARNING/);
    } finally {
      await b.close();
    }
  });

  it('tcp: false opens no plain listener; without a TLS listener it is refused as a config error', async () => {
    const p = makePki();
    await expect(runBroker({ port: 0, tcp: false })).rejects.toThrow(/tcp: false leaves no listener/);
    const b = await runBroker({ port: 0, tcp: false, registry: p.registry, tls: { port: 0, cert: p.server.cert, key: p.server.key } });
    try {
      expect(b.ports.tcp).toBe(0);
      const ok = await link(p, `mqtts://127.0.0.1:${b.ports.tls}`, { ca: p.ca.cert });
      expect(ok.connected).toBe(true);
      await ok.close();
    } finally {
      await b.close();
    }
    // a listener whose key is not its certificate's does not start
    await expect(runBroker({ port: 0, tls: { port: 0, cert: p.server.cert, key: p.client.p1.key } })).rejects.toBeInstanceOf(TlsConfigError);
  });
});
