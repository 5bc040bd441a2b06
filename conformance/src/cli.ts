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
import { errorMessage } from '@livematrix/spec';
import { PROFILES, UsageError, type Values } from './commands.js';
import { lint } from './lint.js';
import { type Report, renderJunit, renderText } from './report.js';

function help(): string {
  return `livematrix-conformance: Live Matrix v1 conformance suite

Usage:
${PROFILES.map((p) => p.usage).join('\n')}
  livematrix-conformance lint
      Fails when a testable requirement has no test, a test cites an unknown ID, or a requirement
      carries more than one level.
  livematrix-conformance list
      Lists the tests of every profile and the requirement IDs each checks.

Every check names the requirement ID it checks; an ID is PASS only when a check of it ran and
passed. Reports: text on stdout; with --report DIR also report.txt, report.json and junit.xml.
Exit codes: 0 all passed, 1 a test failed, 2 usage error.`;
}

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
  const options = Object.assign({ only: { type: 'string' }, report: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, ...PROFILES.map((p) => p.options)) as NonNullable<Parameters<typeof parseArgs>[0]>['options'];
  let values: Values;
  try {
    values = parseArgs({ args: rest, allowPositionals: false, strict: true, options }).values as Values;
  } catch (e) {
    console.error(`livematrix-conformance: ${errorMessage(e)}\n\n${help()}`);
    return 2;
  }
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h' || values['help']) {
    console.log(help());
    return 0;
  }
  try {
    if (cmd === 'lint') {
      const problems = lint(PROFILES.flatMap((p) => p.tests()));
      for (const p of problems) console.error(`lint: ${p}`);
      console.log(problems.length ? `${problems.length} problem(s)` : 'lint: every testable requirement has a test; every cited ID exists; one level per requirement');
      return problems.length ? 1 : 0;
    }
    if (cmd === 'list') {
      for (const p of PROFILES) for (const s of p.tests()) console.log(`${s.id.padEnd(32)} ${s.covers.join(' ')}\n${''.padEnd(33)}${s.title}`);
      return 0;
    }
    const profile = PROFILES.find((p) => p.name === cmd);
    if (!profile) {
      console.error(`livematrix-conformance: unknown command "${cmd}"\n\n${help()}`);
      return 2;
    }
    const report = await profile.run(values, (l) => console.error(l));
    console.log(renderText(report));
    if (typeof values['report'] === 'string') writeReports(values['report'], report);
    return report.passed ? 0 : 1;
  } catch (e) {
    console.error(`livematrix-conformance: ${errorMessage(e)}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((c) => process.exit(c), (e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
