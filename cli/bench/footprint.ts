/**
 * @module bench/footprint
 * `npm run bench:footprint`: the device's memory, as vendors run it. For each profile it starts
 * `livematrix device` (a process of its own, as on a printer's host) behind `livematrix broker`,
 * reads its resident memory once it is online and idle (the baseline, same run), streams a job
 * to it with `livematrix stream --w W`, and reads the process's peak resident memory (VmHWM of
 * /proc/PID/status: Linux's high-water mark of that process alone) before stopping it. Prints a
 * table against the budgets of issue 16 and writes it to BENCHMARKS.md (section bench:footprint).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { vm } from './proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const CLI = join(root, 'cli', 'dist', 'src', 'cli.js');
const log = (s: string): void => void process.stderr.write(`${s}\n`);

const HELP = `usage: npm run bench:footprint -- [options]
  The device's peak resident memory (VmHWM) while it streams, per profile, as \`livematrix device\`
  runs on a printer's host, against the budgets of issue 16; the baseline is the same process
  online and idle, before its job. Writes BENCHMARKS.md (section bench:footprint).

options:
  --file=PATH   the job (default ../shared/data/gcode's 20 MB slicer file when present, else
                examples/cylinder_annular.gcode)
  --no-write    print the table but leave BENCHMARKS.md alone
  --help        this text`;

interface Profile {
  name: string;
  /** extra options of `livematrix device` */
  args: string[];
  /** the width the gateway is told to use */
  w: number;
  /** the budget of issue 16, MiB */
  budget: number;
  /** NODE_OPTIONS of the device process, as device-sdk/README.md recommends for small hosts */
  nodeOptions?: string;
  /** a job of its own (a small file for a device that consumes at a printer's pace) */
  file?: string;
}

/** Node's own flags for a small host: no V8 compiler thread pool, a 1 MiB young generation. */
export const SMALL_HOST_NODE_OPTIONS = '--v8-pool-size=0 --max-semi-space-size=1';

const PROFILES: Profile[] = [
  { name: 'default, tables', args: [], w: 20, budget: 120 },
  { name: 'default, tables', args: [], w: 24, budget: 250 },
  { name: 'default, small-host Node flags', args: [], w: 20, budget: 120, nodeOptions: SMALL_HOST_NODE_OPTIONS },
  { name: 'default, small-host Node flags', args: [], w: 24, budget: 250, nodeOptions: SMALL_HOST_NODE_OPTIONS },
  { name: '--lite (main thread, w <= 16)', args: ['--lite'], w: 16, budget: 64 },
  { name: '--lite, small-host Node flags', args: ['--lite'], w: 16, budget: 64, nodeOptions: SMALL_HOST_NODE_OPTIONS },
  // a printer's pace: 20 kB/s, the 205 KB calibration cube (about 10 s)
  { name: '--lite, small-host Node flags, at a printer\'s pace', args: ['--lite', '--rate', '20000'], w: 16, budget: 64, nodeOptions: SMALL_HOST_NODE_OPTIONS, file: join(root, 'examples', 'calib_cube.gcode') },
];

/** A VmXXX line of /proc/PID/status, in MiB; NaN once the process is gone. */
const vmMiB = (pid: number, key: 'VmHWM' | 'VmRSS'): number => vm(pid, key) / 2 ** 20;

