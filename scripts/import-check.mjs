#!/usr/bin/env node
// Imports every built package (packages/*/dist/index.js) with plain Node ESM:
// tests run from source through vitest's interop, which forgives named imports
// from CommonJS modules that Node itself refuses. Run after `npm run build`.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const packages = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages');
let failed = 0;
for (const name of readdirSync(packages)) {
  // Every entry point the package exports: `.` and subpaths such as `./fastify`.
  const { exports } = JSON.parse(readFileSync(join(packages, name, 'package.json'), 'utf8'));
  for (const [subpath, target] of Object.entries(exports)) {
    const specifier = `@dye/${name}${subpath.slice(1)}`;
    try {
      const module = await import(pathToFileURL(join(packages, name, target.default)).href);
      process.stderr.write(`[import-check] ${specifier}: ${Object.keys(module).length} exports\n`);
    } catch (error) {
      failed++;
      process.stderr.write(`[import-check] ${specifier} does not load under Node: ${error.message}\n`);
    }
  }
}
process.exit(failed > 0 ? 1 : 0);
