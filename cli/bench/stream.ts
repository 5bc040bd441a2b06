/**
 * @module stream
 * `npm run bench:stream`: one run over loopback MQTT with the embedded broker and the 20 MB
 * slicer file, at w = 20 and w = 24: wire/plaintext ratio against the bound of [LM-PARAM-3],
 * throughput against a plain chunked QoS 1 transfer of the same file through the same broker in
 * the same run, hint latency p50/p99, device peak RSS, CPU; the compute ceiling of each side
 * (ceiling.ts); the time to first line, p50/p99 over several streams (stream-run.ts); and the
 * protected path (SPEC §16: the owner's ciphertext from the store, chunk keys from the keys
 * service) against the unprotected one. Prints the tables and writes them to BENCHMARKS.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { startBroker } from '@livematrix/broker';
import { minHintLength } from '@livematrix/spec';
import { machine, writeSection } from '@livematrix/spec/bench';
import { type Ceiling, computeCeiling } from './ceiling.js';
import { type FirstLines, type StreamRun, cpuSince, firstLines, log, streamOnce } from './stream-run.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const args = process.argv.slice(2);
if (args.includes('--help')) {
  console.log(`usage: npm run bench:stream -- [FILE] [--w=20,24] [--parts=stream,ceiling,first,protected] [--first-runs=20]
  streams FILE at each w and writes BENCHMARKS.md (only when every part ran); FILE defaults to the 20 MB
  slicer file ../shared/data/gcode/twisted_gear_box.gcode when it is there (the paper's file size), else
  examples/cylinder_annular.gcode. --parts runs some parts only (for profiling: node --cpu-prof).`);
  process.exit(0);
}
const shared = join(root, '..', 'shared', 'data', 'gcode', 'twisted_gear_box.gcode');
const file = args.find((a) => !a.startsWith('--')) ?? (existsSync(shared) ? shared : join(root, 'examples', 'cylinder_annular.gcode'));
const opt = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const widths = (opt('w') ?? '20,24').split(',').map(Number);
const ALL_PARTS = ['stream', 'ceiling', 'first', 'protected'];
const parts = new Set(opt('parts')?.split(',') ?? ALL_PARTS);
const firstRuns = Number(opt('first-runs') ?? 20);
/** the job of the time-to-first-line streams: the file's first 64 KiB (the first line needs its first chunk only) */
const FIRST_JOB = 65536;

async function plainTransfer(url: string, data: Uint8Array): Promise<{ rate: number; cpu: number }> {
  const sub = await mqtt.connectAsync(url, { clientId: 'plain-sub', protocolVersion: 4 });
  const pub = await mqtt.connectAsync(url, { clientId: 'plain-pub', protocolVersion: 4 });
  await sub.subscribeAsync('plain/file', { qos: 1 });
  const C = 4096;
  const n = Math.ceil(data.length / C);
  let got = 0;
  const done = new Promise<void>((res) => sub.on('message', (_t, p) => {
    got += p.length;
    if (got >= data.length) res();
  }));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) sends.push(pub.publishAsync('plain/file', Buffer.from(data.subarray(i * C, (i + 1) * C)), { qos: 1 }));
  await Promise.all(sends);
  await done;
  const s = (performance.now() - t0) / 1000;
  const cpu = cpuSince(c0); // publisher, broker and subscriber all run in this process
  await sub.endAsync();
  await pub.endAsync();
  return { rate: data.length / s, cpu };
}

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

const mb = (x: number): string => `${(x / 1e6).toFixed(2)} MB/s`;

interface Width {
  w: number;
  run?: StreamRun;
  ceiling?: Ceiling;
  first?: FirstLines;
  protectedRun?: StreamRun;
}

