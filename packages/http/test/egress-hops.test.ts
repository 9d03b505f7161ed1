/**
 * Hops Dye's interceptor does not see itself: redirects followed by an
 * interceptor composed inside the dispatcher it wraps, and mocks that are not
 * internal hosts.
 */
import { randomUUID } from 'node:crypto';
import { IsolationError, readTenantInput, setLogger, withTenant } from '@dye/core';
import { tenantDispatcher } from '@dye/http';
import { Agent, interceptors, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from './support.js';

const seen: Array<{ server: string; path: string; tenant: string; baggage?: string }> = [];
let internal: Awaited<ReturnType<typeof listen>>;
let outside: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  const recorder = (server: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const read = readTenantInput(req.headers as Record<string, unknown>);
    seen.push({
      server,
      path: req.url ?? '',
      tenant: read.kind === 'named' ? read.name : read.kind,
      ...(req.headers.baggage ? { baggage: String(req.headers.baggage) } : {}),
    });
    const to = new URL(req.url ?? '/', 'http://x').searchParams.get('to');
    if (to) {
      res.writeHead(302, { location: to });
      res.end();
      return;
    }
    res.end('ok');
  };
  internal = await listen(recorder('internal'), '127.0.0.1');
  outside = await listen(recorder('outside'), '127.0.0.3');
});
afterAll(async () => {
  await internal.close();
  await outside.close();
});

describe('a redirect interceptor composed inside the dispatcher Dye wraps', () => {
  // Dye's interceptor runs once, outside; the redirect re-sends the headers Dye wrote.
  const dispatcher = tenantDispatcher({
    internal: ['127.0.0.1/32'],
    dispatcher: new Agent().compose(interceptors.redirect({ maxRedirections: 2 })),
  });
  const via = (id: string) => `${internal.url}/start/${id}?to=${encodeURIComponent(`${outside.url}/landing/${id}`)}`;

  it('a colour keeps its tenant on the internal hop and loses it (baggage included) on the outside one', async () => {
    const id = randomUUID();
    await withTenant('red', async () => {
      const response = await request(via(id), { dispatcher, headers: { baggage: 'user=u1' } });
      await response.body.dump();
    });
    expect(seen.filter((hit) => hit.path.includes(id))).toEqual([
      { server: 'internal', path: expect.stringContaining('/start/'), tenant: 'red', baggage: 'tenant=red,user=u1' },
      { server: 'outside', path: `/landing/${id}`, tenant: 'none', baggage: 'user=u1' },
    ]);
  });

  it('an isolated tenant is refused at the outside hop: nothing reaches the outside host', async () => {
    const id = randomUUID();
    const outcome = await withTenant('shadow', () => request(via(id), { dispatcher })).then(
      () => 'sent',
      (error: Error) => error,
    );
    expect(outcome).toBeInstanceOf(IsolationError);
    expect(seen.filter((hit) => hit.path.includes(id)).map((hit) => hit.server)).toEqual(['internal']);
  });
});

describe('mocks', () => {
  it('a mock that is not an internal host receives the isolated request without tenant headers', async () => {
    const id = randomUUID();
    const dispatcher = tenantDispatcher({ internal: ['127.0.0.1/32'], mocks: { 'payments.example': outside.url } });
    await withTenant('shadow', async () => {
      const response = await request(`http://payments.example/pay/${id}`, { dispatcher, headers: { baggage: 'user=u1' } });
      await response.body.dump();
    });
    expect(seen.filter((hit) => hit.path.includes(id))).toEqual([
      { server: 'outside', path: `/pay/${id}`, tenant: 'none', baggage: 'user=u1' },
    ]);
  });

  it('a mock on an internal host receives the tenant', async () => {
    const id = randomUUID();
    const dispatcher = tenantDispatcher({ internal: ['127.0.0.1/32'], mocks: { 'payments.example': internal.url } });
    await withTenant('shadow', async () => {
      const response = await request(`http://payments.example/pay/${id}`, { dispatcher });
      await response.body.dump();
    });
    expect(seen.filter((hit) => hit.path.includes(id))).toEqual([
      { server: 'internal', path: `/pay/${id}`, tenant: 'shadow', baggage: 'tenant=shadow' },
    ]);
  });
});
