import type { IncomingHttpHeaders } from 'node:http';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { currentTenant, IsolationError, setLogger, withTenant } from '@dye/core';
import { createEgressPolicy, injectTenantHeaders, tenantDispatcher, tenantMiddleware } from '@dye/http';
import { fastifyTenant } from '@dye/http/fastify';
import express from 'express';
import Fastify from 'fastify';
import { type Dispatcher, getGlobalDispatcher, setGlobalDispatcher, request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forGlobalFetch, listen } from './support.js';

beforeAll(() => setLogger({ warn: () => {} }));

/** A server that records the headers of every request it receives. */
async function recorder(host = '127.0.0.1') {
  const received: IncomingHttpHeaders[] = [];
  let connections = 0;
  const server = await listen((req, res) => {
    received.push(req.headers);
    res.end('ok');
  }, host);
  server.server.on('connection', () => {
    connections++;
  });
  return { ...server, received, connections: () => connections };
}

function tenantHeaders(headers: IncomingHttpHeaders | undefined) {
  return { 'x-tenant': headers?.['x-tenant'], baggage: headers?.baggage };
}

describe('tenantDispatcher with fetch', () => {
  let target: Awaited<ReturnType<typeof recorder>>;
  const dispatcher = tenantDispatcher();
  beforeAll(async () => {
    target = await recorder();
  });
  afterAll(async () => {
    await target.close();
    await dispatcher.close();
  });

  it('adds x-tenant and baggage inside a tenant, keeping the caller headers', async () => {
    await withTenant('red', () =>
      fetch(target.url, { dispatcher: forGlobalFetch(dispatcher), headers: { baggage: 'user=u1', 'x-request-id': '7' } }).then((r) =>
        r.text(),
      ),
    );
    const headers = target.received.at(-1);
    expect(tenantHeaders(headers)).toEqual({ 'x-tenant': 'red', baggage: 'tenant=red,user=u1' });
    expect(headers?.['x-request-id']).toBe('7');
  });

  it('sends no tenant headers in baseline, removing ones copied from an inbound request', async () => {
    await fetch(target.url, { dispatcher: forGlobalFetch(dispatcher) }).then((r) => r.text());
    expect(tenantHeaders(target.received.at(-1))).toEqual({ 'x-tenant': undefined, baggage: undefined });
    await fetch(target.url, {
      dispatcher: forGlobalFetch(dispatcher),
      headers: { 'X-Tenant': 'shadow', baggage: 'tenant=shadow,user=u1' },
    }).then((r) => r.text());
    expect(tenantHeaders(target.received.at(-1))).toEqual({ 'x-tenant': undefined, baggage: 'user=u1' });
  });

  it('works with undici.request too', async () => {
    await withTenant('shadow', async () => {
      const { body } = await undiciRequest(target.url, { dispatcher });
      await body.text();
    });
    expect(tenantHeaders(target.received.at(-1))).toEqual({ 'x-tenant': 'shadow', baggage: 'tenant=shadow' });
  });
});

describe('setGlobalDispatcher: the global fetch of this Node version', () => {
  let target: Awaited<ReturnType<typeof recorder>>;
  let original: Dispatcher;
  beforeAll(async () => {
    target = await recorder();
    original = getGlobalDispatcher();
    setGlobalDispatcher(tenantDispatcher());
  });
  afterAll(async () => {
    setGlobalDispatcher(original);
    await target.close();
  });

  it(`carries the tenant on plain fetch() (node ${process.version})`, async () => {
    await withTenant('canary', () => fetch(target.url).then((r) => r.text()));
    expect(tenantHeaders(target.received.at(-1))).toEqual({ 'x-tenant': 'canary', baggage: 'tenant=canary' });
  });
});

describe('injectTenantHeaders for other clients', () => {
  let target: Awaited<ReturnType<typeof recorder>>;
  beforeAll(async () => {
    target = await recorder();
  });
  afterAll(() => target.close());

  it('writes the current tenant for node:http request', async () => {
    await withTenant('red', async () => {
      const headers = injectTenantHeaders({ accept: 'text/plain' });
      await new Promise<void>((resolve, reject) => {
        httpRequest(target.url, { headers }, (response) => {
          response.resume();
          response.on('end', resolve);
        })
          .on('error', reject)
          .end();
      });
    });
    expect(tenantHeaders(target.received.at(-1))).toEqual({ 'x-tenant': 'red', baggage: 'tenant=red' });
  });

  it('writes nothing for a host outside the system, and refuses it for an isolated tenant', () => {
    const egress = createEgressPolicy({ internal: ['.svc.cluster.local'] });
    const url = 'https://api.payments.example/charge';
    expect(withTenant('red', () => injectTenantHeaders({ 'x-tenant': 'red' }, { url, egress }))).toEqual({});
    expect(withTenant('red', () => injectTenantHeaders({}, { url: 'http://orders.shop.svc.cluster.local/', egress }))).toEqual({
      'x-tenant': 'red',
      baggage: 'tenant=red',
    });
    expect(() => withTenant('shadow', () => injectTenantHeaders({}, { url, egress }))).toThrow(IsolationError);
  });

  it('writes Fetch Headers', () => {
    const headers = withTenant('red', () => injectTenantHeaders(new Headers({ baggage: 'a=1' })));
    expect([headers.get('x-tenant'), headers.get('baggage')]).toEqual(['red', 'tenant=red,a=1']);
  });
});