async function main(): Promise<void> {
  if (!existsSync(file)) throw new Error(`no such file: ${file}`);
  const data = new Uint8Array(readFileSync(file));
  const load = [loadavg()[0] as number];
  const broker = await startBroker();
  log(`bench:stream: ${file} (${(data.length / 1e6).toFixed(1)} MB) through aedes on ${broker.url}; parts ${[...parts].join(', ')}`);
  log('plain chunked QoS 1 transfer ...');
  const { rate: plain, cpu: plainCpu } = await plainTransfer(broker.url, data);
  log(`  ${mb(plain)}, ${plainCpu.toFixed(2)} CPU s`);
  const results: Width[] = [];
  for (const w of widths) {
    const r: Width = { w };
    results.push(r);
    if (parts.has('stream')) {
      log(`live matrix stream at w=${w} ...`);
      r.run = await streamOnce(broker.url, data, w);
    }
    if (parts.has('ceiling')) {
      log(`  compute ceiling at w=${w} ...`);
      r.ceiling = await computeCeiling(data, w);
      log(`  gateway ${mb(r.ceiling.gateway)}, device ${mb(r.ceiling.device)} (lookups ${r.ceiling.lookupSeconds.toFixed(3)} of ${r.ceiling.deviceSeconds.toFixed(3)} s)`);
    }
    if (parts.has('first')) {
      log(`  time to first line at w=${w}, ${firstRuns} streams ...`);
      r.first = await firstLines(broker.url, data.subarray(0, FIRST_JOB), w, firstRuns);
      log(`  p50 ${pct(r.first.ms, 50).toFixed(0)} ms, p99 ${pct(r.first.ms, 99).toFixed(0)} ms, P ${r.first.period} ms`);
    }
    if (parts.has('protected')) {
      log(`live matrix stream at w=${w}, protected path ...`);
      r.protectedRun = await streamOnce(broker.url, data, w, true);
    }
  }
  await broker.close();
  load.push(loadavg()[0] as number);
  if (ALL_PARTS.some((x) => !parts.has(x))) return; // a partial run writes nothing
  const body = section(data, results, plain, plainCpu, load);
  console.log(body);
  log(`wrote ${writeSection(root, 'stream', body)}`);
}

