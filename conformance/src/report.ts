/**
 * @module report
 * Results per requirement ID: PASS, FAIL, NOT EXECUTED or NOT TESTABLE; as text, JSON and JUnit XML.
 */
import { REQUIREMENTS, type RequirementId } from './generated/requirements.js';
import type { TestResult } from './checks.js';
import { NOT_TESTABLE } from './not-testable.js';

export type { TestResult } from './checks.js';

export type IdStatus = 'PASS' | 'FAIL' | 'NOT EXECUTED' | 'NOT TESTABLE';

export interface Report {
  suite: string;
  profile: string;
  date: string;
  target: string;
  tests: TestResult[];
  requirements: { id: string; level: string; profiles: readonly string[]; status: IdStatus; checks: number; tests: string[]; reason?: string }[];
  passed: boolean;
}

/**
 * The verdict of every requirement ID from the checks that ran ([LM-ROLE-1]): FAIL when a check of
 * it failed, PASS when at least one check of it ran and every one passed; otherwise NOT TESTABLE
 * (a black box cannot observe it) or NOT EXECUTED (with why: a test that declares it stopped
 * before checking it, or no test of this profile covers it).
 */
export function buildReport(profile: string, target: string, tests: TestResult[]): Report {
  const checks = new Map<string, { test: string; status: 'pass' | 'fail'; message?: string }[]>();
  const declared = new Map<string, TestResult[]>();
  for (const t of tests) {
    for (const c of t.checks) checks.set(c.id, [...(checks.get(c.id) ?? []), { test: t.id, status: c.status, ...(c.message ? { message: c.message } : {}) }]);
    for (const id of t.covers) declared.set(id, [...(declared.get(id) ?? []), t]);
  }
  const requirements = (Object.keys(REQUIREMENTS) as RequirementId[]).map((id) => {
    const cs = checks.get(id) ?? [];
    const nt = NOT_TESTABLE[id];
    const fail = cs.find((c) => c.status === 'fail');
    const status: IdStatus = fail ? 'FAIL' : cs.length ? 'PASS' : nt ? 'NOT TESTABLE' : 'NOT EXECUTED';
    const tests = [...new Set([...cs.map((c) => c.test), ...(declared.get(id) ?? []).map((t) => t.id)])];
    let reason: string | undefined;
    if (status === 'FAIL') reason = `${fail?.test}: ${fail?.message}`;
    else if (status === 'NOT TESTABLE') reason = nt;
    else if (status === 'NOT EXECUTED') {
      const stopped = (declared.get(id) ?? []).filter((t) => t.status === 'fail');
      reason = stopped.length ? `not reached: ${stopped.map((t) => `${t.id} stopped (${t.message ?? 'a check failed'})`).join('; ')}` : declared.has(id) ? 'declared but no check of it ran' : 'no test of this run covers it';
    }
    return { id, level: REQUIREMENTS[id].level, profiles: REQUIREMENTS[id].profiles, status, checks: cs.length, tests, ...(reason ? { reason } : {}) };
  });
  return { suite: 'livematrix-conformance', profile, date: new Date().toISOString(), target, tests, requirements, passed: tests.length > 0 && tests.every((t) => t.status === 'pass') };
}

export function renderText(r: Report): string {
  const lines = [`Live Matrix conformance, profile ${r.profile}, against ${r.target}, ${r.date}`, ''];
  for (const t of r.tests) lines.push(`${t.status === 'pass' ? 'PASS' : 'FAIL'}  ${t.id}  ${t.title} (${t.ms} ms)${t.message ? `\n      ${t.message}` : ''}`);
  lines.push('', 'Requirements:');
  for (const q of r.requirements) lines.push(`${q.status.padEnd(13)} ${q.id.padEnd(14)} ${q.level.padEnd(10)} ${q.status === 'PASS' ? `${q.checks} check(s): ${q.tests.join(', ')}` : q.reason ?? ''}`);
  const count = (s: IdStatus) => r.requirements.filter((q) => q.status === s).length;
  lines.push('', `${r.tests.filter((t) => t.status === 'pass').length} passed, ${r.tests.filter((t) => t.status === 'fail').length} failed`);
  lines.push(`requirements: ${count('PASS')} PASS, ${count('FAIL')} FAIL, ${count('NOT EXECUTED')} NOT EXECUTED, ${count('NOT TESTABLE')} NOT TESTABLE`);
  return lines.join('\n') + '\n';
}

const xml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);

export function renderJunit(r: Report): string {
  const failures = r.tests.filter((t) => t.status === 'fail').length;
  const time = r.tests.reduce((a, t) => a + t.ms, 0) / 1000;
  const cases = r.tests.map((t) => `    <testcase classname="${xml(r.profile)}" name="${xml(t.id)}" time="${(t.ms / 1000).toFixed(3)}">\n      <properties>${[...new Set(t.checks.map((c) => c.id))].map((c) => `<property name="requirement" value="${xml(c)}"/>`).join('')}${[...new Set(t.checks.filter((c) => c.status === 'fail').map((c) => c.id))].map((c) => `<property name="failed-requirement" value="${xml(c)}"/>`).join('')}</properties>${t.status === 'fail' ? `\n      <failure message="${xml(t.message ?? 'failed')}"/>` : ''}\n    </testcase>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="livematrix-conformance" tests="${r.tests.length}" failures="${failures}" time="${time.toFixed(3)}">\n  <testsuite name="${xml(r.profile)}" tests="${r.tests.length}" failures="${failures}" time="${time.toFixed(3)}">\n${cases.join('\n')}\n  </testsuite>\n</testsuites>\n`;
}