describe('egress guard', () => {
  // 127.0.0.1 is "inside the system"; 127.0.0.5 plays a third party (a payment provider).
  let internalService: Awaited<ReturnType<typeof recorder>>;
  let thirdParty: Awaited<ReturnType<typeof recorder>>;
  let paymentMock: Awaited<ReturnType<typeof recorder>>;
  let dispatcher: Dispatcher;

  beforeAll(async () => {
    internalService = await recorder('127.0.0.1');
    thirdParty = await recorder('127.0.0.5');
    paymentMock = await recorder('127.0.0.1');
    dispatcher = tenantDispatcher({ internal: ['127.0.0.1'], mocks: {} });
  });
  afterAll(async () => {
    await Promise.all([internalService.close(), thirdParty.close(), paymentMock.close(), dispatcher.close()]);
  });

  it('refuses an isolated tenant request to an outside host before a byte leaves', async () => {
    const attempt = withTenant('shadow', () =>
      fetch(`${thirdParty.url}/charge`, { method: 'POST', body: '{"amount":100}', dispatcher: forGlobalFetch(dispatcher) }),
    );
    const error = await attempt.then(
      () => undefined,
      (failure: unknown) => failure,
    );
    const cause = (error as Error & { cause?: unknown })?.cause ?? error;
    expect(cause).toBeInstanceOf(IsolationError);
    expect((cause as IsolationError).message).toContain(thirdParty.url);
    await sleep(50);
    expect(thirdParty.received).toEqual([]);
    expect(thirdParty.connections()).toBe(0);
  });

  it('sends a color request to an outside host without tenant headers', async () => {
    await withTenant('red', () =>
      fetch(thirdParty.url, { dispatcher: forGlobalFetch(dispatcher), headers: { baggage: 'tenant=red,user=u1' } }).then((r) => r.text()),
    );
    expect(tenantHeaders(thirdParty.received.at(-1))).toEqual({ 'x-tenant': undefined, baggage: 'user=u1' });
  });

  it('re-aims an isolated tenant request to its configured mock; the real host sees nothing', async () => {
    const mocked = tenantDispatcher({ internal: ['127.0.0.1'], mocks: { '127.0.0.5': paymentMock.url } });
    const before = thirdParty.received.length;
    try {
      const text = await withTenant('shadow', () =>
        fetch(`${thirdParty.url}/charge`, { dispatcher: forGlobalFetch(mocked) }).then((r) => r.text()),
      );
      expect(text).toBe('ok');
    } finally {
      await mocked.close();
    }
    expect(tenantHeaders(paymentMock.received.at(-1))).toEqual({ 'x-tenant': 'shadow', baggage: 'tenant=shadow' });
    expect(thirdParty.received.length).toBe(before);
  });

  it('matches hosts by name, suffix, CIDR and single label', () => {
    const egress = createEgressPolicy({
      internal: ['inventory.shop', '*.svc.cluster.local', '.corp', '10.0.0.0/8', 'fd00::/8', 'single-label'],
    });
    expect(['inventory.shop', 'a.b.svc.cluster.local', 'x.corp', '10.2.3.4', '[fd00::1]', 'orders'].map(egress.isInternal)).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(
      ['inventory.shop.evil', 'svc.cluster.local.evil', 'corp.evil.com', '11.0.0.1', 'api.example.com', '[::1]'].map(egress.isInternal),
    ).toEqual([false, false, false, false, false, false]);
    expect(() => createEgressPolicy({ internal: ['https://x'] })).toThrow(TypeError);
    expect(() => createEgressPolicy({ mocks: { 'a.example': 'not a url' } })).toThrow(TypeError);
  });
});

describe('two-hop chain: 300 interleaved requests of three tenants', () => {
  // client -> hop 1 (Express, internal) -> fetch -> hop 2 (Fastify, internal)
  let hop1: Awaited<ReturnType<typeof listen>>;
  const hop2 = Fastify();
  const dispatcher = tenantDispatcher();

  beforeAll(async () => {
    await hop2.register(fastifyTenant, { mode: 'internal' });
    hop2.get('/', async () => {
      await sleep(Math.floor(Math.random() * 5));
      return { hop2: currentTenant().name };
    });
    const hop2Url = await hop2.listen({ port: 0, host: '127.0.0.1' });

    const app = express();
    app.use(tenantMiddleware({ mode: 'internal' }));
    app.get('/', async (_req, res) => {
      const before = currentTenant().name;
      await sleep(Math.floor(Math.random() * 5));
      const downstream = (await (await fetch(hop2Url, { dispatcher: forGlobalFetch(dispatcher) })).json()) as { hop2: string };
      res.json({ hop1: before, hop1After: currentTenant().name, ...downstream });
    });
    hop1 = await listen(app);
  });
  afterAll(async () => {
    await hop1.close();
    await hop2.close();
    await dispatcher.close();
  });

  it('each hop sees only the tenant of its own request', async () => {
    const tenants = ['baseline', 'red', 'shadow'] as const;
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => {
        const tenant = tenants[i % 3] as string;
        return withTenant(tenant, async () => {
          const response = await fetch(hop1.url, { dispatcher: forGlobalFetch(dispatcher) });
          return { sent: tenant, ...((await response.json()) as { hop1: string; hop1After: string; hop2: string }) };
        });
      }),
    );
    const wrong = results.filter(
      (result) => result.hop1 !== result.sent || result.hop1After !== result.sent || result.hop2 !== result.sent,
    );
    expect(wrong).toEqual([]);
    expect(results).toHaveLength(300);
  });
});
