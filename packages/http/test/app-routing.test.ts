import { get as httpGet } from 'node:http';
import { createPolicy, currentTenant, setLogger, withTenant } from '@dye/core';
import { RedisRegistry } from '@dye/discovery';
import { TenantHttpAgent, tenantDispatcher, tenantMiddleware } from '@dye/http';
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisKeys, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { forGlobalFetch, listen } from './support.js';

// http://shop.pricing/… resolved through a real Redis registry to HTTP servers
// labelled baseline and red.
const prefix = uniqueName('dye_http_routing');
const registry = new RedisRegistry({ redis: REDIS_URL, prefix, heartbeatInterval: 200, ttl: 1000, resyncInterval: 100 });
const policy = createPolicy({ tenants: { pay: { kind: 'color', fallback: 'reject' } } });
const servers: Awaited<ReturnType<typeof listen>>[] = [];
const dispatcher = tenantDispatcher({ registry, policy });

async function pricing(name: string, lane: string) {
  const middleware = tenantMiddleware({ mode: 'internal' });
  const server = await listen((req, res) =>
    middleware(req, res, () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ instance: name, lane, tenant: currentTenant().name }));
    }),
  );
  servers.push(server);
  await registry.register({ app: 'shop.pricing', id: name, address: `127.0.0.1:${server.port}`, lane });
}

async function price(): Promise<{ instance: string; lane: string; tenant: string }> {
  const response = await fetch('http://shop.pricing/price', { dispatcher: forGlobalFetch(dispatcher) });
  return (await response.json()) as { instance: string; lane: string; tenant: string };
}

beforeAll(async () => {
  setLogger({ warn: () => {} });
  await pricing('p-base-1', 'baseline');
  await pricing('p-base-2', 'baseline');
  await pricing('p-red', 'red');
});
afterAll(async () => {
  await dispatcher.close();
  await Promise.all(servers.map((server) => server.close()));
  await registry.close();
  await deleteRedisKeys(`${prefix}:`);
});

describe('tenantDispatcher routes http://<app>/ through the registry', () => {
  it('sends each tenant to its lane (or baseline), carrying the tenant, with no misroute', async () => {
    const tenants = ['baseline', 'red', 'shadow'];
    const results = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        withTenant(tenants[i % 3] as string, async () => ({ sent: tenants[i % 3], got: await price() })),
      ),
    );
    const misrouted = results.filter(
      ({ sent, got }) => (sent === 'red' ? got.lane !== 'red' : got.lane !== 'baseline') || got.tenant !== sent,
    );
    expect(misrouted).toEqual([]);
    // The baseline lane (serving baseline and shadow here) round-robins over both instances.
    expect(new Set(results.filter(({ sent }) => sent !== 'red').map(({ got }) => got.instance))).toEqual(new Set(['p-base-1', 'p-base-2']));
  });

  it('refuses a strict tenant without an instance, naming app and tenant', async () => {
    const failure = await withTenant('pay', () =>
      price().then(
        () => undefined,
        (error: Error & { cause?: Error }) => error.cause ?? error,
      ),
    );
    expect(failure?.message).toContain('shop.pricing');
    expect(failure?.message).toContain('"pay"');
    const direct = await withTenant('pay', () =>
      undiciRequest('http://shop.pricing/price', { dispatcher }).then(
        () => undefined,
        (error: Error) => error,
      ),
    );
    expect(direct?.message).toContain('"pay"');
  });

  it('leaves hosts that are not apps alone', async () => {
    const plain = await listen((_req, res) => res.end('plain'));
    servers.push(plain);
    const text = await withTenant('red', () =>
      fetch(plain.url, { dispatcher: forGlobalFetch(dispatcher) }).then((response) => response.text()),
    );
    expect(text).toBe('plain');
  });
});

describe('node:http agents route http://<app>/ through the registry', () => {
  const fetchJson = (agent: TenantHttpAgent, headers: Record<string, string> = {}) =>
    new Promise<{ instance: string; lane: string; tenant: string }>((resolve, reject) => {
      // The head is built (end() is implicit in get) before the first lookup finishes.
      httpGet('http://shop.pricing/price', { agent, headers }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => resolve(JSON.parse(body)));
      }).on('error', reject);
    });

  it('the very first request to an app, sent before the app is known, reaches its lane', async () => {
    for (const tenant of ['red', 'baseline', 'shadow']) {
      const agent = new TenantHttpAgent({ registry, policy });
      const got = await withTenant(tenant, () => fetchJson(agent, { 'x-tenant': 'canary' }));
      expect(got).toMatchObject({ lane: tenant === 'red' ? 'red' : 'baseline', tenant });
      agent.destroy();
    }
  });

  it('later requests route without waiting, in each tenant', async () => {
    const agent = new TenantHttpAgent({ registry, policy });
    const tenants = ['baseline', 'red', 'shadow'];
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        withTenant(tenants[i % 3] as string, async () => ({ sent: tenants[i % 3], got: await fetchJson(agent) })),
      ),
    );
    expect(results.filter(({ sent, got }) => got.tenant !== sent || (sent === 'red') !== (got.lane === 'red'))).toEqual([]);
    agent.destroy();
  });
});
