import { setLogger, withTenant } from '@dye/core';
import { RedisRegistry } from '@dye/discovery';
import { createTenantClient, registerTenantRouting } from '@dye/grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { eventually } from '../../../test/support/services.js';
import { check, InventoryClient, type InventoryClientType, type InventoryInstance, startInventory } from './support.js';

// The registry's Redis is this test's own, so it can be stopped and started.
const timings = { heartbeatInterval: 100, ttl: 1000, resyncInterval: 100 };
let redis: OwnRedisServer;
let callerRegistry: RedisRegistry;
let instanceRegistry: RedisRegistry;
const started: InventoryInstance[] = [];
let inventory: InventoryClientType;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  redis = new OwnRedisServer(await freePort());
  await redis.start();
  callerRegistry = new RedisRegistry({ redis: redis.url, ...timings });
  instanceRegistry = new RedisRegistry({ redis: redis.url, ...timings });
  registerTenantRouting({ registry: callerRegistry });
  started.push(await startInventory({ name: 'base-1', lane: 'baseline', registry: instanceRegistry }));
  started.push(await startInventory({ name: 'red-1', lane: 'red', registry: instanceRegistry }));
  inventory = createTenantClient(InventoryClient as never, 'shop.inventory') as unknown as InventoryClientType;
});

afterAll(async () => {
  inventory.close();
  for (const running of started) running.kill();
  await callerRegistry.close();
  await instanceRegistry.close();
  await redis.stop();
});

describe('registry outage', () => {
  it('keeps routing by lane from the cache while Redis is down, and picks up changes after', async () => {
    await eventually(
      () => withTenant('red', () => check(inventory)),
      (stock) => stock.instance === 'red-1',
    );

    await redis.stop();
    await eventually(
      () => callerRegistry.snapshot('shop.inventory'),
      (update) => update.stale,
    );
    // Longer than the TTL: nothing renews, yet the cache keeps both lanes routable.
    await new Promise((resolve) => setTimeout(resolve, timings.ttl + 500));
    const during = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        withTenant(i % 2 === 0 ? 'red' : 'baseline', async () => ({ red: i % 2 === 0, stock: await check(inventory) })),
      ),
    );
    expect(during.filter(({ red, stock }) => stock.instance !== (red ? 'red-1' : 'base-1'))).toEqual([]);

    await redis.start();
    started.push(await startInventory({ name: 'red-2', lane: 'red', registry: instanceRegistry }));
    const reds = await eventually(
      async () =>
        new Set(
          await Promise.all(Array.from({ length: 8 }, () => withTenant('red', () => check(inventory).then((stock) => stock.instance)))),
        ),
      (seen) => seen.has('red-2'),
      8000,
    );
    expect([...reds].every((name) => name.startsWith('red-'))).toBe(true);
  });
});
