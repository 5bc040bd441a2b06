/** `npm run spec:vectors`: writes spec/vectors/v1/*.json (atomically, file by file). */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildVectors, renderVectorFile } from './vectors.js';
import { buildSemanticVectors } from './semantic-vectors.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'vectors', 'v1');
mkdirSync(dir, { recursive: true });
for (const [name, v] of Object.entries({ ...buildVectors(), ...buildSemanticVectors() })) {
  const p = join(dir, name);
  writeFileSync(p + '.tmp', renderVectorFile(v));
  renameSync(p + '.tmp', p);
  console.log(`${name}: ${v.numberOfTests} tests`);
}
