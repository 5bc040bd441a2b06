/**
 * @module runner
 * Runs device scenarios against a device under test through a broker.
 */
import { spawn } from 'node:child_process';
import type { BrokerAuth } from '@livematrix/spec/transport';
import { DEFAULT_STATUS_INTERVAL_MS, type IdentityKeyPair } from '@livematrix/spec';
import { type TestResult, runTest } from './checks.js';
import { type Scenario, DEVICE_SCENARIOS } from './scenarios/index.js';
import { Tester } from './tester.js';

export interface DeviceTarget {
  url: string;
  fleet: string;
  deviceId: string;
  devicePublic: Uint8Array;
  operator: IdentityKeyPair;
  /** most bytes per second the device's consumer takes */
  consumeRate: number;
  protocolVersion?: 4 | 5;
  brokerAuth?: BrokerAuth;
  gateway?: { id: string; identity: IdentityKeyPair };
  /** a shell command that restarts the device under test (may return before it is back) */
  restartCmd?: string;
  /** run the scenarios that take over a minute (--long) */
  long?: boolean;
  /** the device's status interval in ms ([LM-STATE-1]); default 30000, the SDK's */
  statusInterval?: number;
}

/** Runs the restart command through the shell; fails on a non-zero exit or after 60 s. */
function restarter(cmd: string, log: (l: string) => void): () => Promise<void> {
  return () => new Promise<void>((resolve, reject) => {
    log(`restarting the device under test: ${cmd}`);
    const child = spawn(cmd, { shell: true, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`--restart-cmd did not finish within 60 s: ${cmd}`));
    }, 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`--restart-cmd could not run: ${e.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`--restart-cmd exited with ${signal ?? `code ${code}`}: ${cmd}`));
    });
  });
}

/** A sample of machine code: deterministic G-code, about 40 KB (ten chunks). */
export function sampleGcode(bytes = 40_000): Uint8Array {
  const lines = ['; livematrix conformance sample', 'G28', 'M104 S215', 'M140 S60', 'G90', 'G1 Z0.3 F3000'];
  let i = 0;
  let size = lines.join('\n').length;
  while (size < bytes) {
    const a = i * 0.05;
    const l = `G1 X${(100 + 30 * Math.cos(a)).toFixed(3)} Y${(100 + 30 * Math.sin(a)).toFixed(3)} E${(i * 0.0123).toFixed(5)} F1800`;
    lines.push(l);
    size += l.length + 1;
    i++;
  }
  return new TextEncoder().encode(lines.join('\n') + '\n');
}

export async function runDeviceProfile(target: DeviceTarget, o: { only?: (s: Scenario) => boolean; log?: (l: string) => void; scenarios?: readonly Scenario[] } = {}): Promise<TestResult[]> {
  const log = o.log ?? (() => undefined);
  const data = sampleGcode();
  const results: TestResult[] = [];
  const restart = target.restartCmd ? restarter(target.restartCmd, log) : undefined;
  for (const s of (o.scenarios ?? DEVICE_SCENARIOS).filter(o.only ?? (() => true))) {
    if (s.needs === 'restart' && !restart) {
      log(`SKIP ${s.id}: needs --restart-cmd (its requirements stay NOT EXECUTED)`);
      continue;
    }
    if (s.needs === 'long' && !target.long) {
      log(`SKIP ${s.id}: takes over a minute; runs with --long (its requirements stay NOT EXECUTED)`);
      continue;
    }
    const tester = await Tester.connect({
      url: target.url, fleet: target.fleet, deviceId: target.deviceId, devicePublic: target.devicePublic, operator: target.operator,
      ...(target.protocolVersion ? { protocolVersion: target.protocolVersion } : {}), ...(target.brokerAuth ? { brokerAuth: target.brokerAuth } : {}),
      ...(target.gateway ? { gateway: target.gateway } : {}),
    });
    const r = await runTest(s, async (checks) => {
      try {
        await tester.waitHello();
        await s.run({ tester, data, consumeRate: target.consumeRate, log, checks, statusInterval: target.statusInterval ?? DEFAULT_STATUS_INTERVAL_MS, ...(restart ? { restart } : {}) });
      } finally {
        await tester.close();
      }
    });
    log(`${r.status === 'pass' ? 'PASS' : 'FAIL'} ${s.id}${r.message ? `: ${r.message}` : ''}`);
    results.push(r);
  }
  return results;
}
