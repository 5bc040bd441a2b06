/**
 * @module bench/fleet
 * `npm run bench:fleet`: a load benchmark of the fleet service (`livematrix serve`, SPEC §17).
 * For each N it starts, fresh and each in a process of its own, a broker (`livematrix broker`),
 * the service exactly as operators start it (`livematrix serve`), and device farms
 * (bench/fleet-devices.ts) running N devices of the SDK that consume at a printer's pace. Once
 * every device is online it submits one job per device through the HTTP API, follows
 * GET /api/events until every job is final, and reports the service's CPU seconds and memory
 * (from /proc), the broker's CPU, wall time, time to first byte per job, and whether every device
 * consumed exactly the file. Prints the table and writes it to BENCHMARKS.md.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { toHex } from '@livematrix/spec';
import { createIdentityFile } from '@livematrix/spec/keyfile';
import { Api, Events } from './fleet-api.js';
import { cpuSeconds, cpuTimes, machineJiffies, vm } from './proc.js';
import type { FarmDevice, FarmStart, FromFarm, ToFarm } from './fleet-devices.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const CLI = join(root, 'cli', 'dist', 'src', 'cli.js');
const FARM = join(here, 'fleet-devices.js');
const FLEET = 'default';
/** the device of the warm-up job, not one of the N */
const WARMUP = 'dev-warmup';
const log = (s: string): void => void process.stderr.write(`${s}\n`);

const HELP = `usage: npm run bench:fleet -- [options]
  Load benchmark of the fleet service (livematrix serve, SPEC §17). For each N: a fresh broker,
  a fresh service and N simulated devices (in --procs device-farm processes), one job per device
  submitted through the HTTP API; measures the service's CPU and memory from /proc from the first
  submit to the last SUCCEEDED, checks every device consumed exactly the file, prints a table and
  writes it to BENCHMARKS.md (section bench:fleet).

options:
  --n=LIST        device counts, one fresh run each (default 10,50,100); CPU per device is
                  compared with the first N of the list
  --w=W           hint width the service streams at (serve --w; default 12)
  --rate=BYTES    bytes per second each device consumes, a printer's pace (default 20000)
  --file=PATH     the job file (default examples/calib_cube.gcode, 205 KB: ~10 s per device)
  --repeat=K      each job is K copies of the file one after the other (default 3: ~31 s per
                  device), so that every device streams at once for long enough to measure the
                  sender's steady cost per device-second apart from its per-job start
  --procs=K       device-farm processes (default 2); each runs N/K devices on one shared
                  hashing engine with one worker
  --window=BYTES  each device's receive window (default: the SDK's, 4 MiB)
  --timeout=SECS  give up on an N after this long from the first submit (default 300)
  --idle=SECS     before submitting, measure the service's and broker's CPU this long with
                  every device online and no job (default 3; 0: skip)
  --no-warmup     measure cold: no warm-up job (by default one more device first gets a 16 KiB
                  job, so that code paths are compiled before the measured interval)
  --profile=DIR   write a V8 CPU profile of each service process to DIR (node --cpu-prof)
  --keep          keep the temporary directories (keys, databases, logs) and print where
  --no-write      print the table but leave BENCHMARKS.md alone
  --help          this text

Exits 1 when a job did not succeed or a device consumed anything but the file.`;

// ---- options ----

