/**
 * Running `livematrix-conformance` as a process, the way a vendor runs it, and reading its
 * report.json.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
}

/** Runs the suite with `args`; reads DIR/report.json when --report DIR is given and `withReport`. */
export function runProfile(args: string[], withReport = true): Promise<ProfileRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CONFORMANCE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const i = args.indexOf('--report');
      let report = { requirements: [], tests: [] } as unknown as Report;
      if (withReport && i >= 0) {
        try {
          report = JSON.parse(readFileSync(join(args[i + 1]!, 'report.json'), 'utf8')) as Report;
        } catch (e) {
          reject(new Error(`no report.json (exit ${code}): ${String(e)}\n${stderr.slice(-3000)}`));
          return;
        }
      }
      resolve({ code, stdout, stderr, report });
    });
  });
}
