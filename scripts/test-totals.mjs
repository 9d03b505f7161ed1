#!/usr/bin/env node
// Sums vitest JSON reports (one per Node version) into the line CI reads:
//   N passed, N failed, N skipped
// Exits 1 when a report is missing, a test failed, or no test ran.
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
let problems = 0;
for (const file of process.argv.slice(2)) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    process.stderr.write(`no test report at ${file}: ${error.message}\n`);
    problems++;
    continue;
  }
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  // A file that failed to load has no failed tests but a failed suite.
  if (report.numFailedTestSuites > 0 && report.numFailedTests === 0) failed += report.numFailedTestSuites;
  if (report.numTotalTests === 0) problems++;
}
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || problems > 0 ? 1 : 0);
