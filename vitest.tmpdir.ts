/**
 * Vitest global setup: every test run gets one temporary directory of its own as TMPDIR, which
 * every worker and every process a test starts inherits (os.tmpdir() reads it), and which is
 * removed when the run ends, so that brokers' configs, state directories, registries and
 * databases that tests make under the temporary directory don't pile up in /tmp.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'lm-test-run-'));
  // Mosquitto and PostgreSQL started as root read their files as their own users
  chmodSync(dir, 0o755);
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
