/**
 * @module report
 * Results per requirement ID: PASS, FAIL, NOT EXECUTED or NOT TESTABLE; as text, JSON and JUnit XML.
 */
import { REQUIREMENTS, type RequirementId } from './generated/requirements.js';
import { NOT_TESTABLE } from './not-testable.js';

export interface TestResult {
  id: string;
  title: string;
  covers: readonly string[];
  status: 'pass' | 'fail';
  message?: string;
  ms: number;
}

export type IdStatus = 'PASS' | 'FAIL' | 'NOT EXECUTED' | 'NOT TESTABLE';

export interface Report {
  suite: string;
  profile: string;
  date: string;
  target: string;
  tests: TestResult[];
  requirements: { id: string; level: string; status: IdStatus; tests: string[]; reason?: string }[];
  passed: boolean;
}

export function buildReport(profile: string, target: string, tests: TestResult[]): Report {
  const byId = new Map<string, TestResult[]>();
  for (const t of tests) for (const id of t.covers) byId.set(id, [...(byId.get(id) ?? []), t]);
  const requirements = (Object.keys(REQUIREMENTS) as RequirementId[]).map((id) => {
    const ts = byId.get(id) ?? [];
    const nt = NOT_TESTABLE[id];
    const status: IdStatus = ts.length ? (ts.some((t) => t.status === 'fail') ? 'FAIL' : 'PASS') : nt ? 'NOT TESTABLE' : 'NOT EXECUTED';
    return { id, level: REQUIREMENTS[id].level, status, tests: ts.map((t) => t.id), ...(status === 'NOT TESTABLE' && nt ? { reason: nt } : {}) };
  });
  return { suite: 'livematrix-conformance', profile, date: new Date().toISOString(), target, tests, requirements, passed: tests.length > 0 && tests.every((t) => t.status === 'pass') };
}

export function renderText(r: Report): string {
  const lines = [`Live Matrix conformance, profile ${r.profile}, against ${r.target}, ${r.date}`, ''];
  for (const t of r.tests) lines.push(`${t.status === 'pass' ? 'PASS' : 'FAIL'}  ${t.id}  ${t.title} (${t.ms} ms)${t.message ? `\n      ${t.message}` : ''}`);
  lines.push('', 'Requirements:');
  for (const q of r.requirements) lines.push(`${q.status.padEnd(13)} ${q.id.padEnd(13)} ${q.level.padEnd(10)} ${q.tests.join(', ') || q.reason || ''}`);
  const count = (s: IdStatus) => r.requirements.filter((q) => q.status === s).length;
  lines.push('', `${r.tests.filter((t) => t.status === 'pass').length} passed, ${r.tests.filter((t) => t.status === 'fail').length} failed`);
  lines.push(`requirements: ${count('PASS')} PASS, ${count('FAIL')} FAIL, ${count('NOT EXECUTED')} NOT EXECUTED, ${count('NOT TESTABLE')} NOT TESTABLE`);
  return lines.join('\n') + '\n';
}

const xml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);

export function renderJunit(r: Report): string {
  const failures = r.tests.filter((t) => t.status === 'fail').length;
  const time = r.tests.reduce((a, t) => a + t.ms, 0) / 1000;
  const cases = r.tests.map((t) => `    <testcase classname="${xml(r.profile)}" name="${xml(t.id)}" time="${(t.ms / 1000).toFixed(3)}">\n      <properties>${t.covers.map((c) => `<property name="requirement" value="${xml(c)}"/>`).join('')}</properties>${t.status === 'fail' ? `\n      <failure message="${xml(t.message ?? 'failed')}"/>` : ''}\n    </testcase>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="livematrix-conformance" tests="${r.tests.length}" failures="${failures}" time="${time.toFixed(3)}">\n  <testsuite name="${xml(r.profile)}" tests="${r.tests.length}" failures="${failures}" time="${time.toFixed(3)}">\n${cases.join('\n')}\n  </testsuite>\n</testsuites>\n`;
}