/** `livematrix ARGS` to the end; throws with its stderr unless it exits 0. */
function run(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`livematrix ${args[0]} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** Starts `livematrix ARGS` and resolves once a line of its stdout or stderr matches `ready`. */
function start(args: string[], ready: RegExp, nodeOptions?: string): Promise<{ child: ChildProcess; match: RegExpExecArray; output: () => string }> {
  const env = nodeOptions ? { ...process.env, NODE_OPTIONS: nodeOptions } : process.env;
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  return new Promise((res, rej) => {
    const see = (d: Buffer): void => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) res({ child, match: m, output: () => out });
    };
    child.stdout.on('data', see);
    child.stderr.on('data', see);
    child.once('exit', (c) => rej(new Error(`livematrix ${args[0]} exited (${c}) before it was ready: ${out.slice(-2000)}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

interface Row {
  p: Profile;
  idle: number;
  peak: number;
  mbps: number;
  equal: boolean;
  /** the job's size, bytes */
  size: number;
  params: string;
}

async function measure(p: Profile, dir: string, bigFile: string, url: string, keys: { op: string; gw: string; dev: string }): Promise<Row> {
  const file = p.file ?? bigFile;
  const tx = join(dir, `tx-${PROFILES.indexOf(p)}.json`);
  run(['sign', '--operator', join(dir, 'op.json'), '--job', file, '--device', 'printer-1', '--device-key', keys.dev, '--gateway-key', keys.gw,
    '--rate', '1000000000', '--burst', '1000000000', '--out', tx]);
  const out = join(dir, `out-${PROFILES.indexOf(p)}.gcode`);
  const dev = await start(['device', '--identity', join(dir, 'dev.json'), '--operator-key', keys.op, '--out', out, '--url', url,
    '--state', join(dir, `state-${PROFILES.indexOf(p)}`), ...p.args], /device printer-1 online/, p.nodeOptions);
  try {
    const idle = vmMiB(dev.child.pid as number, 'VmRSS');
    const t0 = Date.now();
    const report = run(['stream', file, '--device', 'printer-1', '--tx', tx, '--identity', join(dir, 'gw.json'), '--operator-key', keys.op, '--url', url, '--w', String(p.w)]);
    const secs = (Date.now() - t0) / 1000;
    // the device renames FILE.part to FILE once its digest verified, just after the receipt
    for (let i = 0; i < 200 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 25));
    const peak = vmMiB(dev.child.pid as number, 'VmHWM');
    const r = JSON.parse(report.trim().split('\n').pop() ?? '{}') as { params?: { w: number; L: number; period: number; chunk: number } };
    const equal = existsSync(out) && createHash('sha256').update(readFileSync(out)).digest('hex') === createHash('sha256').update(readFileSync(file)).digest('hex');
    const q = r.params;
    return { p, idle, peak, size: statSync(file).size, mbps: statSync(file).size / secs / 1e6, equal, params: q ? `w ${q.w}, L ${q.L}, P ${q.period} ms, C ${q.chunk}` : 'n/a' };
  } finally {
    await stop(dev.child);
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { file: { type: 'string' }, 'no-write': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: build first (npx tsc -b)`);
  const shared = join(root, '..', 'shared', 'data', 'gcode', 'twisted_gear_box.gcode');
  const file = resolve(values.file ?? (existsSync(shared) ? shared : join(root, 'examples', 'cylinder_annular.gcode')));
  const dir = mkdtempSync(join(tmpdir(), 'lm-bench-footprint-'));
  const broker = await start(['broker', '--port', '0'], /mqtt (\d+)/);
  try {
    const key = (id: string): string => {
      const o = run(['keygen', '--id', id, '--out', join(dir, `${id === 'printer-1' ? 'dev' : id}.json`)]);
      const m = /[0-9a-f]{64}/.exec(o);
      if (!m) throw new Error(`keygen printed no public key: ${o}`);
      return m[0];
    };
    const keys = { op: key('op'), gw: key('gw'), dev: key('printer-1') };
    const url = `mqtt://127.0.0.1:${broker.match[1] as string}`;
    const rows: Row[] = [];
    for (const p of PROFILES) {
      log(`footprint: ${p.name}, w = ${p.w} ...`);
      const r = await measure(p, dir, file, url, keys);
      log(`  idle ${r.idle.toFixed(0)} MiB, peak ${r.peak.toFixed(0)} MiB (budget ${p.budget}), ${r.mbps.toFixed(2)} MB/s, ${r.equal ? 'byte-identical' : 'OUTPUT DIFFERS'}`);
      rows.push(r);
    }
    const { machine, writeSection } = await import('@livematrix/spec/bench');
    const body = `## bench:footprint

${new Date().toISOString().slice(0, 10)}; ${machine()}; file ${basename(file)} (${statSync(file).size} bytes) unless the row names a smaller job; \`livematrix device\` and \`livematrix stream --w W\` as processes behind \`livematrix broker\` on loopback; the device's memory from /proc/PID/status.

| profile | device options | negotiated | idle RSS (online, before the job) MiB | peak RSS (VmHWM) MiB | budget (issue 16) MiB | peak / budget | peak / idle | job | throughput MB/s | byte-identical |
|---|---|---|---|---|---|---|---|---|---|---|
${rows.map((r) => `| ${r.p.name} | ${[r.p.nodeOptions ? `NODE_OPTIONS="${r.p.nodeOptions}"` : '', ...r.p.args].join(' ').trim() || '(none)'} | ${r.params} | ${r.idle.toFixed(0)} | ${r.peak.toFixed(0)} | ${r.p.budget} | ${(r.peak / r.p.budget).toFixed(2)} | ${(r.peak / r.idle).toFixed(2)} | ${(r.size / 1e6).toFixed(2)} MB | ${r.mbps.toFixed(2)} | ${r.equal ? 'yes' : 'NO'} |`).join('\n')}

- Peak RSS is VmHWM, the kernel's high-water mark of the device process alone (threads included; \`process.resourceUsage().maxRSS\` is not used: Linux carries it over from the parent across exec). Idle is VmRSS once the device is online: Node, the SDK, the hashing workers and the capability measurement ([LM-CAP-1]).
- Throughput: file size over the \`livematrix stream\` process's wall time (its start, negotiation and time sync included), with broker, gateway and device sharing this machine's cores.
- \`--lite\`: no hashing worker threads, w at most 16, 16 MiB for tables, a 1 MiB receive window (\`livematrix device --help\`).`;
    console.log(body);
    if (values['no-write'] !== true) log(`wrote ${writeSection(root, 'footprint', body)}`);
    const bad = rows.filter((r) => !r.equal);
    if (bad.length) log(`bench:footprint: FAILED: output differs for ${bad.map((r) => `${r.p.name} w=${r.p.w}`).join(', ')}`);
    return bad.length ? 1 : 0;
  } finally {
    await stop(broker.child);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then((c) => process.exit(c), (e: unknown) => {
  log(`bench:footprint: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exit(1);
});
