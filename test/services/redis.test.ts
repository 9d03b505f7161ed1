import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, uniqueName } from '../support/services.js';

// Proves the Redis every integration test uses is a real server: it answers
// PING, stores a value and reports its own version.
describe('Redis service', () => {
  const prefix = uniqueName('smoke');
  let redis: Redis;

  beforeAll(async () => {
    // Fail fast instead of retrying forever: an unreachable service is a failed test.
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await redis.connect();
  });

  afterAll(async () => {
    await redis.del(`${prefix}:greeting`);
    redis.disconnect();
  });

  it('answers PING and round-trips SET/GET', async () => {
    expect(await redis.ping()).toBe('PONG');
    await redis.set(`${prefix}:greeting`, 'hello', 'EX', 60);
    expect(await redis.get(`${prefix}:greeting`)).toBe('hello');
    expect(await redis.ttl(`${prefix}:greeting`)).toBeGreaterThan(0);
  });

  it('is a Redis server with a version', async () => {
    const info = await redis.info('server');
    expect(info).toMatch(/redis_version:\d+\.\d+/);
  });
});
