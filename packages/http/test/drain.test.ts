/**
 * Rolling restarts of an HTTP lane under load, instances in processes of their
 * own drained by gracefulHttpShutdown on SIGTERM, callers (tenantDispatcher
 * app routing) hearing of registry changes 50–150 ms late. POSTs are in the
 * load: a request that is not safe to send again fails if a drain cuts it.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setLogger, withTenant } from '@dye/core';
import { RedisRegistry } from '@dye/discovery';
import { tenantDispatcher } from '@dye/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lateRegistry, startInstance, terminate } from '../../../test/support/child-instance.js';
import { deleteRedisKeys, eventually, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { forGlobalFetch } from './support.js';

const prefix = uniqueName('dye_http_drain');
const timings = { heartbeatInterval: 200, ttl: 1_000, resyncInterval: 200 };
const serverScript = fileURLToPath(new URL('./fixtures/pricing-server.mjs', import.meta.url));
const children = new Set<ChildProcess>();
let registry: RedisRegistry;
let dispatcher: ReturnType<typeof tenantDispatcher>;

const startChild = (name: string, lane: string) =>
  startInstance(serverScript, { INSTANCE: name, LANE: lane, REDIS_URL, PREFIX: prefix, TIMINGS: JSON.stringify(timings) }, children);

interface Answer {
  instance: string;
  lane: string;
  tenant: string;
}

beforeAll(async () => {
  setLogger({ warn: () => {} });
  registry = new RedisRegistry({ redis: REDIS_URL, prefix, ...timings });
  dispatcher = tenantDispatcher({ registry: lateRegistry(registry), internal: ['loopback'] });
  await startChild('base-1', 'baseline');
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await dispatcher?.close();
  await registry?.close();
  await deleteRedisKeys(`${prefix}:`);
});

describe('HTTP drain', () => {
  it('20 rolling restarts of a 2-instance red lane under GET and POST load: 0 requests failed, 0 off-lane', async () => {
    const price = async (method: string): Promise<Answer> => {
      const response = await fetch('http://shop.pricing/price', {
        method,
        ...(method === 'POST' ? { body: '{"sku":"apple"}' } : {}),
        dispatcher: forGlobalFetch(dispatcher),
      });
      return (await response.json()) as Answer;
    };
    let generation = 0;
    const lane = [await startChild(`red-${++generation}`, 'red'), await startChild(`red-${++generation}`, 'red')];
    await eventually(
      () => withTenant('red', () => price('GET')),
      (answer) => answer.lane === 'red',
      10_000,
    );
    const result = { requests: 0, failed: [] as string[], offLane: [] as string[], servedBy: new Set<string>() };
    let running = true;
    const workers = Array.from({ length: 8 }, async (_, worker) => {
      const method = worker % 2 === 0 ? 'GET' : 'POST';
      while (running) {
        try {
          const answer = await withTenant('red', () => price(method));
          result.requests++;
          result.servedBy.add(answer.instance);
          if (answer.lane !== 'red' || answer.tenant !== 'red') result.offLane.push(`${method}:${answer.instance}`);
        } catch (error) {
          result.requests++;
          result.failed.push(`${method}: ${(error as Error).message} ${String((error as Error).cause ?? '')}`);
        }
      }
    });
    const drains: Promise<string>[] = [];
    for (let restart = 0; restart < 20; restart++) {
      const name = `red-${++generation}`;
      lane.push(await startChild(name, 'red'));
      await eventually(
        async () => result.servedBy.has(name),
        (used) => used,
        10_000,
      );
      drains.push(terminate(lane.shift() as ChildProcess));
    }
    const outcomes = await Promise.all(drains);
    running = false;
    await Promise.all(workers);
    expect(result.requests).toBeGreaterThan(500);
    expect(result.failed).toEqual([]);
    expect(result.offLane).toEqual([]);
    expect(outcomes.every((how) => how === 'graceful')).toBe(true);
  }, 180_000);
});
