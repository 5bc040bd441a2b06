#!/usr/bin/env node
/**
 * @module cli
 * `livematrix-conformance`: tells a vendor, requirement by requirement, whether their device (or
 * their implementation of the primitives) speaks Live Matrix v1.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { fromHex, errorMessage } from '@livematrix/spec';
import { lint } from './lint.js';
import { type Report, buildReport, renderJunit, renderText } from './report.js';
import { runDeviceProfile } from './runner.js';
import { DEVICE_SCENARIOS } from './scenarios/index.js';
import { runVectors } from './vectors-profile.js';

const HELP = `livematrix-conformance: Live Matrix v1 conformance suite

Usage:
  livematrix-conformance device --url URL --device ID --device-key HEX --operator FILE
                                [--fleet default] [--consume-rate BYTES_PER_S] [--mqtt 4|5]
                                [--only REGEX] [--report DIR]
      Acts as a gateway against the device under test through the broker at URL. The device must
      trust the operator key in FILE (an identity file from "livematrix keygen"), consume streams
      at most --consume-rate bytes/s (default 64000) and send telemetry while it streams.
  livematrix-conformance vectors --adapter "COMMAND" [--report DIR]
      Drives an implementation of the primitives through an adapter process (line-based JSON on
      stdin/stdout; see conformance/README.md) with every test vector of spec/vectors/v1.
  livematrix-conformance lint
      Fails when a testable requirement has no test or a test cites an unknown ID.
  livematrix-conformance list
      Lists the device scenarios and the requirement IDs each covers.

Reports: text on stdout; with --report DIR also report.txt, report.json and junit.xml.
Exit codes: 0 all passed, 1 a test failed, 2 usage error.`;

function writeReports(dir: string, r: Report): void {
  mkdirSync(dir, { recursive: true });
  const put = (name: string, text: string) => {
    writeFileSync(join(dir, name + '.tmp'), text);
    renameSync(join(dir, name + '.tmp'), join(dir, name));
  };
  put('report.txt', renderText(r));
  put('report.json', JSON.stringify(r, null, 2) + '\n');
  put('junit.xml', renderJunit(r));
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: rest, allowPositionals: false, strict: true,
      options: {
        url: { type: 'string' }, device: { type: 'string' }, 'device-key': { type: 'string' }, operator: { type: 'string' }, fleet: { type: 'string' },
        'consume-rate': { type: 'string' }, mqtt: { type: 'string' }, only: { type: 'string' }, report: { type: 'string' }, adapter: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    console.error(`livematrix-conformance: ${errorMessage(e)}\n\n${HELP}`);
    return 2;
  }
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h' || values['help']) {
    console.log(HELP);
    return 0;
  }
  const need = (k: string): string => {
    const v = values[k];
    if (typeof v !== 'string' || !v) throw new Error(`--${k} is required`);
    return v;
  };
  try {
    if (cmd === 'lint') {
      const problems = lint(DEVICE_SCENARIOS);
      for (const p of problems) console.error(`lint: ${p}`);
      console.log(problems.length ? `${problems.length} problem(s)` : 'lint: every testable requirement has a test; every cited ID exists');
      return problems.length ? 1 : 0;
    }
    if (cmd === 'list') {
      for (const s of DEVICE_SCENARIOS) console.log(`${s.id.padEnd(32)} ${s.covers.join(' ')}\n${''.padEnd(33)}${s.title}`);
      return 0;
    }
    let report: Report;
    if (cmd === 'device') {
      const key = need('device-key');
      if (!/^[0-9a-fA-F]{64}$/.test(key)) throw new Error('--device-key must be 64 hex digits');
      const mqttV = values['mqtt'] === '5' ? 5 : 4;
      const only = typeof values['only'] === 'string' ? new RegExp(values['only']) : undefined;
      const target = { url: need('url'), fleet: typeof values['fleet'] === 'string' ? values['fleet'] : 'default', deviceId: need('device'), devicePublic: fromHex(key), operator: readIdentityFile(need('operator')), consumeRate: Number(values['consume-rate'] ?? 64000), protocolVersion: mqttV as 4 | 5 };
      const tests = await runDeviceProfile(target, { log: (l) => console.error(l), ...(only ? { only: (s) => only.test(s.id) } : {}) });
      report = buildReport('device', `${target.deviceId} at ${target.url} (MQTT ${mqttV === 5 ? '5' : '3.1.1'})`, tests);
    } else if (cmd === 'vectors') {
      const adapter = need('adapter');
      report = buildReport('vectors', adapter, await runVectors(adapter, (l) => console.error(l)));
    } else {
      console.error(`livematrix-conformance: unknown command "${cmd}"\n\n${HELP}`);
      return 2;
    }
    console.log(renderText(report));
    if (typeof values['report'] === 'string') writeReports(values['report'], report);
    return report.passed ? 0 : 1;
  } catch (e) {
    console.error(`livematrix-conformance: ${errorMessage(e)}`);
    return errorMessage(e).includes('required') || errorMessage(e).includes('must be') ? 2 : 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((c) => process.exit(c), (e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
