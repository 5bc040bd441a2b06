/**
 * The device side of bench:stream, in a process of its own so that its peak RSS is its own.
 * Reads one JSON line of settings on stdin, prints one JSON line of results on stdout.
 */
import { createHash } from 'node:crypto';
import { Device } from '@livematrix/device-sdk';
import { fromHex, identityKeyPair } from '@livematrix/spec';

interface Settings {
  url: string;
  seed: string;
  operator: string;
  /** bytes the device may spend on tables */
  mem: number;
}

const input = await new Promise<string>((res) => {
  let s = '';
  process.stdin.on('data', (d: Buffer) => {
    s += d.toString();
    if (s.includes('\n')) res(s);
  });
});
const cfg = JSON.parse(input) as Settings;
const resolved: [number, number][] = [];
const device = await Device.start({
  url: cfg.url, fleet: 'bench', id: 'bench-device', identity: identityKeyPair(fromHex(cfg.seed)), trustedOperators: [fromHex(cfg.operator)], memory: cfg.mem, // measures its own build rate ([LM-CAP-1])
  onFrameResolved: (seq) => resolved.push([seq, performance.timeOrigin + performance.now()]),
});
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
const stream = await device.nextStream();
const c0 = process.cpuUsage(); // the stream's CPU, worker threads included
const h = createHash('sha256');
let n = 0;
for await (const b of stream.bytes()) {
  h.update(b);
  n += b.length;
}
const rss = process.resourceUsage().maxRSS * 1024;
const cpuUsed = process.cpuUsage(c0);
const cpu = (cpuUsed.user + cpuUsed.system) / 1e6;
const up = device.link.stats.bytesOut; // ACKs, time sync, receipt: the device's share of the wire
await device.stop();
// exit only once the pipe took the whole line
process.stdout.write(JSON.stringify({ bytes: n, sha256: h.digest('hex'), maxRSS: rss, up, cpu, resolved }) + '\n', () => process.exit(0));
