/**
 * @module lint
 * Coverage lint: every testable requirement of the device and vectors profiles has a test, and
 * no test cites an ID that SPEC.md does not define.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { REQUIREMENTS, type RequirementId } from './generated/requirements.js';
import { NOT_TESTABLE } from './not-testable.js';
import type { Scenario } from './scenarios/index.js';
import { VECTOR_FILES } from './vectors-profile.js';

/** Requirement IDs the vector files exercise. */
export function vectorCoverage(): Set<string> {
  const dir = join(dirname(createRequire(import.meta.url).resolve('@livematrix/spec/requirements.json')), 'vectors', 'v1');
  const out = new Set<string>();
  for (const f of VECTOR_FILES) {
    const v = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { testGroups: { tests: { requirements: string[] }[] }[] };
    for (const g of v.testGroups) for (const t of g.tests) for (const r of t.requirements) out.add(r);
  }
  return out;
}

/** Problems found; empty when the suite covers the profiles. */
export function lint(scenarios: readonly Scenario[], vectors: Set<string> = vectorCoverage()): string[] {
  const problems: string[] = [];
  const known = new Set(Object.keys(REQUIREMENTS));
  const covered = new Set<string>(vectors);
  for (const s of scenarios) for (const id of s.covers) covered.add(id);
  for (const id of [...covered].sort()) if (!known.has(id)) problems.push(`a test cites ${id}, which SPEC.md does not define`);
  for (const id of Object.keys(NOT_TESTABLE)) if (!known.has(id)) problems.push(`NOT_TESTABLE lists ${id}, which SPEC.md does not define`);
  for (const [id, r] of Object.entries(REQUIREMENTS) as [RequirementId, { profiles: readonly string[] }][]) {
    const inScope = r.profiles.includes('D') || r.profiles.includes('V');
    if (inScope && !covered.has(id) && !NOT_TESTABLE[id]) problems.push(`${id} (profile ${r.profiles.join('/')}) has no test and is not marked NOT TESTABLE`);
  }
  const ids = scenarios.map((s) => s.id);
  for (const id of ids) if (ids.indexOf(id) !== ids.lastIndexOf(id)) problems.push(`scenario id ${id} is used twice`);
  return [...new Set(problems)];
}
