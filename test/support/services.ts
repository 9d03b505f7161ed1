import { randomBytes } from 'node:crypto';

/** Where the test services listen (see scripts/infra.mjs and docker-compose.yml). */
export const REDIS_URL = process.env.DYE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const MYSQL = {
  host: process.env.DYE_TEST_MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.DYE_TEST_MYSQL_PORT ?? 3306),
  user: process.env.DYE_TEST_MYSQL_USER ?? 'root',
  password: process.env.DYE_TEST_MYSQL_PASSWORD ?? '',
} as const;
export const AMQP_URL = process.env.DYE_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** etcd's client URL (the infra script runs one member on 2379). */
export const ETCD_URL = process.env.DYE_TEST_ETCD_URL ?? 'http://127.0.0.1:2379';
/** RabbitMQ's management HTTP API (the rabbitmq_management plugin), for topology and permissions. */
export const RABBITMQ_MANAGEMENT = {
  url: process.env.DYE_TEST_RABBITMQ_MANAGEMENT_URL ?? 'http://127.0.0.1:15672',
  user: process.env.DYE_TEST_RABBITMQ_USER ?? 'guest',
  password: process.env.DYE_TEST_RABBITMQ_PASSWORD ?? 'guest',
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

/** Deletes every Redis key under `prefix` (a test's own keys), for afterAll. */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

/**
 * Probes until `ok` holds or `timeoutMs` passes (failed probes count as not
 * yet), and says what it saw last when it gives up.
 */
export async function eventually<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (ok(last)) return last;
    } catch {
      // not yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
}

/** One call to the management HTTP API as the test admin; the JSON answer. */
export async function managementApi(method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${RABBITMQ_MANAGEMENT.url}/api${path}`, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`${RABBITMQ_MANAGEMENT.user}:${RABBITMQ_MANAGEMENT.password}`).toString('base64')}`,
      'content-type': 'application/json',
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok && response.status !== 404) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
