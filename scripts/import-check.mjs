#!/usr/bin/env node
// Imports every built package (packages/*/dist/index.js) with plain Node ESM:
// tests run from source through vitest's interop, which forgives named imports
// from CommonJS modules that Node itself refuses. Run after `npm run build`.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const packages = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages');
let failed = 0;
for (const name of readdirSync(packages)) {
  const entry = join(packages, name, 'dist', 'index.js');
  try {
    const module = await import(pathToFileURL(entry).href);
    process.stderr.write(`[import-check] @dye/${name}: ${Object.keys(module).length} exports\n`);
  } catch (error) {
    failed++;
    process.stderr.write(`[import-check] @dye/${name} does not load under Node: ${error.message}\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
