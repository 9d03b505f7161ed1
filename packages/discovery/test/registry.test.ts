import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogger } from '@dye/core';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { deleteRedisKeys, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { type Instance, type InstancesUpdate, RedisRegistry, StaticRegistry } from '../src/index.js';
import { ids, nextUpdate, Watcher } from './watching.js';

beforeAll(() => setLogger({ warn: () => {} }));

const instance = (id: string, lane = 'baseline', app = 'shop.inventory'): Instance => ({
  app,
  id,
  address: `127.0.0.1:${5000 + Number(id.replace(/\D/g, '') || 0)}`,
  lane,
});

describe('StaticRegistry', () => {
  it('serves instances from a list and from a JSON file, with validation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dye-static-'));
    const file = join(dir, 'instances.json');
    writeFileSync(file, JSON.stringify({ instances: [instance('i1'), instance('i2', 'RED')] }));
    const registry = StaticRegistry.fromFile(file);
    const update = await registry.snapshot('shop.inventory');
    expect(update.instances.map((item) => item.lane)).toEqual(['baseline', 'red']);
    expect(() => new StaticRegistry([{ ...instance('i3'), address: 'nowhere' }])).toThrow(/host:port/);
    expect(() => new StaticRegistry([{ ...instance('i3'), app: 'Shop Inventory' }])).toThrow(/app name/);
    expect(() => new StaticRegistry([{ ...instance('i3'), lane: 'not valid' }])).toThrow(/lane/);
  });

  it('tells watchers about registrations', async () => {
    const registry = new StaticRegistry();
    const added = nextUpdate(registry, 'shop.orders', (update) => update.instances.length === 1);
    const registration = await registry.register(instance('o1', 'red', 'shop.orders'));
    expect(ids(await added)).toEqual(['o1']);
    await registration.deregister();
    expect((await registry.snapshot('shop.orders')).instances).toEqual([]);
  });
});

