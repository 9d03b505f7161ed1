/**
 * Runs every suite in bench/ in a process of its own (so one suite's globals,
 * such as a registered OpenTelemetry context manager, never colour another's
 * figures) and prints each suite's ratio table.
 *
 *   npm run bench                 all suites
 *   npm run bench -- core         suites whose file name contains "core"
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const suites = readdirSync(here)
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();

console.log(`Dye benchmarks: node ${process.version}, ${process.platform}/${process.arch}, ${suites.length} suite(s)`);
let failed = 0;
for (const suite of suites) {
  console.log(`\n### ${suite}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(here, suite)], { stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`${suite} failed (exit ${result.status})`);
    failed++;
  }
}
process.exit(failed > 0 ? 1 : 0);
