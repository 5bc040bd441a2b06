/**
 * Looking for a job's plaintext in what a process holds: its V8 heap snapshot (the strings of
 * its JavaScript heap) and its whole memory (/proc/PID/mem: every readable and writable mapping,
 * buffers, WebAssembly memory, worker threads, freed allocations). A heap snapshot holds no
 * ArrayBuffer contents, so bytes held in a Buffer show only in the memory scan; the tests scan
 * both.
 *
 * A needle is an 8-byte substring of the plaintext (every offset), kept in an open-addressing
 * hash table of 64-bit keys; a gram made only of hex digits is left out, since every process
 * holds hex of its own (ids, keys, hashes) that any long file may contain by chance.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';

const HEXCHAR = new Uint8Array(256);
for (const c of '0123456789abcdef') HEXCHAR[c.charCodeAt(0)] = 1;

/** The 8-byte substrings of a plaintext, as a set that a buffer can be scanned against. */
export class Grams {
  private readonly lo: Uint32Array;
  private readonly hi: Uint32Array;
  private readonly used: Uint8Array;
  private readonly mask: number;
  /** bytes that begin, and that end, some needle: a fast first test */
  private readonly first = new Uint8Array(256);
  private readonly last = new Uint8Array(256);
  readonly size: number;

  constructor(plaintext: Uint8Array) {
    let cap = 1;
    while (cap < 2 * plaintext.length) cap *= 2;
    this.lo = new Uint32Array(cap);
    this.hi = new Uint32Array(cap);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
    const dv = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
    let n = 0;
    for (let i = 0; i + 8 <= plaintext.length; i++) {
      let hexOnly = true;
      for (let k = 0; k < 8 && hexOnly; k++) hexOnly = HEXCHAR[plaintext[i + k] as number] === 1;
      if (hexOnly) continue;
      if (this.insert(dv.getUint32(i, true), dv.getUint32(i + 4, true))) n++;
      this.first[plaintext[i] as number] = 1;
      this.last[plaintext[i + 7] as number] = 1;
    }
    this.size = n;
  }

  private slot(lo: number, hi: number): number {
    return (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 7) & this.mask;
  }

  private insert(lo: number, hi: number): boolean {
    for (let s = this.slot(lo, hi); ; s = (s + 1) & this.mask) {
      if (!this.used[s]) {
        this.used[s] = 1;
        this.lo[s] = lo;
        this.hi[s] = hi;
        return true;
      }
      if (this.lo[s] === lo && this.hi[s] === hi) return false;
    }
  }

  private has(lo: number, hi: number): boolean {
    for (let s = this.slot(lo, hi); this.used[s]; s = (s + 1) & this.mask) if (this.lo[s] === lo && this.hi[s] === hi) return true;
    return false;
  }

  /** Adds every needle found in `buf` to `found` (as latin1 text); returns how many positions matched. */
  scan(buf: Uint8Array, found: Set<string>): number {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let hits = 0;
    for (let i = 0, end = buf.length - 8; i <= end; i++) {
      if (!this.first[buf[i] as number] || !this.last[buf[i + 7] as number]) continue;
      if (this.has(dv.getUint32(i, true), dv.getUint32(i + 4, true))) {
        hits++;
        found.add(Buffer.from(buf.subarray(i, i + 8)).toString('latin1'));
      }
    }
    return hits;
  }
}

/** What a scan found: the distinct needles and how many bytes it read. */
export interface ScanResult {
  found: Set<string>;
  bytes: number;
}

/**
 * Scans the memory of process `pid`: every private mapping it may read and write that holds
 * resident pages, read through /proc/PID/mem while the process is stopped (SIGSTOP, then
 * SIGCONT), so that what it holds does not move under the scan.
 */
