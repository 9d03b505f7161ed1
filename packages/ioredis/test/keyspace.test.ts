import { setLogger, withTenant } from '@dye/core';
import { type IsolatedRedisUser, tenantRedis } from '@dye/ioredis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { shadowUser } from './support.js';

let server: OwnRedisServer;
let admin: Redis;
let isolated: IsolatedRedisUser;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  server = new OwnRedisServer(await freePort());
  await server.start();
  admin = new Redis(server.url);
  isolated = await shadowUser(admin);
});
afterAll(async () => {
  admin.disconnect();
  await server.stop();
});

describe('SCAN through a shared keyspace', () => {
  it('10,000 production and 10,000 shadow keys: shadow scanStream sees exactly its own, under its own names', async () => {
    const pipeline = admin.pipeline();
    for (let i = 0; i < 10_000; i++) pipeline.set(`item:${i}`, 'production').set(`shadow:item:${i}`, 'shadow');
    await pipeline.exec();
    const redis = tenantRedis(new Redis(server.url), { isolated });
    try {
      const seen = await withTenant('shadow', async () => {
        const keys = new Set<string>();
        const stream = redis.scanStream({ match: 'item:*', count: 500 });
        for await (const page of stream) for (const key of page as string[]) keys.add(key);
        return keys;
      });
      expect(seen.size).toBe(10_000);
      expect([...seen].every((key) => /^item:\d+$/.test(key))).toBe(true);
      const all = await withTenant('shadow', async () => {
        let cursor = '0';
        let count = 0;
        do {
          const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
          cursor = next;
          count += keys.length;
        } while (cursor !== '0');
        return count;
      });
      expect(all).toBe(10_000);
      // Baseline is production: it sees every key of the database as it is.
      expect((await redis.keys('item:*')).length).toBe(10_000);
    } finally {
      redis.disconnect();
    }
  });
});

describe('1,000 interleaved operations of three tenants with auto-pipelining', () => {
  it('attributes every operation to its own tenant', async () => {
    const raw = new Redis(server.url, { enableAutoPipelining: true });
    const redis = tenantRedis(raw, { isolated });
    try {
      const tenants = ['baseline', 'red', 'shadow'];
      await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          withTenant(tenants[i % 3] as string, async () => {
            await redis.set(`op:${i}`, tenants[i % 3] as string);
            await redis.incr('op:count');
          }),
        ),
      );
      const wrong: string[] = [];
      for (let i = 0; i < 1000; i++) {
        const tenant = tenants[i % 3];
        const key = tenant === 'shadow' ? `shadow:op:${i}` : `op:${i}`;
        const other = tenant === 'shadow' ? `op:${i}` : `shadow:op:${i}`;
        const [value, leaked] = await admin.mget(key, other);
        if (value !== tenant || leaked !== null) wrong.push(`${i}: ${tenant} -> ${value}/${leaked}`);
      }
      expect(wrong).toEqual([]);
      expect(await admin.mget('op:count', 'shadow:op:count')).toEqual(['667', '333']);
    } finally {
      raw.disconnect();
    }
  });
});
