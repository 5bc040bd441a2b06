/**
 * @module device-child
 * The device side of bench:stream, in a process of its own so that its peak RSS is its own.
 * Reads one JSON line of settings on stdin and prints one JSON line of results on stdout per
 * stream: with `streams` absent, one stream read as bytes (throughput); with `streams: K`, K
 * streams one after the other, each read as lines, reporting when its first line was handed to
 * the consumer (time to first line).
 */
import { createHash } from 'node:crypto';
import { Device } from '@livematrix/device-sdk';
import { fromHex, identityKeyPair } from '@livematrix/spec';
import { vm } from './proc.js';

interface Settings {
  url: string;
  seed: string;
  operator: string;
  /** bytes the device may spend on tables */
  mem: number;
  /** streams read as lines, for the time to first line; absent: one stream read as bytes */
  streams?: number;
}

/** Unix ms with a fraction, comparable across the bench's processes. */
const now = (): number => performance.timeOrigin + performance.now();

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
  onFrameResolved: (seq) => resolved.push([seq, now()]),
});
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
const say = (o: object): Promise<void> => new Promise((res) => process.stdout.write(JSON.stringify(o) + '\n', () => res()));

if (cfg.streams !== undefined) {
  for (let k = 0; k < cfg.streams; k++) {
    const stream = await device.nextStream();
    let firstLine = 0;
    let lines = 0;
    for await (const line of stream.lines()) {
      if (!lines++) firstLine = now();
      void line;
    }
    await say({ firstLine, lines });
  }
  await device.stop();
} else {
  const stream = await device.nextStream();
  const c0 = process.cpuUsage(); // the stream's CPU, worker threads included
  const h = createHash('sha256');
  let n = 0;
  for await (const b of stream.bytes()) {
    h.update(b);
    n += b.length;
  }
  // this process's own high-water mark: resourceUsage().maxRSS is not, Linux carries it over from
  // the parent across exec (bench:footprint reads the same)
  const rss = vm(process.pid, 'VmHWM');
  const cpuUsed = process.cpuUsage(c0);
  const cpu = (cpuUsed.user + cpuUsed.system) / 1e6;
  const up = device.link.stats.bytesOut; // ACKs, time sync, receipt: the device's share of the wire
  await device.stop(); // before the result: the parent closes the broker once it has it
  await say({ bytes: n, sha256: h.digest('hex'), maxRSS: rss, up, cpu, resolved });
}
// exit only once the pipe took the last line
process.exit(0);
