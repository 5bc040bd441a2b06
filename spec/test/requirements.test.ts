/** SPEC.md's requirement IDs: requirements.json is current, IDs unique, citations resolve. */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractRequirements, renderRequirementsJson } from '../scripts/requirements.js';

const specDir = join(import.meta.dirname, '..');
const root = join(specDir, '..');
const md = readFileSync(join(specDir, 'SPEC.md'), 'utf8');
const ex = extractRequirements(md);

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.(ts|cddl)$/.test(name)) yield p;
  }
}

describe('requirements (SPEC.md preamble)', () => {
  it('requirements.json is current: run npm run spec:requirements', () => {
    expect(readFileSync(join(specDir, 'requirements.json'), 'utf8')).toBe(renderRequirementsJson(ex));
  });
  it('no ID is defined twice, every ID has an RFC 2119 level', () => {
    expect(ex.duplicates).toEqual([]);
    expect(ex.withoutLevel).toEqual([]);
    expect(ex.requirements.length).toBeGreaterThanOrEqual(150);
  });
  it('every ID carries exactly one RFC 2119 level', () => {
    expect(ex.multipleLevels).toEqual([]);
  });
  it('the extraction reports a definition with two levels, and counts MUST NOT as one level', () => {
    // built, not written out, so that the scan for cited IDs below does not take them for citations
    const def = (n: number, text: string) => `[${'LM-X'}-${n}] ${text}`;
    const sample = [
      '| profile | who | requirement groups |', '|---|---|---|', '| V (vectors) | any | X |', '',
      def(1, 'A receiver MUST check it and SHOULD log it.'), '',
      def(2, 'A receiver MUST NOT act on it.'), '',
      def(3, 'A sender MUST send it and MUST NOT send it twice.'), '',
      def(4, 'A receiver MAY log it.'), '',
      def(5, 'A receiver SHALL NOT act on it; it MUST NOT log it either.'), '',
    ].join('\n');
    const got = extractRequirements(sample);
    expect(got.multipleLevels).toEqual(['LM-X-1 (MUST, SHOULD)', 'LM-X-3 (MUST, MUST NOT)']);
    expect(Object.fromEntries(got.requirements.map((r) => [r.id, r.level]))).toEqual({ 'LM-X-1': 'MUST', 'LM-X-2': 'MUST NOT', 'LM-X-3': 'MUST', 'LM-X-4': 'MAY', 'LM-X-5': 'MUST NOT' });
  });
  it('every ID cited in SPEC.md is defined', () => {
    expect(ex.undefinedCitations).toEqual([]);
  });
  it('every ID cited in code, tests and the CDDL is defined', () => {
    const ids = new Set(ex.requirements.map((r) => r.id));
    const unknown: string[] = [];
    for (const pkg of ['spec', 'device-sdk', 'gateway', 'broker', 'conformance']) {
      for (const f of sources(join(root, pkg))) {
        for (const m of readFileSync(f, 'utf8').matchAll(/\[(LM-[A-Z]+-\d+)\]/g)) {
          if (!ids.has(m[1] as string)) unknown.push(`${relative(root, f)}: ${m[1]}`);
        }
      }
    }
    expect(unknown).toEqual([]);
  });
  it('every requirement belongs to at least one profile', () => {
    for (const r of ex.requirements) expect(r.profiles.length, r.id).toBeGreaterThan(0);
  });
});
