/**
 * @module bench/proc
 * What /proc says of a process of the benchmarks (bench:fleet, bench:footprint): its CPU
 * seconds, its resident memory and high-water mark, and how busy the whole machine is.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds in user and in system mode (every thread) a process used so far. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return { user: Number(f[11]) / CLK_TCK, system: Number(f[12]) / CLK_TCK }; // fields 14 (utime) and 15 (stime)
}

/** CPU seconds (user + system, every thread) a process used so far; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const t = cpuTimes(pid);
    return t.user + t.system;
  } catch {
    return NaN;
  }
}

/** A VmXXX line of /proc/PID/status, in bytes; NaN once the process is gone. */
export function vm(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Busy and total jiffies of the whole machine (/proc/stat), for how loaded it was. */
export function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}