export function scanProcessMemory(pid: number, grams: Grams): ScanResult {
  const found = new Set<string>();
  let bytes = 0;
  const regions: [number, number][] = [];
  let cur: [number, number, boolean] | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) /.exec(line);
    if (m) {
      cur = [parseInt(m[1]!, 16), parseInt(m[2]!, 16), m[3]!.startsWith('rw')];
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && cur && cur[2] && Number(rss[1]) > 0) regions.push([cur[0], cur[1]]);
  }
  const chunk = Buffer.alloc(8 << 20);
  process.kill(pid, 'SIGSTOP');
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const [start, end] of regions) {
      for (let at = start; at < end; at += chunk.length - 8) {
        const len = Math.min(chunk.length, end - at);
        let n = 0;
        try {
          n = readSync(fd, chunk, 0, len, at);
        } catch {
          break; // a mapping that cannot be read (a guard page): skip the rest of it
        }
        bytes += n;
        grams.scan(chunk.subarray(0, n), found);
        if (n < len) break;
      }
    }
  } finally {
    closeSync(fd);
    process.kill(pid, 'SIGCONT');
  }
  return { found, bytes };
}

/** Resolves with the path of the first complete heap snapshot in `dir` (V8 writes `Heap.*.heapsnapshot` in the working directory). */
export function heapSnapshotIn(dir: string, timeoutMs = 60_000): Promise<string> {
  const complete = (): string | undefined => {
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.heapsnapshot')) continue;
      const p = join(dir, f);
      const size = statSync(p).size;
      if (size < 2) continue;
      // a snapshot is one JSON object; V8 writes it front to back and ends it with "]}"
      const fd = openSync(p, 'r');
      const tail = Buffer.alloc(Math.min(16, size));
      readSync(fd, tail, 0, tail.length, size - tail.length);
      closeSync(fd);
      if (/\]\}\s*$/.test(tail.toString('latin1'))) return p;
    }
    return undefined;
  };
  return new Promise((resolve, reject) => {
    const check = () => {
      const p = existsSync(dir) ? complete() : undefined;
      if (!p) return false;
      done();
      resolve(p);
      return true;
    };
    const w = watch(dir, () => void check());
    // fs.watch may coalesce the last write with an earlier event: look again on a timer too
    const poll = setInterval(() => void check(), 250);
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no complete heap snapshot in ${dir} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const done = () => {
      w.close();
      clearInterval(poll);
      clearTimeout(timer);
    };
    check();
  });
}

/** Scans the strings of a heap snapshot (each as latin1 bytes, the form a one-byte V8 string has). */
export function scanHeapSnapshot(path: string, grams: Grams): ScanResult & { strings: number } {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as { strings: string[] };
  const found = new Set<string>();
  let bytes = 0;
  for (const s of snap.strings) {
    if (s.length < 8) continue;
    const b = Buffer.from(s, 'latin1');
    bytes += b.length;
    grams.scan(b, found);
  }
  return { found, bytes, strings: snap.strings.length };
}

/**
 * Scans the program every process of this repository runs: the JavaScript of `node_modules`
 * and of each package's `dist`. A process holds the source text of the modules it loads (in
 * each worker thread too), and a slicer's comments share words with code ("signature = ").
 */
export function scanProgramText(root: string, grams: Grams): ScanResult & { files: number } {
  const found = new Set<string>();
  let bytes = 0;
  let files = 0;
  const walk = (d: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (depth < 12 && e.name !== '.git' && e.name !== 'test') walk(p, depth + 1);
      } else if (/\.(c|m)?js$/.test(e.name)) {
        const b = readFileSync(p);
        bytes += b.length;
        files++;
        grams.scan(b, found);
      }
    }
  };
  walk(join(root, 'node_modules'), 0);
  for (const pkg of readdirSync(root)) if (existsSync(join(root, pkg, 'dist', 'src'))) walk(join(root, pkg, 'dist', 'src'), 0);
  return { found, bytes, files };
}

/** The needles of `a` that `b` does not hold. */
export function minus(a: Set<string>, b: Set<string>): string[] {
  return [...a].filter((x) => !b.has(x));
}
