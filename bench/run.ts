/**
 * Runs every suite in bench/ in a process of its own (so one suite's globals,
 * such as a registered OpenTelemetry context manager, never colour another's
 * figures), on this Node and on Node 24, and writes bench/results.json and
 * docs/benchmarks.md.
 *
 *   npm run bench                      all suites, Node 20 (this one) and 24
 *   npm run bench -- core http         suites whose file name contains "core" or "http"
 *   npm run bench -- --this-node-only  skip the second Node version
 *   npm run bench -- --no-write        print only
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { up } from '../scripts/infra.mjs';
import { node24 } from '../scripts/node24.mjs';
import type { RecordedTable } from './harness.js';
import { type BenchResults, machine, markdown, type NodeRun } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const flags = new Set(args.filter((arg) => arg.startsWith('--')));
const filters = args.filter((arg) => !arg.startsWith('--'));
const suites = readdirSync(here)
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();

// The suites talk to real Redis, MariaDB and Kafka.
await up();

const binaries = [process.execPath, ...(flags.has('--this-node-only') ? [] : [node24()])];
const runs: NodeRun[] = [];
for (const binary of binaries) {
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^v/, '');
  console.log(`\n== Dye benchmarks on Node ${version}: ${suites.length} suite(s)`);
  const scratch = mkdtempSync(join(tmpdir(), 'dye-bench-'));
  const failed: NodeRun['failed'] = [];
  const tables: RecordedTable[] = [];
  for (const suite of suites) {
    console.log(`\n### ${suite} (Node ${version})`);
    const out = join(scratch, `${suite}.jsonl`);
    writeFileSync(out, '');
    const result = spawnSync(binary, ['--import', 'tsx', join(here, suite)], {
      stdio: 'inherit',
      cwd: root,
      env: { ...process.env, DYE_BENCH_OUT: out },
    });
    if (result.status !== 0) {
      console.error(`${suite} failed on Node ${version} (exit ${result.status})`);
      failed.push({ suite, code: result.status });
    }
    for (const line of readFileSync(out, 'utf8').split('\n').filter(Boolean))
      tables.push({
        ...(JSON.parse(line) as RecordedTable),
        file: suite,
        measured: { date: new Date().toISOString(), cpu: machine().cpu },
      });
  }
  rmSync(scratch, { recursive: true, force: true });
  runs.push({ node: version, tables, failed });
}

// A run of some suites replaces those suites' tables in the last full results
// and keeps the others, so docs/benchmarks.md always shows every suite.
const resultsFile = join(here, 'results.json');
if (filters.length > 0 && existsSync(resultsFile)) {
  const previous = JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchResults;
  for (const run of runs) {
    const old = previous.runs.find((candidate) => candidate.node === run.node);
    if (!old) continue;
    // Older tables say when and where they were measured (the header names this run's machine).
    const kept = old.tables
      .filter((table) => table.file !== undefined && !suites.includes(table.file))
      .map((table) => ({ ...table, measured: table.measured ?? { date: previous.date, cpu: previous.machine.cpu, orEarlier: true } }));
    run.tables = [...kept, ...run.tables].sort((a, b) => (a.file ?? '').localeCompare(b.file ?? ''));
    run.failed = [...old.failed.filter((failure) => !suites.includes(failure.suite)), ...run.failed];
  }
}

const results: BenchResults = { date: new Date().toISOString(), machine: machine(), runs };
if (!flags.has('--no-write')) {
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, 'docs', 'benchmarks.md'), markdown(results));
  console.log('\nwrote bench/results.json and docs/benchmarks.md');
}
process.exit(runs.some((run) => run.failed.length > 0) ? 1 : 0);
