// Writes manifests/crds from policies/schema.ts: `npm run crds:generate`.

import { mkdirSync, writeFileSync } from 'node:fs';
import { renderCrdFiles } from '../policies/crds.ts';

const dir = new URL('../manifests/crds/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const [name, text] of renderCrdFiles()) {
  writeFileSync(new URL(name, dir), text);
  console.log(`wrote manifests/crds/${name}`);
}