interface Options {
  ns: number[];
  w: number;
  rate: number;
  file: string;
  /** copies of the file in each job */
  repeat: number;
  procs: number;
  window: number | undefined;
  timeoutMs: number;
  /** ms to measure the idle CPU with every device online, before the jobs */
  idleMs: number;
  /** one small job to one more device before the measured interval */
  warmup: boolean;
  keep: boolean;
  write: boolean;
  /** a directory for a V8 CPU profile of each service process, if any */
  profile: string | undefined;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      n: { type: 'string' }, w: { type: 'string' }, rate: { type: 'string' }, file: { type: 'string' }, repeat: { type: 'string' }, procs: { type: 'string' }, window: { type: 'string' },
      timeout: { type: 'string' }, idle: { type: 'string' }, profile: { type: 'string' }, 'no-warmup': { type: 'boolean' }, keep: { type: 'boolean' }, 'no-write': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, dflt: number, min: number, max: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}, got "${v}"`);
    return n;
  };
  const ns = (values.n ?? '10,50,100').split(',').map((x) => int('n', x.trim(), 0, 1, 10_000));
  return {
    ns, w: int('w', values.w, 12, 8, 24), rate: int('rate', values.rate, 20_000, 1, 1e12), file: resolve(values.file ?? join(root, 'examples', 'calib_cube.gcode')),
    repeat: int('repeat', values.repeat, 3, 1, 1000),
    procs: int('procs', values.procs, 2, 1, 64), window: values.window === undefined ? undefined : int('window', values.window, 0, 1024, 2 ** 30),
    timeoutMs: int('timeout', values.timeout, 300, 1, 86_400) * 1000, idleMs: int('idle', values.idle, 3, 0, 600) * 1000, warmup: values['no-warmup'] !== true, keep: values.keep === true, write: values['no-write'] !== true,
    profile: values.profile === undefined ? undefined : resolve(values.profile),
  };
}

// ---- processes ----

/** Every child this benchmark started and has not seen exit, for the cleanup. */
const children = new Set<ChildProcess>();
/** Temporary directories to remove at the end, and whether to keep one anyway (its run failed: its logs are worth a look). */
const tempDirs = new Map<string, boolean>();

interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  /** its stdout and stderr, as a file */
  log: string;
}

function track(name: string, child: ChildProcess, logFile: string): Proc {
  if (child.pid === undefined) throw new Error(`${name}: could not start`);
  children.add(child);
  const exited = new Promise<number | null>((r) => child.once('exit', (code, sig) => {
    children.delete(child);
    r(code ?? (sig ? -1 : null));
  }));
  return { name, child, pid: child.pid, exited, log: logFile };
}

/** `node cli.js ARGS`, stdout and stderr into `logFile`; resolves with the match of `ready` on a stdout line. */
async function startCli(name: string, args: string[], logFile: string, ready: RegExp, nodeArgs: string[] = [], timeoutMs = 60_000): Promise<{ proc: Proc; match: RegExpExecArray }> {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { stdio: ['ignore', 'pipe', fd] });
  closeSync(fd);
  const proc = track(name, child, logFile);
  const lines = createInterface({ input: child.stdout! });
  const out = openSync(logFile + '.out', 'a');
  let match: RegExpExecArray | undefined;
  const found = new Promise<RegExpExecArray>((res, rej) => {
    lines.on('line', (l) => {
      writeSync(out, l + '\n');
      const m = match ? undefined : ready.exec(l);
      if (m) {
        match = m;
        res(m);
      }
    });
    lines.on('close', () => closeSync(out));
    void proc.exited.then((c) => rej(new Error(`${name} exited (${c}) before it was ready; see ${logFile}`)));
    setTimeout(() => rej(new Error(`${name}: not ready after ${timeoutMs / 1000} s; see ${logFile}`)), timeoutMs).unref();
  });
  return { proc, match: await found };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
async function stopProc(p: Proc, graceMs = 5000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(t);
}

let cleaning: Promise<void> | undefined;
/** Ends every child still running and removes the temporary directories (unless --keep). */
function cleanup(keep: boolean): Promise<void> {
  cleaning ??= (async () => {
    const left = [...children];
    for (const c of left) c.kill('SIGTERM');
    const t = setTimeout(() => {
      for (const c of left) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, 3000);
    await Promise.all(left.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise<void>((r) => c.once('exit', () => r())))));
    clearTimeout(t);
    for (const [d, failed] of tempDirs) {
      if (keep || failed) log(`kept ${d}`);
      else rmSync(d, { recursive: true, force: true });
    }
    tempDirs.clear();
  })();
  return cleaning;
}

// ---- one run ----

const FINAL = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'CANCELED']);

interface RunResult {
  n: number;
  /** the steady window (every stream running), if it lasted a second or more: its length and the service's and broker's CPU seconds in it */
  steady: { secs: number; cpu: number; broker: number } | undefined;
  /** per device: its consumer's time at its rate over the time it took (1: kept pace) */
  pace: number[];
  wall: number;
  serviceCpu: number;
  servicePeakRss: number;
  serviceRssEnd: number;
  brokerCpu: number;
  devicesCpu: number;
  /** the machine's busy share over the run (all cores, every process on it) */
  machineBusy: number;
  ok: boolean;
  identical: boolean;
  succeeded: number;
  retries: number;
  firstByte: number[];
  /** from a job's POST to its 201, and to the service starting its run (startedAt), s */
  answered: number[];
  started: number[];
  /** the service's and the broker's CPU, as a share of one core, with every device online and no job */
  serviceIdle: number;
  brokerIdle: number;
  problems: string[];
  /** lines of the service's stderr other than its routine job log */
  serviceNotes: string[];
  /** what the devices logged (refused frames and the like): notes, not failures */
  deviceNotes: string[];
}

function pct(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

/** The service's routine lines: a job queued, streaming; its stop. Everything else is worth a look. */
const ROUTINE = /^serve: job \S+ (queued for|streaming to) |^SIG(TERM|INT): stopping; running jobs stay/;

async function runOnce(n: number, o: Options, data: Uint8Array, sha256: string): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), `lm-bench-fleet-${n}-`));
  tempDirs.set(dir, true); // until the run ends well
  const problems: string[] = [];
  // identities, written here: N keygen processes would take longer than the run
  const ids = Array.from({ length: n }, (_, i) => `dev-${String(i + 1).padStart(String(n).length, '0')}`);
  // one more device, for the warm-up job; it stays idle while the N jobs run
  const all = o.warmup ? [...ids, WARMUP] : ids;
  const operator = createIdentityFile(join(dir, 'operator.json'), 'operator');
  const gw = createIdentityFile(join(dir, 'gw.json'), 'gw-bench');
  const keysDir = join(dir, 'keys');
  mkdirSync(keysDir);
  const devices: FarmDevice[] = [];
  const clients: object[] = [];
  for (const id of all) {
    const identity = join(keysDir, `${id}.json`);
    const key = createIdentityFile(identity, id).publicKey;
    devices.push({ id, identity, state: join(dir, 'state', id) });
    clients.push({ id, role: 'device', fleet: FLEET, publicKey: toHex(key) });
  }
  // the gateway serves exactly these devices ([LM-BRK-9])
  clients.push({ id: gw.id, role: 'gateway', fleet: FLEET, publicKey: toHex(gw.publicKey), devices: all });
  const registry = join(dir, 'registry.json');
  writeFileSync(registry, JSON.stringify({ clients }, null, 2));
  const files = join(dir, 'files');
  mkdirSync(files);
  const fileName = o.repeat > 1 ? `${basename(o.file, '.gcode')}-x${o.repeat}.gcode` : basename(o.file);
  writeFileSync(join(files, fileName), data);
  if (o.warmup) writeFileSync(join(files, 'warmup.gcode'), data.subarray(0, Math.min(16_384, data.length)));

  const { proc: broker, match: bm } = await startCli('broker', ['broker', '--port', '0', '--registry', registry], join(dir, 'broker.log'), /mqtt (\d+)/);
  const url = `mqtt://127.0.0.1:${bm[1] as string}`;
  const { proc: serve, match } = await startCli('serve', [
    'serve', '--identity', join(dir, 'gw.json'), '--operator', join(dir, 'operator.json'), '--registry', registry, '--url', url, '--files', files,
    '--http', '127.0.0.1:0', '--db', join(dir, 'serve.db'), '--w', String(o.w),
  ], join(dir, 'serve.log'), /^dashboard: (http:\/\/[^#\s]+)#token=(\S+)$/, o.profile ? ['--cpu-prof', `--cpu-prof-dir=${o.profile}`, `--cpu-prof-name=serve-N${n}.cpuprofile`] : []);
  const api = new Api(match[1] as string, match[2] as string);
  const events = new Events(api);
  await events.start();

  // the device farms: N/K devices each, started together
  const k = Math.min(o.procs, all.length);
  const firsts = new Map<string, number>();
  const dones = new Map<string, { bytes: number; sha256: string; time: number }>();
  const failures = new Map<string, string>();
  const farms: Proc[] = [];
  const ready: Promise<number>[] = [];
  // the steady window: from the moment every one of the N devices consumes to the first one done,
  // every stream runs at once and the service pays only its per-byte and per-second costs
  const measured = new Set(ids);
  const steady: { start?: { t: number; cpu: number; broker: number }; end?: { t: number; cpu: number; broker: number } } = {};
  const mark = (): { t: number; cpu: number; broker: number } => ({ t: Date.now(), cpu: cpuSeconds(serve.pid), broker: cpuSeconds(broker.pid) });
  for (let f = 0; f < k; f++) {
    const mine = devices.filter((_, i) => i % k === f);
    const logFile = join(dir, `farm-${f}.log`);
    const fd = openSync(logFile, 'a');
    const child = fork(FARM, [], { stdio: ['ignore', fd, fd, 'ipc'] });
    closeSync(fd);
    const p = track(`farm ${f}`, child, logFile);
    farms.push(p);
    ready.push(new Promise<number>((res, rej) => {
      child.on('message', (m: FromFarm) => {
        if (m.type === 'ready') res(m.devices);
        else if (m.type === 'first') {
          firsts.set(m.id, m.time);
          if (!steady.start && measured.has(m.id) && ids.every((id) => firsts.has(id))) steady.start = mark();
        } else if (m.type === 'done') {
          dones.set(m.id, { bytes: m.bytes, sha256: m.sha256, time: m.time });
          if (steady.start && !steady.end && measured.has(m.id)) steady.end = mark();
        }
        else if (m.type === 'failed') failures.set(m.id, m.error);
        events.wake();
      });
      void p.exited.then((c) => rej(new Error(`device farm ${f} exited (${c}); see ${logFile}`)));
    }));
    const start: FarmStart = { type: 'start', url, fleet: FLEET, operator: toHex(operator.publicKey), devices: mine, rate: o.rate, window: o.window, wmax: Math.max(16, o.w) };
    child.send(start satisfies ToFarm);
  }
  const up = (await Promise.all(ready)).reduce((a, b) => a + b, 0);
  if (up !== all.length) throw new Error(`${all.length - up} device(s) did not start: ${[...failures.values()].slice(0, 3).join('; ')}`);
  const online = (): number => all.filter((id) => events.devices.get(id)?.online === true).length;
  await events.until(() => online() === all.length, Date.now() + 120_000, `all ${all.length} devices online (${online()} are)`);
  if (o.warmup) {
    // a fresh process compiles its code paths on first use (JIT, fastify's serializers, SQLite
    // statements): one small job first, so that N=1 and N=100 are compared warm
    const w = await api.submit(WARMUP, 'warmup.gcode');
    await events.until(() => FINAL.has(events.jobs.get(w.id)?.state ?? ''), Date.now() + 120_000, 'the warm-up job');
    if (events.jobs.get(w.id)?.state !== 'SUCCEEDED') throw new Error(`the warm-up job ended ${events.jobs.get(w.id)?.state}: ${events.jobs.get(w.id)?.reason}`);
  }
  // what N devices online cost with no job: HELLOs answered, housekeeping every second, the event stream
  const i0 = { s: cpuSeconds(serve.pid), b: cpuSeconds(broker.pid), t: Date.now() };
  await new Promise((r) => setTimeout(r, o.idleMs));
  const idleSecs = Math.max(0.001, (Date.now() - i0.t) / 1000);
  const serviceIdle = (cpuSeconds(serve.pid) - i0.s) / idleSecs;
  const brokerIdle = (cpuSeconds(broker.pid) - i0.b) / idleSecs;
  log(`N=${n}: ${all.length} devices online${o.warmup ? ' (warm-up done)' : ''} in ${k} farm process(es); idle: service ${(serviceIdle * 100).toFixed(1)}% of a core, broker ${(brokerIdle * 100).toFixed(1)}%; submitting ${n} jobs`);

  // the measured interval: from the first submit to the last job final
  const farmCpu = (): number => farms.reduce((a, p) => a + (p.child.exitCode === null ? cpuSeconds(p.pid) : 0), 0);
  const s0 = cpuSeconds(serve.pid);
  const sys0 = cpuTimes(serve.pid).system; // the service is up: it answered the warm-up and the event stream
  const b0 = cpuSeconds(broker.pid);
  const d0 = farmCpu();
  const m0 = machineJiffies();
  const t0 = Date.now();
  const submitted = new Map<string, number>();
  const answered: number[] = [];
  const jobDevice = new Map<string, string>();
  const deadline = t0 + o.timeoutMs;
  const status = (): { final: number; succeeded: number; running: number } => {
    let final = 0;
    let succeeded = 0;
    let running = 0;
    for (const j of jobDevice.keys()) {
      const v = events.jobs.get(j);
      if (!v) continue;
      if (FINAL.has(v.state)) final++;
      if (v.state === 'SUCCEEDED') succeeded++;
      if (v.state === 'IN_PROGRESS') running++;
    }
    return { final, succeeded, running };
  };
  const progress = setInterval(() => {
    const s = status();
    const consuming = ids.filter((id) => firsts.has(id)).length;
    log(`N=${n}: ${s.succeeded}/${n} succeeded, ${s.running} in progress, ${consuming} devices consuming or done (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }, 1000);
  await Promise.all(ids.map(async (id) => {
    submitted.set(id, Date.now());
    try {
      const j = await api.submit(id, fileName);
      answered.push((Date.now() - (submitted.get(id) as number)) / 1000);
      jobDevice.set(j.id, id);
    } catch (e) {
      problems.push(e instanceof Error ? e.message : String(e));
    }
  }));
  let timedOut = false;
  try {
    await events.until(() => jobDevice.size > 0 && status().final === jobDevice.size, deadline, 'every job to end');
  } catch (e) {
    timedOut = true;
    problems.push(e instanceof Error ? e.message : String(e));
  }
  clearInterval(progress);
  const t1 = Date.now();
  const s1 = cpuSeconds(serve.pid);
  const sys1 = serve.child.exitCode === null ? cpuTimes(serve.pid).system : NaN;
  const b1 = cpuSeconds(broker.pid);
  const d1 = farmCpu();
  const m1 = machineJiffies();
  const peak = vm(serve.pid, 'VmHWM');
  const rssEnd = vm(serve.pid, 'VmRSS');
  const s = status();
  log(`N=${n}: ${s.succeeded}/${n} succeeded in ${((t1 - t0) / 1000).toFixed(1)} s; service CPU ${(s1 - s0).toFixed(2)} s, of which system ${(sys1 - sys0).toFixed(2)} s`);
  // each device's own report of what it consumed (it may come just after the job's receipt)
  if (!timedOut) {
    await events.until(() => ids.every((id) => dones.has(id) || failures.has(id)), Date.now() + 30_000, 'every device\'s digest').catch((e: unknown) => problems.push(e instanceof Error ? e.message : String(e)));
  }
  let retries = 0;
  for (const [job, id] of jobDevice) {
    const v = events.jobs.get(job);
    if (!v) problems.push(`${id}: job ${job} never seen in the events`);
    else {
      retries += Math.max(0, v.attempts - 1);
      if (v.state !== 'SUCCEEDED') problems.push(`${id}: job ${job} ${v.state}: ${v.reason}`);
    }
  }
  let identical = true;
  for (const id of ids) {
    const d = dones.get(id);
    if (!d || d.sha256 !== sha256 || d.bytes !== data.length) {
      identical = false;
      problems.push(`${id}: ${d ? `consumed ${d.bytes} bytes, sha256 ${d.sha256.slice(0, 16)}...` : failures.get(id) ?? 'no digest reported'}`);
    }
  }
  const started: number[] = [];
  for (const [job, id] of jobDevice) {
    const at = events.jobs.get(job)?.startedAt;
    if (typeof at === 'number') started.push((at - (submitted.get(id) as number)) / 1000);
  }
  const firstByte = ids.filter((id) => firsts.has(id) && submitted.has(id)).map((id) => ((firsts.get(id) as number) - (submitted.get(id) as number)) / 1000);
  // how well each stream kept pace: the time its consumer needs at its rate over the time it took
  const pace = ids.filter((id) => firsts.has(id) && dones.has(id)).map((id) => data.length / o.rate / Math.max(0.001, ((dones.get(id)?.time as number) - (firsts.get(id) as number)) / 1000));
  const st = steady.start && steady.end && steady.end.t - steady.start.t >= 1000 ? { secs: (steady.end.t - steady.start.t) / 1000, cpu: steady.end.cpu - steady.start.cpu, broker: steady.end.broker - steady.start.broker } : undefined;

  events.close();
  await Promise.all(farms.map(async (p) => {
    if (p.child.connected) p.child.send({ type: 'stop' } satisfies ToFarm);
    const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
    await p.exited;
    clearTimeout(t);
  }));
  await stopProc(serve);
  await stopProc(broker);
  const serviceNotes = readFileSync(serve.log, 'utf8').split('\n').filter((l) => l && !ROUTINE.test(l));
  const deviceNotes = farms.flatMap((f) => readFileSync(f.log, 'utf8').split('\n').filter((l) => l));
  const ok = problems.length === 0 && s.succeeded === n && identical;
  if (ok) tempDirs.set(dir, false);
  else log(`N=${n}: logs in ${dir}`);
  return {
    n, steady: st, pace, wall: (t1 - t0) / 1000, serviceCpu: s1 - s0, servicePeakRss: peak, serviceRssEnd: rssEnd, brokerCpu: b1 - b0, devicesCpu: d1 - d0,
    machineBusy: (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total), ok, identical, succeeded: s.succeeded, retries, firstByte, answered, started, serviceIdle, brokerIdle, problems, serviceNotes, deviceNotes,
  };
}

// ---- main ----

async function main(): Promise<number> {
  const o = options(process.argv.slice(2));
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: build first (npx tsc -b)`);
  if (!existsSync(o.file)) throw new Error(`no such file: ${o.file}`);
  const one = new Uint8Array(readFileSync(o.file));
  const data = new Uint8Array(one.length * o.repeat);
  for (let i = 0; i < o.repeat; i++) data.set(one, i * one.length);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const load = loadavg().map((x) => x.toFixed(2)).join(', ');
  log(`bench:fleet: ${basename(o.file)}${o.repeat > 1 ? ` x ${o.repeat}` : ''} (${data.length} bytes) to each of N = ${o.ns.join(', ')} devices at ${o.rate} B/s, w = ${o.w}, ${o.procs} device farm process(es); load average ${load}`);
  const results: RunResult[] = [];
  for (const n of o.ns) {
    const r = await runOnce(n, o, data, sha256);
    results.push(r);
    for (const p of r.problems.slice(0, 10)) log(`  N=${n}: ${p}`);
    if (r.problems.length > 10) log(`  N=${n}: ... ${r.problems.length - 10} more`);
    if (r.serviceNotes.length) {
      log(`  N=${n}: the service's stderr has ${r.serviceNotes.length} line(s) beyond its routine job log, e.g.:`);
      for (const l of r.serviceNotes.slice(0, 8)) log(`    ${l.slice(0, 240)}`);
    }
    if (r.deviceNotes.length) {
      log(`  N=${n}: the devices logged ${r.deviceNotes.length} line(s), e.g.:`);
      for (const l of r.deviceNotes.slice(0, 8)) log(`    ${l.slice(0, 240)}`);
    }
  }
  const base = results[0];
  const perDevice = (r: RunResult): number => r.serviceCpu / r.n;
  const s1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
  const p5099 = (xs: readonly number[]): string => `${s1(pct(xs, 50))} / ${s1(pct(xs, 99))}`;
  const mib = (x: number): string => (x / 2 ** 20).toFixed(0);
  const rows = results.map((r) => `| ${r.n} | ${s1(r.wall)} | ${r.serviceCpu.toFixed(2)} | ${(perDevice(r) * 1000).toFixed(1)} | ${base ? (perDevice(r) / perDevice(base)).toFixed(2) : 'n/a'} | ${(r.serviceCpu / r.wall).toFixed(2)} | ${mib(r.servicePeakRss)} / ${mib(r.serviceRssEnd)} | ${r.brokerCpu.toFixed(2)} | ${r.identical ? 'yes' : 'NO'} | ${p5099(r.firstByte)} |`);
  const context = results.map((r) => `| ${r.n} | ${r.succeeded}/${r.n}${r.retries ? ` (${r.retries} retries)` : ''} | ${(r.serviceIdle * 100).toFixed(1)}% / ${(r.brokerIdle * 100).toFixed(1)}% | ${r.devicesCpu.toFixed(1)} | ${(r.machineBusy * 100).toFixed(0)}% | ${p5099(r.answered)} | ${p5099(r.started)} | ${p5099(r.firstByte)} | ${r.deviceNotes.length} |`);
  const { machine, writeSection } = await import('@livematrix/spec/bench');
  const ideal = data.length / o.rate;
  const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
  const steadyRows = results.map((r) => {
    const st = r.steady;
    if (!st) return `| ${r.n} | under 1 s: the last device started after the first ended | n/a | n/a | n/a | n/a | ${f2(Math.min(...r.pace))} / ${f2(pct(r.pace, 50))} |`;
    const perDevSec = (st.cpu / st.secs / r.n) * 1000; // service CPU ms per device-second
    const startCost = ((r.serviceCpu - (perDevSec / 1000) * r.n * ideal) / r.n) * 1000;
    return `| ${r.n} | ${st.secs.toFixed(1)} | ${f2(perDevSec)} | ${f2((st.broker / st.secs / r.n) * 1000)} | ${Math.floor(1000 / perDevSec)} | ${startCost.toFixed(0)} | ${f2(Math.min(...r.pace))} / ${f2(pct(r.pace, 50))} |`;
  });
  const body = `## bench:fleet

${new Date().toISOString().slice(0, 10)}; ${machine()}; load average at the start ${load}; file ${basename(o.file)}${o.repeat > 1 ? `, ${o.repeat} times over` : ''} (${data.length} bytes) to each of N devices, one job each, all N submitted at once through POST /api/jobs; \`livematrix serve --w ${o.w}\` (SQLite), \`livematrix broker\` and ${o.procs} device-farm processes (N/${o.procs} SDK devices each on one shared hashing engine with 1 worker, each consuming at ${o.rate} B/s with a receive window of ${o.window !== undefined ? `${o.window} bytes` : '4 MiB (the SDK default)'}), each a process of its own on this machine; fresh processes and state for each N.

| N | wall s | service CPU s | service CPU ms / device | per device vs N=${base?.n ?? '?'} | service CPU / one core | service RSS MiB (peak / end) | broker CPU s | all byte-identical | first byte p50 / p99 s |
|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Same runs, what bounds them:

| N | jobs succeeded | idle CPU, service / broker (every device online, no job; share of one core) | device farms CPU s | machine busy | POST answered p50 / p99 s | run started p50 / p99 s | first byte p50 / p99 s | device log lines |
|---|---|---|---|---|---|---|---|---|
${context.join('\n')}

Steady state, same runs: the window from the moment every one of the N devices consumes to the first job done, when every stream runs at once. Target (issue 17): one sender core sustains at least 500 devices.

| N | window s | service CPU ms per device-second | broker CPU ms per device-second | devices one sender core sustains (1000 / the ms per device-second) | service CPU per job beyond the steady cost, ms (start, end, ledger) | pace, slowest / p50 (1.00: the device consumed at its own rate) |
|---|---|---|---|---|---|---|
${steadyRows.join('\n')}

- Interval: from the first submit to the last job seen final on GET /api/events (the service coalesces events to one per 250 ms). CPU is user + system of every thread of the process, from /proc/PID/stat; RSS is VmHWM (peak, service start included) and VmRSS at the end of the interval.
- One device alone needs ${ideal.toFixed(1)} s for the file at ${o.rate} B/s: wall time above that is the jobs' start spread over time (submission, sessions starting) and CPU contention. Machine busy is the share of all ${cpus().length} cores in use over the interval, by every process on the machine (device farms, broker, service, and anything else running).
- Time from a job's POST: to its 201 (the service pins the file and signs the transaction), to the service starting its run (lease, IN_PROGRESS), and to its device's consumer taking the first bytes (OFFER, ACCEPT, first revision, first chunk and its key).
- Per device vs N=${base?.n ?? '?'}: the service's CPU seconds per device over the same at the first N of this run. ${o.warmup ? 'Before the interval, one more device got a 16 KiB job, so that the fresh service had compiled its code paths (JIT, serializers, SQLite statements) and N are compared warm (`--no-warmup` measures cold: then the smallest N also pays those first uses).' : 'Measured cold (`--no-warmup`): the smallest N also pays the fresh process\'s first uses of its code paths (JIT, serializers, SQLite statements).'}
- Steady state: the service's CPU seconds in the window over its length and N gives its cost per device-second of streaming; one core (1000 ms per second) divided by it is the number of devices a sender core keeps streaming at this rate, as long as the broker and the network keep up. The cost beyond it per job is the interval's CPU less the steady cost of N streams of ${ideal.toFixed(1)} s, per job: the transaction, OFFER, key agreement, ACCEPT, receipt and ledger, and the job's database writes. Pace: a device's time at ${o.rate} B/s for the file over its time from first byte to last; below 1, its stream fell behind its consumer.
- Device log lines: what the devices refused (typically a re-sent END or KEY, or a TIME_RESP, arriving just after their session ended: ignored, [LM-FRAME-8]).`;
  console.log(body);
  if (o.write) log(`wrote ${writeSection(root, 'fleet', body)}`);
  await cleanup(o.keep);
  const ok = results.every((r) => r.ok);
  if (!ok) log('bench:fleet: FAILED: a job did not succeed or a device\'s output differs (see above)');
  return ok ? 0 : 1;
}

const keepOnSignal = process.argv.includes('--keep');
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping every process of the benchmark`);
    for (const d of tempDirs.keys()) tempDirs.set(d, false); // interrupted, not failed: nothing to look at
    void cleanup(keepOnSignal).finally(() => process.exit(130));
  });
}

main().then((code) => process.exit(code), (e: unknown) => {
  log(`bench:fleet: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  void cleanup(keepOnSignal).finally(() => process.exit(1));
});
