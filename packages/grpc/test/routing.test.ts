import { createPolicy, setLogger, withTenant } from '@dye/core';
import { RedisRegistry } from '@dye/discovery';
import { addHealthService, createTenantClient, gracefulShutdown, registerTenantRouting } from '@dye/grpc';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisKeys, eventually, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { check, InventoryClient, type InventoryClientType, type InventoryInstance, startInventory } from './support.js';

// A real Redis registry with short timings, and real gRPC servers on loopback.
const prefix = uniqueName('dye_grpc_routing');
const timings = { heartbeatInterval: 100, ttl: 500, resyncInterval: 100 };
const registry = new RedisRegistry({ redis: REDIS_URL, prefix, ...timings });
const policy = createPolicy({ tenants: { pay: { kind: 'color', fallback: 'reject' } } });
const started: InventoryInstance[] = [];
const clients: InventoryClientType[] = [];

const instanceRegistries: RedisRegistry[] = [];

/**
 * An instance with a registry connection of its own, as a separate process
 * would have: `kill()` then stops its server and its heartbeats without
 * deregistering, which is what a crash looks like to everybody else.
 */
async function instance(name: string, lane: string, app = 'shop.inventory', next?: () => InventoryClientType) {
  const own = new RedisRegistry({ redis: REDIS_URL, prefix, ...timings });
  instanceRegistries.push(own);
  const running = await startInventory({ name, lane, registry: own, app, ...(next ? { next } : {}) });
  const kill = running.kill;
  running.kill = () => {
    kill();
    void own.close();
  };
  started.push(running);
  return running;
}

function client(app = 'shop.inventory'): InventoryClientType {
  const created = createTenantClient(InventoryClient as never, app) as unknown as InventoryClientType;
  clients.push(created);
  return created;
}

beforeAll(() => {
  setLogger({ warn: () => {} });
  registerTenantRouting({ registry, policy });
});

afterAll(async () => {
  for (const created of clients) created.close();
  await Promise.all(started.map((running) => running.stop().catch(() => {})));
  await Promise.all(instanceRegistries.map((own) => own.close()));
  await deleteRedisKeys(`${prefix}:`);
  await registry.close();
});

describe('dye_tenant routing: 3 baseline + 1 red instance', () => {
  let inventory: InventoryClientType;
  let red: InventoryInstance;

  beforeAll(async () => {
    await instance('base-1', 'baseline');
    await instance('base-2', 'baseline');
    await instance('base-3', 'baseline');
    red = await instance('red-1', 'red');
    inventory = client();
  });

  it('routes 1,000 interleaved calls of baseline, red and shadow without one misroute', async () => {
    // Warm up until every baseline instance answers, so the spread below is not
    // an artefact of which connection came up first.
    await eventually(
      async () => new Set(await Promise.all(Array.from({ length: 9 }, () => check(inventory).then((stock) => stock.instance)))),
      (seen) => seen.size === 3,
    );
    const tenants = ['baseline', 'red', 'shadow'] as const;
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const tenant = tenants[i % 3] as string;
        return withTenant(tenant, async () => ({ tenant, stock: await check(inventory) }));
      }),
    );
    const misrouted = results.filter(({ tenant, stock }) => (tenant === 'red' ? stock.lane !== 'red' : stock.lane !== 'baseline'));
    expect(misrouted).toEqual([]);
    // The tenant travels with the call, also to baseline instances (fallback of shadow).
    expect(results.filter(({ tenant, stock }) => stock.tenant !== tenant)).toEqual([]);
    // Baseline traffic is spread over the three baseline instances.
    const baselineInstances = new Set(results.filter(({ tenant }) => tenant === 'baseline').map(({ stock }) => stock.instance));
    expect(baselineInstances).toEqual(new Set(['base-1', 'base-2', 'base-3']));
  });

  it('falls back to baseline when the red instance dies, and returns to red when one comes back', async () => {
    red.kill(); // a crash: no deregistration
    const fallback = await eventually(
      () => withTenant('red', () => check(inventory)),
      (stock) => stock.lane === 'baseline',
      timings.ttl,
    );
    expect(fallback.tenant).toBe('red');
    red = await instance('red-2', 'red');
    const back = await eventually(
      () => withTenant('red', () => check(inventory)),
      (stock) => stock.instance === 'red-2',
    );
    expect(back.lane).toBe('red');
  });
});