function section(data: Uint8Array, results: Width[], plain: number, plainCpu: number, load: number[]): string {
  const plainSecs = data.length / plain;
  const rows: string[] = [];
  const ceilings: string[] = [];
  const firsts: string[] = [];
  const protectedRows: string[] = [];
  for (const { w, run: r, ceiling: c, first: f, protectedRun: p } of results) {
    if (!r || !c || !f || !p) continue;
    const tput = data.length / r.secs;
    const rep = r.report;
    const L = minHintLength(w);
    const wire = rep.wireBytes / data.length;
    rows.push(`| ${w} | ${rep.params.L} | ${rep.params.period} ms | ${rep.params.chunk} | ${r.same ? 'yes' : 'NO'} | ${wire.toFixed(3)} | ${((8 * L) / w).toFixed(3)} / ${((w + 8) / w).toFixed(3)} | ${(wire / ((w + 8) / w)).toFixed(3)} | ${((rep.wireBytes + r.dev.up) / data.length).toFixed(3)} | ${mb(tput)} | ${mb(plain)} | ${(tput / plain).toFixed(3)} | ${pct(r.lat, 50).toFixed(1)} / ${pct(r.lat, 99).toFixed(1)} ms | ${(r.dev.maxRSS / 2 ** 20).toFixed(0)} MiB | ${rep.revisions} | ${rep.frames} / ${rep.resends} (${rep.shiftedResends} shifted, ${rep.timeoutResends} timeouts) | ${r.gwCpu.toFixed(2)} + ${r.dev.cpu.toFixed(2)} s | ${((r.gwCpu + r.dev.cpu) / (2 * 2 * plainSecs)).toFixed(2)} |`);
    const bound = Math.min(c.gateway, c.device);
    ceilings.push(`| ${w} | ${mb(c.gateway)} | ${mb(c.device)} | ${(c.lookupSeconds / c.deviceSeconds).toFixed(2)} | ${mb(bound)} | ${(bound / plain).toFixed(3)} | ${(tput / bound).toFixed(3)} |`);
    const p50 = pct(f.ms, 50);
    const p99 = pct(f.ms, 99);
    firsts.push(`| ${w} | ${f.period} ms | ${f.ms.length} | ${p50.toFixed(0)} ms | ${p99.toFixed(0)} ms | ${(p50 / f.period).toFixed(2)} / ${(p99 / f.period).toFixed(2)} |`);
    const ptput = data.length / p.secs;
    protectedRows.push(`| ${w} | ${p.same ? 'yes' : 'NO'} | ${mb(tput)} | ${mb(ptput)} | ${(ptput / tput).toFixed(3)} | ${r.gwCpu.toFixed(2)} s | ${p.gwCpu.toFixed(2)} s | ${p.report.resends} |`);
  }
  return `## bench:stream

${new Date().toISOString().slice(0, 10)}; ${machine()}; load average (1 min) ${load.map((x) => x.toFixed(2)).join(' at the start, ')} at the end (other work on this shared machine slows every figure, the ceiling's CPU times least); file ${file.split('/').pop()} (${data.length} bytes); embedded aedes on loopback; gateway and device in separate processes; suite blake3; w fixed, the period P negotiated from the device's own measured table build rate (25% CPU share, [LM-CAP-2]).

| w | L | P | chunk C | sha256 equal | wire bytes / plaintext (gateway to device) | hints alone: 8L/w / the bound (w+8)/w of [LM-PARAM-3] | wire / bound | both directions | live matrix throughput | plain QoS 1 (4 KiB chunks, same broker, same run) | ratio | hint latency p50 / p99 | device peak RSS | revisions | frames / re-sends | CPU used (gateway + broker, device) | CPU used / CPU of 2 cores in 2 x the plain transfer's time |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Compute ceiling, same run: the protocol's per-byte work with no network, one thread per side, in
CPU seconds of that thread (ceiling.ts). Gateway: seal, pack, hints, HINTS frames and their MAC,
the shifted re-sends the device's NACKs ask for, KEY frames. Device: decode and verify every
frame, the SDK's receive phase (table lookups, shifted hints), keys, unpack, open, the end
digest over what the consumer took. With each side on its own core and MQTT free, no stream on
this machine can beat the slower side.

| w | gateway side | device side | device: share in table lookups | ceiling | ceiling / plain QoS 1 | stream / ceiling |
|---|---|---|---|---|---|---|
${ceilings.join('\n')}

Time to first line, same run: ${firstRuns} streams of the file's first ${FIRST_JOB / 1024} KiB at each w, one after the other to one
device, each from the operator's stream command (\`gateway.stream(...)\`, gateway and device
online) to the first line the device's consumer gets; before each, a random pause of up to P so
that streams start at every phase of the revision clock. Target (issue 17): under 1.5 P.

| w | P | streams | p50 | p99 | p50 / P, p99 / P |
|---|---|---|---|---|---|
${firsts.join('\n')}

Protected path, same run (SPEC §16): the gateway streams the owner's ciphertext, fetched from the
store (SQLite, outer layer removed per read), and relays chunk keys the keys service wraps per
session (in this process here, as in the demo); the upload (the owner's encryption) happens
before the clock starts. Target (issue 12): the split costs at most 20% of throughput.

| w | sha256 equal | unprotected (the gateway reads the plaintext) | protected path | protected / unprotected | gateway + broker CPU, unprotected | the same, protected (store and keys service included) | re-sends, protected |
|---|---|---|---|---|---|---|---|
${protectedRows.join('\n')}

- wire bytes: every frame the gateway published (hints, keys, control) over the plaintext; both directions adds the device's ACKs, time sync and receipt. Hints alone cost 8L/w (L whole bytes, [LM-PARAM-3]: 8L ≥ w + 8), which is the bound (w+8)/w only where w is a multiple of 8; the rest is framing, AEAD tags, KEY frames and re-sends. The paper reports about 1.67 GB of extra traffic for a 20 MB file.
- throughput: gateway, broker, device (and its table-building workers) share this machine's cores, as the plain transfer's publisher, broker and subscriber do; in a deployment the device has cores of its own.
- CPU: the plain transfer used ${plainCpu.toFixed(2)} CPU seconds (publisher, broker and subscriber in one process). The last column is the stream's CPU seconds over what two cores offer in twice the plain transfer's time: above 1, a throughput of 0.5 of the plain transfer cannot be reached on this machine however the work is scheduled.
- hint latency: from a HINTS frame's first publish to its resolution at the device, re-sends included.
- re-sends: shifted ones go within the revision ([LM-DLV-11]); timeouts are frames unacknowledged for 2 P.
- targets (issue 4): wire/plaintext <= 2.0; throughput >= 0.5 of the plain transfer. Issue 17: device-side ceiling 2x, stream >= 0.7 of the ceiling and >= 0.3 of plain QoS 1 at w = 20, wire within 5% of (w+8)/w, first line under 1.5 P.`;
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
