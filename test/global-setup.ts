import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromiumBinary, up } from '../scripts/infra.mjs';

const root = fileURLToPath(new URL('../', import.meta.url));

/**
 * Every test run needs real Redis, MariaDB, Kafka and RabbitMQ. This makes them reachable
 * (starting what is missing) before any test file runs; if that fails the run
 * fails here, with the reason, instead of every integration test timing out.
 * It also builds the packages once (`tsc -b`, a no-op when up to date): the e2e
 * tests run the shop's services and the `dye` command as compiled JavaScript,
 * as users run them, and parallel test files must not build at the same time.
 * Headless Chromium (the load report is rendered in it) is installed here too,
 * once, rather than inside a test's time limit.
 */
export default async function setup(): Promise<void> {
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-b', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  await up();
  process.env.DYE_CHROMIUM = chromiumBinary();
}
