/**
 * HTTP app routing when an instance dies: instances in processes of their
 * own, registered in a Redis registry whose TTL outlives the test (a crashed
 * instance stays registered throughout), callers through tenantDispatcher.
 * Judged by the callers: every request answered, in its tenant.
 */
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { setLogger, withTenant } from '@dye/core';
import { RedisRegistry } from '@dye/discovery';
import { TenantHttpAgent, tenantDispatcher } from '@dye/http';
import got from 'got';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInstance } from '../../../test/support/child-instance.js';
import { deleteRedisKeys, eventually, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { forGlobalFetch } from './support.js';

const prefix = uniqueName('dye_http_failover');
// Entries live 20 s: the registry never learns of the crash during the test.
const timings = { heartbeatInterval: 5_000, ttl: 20_000, resyncInterval: 500 };
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

async function price(method = 'GET'): Promise<Answer> {
  const response = await fetch('http://shop.pricing/price', {
    method,
    ...(method === 'POST' ? { body: '{"sku":"apple"}' } : {}),
    dispatcher: forGlobalFetch(dispatcher),
  });
  return (await response.json()) as Answer;
}

/**
 * Eight red callers of `call` in a loop; 500 ms in, `instance` is killed;
 * `afterMs` later the callers stop. What each call answered or failed, and when.
 */
async function crashUnderLoad(instance: ChildProcess, call: () => Promise<Answer>, afterMs: number) {
  const failures: Array<{ at: number; message: string }> = [];
  const answers: Array<{ at: number } & Answer> = [];
  let running = true;
  const workers = Array.from({ length: 8 }, async () => {
    while (running) {
      try {
        answers.push({ at: Date.now(), ...(await withTenant('red', call)) });
      } catch (error) {
        failures.push({ at: Date.now(), message: (error as Error).message });
      }
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const crashedAt = Date.now();
  instance.kill('SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, afterMs));
  running = false;
  await Promise.all(workers);
  return { crashedAt, answers, failures };
}

beforeAll(async () => {
  setLogger({ warn: () => {} });
  registry = new RedisRegistry({ redis: REDIS_URL, prefix, ...timings });
  dispatcher = tenantDispatcher({ registry, internal: ['loopback'] });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await dispatcher?.close();
  await registry?.close();
  await deleteRedisKeys(`${prefix}:`);
});

describe('outlier ejection and retry on HTTP app routing', () => {
  it('SIGKILL of the only red instance under load: only POSTs in flight at the crash fail, red requests fall back to baseline still red', async () => {
    const red = await startChild('red-1', 'red');
    await startChild('base-1', 'baseline');
    await eventually(
      () => withTenant('red', () => price()),
      (answer) => answer.instance === 'red-1',
      10_000,
    );
    const failures: Array<{ at: number; message: string }> = [];
    const answers: Array<{ at: number; method: string } & Answer> = [];
    let running = true;
    const workers = Array.from({ length: 8 }, async (_, worker) => {
      const method = worker % 2 === 0 ? 'GET' : 'POST';
      while (running) {
        try {
          const answer = await withTenant('red', () => price(method));
          answers.push({ at: Date.now(), method, ...answer });
        } catch (error) {
          failures.push({ at: Date.now(), message: `${method}: ${(error as Error).message} ${String((error as Error).cause ?? '')}` });
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const crashedAt = Date.now();
    red.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    running = false;
    await Promise.all(workers);
    const after = answers.filter((answer) => answer.at > crashedAt + 200);
    // Only requests in flight at the crash that may not be sent again (POST, sent already) fail; none after 1 s.
    expect(failures.filter((failure) => failure.at > crashedAt + 1_000 || !failure.message.startsWith('POST'))).toEqual([]);
    expect(failures.length).toBeLessThanOrEqual(4);
    expect(after.length).toBeGreaterThan(100);
    // Color kept on fallback: every answer ran in red; after the crash baseline answered.
    expect(answers.filter((answer) => answer.tenant !== 'red')).toEqual([]);
    expect(new Set(after.map((answer) => answer.instance))).toEqual(new Set(['base-1']));
    expect(new Set(after.map((answer) => answer.method))).toEqual(new Set(['GET', 'POST']));
  }, 60_000);

  it('node:http through a TenantHttpAgent: a crashed instance is ejected and new requests go around it; no failure after 1 s', async () => {
    const agent = new TenantHttpAgent({ registry, internal: ['loopback'], agentOptions: { keepAlive: true } });
    const get = () =>
      new Promise<Answer>((resolve, reject) => {
        request({ host: 'shop.pricing', path: '/price', agent }, (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            body += chunk;
          });
          response.on('end', () => resolve(JSON.parse(body) as Answer));
          response.on('error', reject);
        })
          .on('error', reject)
          .end();
      });
    try {
      const red = await startChild('red-2', 'red');
      await eventually(
        () => withTenant('red', get),
        (answer) => answer.instance === 'red-2',
        10_000,
      );
      const { crashedAt, answers, failures } = await crashUnderLoad(red, get, 2_500);
      const late = answers.filter((answer) => answer.at > crashedAt + 1_000);
      expect(failures.filter((failure) => failure.at > crashedAt + 1_000)).toEqual([]);
      expect(late.length).toBeGreaterThan(100);
      expect(answers.filter((answer) => answer.tenant !== 'red')).toEqual([]);
      expect(new Set(late.map((answer) => answer.instance))).toEqual(new Set(['base-1']));
    } finally {
      agent.destroy();
    }
  }, 60_000);

  it('got through a TenantHttpAgent: its own retry of a GET in flight at the crash goes around the ejected instance; nothing fails', async () => {
    const agent = new TenantHttpAgent({ registry, internal: ['loopback'], agentOptions: { keepAlive: true } });
    const client = got.extend({ agent: { http: agent }, retry: { limit: 2, backoffLimit: 100 }, timeout: { request: 5_000 } });
    const get = () => client('http://shop.pricing/price').json<Answer>();
    try {
      const red = await startChild('red-3', 'red');
      await eventually(
        () => withTenant('red', get),
        (answer) => answer.instance === 'red-3',
        10_000,
      );
      const { crashedAt, answers, failures } = await crashUnderLoad(red, get, 2_000);
      expect(failures).toEqual([]);
      expect(answers.filter((answer) => answer.tenant !== 'red')).toEqual([]);
      expect(new Set(answers.filter((answer) => answer.at > crashedAt + 500).map((answer) => answer.instance))).toEqual(
        new Set(['base-1']),
      );
    } finally {
      agent.destroy();
    }
  }, 60_000);
});
