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

/** Red and baseline calls, 8 at a time, until stopped: failures, and calls answered off their lane. */
function steadyLoad() {
  const result = { calls: 0, failed: [] as string[], offLane: [] as string[] };
  let running = true;
  const workers = Array.from({ length: 8 }, async (_, worker) => {
    const tenant = worker % 2 === 0 ? 'red' : 'baseline';
    while (running) {
      try {
        const stock = await withTenant(tenant, () => check(inventory));
        result.calls++;
        if (stock.lane !== tenant || stock.tenant !== tenant) result.offLane.push(`${tenant}->${stock.instance}`);
      } catch (error) {
        result.calls++;
        result.failed.push((error as Error).message);
      }
    }
  });
  return async () => {
    running = false;
    await Promise.all(workers);
    return result;
  };
}

describe('registry failures under load', () => {
  it('Redis killed for longer than a TTL and back empty: 0 calls failed, 0 off-lane; instances announced again', async () => {
    const stop = steadyLoad();
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, timings.ttl + 500));
    await redis.start(); // empty
    // The instances' heartbeats write their entries again; callers see them alive (not held) again.
    await eventually(
      () => callerRegistry.snapshot('shop.inventory'),
      (update) => !update.stale && !update.preserving && update.instances.length >= 2,
      10_000,
    );
    const result = await stop();
    expect(result.calls).toBeGreaterThan(200);
    expect(result.failed).toEqual([]);
    expect(result.offLane).toEqual([]);
  }, 30_000);

  it('a partition (instances alive, their heartbeats stopped): 0 calls failed for 3 TTLs', async () => {
    const stop = steadyLoad();
    await instanceRegistry.close(); // no deregistration: every entry expires together
    await new Promise((resolve) => setTimeout(resolve, 3 * timings.ttl + 500));
    const update = await callerRegistry.snapshot('shop.inventory');
    const result = await stop();
    expect(update.preserving).toBe(true);
    expect(result.calls).toBeGreaterThan(200);
    expect(result.failed).toEqual([]);
    expect(result.offLane).toEqual([]);
  }, 30_000);
});
