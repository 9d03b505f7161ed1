/**
 * Drains and rolling restarts under steady load, with instances in processes
 * of their own (SIGTERM drains them with gracefulShutdown) and callers that
 * hear of registry changes 50–150 ms late, as callers across a network do.
 * Judged by the callers: every call answered, by an instance of its lane.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setLogger, withTenant } from '@dye/core';
import { RedisRegistry } from '@dye/discovery';
import { addHealthService, createTenantClient, gracefulShutdown, registerTenantRouting } from '@dye/grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lateRegistry, startInstance, terminate } from '../../../test/support/child-instance.js';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { deleteRedisKeys, eventually, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { check, InventoryClient, type InventoryClientType, type InventoryInstance, startInventory } from './support.js';

const prefix = uniqueName('dye_grpc_drain');
// Instances re-read the registry every 200 ms: a drain waits 1.2 s (resync + a read's timeout).
const timings = { heartbeatInterval: 200, ttl: 1000, resyncInterval: 200 };
const serverScript = fileURLToPath(new URL('./fixtures/inventory-server.mjs', import.meta.url));
const children = new Set<ChildProcess>();
const local: InventoryInstance[] = [];

const childEnv = (name: string, lane: string) => ({
  INSTANCE: name,
  LANE: lane,
  REDIS_URL,
  PREFIX: prefix,
  TIMINGS: JSON.stringify(timings),
});
const startChild = (name: string, lane: string) => startInstance(serverScript, childEnv(name, lane), children);

let callerRegistry: RedisRegistry;
let client: InventoryClientType;

const warnings: string[] = [];

beforeAll(async () => {
  setLogger({ warn: (event) => void warnings.push(event.code) });
  callerRegistry = new RedisRegistry({ redis: REDIS_URL, prefix, ...timings });
  registerTenantRouting({ registry: lateRegistry(callerRegistry) });
  // Baseline has an instance too: a red call that fell back would show as off-lane.
  const baselineRegistry = new RedisRegistry({ redis: REDIS_URL, prefix, ...timings });
  local.push(await startInventory({ name: 'base-1', lane: 'baseline', registry: baselineRegistry }));
  client = createTenantClient(InventoryClient as never, 'shop.inventory') as unknown as InventoryClientType;
});

afterAll(async () => {
  client?.close();
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(local.map((instance) => instance.stop().catch(() => {})));
  await callerRegistry?.close();
  await deleteRedisKeys(`${prefix}:`);
});

/** Red calls, `inFlight` at a time, until stopped; counts failures and calls served off the red lane. */
function steadyLoad(inFlight: number) {
  const result = { calls: 0, failed: [] as string[], offLane: [] as string[], servedBy: new Set<string>() };
  let running = true;
  const workers = Array.from({ length: inFlight }, async () => {
    while (running) {
      try {
        const stock = await withTenant('red', () => check(client, 'apple', 5));
        result.calls++;
        result.servedBy.add(stock.instance);
        if (stock.lane !== 'red' || stock.tenant !== 'red') result.offLane.push(`${stock.instance}:${stock.lane}:${stock.tenant}`);
      } catch (error) {
        result.calls++;
        result.failed.push((error as Error).message);
      }
    }
  });
  return {
    result,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return result;
    },
  };
}

describe('drain and rolling restart under load', () => {
  it('20 rolling restarts of a 2-instance red lane: 0 calls failed, 0 off-lane', async () => {
    let generation = 0;
    const lane: ChildProcess[] = [await startChild(`red-${++generation}`, 'red'), await startChild(`red-${++generation}`, 'red')];
    await eventually(
      async () =>
        new Set(await Promise.all(Array.from({ length: 8 }, () => withTenant('red', () => check(client)).then((s) => s.instance)))),
      (seen) => seen.has('red-1') && seen.has('red-2'),
      10_000,
    );
    const load = steadyLoad(8);
    const drains: Promise<string>[] = [];
    for (let restart = 0; restart < 20; restart++) {
      // Start the replacement, wait until callers use it, then stop the oldest (maxSurge 1, maxUnavailable 0).
      const name = `red-${++generation}`;
      lane.push(await startChild(name, 'red'));
      await eventually(
        async () => load.result.servedBy.has(name),
        (used) => used,
        10_000,
      );
      drains.push(terminate(lane.shift() as ChildProcess));
    }
    const outcomes = await Promise.all(drains);
    const result = await load.stop();
    expect(result.calls).toBeGreaterThan(500);
    expect(result.failed).toEqual([]);
    expect(result.offLane).toEqual([]);
    expect(outcomes.every((how) => how === 'graceful')).toBe(true);
  }, 180_000);
});

describe('a registry outage at start-up and at shutdown', () => {
  it('register() waits out the outage (retrying, logged); gracefulShutdown drains without the registry and never rejects', async () => {
    const own = new OwnRedisServer(await freePort());
    const registry = new RedisRegistry({ redis: own.url, ...timings });
    const instance = await startInventory({ name: 'outage-1', lane: 'baseline' });
    try {
      // Start-up while Redis is down: register() keeps trying, and succeeds once it is up.
      const registering = registry.register({
        app: 'shop.outage',
        id: 'outage-1',
        address: `127.0.0.1:${instance.port}`,
        lane: 'baseline',
      });
      // Each attempt waits up to 2 s for a connection before it counts as failed.
      await eventually(
        async () => warnings.includes('dye.discovery.register-retry'),
        (logged) => logged,
        6000,
      );
      await own.start();
      const registration = await registering;
      expect((await registry.snapshot('shop.outage')).instances.map((item) => item.id)).toEqual(['outage-1']);
      // Shutdown while Redis is down: calls in flight finish, the drain resolves.
      const health = addHealthService(instance.server);
      const direct = new InventoryClient(
        `127.0.0.1:${instance.port}`,
        (await import('@grpc/grpc-js')).credentials.createInsecure(),
      ) as unknown as InventoryClientType;
      const inFlight = Array.from({ length: 4 }, () => check(direct, 'apple', 300));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await own.stop();
      const how = await gracefulShutdown(instance.server, registration, { health, drainDelayMs: 100, timeoutMs: 5000 });
      expect(how).toBe('graceful');
      expect(await Promise.all(inFlight)).toHaveLength(4);
      expect(warnings).toContain('dye.grpc.deregister-failed');
      direct.close();
    } finally {
      await registry.close();
      await own.stop();
      instance.kill();
    }
  }, 30_000);

  it('a registry closed while register() waits rejects it with a clear error', async () => {
    const registry = new RedisRegistry({ redis: `redis://127.0.0.1:${await freePort()}`, ...timings });
    const registering = registry.register({ app: 'shop.never', id: 'n-1', address: '127.0.0.1:1', lane: 'baseline' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const outcome = expect(registering).rejects.toThrow('closed before shop.never/n-1 could register');
    await registry.close();
    await outcome;
  });
});
