/**
 * Writes src/generated/requirements.ts from spec/requirements.json: the requirement IDs as
 * constants, so that tests cite them by name and nobody types an ID by hand.
 * `npm run -w @livematrix/conformance gen` (a test fails when the file is stale).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..', '..');

export function renderRequirementsModule(json: string): string {
  const reqs = (JSON.parse(json) as { requirements: { id: string; level: string; profiles: string[] }[] }).requirements;
  const lines = [
    '// GENERATED from spec/requirements.json by conformance/scripts/gen-requirements.ts: do not edit.',
    '/** Every requirement ID of SPEC.md, as a constant: R.LM_TX_2 === "LM-TX-2". */',
    'export const R = {',
    ...reqs.map((r) => `  ${r.id.replace(/-/g, '_')}: '${r.id}',`),
    '} as const;',
    'export type RequirementId = (typeof R)[keyof typeof R];',
    '/** Level and profiles of each requirement. */',
    'export const REQUIREMENTS: Readonly<Record<RequirementId, { level: string; profiles: readonly string[] }>> = {',
    ...reqs.map((r) => `  '${r.id}': { level: '${r.level}', profiles: [${r.profiles.map((p) => `'${p}'`).join(', ')}] },`),
    '};',
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const src = readFileSync(join(pkg, '..', 'spec', 'requirements.json'), 'utf8');
  const out = join(pkg, 'src', 'generated', 'requirements.ts');
  writeFileSync(out + '.tmp', renderRequirementsModule(src));
  renameSync(out + '.tmp', out);
  console.log(`wrote ${out}`);
}
