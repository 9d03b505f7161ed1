/**
 * Hops Dye's interceptor does not see itself: redirects followed by an
 * interceptor composed inside the dispatcher it wraps, and mocks that are not
 * internal hosts.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { currentTenant, IsolationError, readTenantInput, setLogger, withTenant } from '@dye/core';
import { TenantHttpAgent, TenantHttpsAgent, tenantDispatcher } from '@dye/http';
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

describe('node:http: a request that waited for a free socket', () => {
  // One socket: the second request waits, and gets the socket inside the first
  // request's 'free' event. Its response, and a follow-up call made from the
  // response callback, belong to the second request's tenant.
  const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'], agentOptions: { keepAlive: true, maxSockets: 1 } });
  afterAll(() => agent.destroy());

  const get = (path: string) =>
    new Promise<{ inCallback: string; atEnd: string; followUp: Promise<void> }>((resolve, reject) => {
      httpRequest(`${internal.url}${path}`, { agent }, (response) => {
        response.resume();
        const inCallback = currentTenant().name;
        const followUp = new Promise<void>((done, fail) => {
          httpRequest(`${internal.url}${path}/follow-up`, { agent }, (next) => next.resume().on('end', () => done()))
            .on('error', fail)
            .end();
        });
        response.on('end', () => resolve({ inCallback, atEnd: currentTenant().name, followUp }));
      })
        .on('error', reject)
        .end();
    });

  it.each([
    ['shadow', 'baseline'],
    ['baseline', 'red'],
    ['red', 'shadow'],
  ] as const)('first %s, then %s waiting', async (first, second) => {
    const id = randomUUID();
    const run = (tenant: string, path: string) => (tenant === 'baseline' ? get(path) : withTenant(tenant, () => get(path)));
    const [a, b] = await Promise.all([run(first, `/a/${id}`), run(second, `/b/${id}`)]);
    await Promise.all([a.followUp, b.followUp]);
    expect([a.inCallback, b.inCallback, a.atEnd, b.atEnd]).toEqual([first, second, first, second]);
    const tenantAt = (path: string) => seen.find((hit) => hit.path === path)?.tenant;
    const wire = (tenant: string) => (tenant === 'baseline' ? 'none' : tenant);
    expect(tenantAt(`/a/${id}/follow-up`)).toBe(wire(first));
    expect(tenantAt(`/b/${id}/follow-up`)).toBe(wire(second));
  });
});

describe("node:http: every event of a request on a reused keep-alive socket runs in that request's tenant", () => {
  // The socket was opened by the first request; its handle's callbacks (data,
  // end, close, errors, timeouts) would run in that request's tenant unless the
  // agent re-aims them at the request now using it.
  let server: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    server = await listen((req, res) => {
      if (req.url?.startsWith('/drop')) {
        // A half-sent response, then the connection dies: the client sees 'aborted', 'error' and 'close'.
        res.writeHead(200, { 'content-length': '100' });
        res.write('part');
        setTimeout(() => req.socket.destroy(), 10);
        return;
      }
      if (req.url?.startsWith('/slow')) return void setTimeout(() => res.end('late'), 300);
      if (req.url?.startsWith('/reset')) return void req.socket.destroy();
      res.end('ok');
    });
  });
  afterAll(() => server.close());

  type Seen = Record<string, string>;
  const exchange = (agent: TenantHttpAgent, path: string) =>
    new Promise<{ seen: Seen; reusedSocket: boolean }>((resolve) => {
      const seen: Seen = {};
      const note = (event: string) => {
        seen[event] ??= currentTenant().name;
      };
      const outgoing = httpRequest(`${server.url}${path}`, { agent }, (response) => {
        note('response callback');
        response.on('data', () => note('response data'));
        response.on('end', () => note('response end'));
        response.on('aborted', () => note('response aborted'));
        response.on('error', () => note('response error'));
        response.on('close', () => note('response close'));
        void Promise.resolve().then(() => note('continuation of the response callback'));
      });
      if (path.startsWith('/slow')) outgoing.setTimeout(50, () => (note('timeout'), outgoing.destroy()));
      outgoing.on('socket', () => note('socket'));
      outgoing.on('finish', () => note('finish'));
      outgoing.on('error', () => note('error'));
      outgoing.on('close', () => {
        note('close');
        // Events the response still emits after the request closed.
        setTimeout(() => resolve({ seen, reusedSocket: outgoing.reusedSocket }), 20);
      });
      outgoing.end();
    });
  const inTenant = <T>(tenant: string, fn: () => Promise<T>) => (tenant === 'baseline' ? fn() : withTenant(tenant, fn));

  const pairs = [
    ['baseline', 'shadow'],
    ['shadow', 'baseline'],
    ['red', 'shadow'],
    ['shadow', 'red'],
  ] as const;
  const endings = [
    ['a whole response', '/ok', ['socket', 'finish', 'response callback', 'response data', 'response end', 'close']],
    ['a response cut off mid-body', '/drop', ['socket', 'finish', 'response callback', 'response aborted', 'close']],
    ['a connection reset before any response', '/reset', ['socket', 'finish', 'error', 'close']],
    ['a timeout', '/slow', ['socket', 'finish', 'timeout', 'close']],
  ] as const;

  it.each(pairs.flatMap(([first, second]) => endings.map(([ending, path, events]) => [first, second, ending, path, events] as const)))(
    'socket opened by %s, reused by %s: %s',
    async (first, second, _ending, path, events) => {
      const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'], agentOptions: { keepAlive: true, maxSockets: 1 } });
      try {
        const opened = await inTenant(first, () => exchange(agent, '/ok'));
        expect(Object.values(opened.seen).every((tenant) => tenant === first)).toBe(true);
        const { seen: reused, reusedSocket } = await inTenant(second, () => exchange(agent, path));
        expect(reusedSocket).toBe(true);
        // The events this ending must produce all fired, every one of them in the reusing request's tenant.
        for (const event of events) expect.soft(reused[event], event).toBe(second);
        expect(Object.entries(reused).filter(([, tenant]) => tenant !== second)).toEqual([]);
      } finally {
        agent.destroy();
      }
    },
  );
});

describe('node:http: headers changed after http.request() returned', () => {
  // A hand-written proxy copies inbound headers onto the outbound request after
  // creating it; the agent's rule holds for every change, whenever it is made.
  const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'], agentOptions: { keepAlive: true } });
  afterAll(() => agent.destroy());

  type Mutation = (req: import('node:http').ClientRequest) => void;
  const send = (url: string, mutate: Mutation, options: { headers?: string[]; delayed?: boolean } = {}) =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest(url, { agent, method: 'POST', ...(options.headers ? { headers: options.headers } : {}) }, (response) =>
        response.resume().on('end', () => resolve()),
      );
      req.on('error', reject);
      const finish = () => {
        mutate(req);
        req.end('body');
      };
      if (options.delayed) setTimeout(finish, 10);
      else finish();
    });

  const mutations: Array<[string, Mutation]> = [
    ['setHeader x-tenant and baggage', (req) => req.setHeader('x-tenant', 'shadow').setHeader('baggage', 'tenant=shadow,user=42')],
    ['setHeader with other case', (req) => req.setHeader('X-Tenant', 'shadow').setHeader('Baggage', 'user=42, TENANT=shadow')],
    ['appendHeader baggage', (req) => req.setHeader('baggage', 'user=42').appendHeader('baggage', 'tenant=shadow')],
    ['setHeaders (Headers)', (req) => req.setHeaders(new Headers({ 'x-tenant': 'shadow', baggage: 'user=42,tenant=shadow' }))],
    ['setHeaders (Map)', (req) => req.setHeaders(new Map([['x-tenant', 'shadow']]))],
    [
      'removeHeader x-tenant and baggage',
      (req) => {
        req.removeHeader('x-tenant');
        req.removeHeader('baggage');
      },
    ],
    [
      'a copy loop of inbound headers',
      (req) => {
        for (const [name, value] of Object.entries({ 'x-tenant': 'shadow', baggage: 'tenant=shadow,user=42', accept: '*/*' }))
          req.setHeader(name, value);
      },
    ],
  ];

  const cases = mutations.flatMap(([name, mutate]) =>
    (['baseline', 'red', 'shadow'] as const).flatMap((tenant) =>
      (['internal', 'outside'] as const).flatMap((where) =>
        [false, true].map((delayed) => [name, tenant, where, delayed, mutate] as const),
      ),
    ),
  );

  it.each(cases)('%s, as %s, to the %s host, delayed %s', async (_name, tenant, where, delayed, mutate) => {
    const id = randomUUID();
    const url = `${where === 'internal' ? internal.url : outside.url}/mutated/${id}`;
    const run = () => send(url, mutate, { delayed });
    const outcome = await (tenant === 'baseline' ? run() : withTenant(tenant, run)).then(
      () => 'sent',
      (error: Error) => error,
    );
    const hits = seen.filter((hit) => hit.path.includes(id));
    if (tenant === 'shadow' && where === 'outside') {
      expect(outcome).toBeInstanceOf(IsolationError);
      expect(hits).toEqual([]);
      return;
    }
    expect(outcome).toBe('sent');
    const expected = where === 'internal' && tenant !== 'baseline' ? tenant : 'none';
    expect(hits.map((hit) => hit.tenant)).toEqual([expected]);
    const foreign = where === 'outside' || tenant === 'baseline' ? /tenant/i : new RegExp(`tenant=(?!${tenant}(,|$))`, 'i');
    expect(hits[0]?.baggage ?? '').not.toMatch(foreign);
  });

  it('a request no tenant agent admitted (its own bare Agent, or agent: false) keeps the headers its code sets', async () => {
    // The guard sits on ClientRequest's prototype once a tenant agent exists; it
    // acts only on requests a tenant agent admitted.
    const { Agent: NodeAgent } = await import('node:http');
    const bare = new NodeAgent();
    try {
      for (const own of [bare, false] as const) {
        const id = randomUUID();
        await withTenant(
          'red',
          () =>
            new Promise<void>((resolve, reject) => {
              const req = httpRequest(`${internal.url}/unadmitted/${id}`, { agent: own }, (response) =>
                response.resume().on('end', () => resolve()),
              );
              req.on('error', reject);
              req.setHeader('x-tenant', 'canary');
              req.appendHeader('baggage', 'tenant=canary');
              req.end();
            }),
        );
        expect(seen.filter((hit) => hit.path.includes(id))).toEqual([
          { server: 'internal', path: `/unadmitted/${id}`, tenant: 'canary', baggage: 'tenant=canary' },
        ]);
      }
    } finally {
      bare.destroy();
    }
  });

  it('headers passed as an array (serialized by Node at once) in baseline reach an internal host without a tenant', async () => {
    const id = randomUUID();
    await send(`${internal.url}/array/${id}`, () => {}, {
      headers: ['Host', '127.0.0.1', 'X-Tenant', 'shadow', 'BAGGAGE', 'tenant=shadow,user=42'],
    });
    expect(seen.filter((hit) => hit.path.includes(id))).toEqual([
      { server: 'internal', path: `/array/${id}`, tenant: 'none', baggage: 'user=42' },
    ]);
  });
});

describe('node:http: a mock that speaks another protocol than the request', () => {
  it('an isolated https request mocked by an http server is refused, and the mock receives nothing', async () => {
    const id = randomUUID();
    // A TLS hello sent to an http server is no request: count connections, not requests.
    let connections = 0;
    const count = () => {
      connections++;
    };
    internal.server.on('connection', count);
    const agent = new TenantHttpsAgent({ internal: ['127.0.0.1/32'], mocks: { 'payments.example': internal.url } });
    const outcome = await withTenant(
      'shadow',
      () =>
        new Promise<string | Error>((resolve) => {
          httpsRequest(`https://payments.example/pay/${id}`, { agent }, (response) => resolve(`answered ${response.statusCode}`))
            .on('error', resolve)
            .end();
        }),
    );
    agent.destroy();
    internal.server.off('connection', count);
    expect(connections).toBe(0);
    expect(outcome).toBeInstanceOf(Error);
    expect(String((outcome as Error).message)).toContain('speaks http:');
    expect(seen.filter((hit) => hit.path.includes(id))).toEqual([]);
  });
});
