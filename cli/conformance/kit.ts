/**
 * Running `livematrix-conformance` as a process, the way a vendor runs it, and reading its
 * report.json. With LM_CONFORMANCE_REPORTS=DIR set, every report is also kept in DIR (one folder
 * per run: profile and a counter), for CI artifacts or a closing note.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEVICE_SCENARIOS, type Report } from '@livematrix/conformance';

/** The built suite (tests run from the TypeScript source in cli/conformance). */
export const CONFORMANCE = join(import.meta.dirname, '..', '..', 'conformance', 'dist', 'src', 'cli.js');

/** Every ID the device scenarios declare. */
export const DEVICE_IDS = (): string[] => [...new Set(DEVICE_SCENARIOS.flatMap((s) => s.covers))].sort();

export interface ProfileRun {
  code: number | null;
  stdout: string;
  stderr: string;
  report: Report;
  /** wall time of the run, ms */
  ms: number;
}

let kept = 0;

/** Runs the suite with `args`; reads DIR/report.json when --report DIR is given and `withReport`. */
export function runProfile(args: string[], withReport = true, o: { cwd?: string } = {}): Promise<ProfileRun> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CONFORMANCE, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(o.cwd ? { cwd: o.cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const i = args.indexOf('--report');
      let report = { requirements: [], tests: [] } as unknown as Report;
      if (withReport && i >= 0) {
        const dir = args[i + 1]!;
        try {
          report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
        } catch (e) {
          reject(new Error(`no report.json (exit ${code}): ${String(e)}\n${stderr.slice(-3000)}`));
          return;
        }
        const keep = process.env['LM_CONFORMANCE_REPORTS'];
        if (keep) {
          const to = join(keep, `${String(++kept).padStart(2, '0')}-${args[0]}`);
          mkdirSync(to, { recursive: true });
          cpSync(dir, to, { recursive: true });
        }
      }
      resolve({ code, stdout, stderr, report, ms: Date.now() - t0 });
    });
  });
}
