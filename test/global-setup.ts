import { up } from '../scripts/infra.mjs';

/**
 * Every test run needs real Redis, MariaDB and Kafka. This makes them reachable
 * (starting what is missing) before any test file runs; if that fails the run
 * fails here, with the reason, instead of every integration test timing out.
 */
export default async function setup(): Promise<void> {
  await up();
}