describe('RedisRegistry on a real Redis', () => {
  const prefix = uniqueName('dye_registry_test');
  const fast = { heartbeatInterval: 100, ttl: 500, resyncInterval: 100 };
  let registry: RedisRegistry;
  let caller: RedisRegistry;

  beforeAll(() => {
    registry = new RedisRegistry({ redis: REDIS_URL, prefix, ...fast });
    caller = new RedisRegistry({ redis: REDIS_URL, prefix, ...fast });
  });
  afterAll(async () => {
    await deleteRedisKeys(`${prefix}:`);
    await registry.close();
    await caller.close();
  });

  it('registers, announces and deregisters instances with their lanes', async () => {
    const app = 'shop.catalog';
    const a = await registry.register(instance('c1', 'baseline', app));
    const b = await registry.register(instance('c2', 'red', app));
    const seen = await nextUpdate(caller, app, (update) => update.instances.length === 2);
    expect(seen.instances.map((item) => [item.id, item.lane]).sort()).toEqual([
      ['c1', 'baseline'],
      ['c2', 'red'],
    ]);
    expect(seen.stale).toBe(false);
    const gone = nextUpdate(caller, app, (update) => update.instances.length === 1);
    await b.deregister();
    expect(ids(await gone)).toEqual(['c1']);
    expect(await registry.apps()).toContain(app);
    const records = await registry.records(app);
    expect(records[0]?.expiresAt).toBeGreaterThan(Date.now());
    await a.deregister();
  });

  it('works from a client of ioredis 6 with replyMapping resp3 (scores as pairs, maps as objects)', async () => {
    // ioredis 5 ignores the options: the same test then runs on arrays.
    const client = new Redis(REDIS_URL, { protocol: 3, replyMapping: 'resp3', lazyConnect: true } as RedisOptions);
    const resp3 = new RedisRegistry({ redis: client, prefix, ...fast });
    try {
      const app = 'shop.resp3';
      const registration = await resp3.register(instance('r1', 'red', app));
      const seen = await nextUpdate(resp3, app, (update) => update.instances.length === 1);
      expect(seen.instances.map((item) => [item.id, item.lane])).toEqual([['r1', 'red']]);
      expect((await resp3.records(app))[0]?.expiresAt).toBeGreaterThan(Date.now());
      await registration.deregister();
    } finally {
      await resp3.close();
      client.disconnect();
    }
  });

  it('drops an instance that stops renewing after its TTL', async () => {
    const app = 'shop.expiry';
    const live = await registry.register(instance('e1', 'baseline', app));
    const doomed = new RedisRegistry({ redis: REDIS_URL, prefix, ...fast });
    await doomed.register(instance('e2', 'red', app));
    expect(ids(await nextUpdate(caller, app, (update) => update.instances.length === 2))).toEqual(['e1', 'e2']);
    await doomed.close(); // dies without deregistering: heartbeats stop
    const started = Date.now();
    const after = await nextUpdate(caller, app, (update) => update.instances.length === 1, 3000);
    expect(ids(after)).toEqual(['e1']);
    expect(Date.now() - started).toBeLessThan(fast.ttl + 4 * fast.resyncInterval + 500);
    await live.deregister();
  });

  it('holds back a mass expiry (self-preservation) but not an explicit deregistration', async () => {
    const app = 'shop.mass';
    const watcher = new Watcher(caller, app);
    const stable = await Promise.all(['m1', 'm2'].map((id) => registry.register(instance(id, 'baseline', app))));
    const partitioned = new RedisRegistry({ redis: REDIS_URL, prefix, ...fast });
    await Promise.all(['m3', 'm4'].map((id) => partitioned.register(instance(id, 'baseline', app))));
    try {
      expect(ids(await watcher.until((update) => update.instances.length === 4))).toEqual(['m1', 'm2', 'm3', 'm4']);
      await partitioned.close(); // half the instances stop renewing at once
      const held = await watcher.until((update) => update.preserving, 3000);
      expect(ids(held)).toEqual(['m1', 'm2', 'm3', 'm4']);
      await new Promise((resolve) => setTimeout(resolve, 3 * fast.resyncInterval));
      expect(watcher.latest && ids(watcher.latest)).toEqual(['m1', 'm2', 'm3', 'm4']);
      await stable[0]?.deregister();
      expect(ids(await watcher.until((update) => update.instances.length === 3))).toEqual(['m2', 'm3', 'm4']);
    } finally {
      watcher.stop();
      await stable[1]?.deregister();
    }
  });

  it('removes a single expired instance: one crash is not a mass expiry', async () => {
    const app = 'shop.single';
    const watcher = new Watcher(caller, app);
    const stable = await Promise.all(['s1', 's2', 's3'].map((id) => registry.register(instance(id, 'baseline', app))));
    const crashing = new RedisRegistry({ redis: REDIS_URL, prefix, ...fast });
    await crashing.register(instance('s4', 'red', app));
    try {
      await watcher.until((update) => update.instances.length === 4);
      await crashing.close();
      const after = await watcher.until((update) => update.instances.length === 3, 3000);
      expect([ids(after), after.preserving]).toEqual([['s1', 's2', 's3'], false]);
    } finally {
      watcher.stop();
      await Promise.all(stable.map((registration) => registration.deregister()));
    }
  });

  it('keeps routing from its cache while the registry is down, and heals after', async () => {
    const own = new OwnRedisServer(await freePort());
    await own.start();
    const app = 'shop.outage';
    const writer = new RedisRegistry({ redis: own.url, ...fast });
    const reader = new RedisRegistry({ redis: own.url, ...fast });
    const watcher = new Watcher(reader, app);
    try {
      await writer.register(instance('x1', 'baseline', app));
      await writer.register(instance('x2', 'red', app));
      expect(ids(await watcher.until((update) => update.instances.length === 2))).toEqual(['x1', 'x2']);

      await own.stop();
      const stale = await watcher.until((update) => update.stale, 8000);
      expect(ids(stale)).toEqual(['x1', 'x2']);
      expect((await reader.snapshot(app)).stale).toBe(true);

      await own.start(); // an empty Redis: the writer's heartbeats register its instances again
      const healed = await watcher.until((update) => !update.stale && update.instances.length === 2, 10000);
      expect(ids(healed)).toEqual(['x1', 'x2']);
      await writer.register(instance('x3', 'baseline', app));
      expect(ids(await watcher.until((update) => update.instances.length === 3, 8000))).toEqual(['x1', 'x2', 'x3']);
    } finally {
      watcher.stop();
      await writer.close();
      await reader.close();
      await own.stop();
    }
  });

  it('never empties a pool when Redis comes back empty after an outage longer than a TTL; instances are alive again within a heartbeat', async () => {
    const own = new OwnRedisServer(await freePort());
    await own.start();
    const app = 'shop.restart';
    // Instances renew every second; the caller re-reads every 100 ms, so its
    // first read after the restart may come before any heartbeat wrote again.
    const timings = { heartbeatInterval: 1000, ttl: 3000 };
    const writer = new RedisRegistry({ redis: own.url, ...timings });
    const reader = new RedisRegistry({ redis: own.url, ...timings, resyncInterval: 100 });
    const seen: InstancesUpdate[] = [];
    const watcher = new Watcher(reader, app);
    const stopRecording = reader.watch(app, (update) => seen.push(update));
    try {
      for (const [id, lane] of [
        ['r1', 'baseline'],
        ['r2', 'baseline'],
        ['r3', 'red'],
      ] as const)
        await writer.register(instance(id, lane, app));
      await watcher.until((update) => update.instances.length === 3);
      await own.stop();
      await new Promise((resolve) => setTimeout(resolve, timings.ttl + 500));
      await own.start(); // empty: no data survived
      const restartedAt = Date.now();
      const back = await watcher.until((update) => !update.stale && !update.preserving && update.instances.length === 3, 8000);
      expect(ids(back)).toEqual(['r1', 'r2', 'r3']);
      // One heartbeat, plus ioredis's reconnect backoff (at most 2 s) after a long outage.
      expect(Date.now() - restartedAt).toBeLessThan(timings.heartbeatInterval + 2000 + 500);
      // At no point did the caller's pool lose an instance.
      const sinceFull = seen.slice(seen.findIndex((update) => update.instances.length === 3));
      expect(Math.min(...sinceFull.map((update) => update.instances.length))).toBe(3);
    } finally {
      stopRecording();
      watcher.stop();
      await writer.close();
      await reader.close();
      await own.stop();
    }
  });

  it("holds instances lost with the registry's data for as long as they cannot renew (3 TTLs and more), then takes them back alive", async () => {
    const own = new OwnRedisServer(await freePort());
    await own.start();
    const app = 'shop.partition';
    const writer = new RedisRegistry({ redis: own.url, ...fast });
    const reader = new RedisRegistry({ redis: own.url, ...fast });
    const seen: InstancesUpdate[] = [];
    const watcher = new Watcher(reader, app);
    const stopRecording = reader.watch(app, (update) => seen.push(update));
    let again: RedisRegistry | undefined;
    try {
      for (const id of ['p1', 'p2', 'p3']) await writer.register(instance(id, 'baseline', app));
      await watcher.until((update) => update.instances.length === 3);
      // The instances lose the registry (their heartbeats stop) and it comes back empty.
      await writer.close();
      await own.stop();
      await new Promise((resolve) => setTimeout(resolve, fast.ttl + 200));
      await own.start();
      const held = await watcher.until((update) => !update.stale && update.preserving, 5000);
      expect(ids(held)).toEqual(['p1', 'p2', 'p3']);
      await new Promise((resolve) => setTimeout(resolve, 3 * fast.ttl));
      expect(watcher.latest && [ids(watcher.latest), watcher.latest.preserving]).toEqual([['p1', 'p2', 'p3'], true]);
      // They reach the registry again.
      again = new RedisRegistry({ redis: own.url, ...fast });
      for (const id of ['p1', 'p2', 'p3']) await again.register(instance(id, 'baseline', app));
      const back = await watcher.until((update) => !update.preserving, 3000);
      expect(ids(back)).toEqual(['p1', 'p2', 'p3']);
      const sinceFull = seen.slice(seen.findIndex((update) => update.instances.length === 3));
      expect(Math.min(...sinceFull.map((update) => update.instances.length))).toBe(3);
    } finally {
      stopRecording();
      watcher.stop();
      await again?.close();
      await reader.close();
      await own.stop();
    }
  });

  it('announces an instance its heartbeat had to write again, so watchers need not wait for a resync', async () => {
    const app = 'shop.recreated';
    const slowReader = new RedisRegistry({ redis: REDIS_URL, prefix, ...fast, resyncInterval: 60_000 });
    const watcher = new Watcher(slowReader, app);
    const registration = await registry.register(instance('n1', 'baseline', app));
    try {
      await watcher.until((update) => update.instances.length === 1);
      // The entry is lost (keys removed by hand); the caller holds it as vanished...
      await deleteRedisKeys(`${prefix}:app:${app}:`);
      await slowReader.snapshot(app);
      expect(watcher.latest?.preserving).toBe(true);
      // ...and the next heartbeat writes it again and says so: alive, not held, long before a resync.
      const back = await watcher.until((update) => !update.preserving && update.instances.length === 1, 2000);
      expect(ids(back)).toEqual(['n1']);
    } finally {
      watcher.stop();
      await registration.deregister();
      await slowReader.close();
    }
  });
});
