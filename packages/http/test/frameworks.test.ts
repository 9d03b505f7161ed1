import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { currentTenant, setLogger, signTenantToken } from '@dye/core';
import { tenantMiddleware } from '@dye/http';
import { fastifyTenant } from '@dye/http/fastify';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from './support.js';

beforeAll(() => setLogger({ warn: () => {} }));

/** What a handler saw: the tenant at its start and after two async hops. */
async function tenantsSeen(): Promise<string[]> {
  const first = currentTenant().name;
  await sleep(2);
  const second = currentTenant().name;
  await new Promise((resolve) => setImmediate(resolve));
  return [first, second, currentTenant().name];
}

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers });
  return { status: response.status, tenantHeader: response.headers.get('x-tenant'), body: await response.json() };
}

describe('bare node:http', () => {
  let server: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    const middleware = tenantMiddleware({ mode: 'internal' });
    server = await listen((req, res) =>
      middleware(req, res, async () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(await tenantsSeen()));
      }),
    );
  });
  afterAll(() => server.close());

  it('runs the handler in the tenant of the request', async () => {
    expect((await get(server.url, { 'x-tenant': 'red' })).body).toEqual(['red', 'red', 'red']);
    expect((await get(server.url, { baggage: 'tenant=shadow' })).body).toEqual(['shadow', 'shadow', 'shadow']);
    expect((await get(server.url)).body).toEqual(['baseline', 'baseline', 'baseline']);
  });

  it('answers 400 with a clear message for conflicting tenants, without running the handler', async () => {
    const { status, body } = await get(server.url, { 'x-tenant': 'red', baggage: 'tenant=shadow' });
    expect(status).toBe(400);
    expect(body).toEqual({ error: 'DYE_TENANT_CONFLICT', message: 'conflicting tenants in one request: red vs shadow' });
  });

  it('does not answer x-tenant in internal mode', async () => {
    expect((await get(server.url, { 'x-tenant': 'red' })).tenantHeader).toBeNull();
  });
});

describe('Express', () => {
  let server: Awaited<ReturnType<typeof listen>>;
  const secret = 'express-edge-secret'.padEnd(32, '!');
  beforeAll(async () => {
    const app = express();
    app.use(tenantMiddleware({ mode: 'edge', secrets: [secret], onInvalidToken: 'reject' }));
    app.get('/', async (_req, res) => {
      res.json(await tenantsSeen());
    });
    server = await listen(app);
  });
  afterAll(() => server.close());

  it('decides at the edge, answers x-tenant and runs routes in the tenant', async () => {
    const token = signTenantToken({ tenant: 'canary', ttl: 60 }, secret);
    const colored = await get(server.url, { 'x-tenant-token': token });
    expect(colored).toMatchObject({ status: 200, tenantHeader: 'canary', body: ['canary', 'canary', 'canary'] });
    const spoofed = await get(server.url, { 'x-tenant': 'shadow' });
    expect(spoofed).toMatchObject({ status: 200, tenantHeader: 'baseline', body: ['baseline', 'baseline', 'baseline'] });
  });

  it('answers 401 for a refused token when configured to reject', async () => {
    const { status, body } = await get(server.url, { 'x-tenant-token': 'dye1.forged.token' });
    expect(status).toBe(401);
    expect(body).toMatchObject({ error: 'DYE_INVALID_TOKEN' });
  });
});

describe('Fastify', () => {
  const app = Fastify();
  let url: string;
  beforeAll(async () => {
    await app.register(fastifyTenant, { mode: 'internal', responseHeader: true });
    app.get('/', async (request) => ({ seen: await tenantsSeen(), decided: request.dyeTenant.name }));
    // A body is read from socket events after onRequest: the tenant must survive parsing.
    app.post('/orders', async (request) => ({ seen: await tenantsSeen(), body: request.body }));
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());

  it('runs handlers in the tenant, also after reading a body', async () => {
    expect((await get(url, { 'x-tenant': 'red' })).body).toEqual({ seen: ['red', 'red', 'red'], decided: 'red' });
    const response = await fetch(`${url}/orders`, {
      method: 'POST',
      headers: { 'x-tenant': 'shadow', 'content-type': 'application/json' },
      body: JSON.stringify({ sku: 'apple', quantity: 2 }),
    });
    expect(response.headers.get('x-tenant')).toBe('shadow');
    expect(await response.json()).toEqual({ seen: ['shadow', 'shadow', 'shadow'], body: { sku: 'apple', quantity: 2 } });
  });

  it('keeps the tenant when the body arrives well after the headers', async () => {
    // Headers first, body 50 ms later: the body is read from socket events that
    // fire outside the context entered when the headers were handled.
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${url}/orders`, { method: 'POST', headers: { 'x-tenant': 'red', 'content-type': 'application/json' } });
      req.on('response', (response) => {
        let text = '';
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.flushHeaders();
      setTimeout(() => req.end(JSON.stringify({ sku: 'pear' })), 50);
    });
    expect(JSON.parse(body)).toEqual({ seen: ['red', 'red', 'red'], body: { sku: 'pear' } });
  });

  it('answers 400 for conflicting tenants', async () => {
    const { status, body } = await get(url, { 'x-tenant': 'red, canary' });
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'DYE_TENANT_CONFLICT' });
  });
});

describe('Fastify at the edge', () => {
  const app = Fastify();
  let url: string;
  beforeAll(async () => {
    await app.register(fastifyTenant, { mode: 'edge' });
    app.get('/', async (request) => ({ tenant: currentTenant().name, headers: request.headers }));
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());

  it('strips an untrusted tenant header before the route reads request.headers', async () => {
    const { tenantHeader, body: raw } = await get(url, { 'x-tenant': 'shadow', baggage: 'tenant=shadow,user=u1' });
    const body = raw as { tenant: string; headers: Record<string, string | undefined> };
    expect(tenantHeader).toBe('baseline');
    expect(body.tenant).toBe('baseline');
    expect(body.headers['x-tenant']).toBeUndefined();
    expect(body.headers.baggage).toBe('user=u1');
  });
});

describe('OpenTelemetry span attribute', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let server: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
    const middleware = tenantMiddleware({ mode: 'internal' });
    const tracer = trace.getTracer('test');
    // The span OTel's HTTP instrumentation would open around the request.
    server = await listen((req, res) =>
      tracer.startActiveSpan('GET /', (span) =>
        middleware(req, res, () => {
          res.end('ok');
          span.end();
        }),
      ),
    );
  });
  afterAll(async () => {
    await server.close();
    trace.disable();
    context.disable();
  });

  it('sets dye.tenant on the active span', async () => {
    await fetch(server.url, { headers: { 'x-tenant': 'canary' } }).then((response) => response.text());
    await fetch(server.url).then((response) => response.text());
    expect(exporter.getFinishedSpans().map((span) => span.attributes['dye.tenant'])).toEqual(['canary', 'baseline']);
  });
});
