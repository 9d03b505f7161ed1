import { randomBytes } from 'node:crypto';

/** Where the test services listen (see scripts/infra.mjs and docker-compose.yml). */
export const REDIS_URL = process.env.DYE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const MYSQL = {
  host: process.env.DYE_TEST_MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.DYE_TEST_MYSQL_PORT ?? 3306),
  user: process.env.DYE_TEST_MYSQL_USER ?? 'root',
  password: process.env.DYE_TEST_MYSQL_PASSWORD ?? '',
} as const;
export const KAFKA_BROKERS = (process.env.DYE_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

/**
 * A name no other test file or earlier run uses: `<prefix>_<12 hex>`. Lowercase
 * letters, digits and underscores only, so it is valid as a Redis key part, a
 * MySQL database and a Kafka topic alike.
 */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}
