/**
 * `npm run spec:requirements`: writes spec/requirements.json from spec/SPEC.md. Fails on a
 * duplicate ID, an ID without an RFC 2119 keyword or with keywords of more than one level, or a
 * citation of an undefined ID.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractRequirements, renderRequirementsJson } from './requirements.js';

const specDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ex = extractRequirements(readFileSync(join(specDir, 'SPEC.md'), 'utf8'));
const problems = [
  ...ex.duplicates.map((id) => `duplicate ID ${id}`),
  ...ex.withoutLevel.map((id) => `${id} has no RFC 2119 keyword`),
  ...ex.multipleLevels.map((id) => `${id} carries more than one RFC 2119 level: split it, one statement per ID`),
  ...ex.undefinedCitations.map((id) => `${id} is cited but not defined`),
];
if (problems.length) {
  console.error(`spec/SPEC.md has ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
const out = join(specDir, 'requirements.json');
writeFileSync(out + '.tmp', renderRequirementsJson(ex));
renameSync(out + '.tmp', out); // never a partial file
console.log(`wrote ${ex.requirements.length} requirements to spec/requirements.json`);
