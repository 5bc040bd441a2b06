/**
 * Test harness: a real broker on loopback, a gateway and a device from this repository, and a
 * signed transaction. No mocks.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from '@livematrix/broker';
import { Device } from '@livematrix/device-sdk';
import { MatrixEngine, createTx, digest, identityKeyPair } from '@livematrix/spec';
import { Gateway } from '../src/index.js';
export const GCODE = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'gcode');
export const CAPS = { suites: [[3, 40_000_000], [2, 5_000_000], [1, 5_000_000]], mem: 2 ** 30, wmax: 24, workers: 2 };
export async function rig(url, engine, dev = {}, protocolVersion = 4) {
    const operator = identityKeyPair();
    const deviceKeys = identityKeyPair();
    const gatewayKeys = identityKeyPair();
    const fleet = 'f1';
    const device = await Device.start({ url, fleet, id: 'p1', identity: deviceKeys, trustedOperators: [operator.publicKey], caps: CAPS, protocolVersion, ...dev }, engine);
    const gateway = await Gateway.start({ url, fleet, id: 'gw1', identity: gatewayKeys, trustedOperators: [operator.publicKey], workers: 1, protocolVersion });
    return {
        url, engine, operator, deviceKeys, gatewayKeys, device, gateway,
        close: async () => {
            await device.stop();
            await gateway.stop();
        },
    };
}
export function sign(r, data, o = {}) {
    const now = Date.now();
    return createTx({
        job: 'test-job', plaintext: { digest: digest(data), size: data.length }, device: 'p1', devicePublic: r.deviceKeys.publicKey,
        operatorSecret: r.operator.secretKey, operatorPublic: r.operator.publicKey, notBefore: now - 60_000, notAfter: o.notAfter ?? now + 3600_000,
        rate: o.rate ?? 1e9, burst: o.burst ?? 1e9, gatewayPublic: r.gatewayKeys.publicKey,
    });
}
/** Starts a stream; the device's consumer reads at most `rate` bytes/s (default: as fast as it can). */
export async function run(r, data, opts = {}) {
    const { tx, licence } = sign(r, data, { ...(opts.txRate ? { rate: opts.txRate } : {}), ...(opts.burst ? { burst: opts.burst } : {}) });
    const incoming = r.device.nextStream();
    const gs = await r.gateway.stream('p1', data, tx.bytes, licence, opts);
    const stream = await incoming;
    const output = (async () => {
        const parts = [];
        const t0 = Date.now();
        let n = 0;
        for await (const b of stream.bytes()) {
            parts.push(b.slice());
            n += b.length;
            if (opts.rate) {
                const ahead = (n / opts.rate) * 1000 - (Date.now() - t0);
                if (ahead > 2)
                    await new Promise((res) => setTimeout(res, ahead));
            }
        }
        return Buffer.concat(parts);
    })();
    output.catch(() => undefined);
    return { gs, stream, output };
}
export async function freePort() {
    return new Promise((resolve) => {
        const s = createServer();
        s.listen(0, '127.0.0.1', () => {
            const a = s.address();
            const p = typeof a === 'object' && a ? a.port : 0;
            s.close(() => resolve(p));
        });
    });
}
export async function aedes(port = 0) {
    return startBroker({ host: '127.0.0.1', port });
}
/** Path of the mosquitto binary, or undefined. */
export function mosquittoPath() {
    for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto']) {
        if (spawnSync(p, ['-h']).error === undefined)
            return p;
    }
    return undefined;
}
/** Starts Mosquitto on a free loopback port with a config of its own. */
export async function mosquitto() {
    const bin = mosquittoPath();
    if (!bin)
        throw new Error('mosquitto is not installed (apt-get install mosquitto)');
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'lm-mosq-'));
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_packet_size 1048576\n`);
    const proc = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    proc.stderr?.on('data', (d) => (log += d.toString()));
    const url = `mqtt://127.0.0.1:${port}`;
    await waitForPort(port, () => (proc.exitCode !== null ? `mosquitto exited: ${log}` : undefined));
    return {
        url, proc,
        close: () => new Promise((res) => {
            if (proc.exitCode !== null)
                return res();
            proc.once('exit', () => res());
            proc.kill('SIGTERM');
        }),
    };
}
/** Waits until something listens on 127.0.0.1:port (about 5 s at most). */
export async function waitForPort(port, failed = () => undefined) {
    for (let i = 0; i < 100; i++) {
        const ok = await new Promise((res) => {
            const sock = new Socket();
            sock.once('connect', () => {
                sock.destroy();
                res(true);
            });
            sock.once('error', () => res(false));
            sock.connect(port, '127.0.0.1');
        });
        if (ok)
            return;
        const why = failed();
        if (why)
            throw new Error(why);
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nothing listens on port ${port}`);
}
//# sourceMappingURL=harness.js.map