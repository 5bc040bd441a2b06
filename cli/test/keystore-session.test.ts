/**
 * A device whose identity is a key store (a secure element's shape: `@livematrix/spec/keystore`)
 * through a whole session, against the Live Matrix broker with its registry, over mutual TLS: the
 * connect token ([LM-BRK-1]), HELLO ([LM-MQTT-2]), the sealed licence ([LM-TX-1]), ACCEPT, the
 * ticket at the counting point ([LM-LIC-1]) and the RECEIPT ([LM-DLV-7]) are all made by the
 * store, which counts them; the SDK is never given the secret key. A reconnect signs a fresh
 * token and HELLO with it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Registry, runBroker } from '@livematrix/broker';
import { Device, memoryLicenceStore } from '@livematrix/device-sdk';
import { Gateway } from '@livematrix/gateway';
import { countingKeyStore, testEngine } from '@livematrix/testkit';
import { CAPS, GCODE, run } from './harness.js';
import { clientTls, haveOpenssl, inCI, makePki } from './tls-kit.js';

const LIMITS = { framesPerSecond: 20_000, bytesPerSecond: 200e6 };

describe.runIf(haveOpenssl || inCI)('a device on a key store, through a session over mutual TLS', () => {
  const engine = testEngine();

  it('token, HELLO, licence, ACCEPT, ticket and RECEIPT all come from the store; the job arrives byte-identical; a reconnect signs a fresh token', async () => {
    const p = makePki();
    const store = countingKeyStore(); // its seed never leaves it
    const registry = join(p.dir, 'store-registry.json');
    new Registry([
      { id: 'p1', role: 'device', fleet: 'f1', publicKey: store.publicKey, limits: LIMITS },
      { id: 'gw1', role: 'gateway', fleet: 'f1', publicKey: p.gatewayKeys.publicKey, limits: LIMITS },
    ]).save(registry);
    const b = await runBroker({ port: 0, tcp: false, registry, tls: { port: 0, cert: p.server.cert, key: p.server.key, ca: p.ca.cert, requireClientCert: true } });
    const url = `mqtts://127.0.0.1:${b.ports.tls}`;
    const licences = memoryLicenceStore();
    const device = await Device.start({
      url, fleet: 'f1', id: 'p1', identity: store, trustedOperators: [p.operator.publicKey], caps: CAPS, licences, brokerAuth: 'token', tls: clientTls(p, p.client.p1),
    }, engine());
    const gateway = await Gateway.start({
      url, fleet: 'f1', id: 'gw1', identity: p.gatewayKeys, trustedOperators: [p.operator.publicKey], workers: 1, brokerAuth: 'token', tls: clientTls(p, p.client.gw1),
      deviceKeys: new Map([['p1', store.publicKey]]), // [LM-MQTT-6]: HELLO must be signed by the store's key
    });
    // what the store signed for the session's protocol (the device's periodic STATUS and its check of the store at start aside)
    expect(store.signed[0]).toBe('self-test');
    const signed = () => store.signed.filter((x) => x !== 'STATUS' && x !== 'self-test');
    try {
      expect(signed().slice(0, 2)).toEqual(['token', 'HELLO']);
      // the transaction is signed for the store's public key; the rig holds no device secret (zeros)
      const r = { url, engine: engine(), operator: p.operator, deviceKeys: { publicKey: store.publicKey, secretKey: new Uint8Array(32) }, gatewayKeys: p.gatewayKeys, device, gateway, licences, close: async () => undefined };
      const data = new Uint8Array(readFileSync(join(GCODE, 'calib_cube.gcode')));
      const { gs, output } = await run(r, data, { policy: { w: 16 } });
      const [report, out] = await Promise.all([gs.done, output]);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
      expect(report.receipt.bytes).toBe(data.length); // the gateway verified the store's RECEIPT ([LM-DLV-7])
      expect(store.agreements).toBe(1); // [LM-TX-1]
      expect(signed()).toEqual(['token', 'HELLO', 'ACCEPT', 'ticket', 'RECEIPT']);

      // a dropped connection: the reconnect's CONNECT carries a fresh token (signed at MQTT.js'
      // 'reconnect'), and the device's own 'connect' listener, registered before this one, signs
      // HELLO before it awaits anything
      const back = new Promise<void>((res) => device.link.client.once('connect', () => res()));
      device.link.client.stream.destroy();
      await back;
      expect(signed().slice(5)).toEqual(['token', 'HELLO']);
    } finally {
      await device.stop();
      await gateway.stop();
      await b.close();
    }
  });
});
