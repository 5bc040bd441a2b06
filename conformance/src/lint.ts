/**
 * @module lint
 * Coverage lint: every testable requirement of the vectors, device, gateway and broker profiles
 * has a test, no test cites an ID that SPEC.md does not define, and each requirement states one
 * level.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { REQUIREMENTS, type RequirementId } from './generated/requirements.js';
import { NOT_TESTABLE } from './not-testable.js';
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

/** The distinct RFC 2119 levels a requirement's text states (MUST NOT is not also a MUST). */
export function levelsOf(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/\b(MUST NOT|SHALL NOT|SHOULD NOT|MUST|SHALL|REQUIRED|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b/g)) {
    const k = m[1] as string;
    found.add(k === 'SHALL NOT' ? 'MUST NOT' : k === 'SHALL' || k === 'REQUIRED' ? 'MUST' : k === 'RECOMMENDED' ? 'SHOULD' : k === 'OPTIONAL' ? 'MAY' : k);
  }
  return [...found];
}

/** The requirement texts of spec/requirements.json. */
function requirementTexts(): { id: string; text: string }[] {
  const file = createRequire(import.meta.url).resolve('@livematrix/spec/requirements.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { requirements: { id: string; text: string }[] }).requirements;
}

/** Profiles whose requirements the suite must cover: vectors, device, gateway, broker. */
export const SUITE_PROFILES = ['V', 'D', 'G', 'B'] as const;

/**
 * Problems found; empty when the suite covers its profiles: every testable requirement of the
 * V, D, G and B profiles is declared by a test of some profile (or by a vector), every declared
 * ID exists, and every requirement states one level.
 */
export function lint(tests: readonly { id: string; covers: readonly string[] }[], vectors: Set<string> = vectorCoverage(), texts: { id: string; text: string }[] = requirementTexts()): string[] {
  const problems: string[] = [];
  const known = new Set(Object.keys(REQUIREMENTS));
  const covered = new Set<string>(vectors);
  for (const s of tests) for (const id of s.covers) covered.add(id);
  for (const id of [...covered].sort()) if (!known.has(id)) problems.push(`a test cites ${id}, which SPEC.md does not define`);
  for (const id of Object.keys(NOT_TESTABLE)) if (!known.has(id)) problems.push(`NOT_TESTABLE lists ${id}, which SPEC.md does not define`);
  for (const [id, r] of Object.entries(REQUIREMENTS) as [RequirementId, { profiles: readonly string[] }][]) {
    const inScope = r.profiles.some((p) => (SUITE_PROFILES as readonly string[]).includes(p));
    if (inScope && !covered.has(id) && !NOT_TESTABLE[id]) problems.push(`${id} (profile ${r.profiles.join('/')}) has no test and is not marked NOT TESTABLE`);
  }
  for (const { id, text } of texts) {
    const levels = levelsOf(text);
    if (levels.length > 1) problems.push(`${id} states more than one level (${levels.join(', ')}): one normative statement per ID`);
  }
  const ids = tests.map((s) => s.id);
  for (const id of ids) if (ids.indexOf(id) !== ids.lastIndexOf(id)) problems.push(`test id ${id} is used twice`);
  return [...new Set(problems)];
}