describe('strict tenants', () => {
  it('fail UNAVAILABLE, naming app and tenant, when their lane has no instance', async () => {
    const payments = await instance('pay-1', 'pay', 'shop.payments');
    await instance('payments-base', 'baseline', 'shop.payments');
    const payClient = client('shop.payments');
    expect((await withTenant('pay', () => check(payClient))).instance).toBe('pay-1');
    payments.kill();
    const error = await eventually(
      () =>
        withTenant('pay', () => check(payClient)).then(
          () => undefined,
          (failure: grpc.ServiceError) => failure,
        ),
      (failure) => failure !== undefined,
    );
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.details).toContain('shop.payments');
    expect(error?.details).toContain('"pay"');
    expect((await check(payClient)).instance).toBe('payments-base');
  });
});

describe('three hops A -> B -> C where B has no red instance', () => {
  it('C still sees red, and red instances serve A and C', async () => {
    await instance('c-base', 'baseline', 'shop.c');
    await instance('c-red', 'red', 'shop.c');
    const toC = () => client('shop.c');
    await instance('b-base', 'baseline', 'shop.b', toC);
    const toB = () => client('shop.b');
    await instance('a-base', 'baseline', 'shop.a', toB);
    await instance('a-red', 'red', 'shop.a', toB);
    const a = client('shop.a');
    const stock = await withTenant('red', () => check(a));
    expect(stock.instance).toBe('a-red');
    expect(stock.tenant).toBe('red');
    expect(stock.downstream).toEqual(['red', 'red']); // B ran in red, C ran in red
    const baseline = await check(a);
    expect([baseline.instance, baseline.downstream]).toEqual(['a-base', ['baseline', 'baseline']]);
  });
});

describe('graceful shutdown', () => {
  it('lets in-flight calls finish, reports NOT_SERVING, and new picks avoid the instance', async () => {
    const leaving = await instance('drain-1', 'baseline', 'shop.drain');
    const health = addHealthService(leaving.server);
    await instance('drain-2', 'baseline', 'shop.drain');
    const drain = client('shop.drain');
    // Warm up until both instances answer.
    await eventually(
      async () => new Set(await Promise.all(Array.from({ length: 6 }, () => check(drain).then((stock) => stock.instance)))),
      (seen) => seen.size === 2,
    );
    // A health watcher on the leaving instance sees it stop serving.
    const HealthClient = grpc.makeClientConstructor(healthService as never, 'grpc.health.v1.Health');
    const healthClient = new HealthClient(`127.0.0.1:${leaving.port}`, grpc.credentials.createInsecure()) as unknown as {
      watch(request: { service: string }): grpc.ClientReadableStream<{ status: string }>;
      close(): void;
    };
    const statuses: string[] = [];
    const watch = healthClient.watch({ service: '' });
    const notServing = new Promise<void>((resolve) => {
      watch.on('data', (response) => {
        statuses.push(response.status);
        if (response.status === 'NOT_SERVING') {
          watch.cancel();
          resolve();
        }
      });
      watch.on('error', () => {});
    });
    await eventually(
      async () => statuses.length,
      (count) => count > 0,
    );

    const slow = Array.from({ length: 4 }, () => check(drain, 'apple', 300));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const shutdown = gracefulShutdown(leaving.server, leaving.registration, { timeoutMs: 5000, health });
    await notServing;
    healthClient.close();
    expect(statuses).toEqual(['SERVING', 'NOT_SERVING']);
    const finished = await Promise.all(slow);
    expect(finished).toHaveLength(4);
    expect(await shutdown).toBe('graceful');
    const after = await Promise.all(Array.from({ length: 20 }, () => check(drain)));
    expect(new Set(after.map((stock) => stock.instance))).toEqual(new Set(['drain-2']));
  });
});
