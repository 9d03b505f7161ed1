/**
 * node:http clients as an attacker or a careless user drives them: sockets
 * made, reused and closed across tenants (HTTP and TLS), timeouts, numeric
 * host forms, forward proxies, `agent: false`, agents of the caller's own,
 * Unix sockets, header internals and `Expect`. Judged by what the servers
 * recorded and by the tenant each callback saw.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentTenant, IsolationError, isTenantHeaderName, readTenantInput, setLogger, withTenant } from '@dye/core';
import { createEgressPolicy, enableNodeHttp, TenantHttpAgent, TenantHttpsAgent } from '@dye/http';
import got from 'got';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from './support.js';

const tls = {
  key: readFileSync(new URL('./fixtures/loopback-key.pem', import.meta.url)),
  cert: readFileSync(new URL('./fixtures/loopback-cert.pem', import.meta.url)),
};

interface Hit {
  server: string;
  path: string;
  tenant: string;
  baggage?: string;
  other: string[];
}
const hits: Hit[] = [];
const record = (server: string, req: IncomingMessage) =>
  hits.push({
    server,
    path: req.url ?? '',
    tenant: ((read) => (read.kind === 'named' ? read.name : read.kind))(readTenantInput(req.headers as Record<string, unknown>)),
    ...(req.headers.baggage ? { baggage: String(req.headers.baggage) } : {}),
    other: Object.keys(req.headers).filter((name) => name.endsWith('tenant') && name !== 'x-tenant'),
  });
const hitsFor = (marker: string) => hits.filter((hit) => hit.path.includes(marker));
let counter = 0;
const marker = () => `m${++counter}-${Date.now()}`;
const inTenant = <T>(tenant: string, fn: () => T): T => (tenant === 'baseline' ? fn() : withTenant(tenant, fn));

let internal: Awaited<ReturnType<typeof listen>>;
let outside: Awaited<ReturnType<typeof listen>>;
let mock: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  internal = await listen((req, res) => {
    record('internal', req);
    req.resume();
    req.on('end', () => res.end('ok'));
  }, '127.0.0.1');
  outside = await listen((req, res) => {
    record('outside', req);
    req.resume();
    req.on('end', () => res.end('REAL'));
  }, '127.0.0.2');
  mock = await listen((req, res) => {
    record('mock', req);
    req.resume();
    req.on('end', () => res.end('MOCK'));
  }, '127.0.0.1');
});
afterAll(async () => {
  await Promise.all([internal.close(), outside.close(), mock.close()]);
});

/** Every event of a request and its response, with the tenant it ran in (the first time it fired). */
function observe(req: ClientRequest, done: (seen: Record<string, string>) => void): void {
  const seen: Record<string, string> = {};
  const note = (event: string) => {
    seen[event] ??= currentTenant().name;
  };
  req.on('socket', () => note('socket'));
  req.on('finish', () => note('finish'));
  req.on('error', () => note('error'));
  req.on('timeout', () => {
    note('timeout');
    req.destroy();
  });
  req.on('response', (response: IncomingMessage) => {
    note('response');
    response.on('data', () => note('response data'));
    response.on('end', () => note('response end'));
    response.on('aborted', () => note('response aborted'));
    response.on('error', () => note('response error'));
    response.on('close', () => note('response close'));
    response.resume();
  });
  req.on('close', () => {
    note('close');
    setTimeout(() => done(seen), 30);
  });
}
const wrongTenants = (seen: Record<string, string>, tenant: string) => Object.entries(seen).filter(([, seenIn]) => seenIn !== tenant);

const pairs = [
  ['shadow', 'baseline'],
  ['baseline', 'shadow'],
  ['red', 'shadow'],
] as const;

describe('a waiting request whose socket is made after another closed runs every event in its own tenant', () => {
  // One socket: A holds it and its response closes the connection; B waits and
  // gets a socket Node makes inside A's socket's 'close'.
  let closing: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    closing = await listen((req, res) => {
      req.resume();
      if (req.url?.startsWith('/slow')) return void setTimeout(() => res.end('late'), 400);
      setTimeout(() => {
        res.setHeader('connection', 'close');
        res.end('bye');
      }, 30);
    });
  });
  afterAll(() => closing.close());

  it.each(pairs.flatMap(([a, b]) => (['/ok', '/slow'] as const).map((path) => [a, b, path] as const)))(
    'A in %s, B in %s waiting, B asks %s',
    async (a, b, path) => {
      const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'], agentOptions: { keepAlive: true, maxSockets: 1 } });
      try {
        const first = new Promise<Record<string, string>>((resolve) =>
          inTenant(a, () => observe(http.request(`${closing.url}/first`, { agent }).end(), resolve)),
        );
        const second = new Promise<Record<string, string>>((resolve) =>
          inTenant(b, () => {
            const req = http.request(`${closing.url}${path}`, { agent });
            if (path === '/slow') req.setTimeout(100);
            observe(req.end(), resolve);
          }),
        );
        const [seenA, seenB] = await Promise.all([first, second]);
        expect(wrongTenants(seenA, a)).toEqual([]);
        expect(wrongTenants(seenB, b)).toEqual([]);
        expect(Object.keys(seenB)).toEqual(
          expect.arrayContaining(['socket', 'finish', 'close', ...(path === '/slow' ? ['timeout'] : ['response', 'response end'])]),
        );
      } finally {
        agent.destroy();
      }
    },
  );

  it('a connection refused for the waiting request is reported in its tenant, and got retries it in that tenant to the mock', async () => {
    // The outside host's stand-in restarts after the first call: the waiting
    // shadow call meets a refused connection, and got retries it.
    let first = true;
    let restarting: http.Server;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      record('restarting', req);
      req.resume();
      if (!first) return void res.end('ok');
      first = false;
      setTimeout(() => {
        restarting.close();
        res.setHeader('connection', 'close');
        res.end('bye');
        setTimeout(() => restarting.listen(port, '127.0.0.1'), 300);
      }, 50);
    };
    restarting = http.createServer(handler);
    restarting.listen(0, '127.0.0.1');
    await once(restarting, 'listening');
    const port = (restarting.address() as AddressInfo).port;
    const agent = new TenantHttpAgent({
      internal: ['127.0.0.1/32'],
      mocks: { '127.0.0.2': `http://127.0.0.1:${port}` },
      agentOptions: { keepAlive: true, maxSockets: 1 },
    });
    const id = marker();
    try {
      const retriedIn: string[] = [];
      void inTenant('baseline', () => http.request(`http://127.0.0.1:${port}/hold/${id}`, { agent }).end());
      await new Promise((resolve) => setTimeout(resolve, 20));
      await withTenant('shadow', () =>
        got(`http://127.0.0.2:${outside.port}/charge/${id}`, {
          agent: { http: agent },
          retry: { limit: 3, calculateDelay: ({ computedValue }) => (computedValue ? 200 : 0) },
          hooks: { beforeRetry: [() => void retriedIn.push(currentTenant().name)] },
        }).text(),
      );
      expect(retriedIn.length).toBeGreaterThan(0);
      expect(retriedIn.every((tenant) => tenant === 'shadow')).toBe(true);
      expect(hitsFor(id).filter((hit) => hit.server === 'outside')).toEqual([]);
      expect(hitsFor(`charge/${id}`).map((hit) => hit.server)).toEqual(['restarting']);
    } finally {
      agent.destroy();
      restarting.close();
      restarting.closeAllConnections();
    }
  });
});

describe('a reused keep-alive TLS socket reports its connection ending in the reusing tenant', () => {
  let server: https.Server;
  let port: number;
  beforeAll(async () => {
    server = https.createServer(tls, (req, res) => {
      req.resume();
      if (req.url?.startsWith('/drop')) {
        res.writeHead(200, { 'content-length': '100' });
        res.write('part');
        setTimeout(() => req.socket.destroy(), 20);
        return;
      }
      if (req.url?.startsWith('/reset')) return void req.socket.destroy();
      res.end('ok');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it.each(pairs.flatMap(([a, b]) => (['/drop', '/reset'] as const).map((path) => [a, b, path] as const)))(
    'opened by %s, reused by %s: %s',
    async (a, b, path) => {
      const agent = new TenantHttpsAgent({
        internal: ['127.0.0.1/32'],
        agentOptions: { keepAlive: true, maxSockets: 1, ca: tls.cert, servername: 'localhost' },
      });
      try {
        const get = (tenant: string, to: string) =>
          new Promise<{ seen: Record<string, string>; reused: boolean }>((resolve) =>
            inTenant(tenant, () => {
              const req = https.request({ host: '127.0.0.1', port, path: to, agent, ca: tls.cert, servername: 'localhost' });
              observe(req.end(), (seen) => resolve({ seen, reused: req.reusedSocket }));
            }),
          );
        await get(a, '/ok');
        const { seen, reused } = await get(b, path);
        expect(reused).toBe(true);
        expect(wrongTenants(seen, b)).toEqual([]);
        expect(Object.keys(seen)).toContain('close');
      } finally {
        agent.destroy();
      }
    },
  );
});

describe('an agent-level timeout on a reused socket fires in the reusing tenant', () => {
  it.each(pairs)('opened by %s, reused by %s', async (a, b) => {
    const slow = await listen((req, res) => {
      req.resume();
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 600);
      res.end('ok');
    });
    const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'], agentOptions: { keepAlive: true, maxSockets: 1, timeout: 150 } });
    try {
      await new Promise<void>((resolve) =>
        inTenant(a, () => http.get(`${slow.url}/warm`, { agent }, (res) => res.resume().on('end', resolve))),
      );
      const seen = await new Promise<Record<string, string>>((resolve) =>
        inTenant(b, () => observe(http.get(`${slow.url}/slow`, { agent }), resolve)),
      );
      expect(seen.timeout).toBe(b);
      expect(wrongTenants(seen, b)).toEqual([]);
    } finally {
      agent.destroy();
      await slow.close();
    }
  });
});

describe("a response read later from another context still runs in the sender's tenant", () => {
  it.each(pairs)('sent in %s, resumed and piped from %s', async (sender, other) => {
    const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'] });
    const big = await listen((req, res) => {
      req.resume();
      res.end(Buffer.alloc(256 * 1024, 'x'));
    });
    try {
      const response = await inTenant(
        sender,
        () => new Promise<IncomingMessage>((resolve) => http.get(`${big.url}/body`, { agent }, resolve)),
      );
      response.pause();
      const seen = new Set<string>();
      response.on('data', () => seen.add(`data:${currentTenant().name}`));
      const ended = new Promise<void>((resolve) => response.on('end', () => (seen.add(`end:${currentTenant().name}`), resolve())));
      // Resumed from the other tenant's context, as a consumer elsewhere would.
      setTimeout(() => inTenant(other, () => response.resume()), 10);
      await ended;
      expect([...seen].sort()).toEqual([`data:${sender}`, `end:${sender}`]);
    } finally {
      agent.destroy();
      await big.close();
    }
  });
});

describe('numeric IPv4 forms and fully-qualified single labels are judged as the address or domain they are', () => {
  const egress = createEgressPolicy({ internal: ['127.0.0.1/32', 'single-label'] });
  it.each([
    ['2130706434', false],
    ['0x7f000002', false],
    ['0177.0.0.2', false],
    ['127.2', false],
    ['2130706433', true],
    ['127.1', true],
    ['payments', true],
    ['payments.', false],
    ['deadbeef', true],
    ['１２７．０．０．２', false],
    ['127。0。0。2', false],
    ['１２７．０．０．１', true],
    ['api。stripe。com', false],
    ['payments。', false],
  ] as const)('%s internal: %s', (host, expected) => {
    expect(egress.isInternal(host)).toBe(expected);
  });

  it.each(['2130706434', '0x7f000002'])(
    'shadow to %s (127.0.0.2, outside) is refused; the outside server records nothing',
    async (host) => {
      const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32', 'single-label'] });
      const id = marker();
      try {
        const outcome = await withTenant(
          'shadow',
          () =>
            new Promise<unknown>((resolve) => {
              http
                .get({ host, port: outside.port, path: `/numeric/${id}`, agent }, (res) => res.resume().on('end', () => resolve('sent')))
                .on('error', resolve);
            }),
        );
        expect(outcome).toBeInstanceOf(IsolationError);
        expect(hitsFor(id)).toEqual([]);
      } finally {
        agent.destroy();
      }
    },
  );
});

describe('a host is judged as the resolver will read it', () => {
  it.each([
    ['127.0.0.2\0.svc.cluster.local', ['127.0.0.1/32', '.svc.cluster.local']],
    ['１２７．０．０．２', ['127.0.0.1/32', 'single-label']],
    ['127。0。0。2', ['127.0.0.1/32', 'single-label']],
  ])('shadow to %j is refused; the outside server records nothing', async (host, list) => {
    const agent = new TenantHttpAgent({ internal: list });
    const id = marker();
    try {
      const outcome = await withTenant(
        'shadow',
        () =>
          new Promise<unknown>((resolve) => {
            http
              .request({ host, port: outside.port, path: `/resolver/${id}`, agent, setHost: false, headers: { host: 'x' } }, (res) =>
                res.resume().on('end', () => resolve('sent')),
              )
              .on('error', resolve)
              .end();
          }),
      );
      expect(outcome).toBeInstanceOf(IsolationError);
      expect(hitsFor(id)).toEqual([]);
    } finally {
      agent.destroy();
    }
  });

  it.each(['a b.example', '::1%nonexistent0'])(
    'a host no URL holds (%j) fails as Node fails it, with an error event, not a throw',
    async (host) => {
      const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'] });
      try {
        const outcome = await new Promise<unknown>((resolve) => {
          http
            .request({ host, port: 1, agent }, () => resolve('answered'))
            .on('error', resolve)
            .end();
        });
        expect(outcome).toBeInstanceOf(Error);
        expect(outcome).not.toBeInstanceOf(IsolationError);
      } finally {
        agent.destroy();
      }
    },
  );
});

describe('a forward proxy: the target decides, not the proxy', () => {
  // A plain forward proxy, as HTTP_PROXY or axios's `proxy` option reach: it
  // forwards absolute-form requests to their target with their headers.
  let proxy: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    proxy = await listen((req, res) => {
      record('proxy', req);
      const target = new URL(req.url ?? '/');
      const forwarded = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: `${target.pathname}${target.search}`,
          method: req.method,
          headers: req.headers,
          agent: false,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forwarded.on('error', () => res.writeHead(502).end());
      req.pipe(forwarded);
    });
  });
  afterAll(() => proxy.close());

  const viaProxy = (agent: http.Agent, url: string) =>
    new Promise<unknown>((resolve) => {
      http
        .request({ host: '127.0.0.1', port: proxy.port, path: url, agent, headers: { host: new URL(url).host } }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve(body));
        })
        .on('error', resolve)
        .end();
    });

  it.each([
    ['shadow', 'outside', 'refused'],
    ['shadow', 'mocked', 'MOCK'],
    ['red', 'outside', 'REAL'],
    ['red', 'internal', 'ok'],
    ['baseline', 'internal', 'ok'],
  ] as const)('%s to an %s target', async (tenant, where, expected) => {
    const agent = new TenantHttpAgent({
      internal: ['127.0.0.1/32'],
      ...(where === 'mocked' ? { mocks: { '127.0.0.2': mock.url } } : {}),
    });
    const id = marker();
    try {
      const target = where === 'internal' ? `${internal.url}/proxied/${id}` : `${outside.url}/proxied/${id}`;
      const outcome = await inTenant(tenant, () => viaProxy(agent, target));
      if (expected === 'refused') {
        expect(outcome).toBeInstanceOf(IsolationError);
        expect(hitsFor(id)).toEqual([]);
        return;
      }
      expect(outcome).toBe(expected);
      const seen = hitsFor(id);
      // The mock listens on an internal host: it is told the tenant.
      const wire = where !== 'outside' && tenant !== 'baseline' ? tenant : 'none';
      if (where === 'mocked') expect(seen.map((hit) => [hit.server, hit.tenant])).toEqual([['mock', wire]]);
      else
        expect(seen.map((hit) => [hit.server, hit.tenant])).toEqual([
          ['proxy', wire],
          [where, wire],
        ]);
      expect(seen.every((hit) => !/tenant/i.test(hit.baggage ?? '') || wire !== 'none')).toBe(true);
    } finally {
      agent.destroy();
    }
  });
});

describe('targets a proxy reads that are not plain origin-form requests', () => {
  let tunnel: Awaited<ReturnType<typeof listen>>;
  const connects: string[] = [];
  beforeAll(async () => {
    tunnel = await listen((req, res) => {
      record('tunnel', req);
      res.end('ok');
    });
    tunnel.server.on('connect', (req: IncomingMessage, socket: import('node:net').Socket) => {
      connects.push(req.url ?? '');
      socket.end('HTTP/1.1 200 Connection Established\r\n\r\n');
    });
  });
  afterAll(() => tunnel.close());
  const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'] });
  afterAll(() => agent.destroy());
  const outcomeOf = (req: ClientRequest) =>
    new Promise<unknown>((resolve) => {
      req.on('response', (res) => res.resume().on('end', () => resolve('sent')));
      req.on('connect', () => resolve('tunnel'));
      req.on('error', resolve);
      req.end();
    });

  it('CONNECT to an outside authority: refused for shadow, the proxy hears nothing', async () => {
    const authority = `127.0.0.2:${outside.port}`;
    const outcome = await withTenant('shadow', () =>
      outcomeOf(http.request({ host: '127.0.0.1', port: tunnel.port, method: 'CONNECT', path: authority, agent })),
    );
    expect(outcome).toBeInstanceOf(IsolationError);
    expect(connects).not.toContain(authority);
  });

  it.each(['ws', 'ftp', 'HTTP'])('a %s:// target outside: refused for shadow, the proxy hears nothing', async (scheme) => {
    const id = marker();
    const outcome = await withTenant('shadow', () =>
      outcomeOf(http.request({ host: '127.0.0.1', port: tunnel.port, path: `${scheme}://127.0.0.2:${outside.port}/${id}`, agent })),
    );
    expect(outcome).toBeInstanceOf(IsolationError);
    expect(hitsFor(id)).toEqual([]);
  });

  it.each(['shadow', 'red'] as const)(
    'as %s, a path changed to another target after http.request() returned is refused at end(); nothing is sent',
    async (tenant) => {
      const id = marker();
      const thrown = await withTenant(tenant, async () => {
        const req = http.request({ host: '127.0.0.1', port: tunnel.port, path: `/checked/${id}`, agent });
        req.on('error', () => {});
        req.path = `http://127.0.0.2:${outside.port}/moved/${id}`;
        try {
          req.end();
          return 'ended';
        } catch (error) {
          return error;
        }
      });
      expect(thrown).toBeInstanceOf(IsolationError);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(hitsFor(id)).toEqual([]);
    },
  );

  // A WHATWG parser, as a proxy may use, reads these as absolute targets too: no `//` needed.
  const withoutSlashes = [
    (port: number, id: string) => `http:127.0.0.2:${port}/${id}`,
    (port: number, id: string) => `http:/127.0.0.2:${port}/${id}`,
    (port: number, id: string) => `http:\\127.0.0.2:${port}/${id}`,
    (port: number, id: string) => `HTTPS:127.0.0.2:${port}/${id}`,
    (port: number, id: string) => `ws:127.0.0.2:${port}/${id}`,
    (port: number, id: string) => `127.0.0.2:${port}/${id}`,
    (_port: number, id: string) => `${id}/relative`,
  ];
  it.each(withoutSlashes.map((form) => [form(1, 'ID'), form] as const))(
    'a target %s (not origin form): refused for shadow, the proxy hears nothing; red reaches the proxy saying no tenant',
    async (_shown, form) => {
      // A proxy of bytes: Node's own server refuses such request targets before a handler sees them.
      const heard: string[] = [];
      const proxy = net.createServer((socket) => {
        socket.on('data', (chunk) => {
          heard.push(chunk.toString('latin1'));
          socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
        });
        socket.on('error', () => {});
      });
      proxy.listen(0, '127.0.0.1');
      await once(proxy, 'listening');
      const port = (proxy.address() as AddressInfo).port;
      try {
        const shadow = marker();
        const red = marker();
        const outcome = await withTenant('shadow', () =>
          outcomeOf(http.request({ host: '127.0.0.1', port, path: form(outside.port, shadow), agent })),
        );
        expect(outcome).toBeInstanceOf(IsolationError);
        expect(
          await withTenant('red', () => outcomeOf(http.request({ host: '127.0.0.1', port, path: form(outside.port, red), agent }))),
        ).toBe('sent');
        const bytes = heard.join('');
        expect(bytes).not.toContain(shadow);
        expect(bytes).toContain(red);
        expect(bytes).not.toMatch(/tenant/i);
        expect([...hitsFor(shadow), ...hitsFor(red)]).toEqual([]);
      } finally {
        proxy.close();
      }
    },
  );

  it('a path that only looks absolute and parses as no URL is refused for shadow (a proxy may read it); the proxy hears nothing', async () => {
    const before = hits.filter((hit) => hit.server === 'tunnel').length;
    const outcome = await withTenant('shadow', () =>
      outcomeOf(http.request({ host: '127.0.0.1', port: tunnel.port, path: 'http://[x/', agent })),
    );
    expect(outcome).toBeInstanceOf(IsolationError);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(hits.filter((hit) => hit.server === 'tunnel')).toHaveLength(before);
  });

  it('a path that only looks absolute and parses as no URL goes on as Node sends it (baseline)', async () => {
    const outcome = await outcomeOf(http.request({ host: '127.0.0.1', port: tunnel.port, path: 'http://[x/', agent }));
    expect(outcome === 'sent' || outcome instanceof Error).toBe(true);
    expect(outcome).not.toBeInstanceOf(IsolationError);
  });
});

describe('while enableNodeHttp is on', () => {
  let restore: () => void;
  beforeAll(() => {
    restore = enableNodeHttp({ internal: ['127.0.0.1/32'], mocks: { 'payments.example': mock.url } });
  });
  afterAll(() => restore());

  const send = (options: http.RequestOptions) =>
    new Promise<unknown>((resolve) => {
      http
        .request(options, (res) => res.resume().on('end', () => resolve('sent')))
        .on('error', resolve)
        .end();
    });

  it('agent: false follows the configured egress list (127.0.0.2 is outside here though loopback) and headers', async () => {
    const shadow = marker();
    const red = marker();
    expect(
      await withTenant('shadow', () => send({ host: '127.0.0.2', port: outside.port, path: `/${shadow}`, agent: false })),
    ).toBeInstanceOf(IsolationError);
    expect(await withTenant('red', () => send({ host: '127.0.0.2', port: outside.port, path: `/${red}`, agent: false }))).toBe('sent');
    expect(hitsFor(shadow)).toEqual([]);
    expect(hitsFor(red).map((hit) => hit.tenant)).toEqual(['none']);
  });

  it("an agent of the caller's own: an isolated tenant is refused to outside hosts, allowed to internal ones", async () => {
    const own = new http.Agent({ keepAlive: true });
    const out = marker();
    const inside = marker();
    try {
      expect(await withTenant('shadow', () => send({ host: '127.0.0.2', port: outside.port, path: `/${out}`, agent: own }))).toBeInstanceOf(
        IsolationError,
      );
      expect(await withTenant('shadow', () => send({ host: '127.0.0.1', port: internal.port, path: `/${inside}`, agent: own }))).toBe(
        'sent',
      );
      expect(await send({ host: '127.0.0.2', port: outside.port, path: `/${out}-baseline`, agent: own })).toBe('sent');
      expect(hitsFor(out).map((hit) => hit.path)).toEqual([`/${out}-baseline`]);
      expect(hitsFor(inside)).toHaveLength(1);
    } finally {
      own.destroy();
    }
  });

  it("an agent of the caller's own sent through an internal proxy to an outside target is refused for shadow", async () => {
    const own = new http.Agent();
    const id = marker();
    try {
      const outcome = await withTenant('shadow', () =>
        send({ host: '127.0.0.1', port: internal.port, path: `http://127.0.0.2:${outside.port}/${id}`, agent: own }),
      );
      expect(outcome).toBeInstanceOf(IsolationError);
      expect(hitsFor(id)).toEqual([]);
    } finally {
      own.destroy();
    }
  });

  it('createConnection to an outside host is refused for an isolated tenant', async () => {
    const id = marker();
    const { connect } = await import('node:net');
    const outcome = await withTenant('shadow', () =>
      send({ host: '127.0.0.2', port: outside.port, path: `/${id}`, createConnection: () => connect(outside.port, '127.0.0.2') }),
    );
    expect(outcome).toBeInstanceOf(IsolationError);
    expect(hitsFor(id)).toEqual([]);
  });

  it('a Unix socket counts as localhost (outside by this egress list): an isolated tenant is refused, the socket hears nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dye-unix-'));
    const path = join(dir, 'server.sock');
    const heard: string[] = [];
    const unix = http.createServer((req, res) => {
      heard.push(req.url ?? '');
      res.end('unix');
    });
    unix.listen(path);
    await once(unix, 'listening');
    try {
      const id = marker();
      const outcome = await withTenant('shadow', () => send({ host: '127.0.0.1', socketPath: path, path: `/${id}` }));
      expect(outcome).toBeInstanceOf(IsolationError);
      expect(heard).toEqual([]);
    } finally {
      unix.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('header internals and other spellings: the head says the admitted tenant whatever wrote it', () => {
  const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'] });
  afterAll(() => agent.destroy());
  /** Node's internal header map of a request, written past every setter. */
  const outHeaders = (req: ClientRequest) => {
    const key = Object.getOwnPropertySymbols(req).find((symbol) => symbol.description === 'kOutHeaders') as symbol;
    return (req as unknown as Record<symbol, Record<string, [string, string]>>)[key] as Record<string, [string, string]>;
  };

  const tampers: Array<[string, (req: ClientRequest) => void]> = [
    ['OutgoingMessage.prototype.setHeader', (req) => void http.OutgoingMessage.prototype.setHeader.call(req, 'x-tenant', 'canary')],
    [
      "Node's internal header map",
      (req) => {
        const map = outHeaders(req);
        map['x-tenant'] = ['x-tenant', 'canary'];
        map.baggage = ['baggage', 'tenant=canary'];
      },
    ],
    ['uberctx-tenant and ot-baggage-tenant', (req) => req.setHeader('uberctx-tenant', 'canary').setHeader('OT-Baggage-Tenant', 'canary')],
    ['grpc-metadata-x-tenant', (req) => req.setHeader('grpc-metadata-x-tenant', 'canary')],
    ['x_tenant', (req) => req.setHeader('x_tenant', 'canary')],
    [
      'OutgoingMessage.prototype.setHeader with uberctx-tenant',
      (req) => void http.OutgoingMessage.prototype.setHeader.call(req, 'uberctx-tenant', 'canary'),
    ],
    [
      "Node's internal header map under mixed-case keys",
      (req) => {
        const map = outHeaders(req);
        map['X-Tenant'] = ['X-Tenant', 'canary'];
        map.Baggage = ['Baggage', 'tenant=canary'];
      },
    ],
  ];
  if ('_headers' in http.ClientRequest.prototype || '_headers' in http.OutgoingMessage.prototype)
    tampers.push([
      'the deprecated _headers setter',
      (req) => {
        (req as unknown as { _headers: Record<string, string> })._headers = { ...req.getHeaders(), 'x-tenant': 'canary' } as Record<
          string,
          string
        >;
      },
    ]);

  it.each(
    tampers.flatMap(([name, tamper]) =>
      (['baseline', 'red', 'shadow'] as const).flatMap((tenant) =>
        (['internal', 'outside'] as const).map((where) => [name, tenant, where, tamper] as const),
      ),
    ),
  )('%s, as %s, to the %s host', async (_name, tenant, where, tamper) => {
    if (tenant === 'shadow' && where === 'outside') return;
    const id = marker();
    const url = `${where === 'internal' ? internal.url : outside.url}/tampered/${id}`;
    await inTenant(
      tenant,
      () =>
        new Promise<void>((resolve, reject) => {
          const req = http.request(url, { agent, method: 'POST' }, (res) => res.resume().on('end', () => resolve()));
          req.on('error', reject);
          tamper(req);
          req.end('body');
        }),
    );
    const expected = where === 'internal' && tenant !== 'baseline' ? tenant : 'none';
    expect(hitsFor(id).map((hit) => [hit.tenant, hit.other])).toEqual([[expected, []]]);
    if (expected === 'none') expect(hitsFor(id)[0]?.baggage ?? '').not.toMatch(/tenant/i);
  });
});

describe('line injection and head tampering: what a lenient server reads says only the admitted tenant, or nothing arrives', () => {
  // A server of its own: it records every byte and splits heads at any CR or
  // LF, as a lenient server or proxy downstream might (Node's refuses such heads).
  const heads = new Map<string, string>();
  const received: string[] = [];
  let lenient: net.Server;
  let lenientUrl: string;
  beforeAll(async () => {
    lenient = net.createServer((socket) => {
      let head = '';
      socket.on('data', (chunk) => {
        received.push(chunk.toString('latin1'));
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        const id = /\/injected\/(m[\w-]+)/.exec(head)?.[1] ?? 'unknown';
        heads.set(id, head.slice(0, end));
        socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      });
      socket.on('error', () => {});
    });
    lenient.listen(0, '127.0.0.1');
    await once(lenient, 'listening');
    lenientUrl = `http://127.0.0.1:${(lenient.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => lenient.close(() => resolve())));
  const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'] });
  afterAll(() => agent.destroy());

  /** The tenant a lenient reader takes from a head, and every other carrier line it holds. */
  const leniently = (head: string) => {
    const headers: Record<string, string[]> = {};
    for (const line of head.split(/\r\n|\r|\n/).slice(1)) {
      const colon = line.indexOf(':');
      if (colon === -1) continue;
      (headers[line.slice(0, colon).trim().toLowerCase()] ??= []).push(line.slice(colon + 1).trim());
    }
    const read = readTenantInput(headers as Record<string, unknown>);
    return {
      tenant: read.kind === 'named' ? read.name : read.kind,
      tenantLines: headers['x-tenant']?.length ?? 0,
      others: Object.keys(headers).filter((name) => isTenantHeaderName(name) && name !== 'x-tenant'),
      baggage: (headers.baggage ?? []).join(','),
    };
  };
  const outHeaders = (req: ClientRequest) => {
    const key = Object.getOwnPropertySymbols(req).find((symbol) => symbol.description === 'kOutHeaders') as symbol;
    return (req as unknown as Record<symbol, Record<string, unknown>>)[key] as Record<string, unknown>;
  };
  type Internals = ClientRequest & { _header: string; outputData: Array<{ data: unknown; encoding?: unknown; callback?: unknown }> };

  interface Tamper {
    name: string;
    /** Headers given as an array make Node serialize the head at once. */
    headers?: string[];
    /** Done before `end()`. */
    before?: (req: Internals) => void;
    /** Done after `end()`, before the request has its socket. */
    after?: (req: Internals) => void;
    /** 'says': the head arrives saying only the tenant; 'refused': no byte of the request arrives (for baseline too, or only in a tenant). */
    outcome: 'says' | 'refused' | 'refused in a tenant';
  }
  const tampers: Tamper[] = [
    {
      name: 'a value in the internal map with CR LF',
      before: (req) => void (outHeaders(req).accept = ['accept', 'a\r\nx-tenant: canary']),
      outcome: 'says',
    },
    {
      name: 'a value in the internal map with a bare LF',
      before: (req) => void (outHeaders(req).accept = ['accept', 'a\nx-tenant: canary']),
      outcome: 'refused',
    },
    {
      name: 'a value in the internal map with a bare CR',
      before: (req) => void (outHeaders(req).accept = ['accept', 'a\rx-tenant: canary']),
      outcome: 'refused',
    },
    {
      name: 'a name in the internal map with CR LF',
      before: (req) => void (outHeaders(req).foo = ['foo: a\r\nx-tenant', 'canary']),
      outcome: 'says',
    },
    {
      name: 'a name in the internal map with a bare LF',
      before: (req) => void (outHeaders(req).foo = ['foo: a\nBaggage', 'tenant=canary']),
      outcome: 'refused',
    },
    {
      name: 'an array value changed after setHeader checked it',
      before: (req) => {
        const values = ['a'];
        req.setHeader('accept', values);
        values.push('b\r\nuberctx-tenant: canary');
      },
      outcome: 'says',
    },
    {
      name: 'a value Node turns into text itself',
      before: (req) => void (outHeaders(req).accept = ['accept', { toString: () => 'a\r\nx-tenant: canary' }]),
      outcome: 'says',
    },
    {
      name: 'a name whose characters above U+00FF leave as a carrier',
      before: (req) => void (outHeaders(req).odd = ['x-\u0174enant', 'canary']),
      outcome: 'says',
    },
    {
      name: 'a value whose characters above U+00FF leave as CR LF',
      before: (req) => void (outHeaders(req).accept = ['accept', 'a\u010d\u010ax-tenant: canary']),
      outcome: 'says',
    },
    {
      name: 'a baggage line under a key of its own',
      before: (req) => void (outHeaders(req).BAGGAGE = ['baggage', 'tenant=canary']),
      outcome: 'says',
    },
    {
      name: 'an x-tenant line under a key of its own',
      before: (req) => void (outHeaders(req).XT = ['x-tenant', 'canary']),
      outcome: 'says',
    },
    {
      name: 'a header map replaced by one with an inherited entry',
      before: (req) => {
        const key = Object.getOwnPropertySymbols(req).find((symbol) => symbol.description === 'kOutHeaders') as symbol;
        const own = (req as unknown as Record<symbol, Record<string, unknown>>)[key];
        (req as unknown as Record<symbol, unknown>)[key] = Object.assign(Object.create({ sneaky: ['x-tenant', 'canary'] }), own);
      },
      outcome: 'says',
    },
    // An empty line ends the head: Dye's lines after it would be a body, or a request of their own.
    {
      name: 'an empty line in a value of the internal map',
      before: (req) => void (outHeaders(req).accept = ['accept', 'a\r\n\r\nx-tenant: canary']),
      outcome: 'refused',
    },
    {
      name: 'an empty line that ends a value of the internal map',
      before: (req) => void (outHeaders(req).accept = ['accept', 'a\r\n']),
      outcome: 'refused',
    },
    {
      name: 'two bare LFs in a value of the internal map',
      before: (req) => void (outHeaders(req).accept = ['accept', 'a\n\nx-tenant: canary']),
      outcome: 'refused',
    },
    {
      name: 'an empty line written as characters above U+00FF',
      before: (req) => void (outHeaders(req).accept = ['accept', 'a\u010d\u010a\u010d\u010ax-tenant: canary']),
      outcome: 'refused',
    },
    // `_headers` is gone from Node 24's OutgoingMessage: there an assignment replaces nothing.
    ...(Object.getOwnPropertyDescriptor(http.OutgoingMessage.prototype, '_headers')?.set
      ? [
          {
            name: 'a header map replaced through the deprecated _headers with an empty line',
            before: (req: Internals) => void ((req as unknown as { _headers: unknown })._headers = { 'x-a': 'v\r\n\r\n' }),
            outcome: 'refused' as const,
          },
        ]
      : []),
    {
      name: 'a method changed to carry a request of its own',
      before: (req) => void (req.method = `GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\nPOST`),
      outcome: 'refused',
    },
    {
      name: 'a method changed to carry lines split by bare LFs',
      before: (req) => void (req.method = 'GET /smuggled HTTP/1.1\nHost: x\n\nPOST'),
      outcome: 'refused',
    },
    // The head itself, past every setter.
    {
      name: 'a head set whole through _header, naming no tenant',
      before: (req) => void (req._header = `POST ${req.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
      outcome: 'says',
    },
    {
      name: 'a head set whole through _header, naming another tenant',
      before: (req) => void (req._header = `POST ${req.path} HTTP/1.1\r\nHost: x\r\nx-tenant: canary\r\nbaggage: tenant=canary\r\n\r\n`),
      outcome: 'says',
    },
    {
      name: 'a head set whole through _header, aimed through the server as a proxy at another target',
      before: (req) => void (req._header = `POST http://127.0.0.2:1${req.path} HTTP/1.1\r\nHost: 127.0.0.2:1\r\nx-tenant: canary\r\n\r\n`),
      outcome: 'refused in a tenant',
    },
    {
      name: 'a head Node serialized early (headers as an array) re-aimed through _header at another target',
      headers: ['accept', '*/*'],
      before: (req) => void (req._header = req._header.replace(`POST ${req.path}`, `POST http://127.0.0.2:1${req.path}`)),
      outcome: 'refused in a tenant',
    },
    {
      name: 'a head set whole through _header, with a request of its own behind an empty line',
      before: (req) => void (req._header = `POST ${req.path} HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n`),
      outcome: 'refused',
    },
    {
      name: 'a head Node serialized early (headers as an array) edited through _header',
      headers: ['accept', '*/*'],
      before: (req) =>
        void (req._header = req._header.replace(/\r\nx-tenant:[^\r]*/i, '').replace(/\r\nbaggage:[^\r]*/i, '\r\nx-tenant: canary')),
      outcome: 'says',
    },
    {
      name: "the head in Node's output queue edited after end()",
      after: (req) => {
        const first = req.outputData[0] as { data: string };
        first.data = first.data.replace('\r\n', '\r\nx-tenant: canary\r\n');
      },
      outcome: 'refused',
    },
    {
      name: "a request of its own put before the head in Node's output queue",
      after: (req) => void req.outputData.unshift({ data: 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n', encoding: 'latin1', callback: null }),
      outcome: 'refused',
    },
  ];

  it.each(tampers.flatMap((tamper) => (['baseline', 'red', 'shadow'] as const).map((tenant) => [tamper.name, tenant, tamper] as const)))(
    '%s, as %s',
    async (_name, tenant, tamper) => {
      const id = marker();
      const outcome = await inTenant(
        tenant,
        () =>
          new Promise<string>((resolve) => {
            const req = http.request(
              `${lenientUrl}/injected/${id}`,
              { agent, method: 'POST', ...(tamper.headers ? { headers: tamper.headers } : {}) },
              (res) => res.resume().on('end', () => resolve('answered')),
            ) as Internals;
            req.on('error', (error) => resolve(`refused: ${error.message}`));
            try {
              tamper.before?.(req);
              // No body: Node then writes the head alone, as latin1 (a body would take its encoding).
              req.end();
              tamper.after?.(req);
            } catch (error) {
              resolve(`refused: ${(error as Error).message}`);
            }
          }),
      );
      if (tamper.outcome === 'refused' || (tamper.outcome === 'refused in a tenant' && tenant !== 'baseline')) {
        expect(outcome).toMatch(/^refused: (dye: |Dye refused)/);
        // Judged by the server: no byte of this request arrived.
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(received.join('')).not.toContain(id);
        expect(received.join('')).not.toContain('/smuggled');
        return;
      }
      expect(outcome).toBe('answered');
      const head = heads.get(id);
      expect(head).toBeDefined();
      const seen = leniently(head as string);
      const expected = tenant === 'baseline' ? 'none' : tenant;
      expect([seen.tenant, seen.tenantLines, seen.others]).toEqual([expected, tenant === 'baseline' ? 0 : 1, []]);
      if (tenant === 'baseline') expect(seen.baggage).not.toMatch(/tenant/i);
    },
  );

  it('a path changed to carry a header line: baseline sends none, a tenant is refused', async () => {
    for (const tenant of ['baseline', 'red'] as const) {
      const id = marker();
      const outcome = await inTenant(
        tenant,
        () =>
          new Promise<string>((resolve) => {
            const req = http.request(`${lenientUrl}/injected/${id}`, { agent }, (res) => res.resume().on('end', () => resolve('answered')));
            req.on('error', (error) => resolve(error instanceof IsolationError ? 'refused' : error.message));
            req.path = `/injected/${id} HTTP/1.1\r\nx-tenant: canary\r\nx-pad: x`;
            try {
              req.end();
            } catch (error) {
              resolve(error instanceof IsolationError ? 'refused' : String(error));
            }
          }),
      );
      if (tenant === 'baseline') {
        expect(outcome).toBe('answered');
        const seen = leniently(heads.get(id) as string);
        expect([seen.tenant, seen.tenantLines]).toEqual(['none', 0]);
      } else {
        expect(outcome).toBe('refused');
        expect(heads.has(id)).toBe(false);
      }
    }
  });

  it('a header that only names a tenant (x-tenant-id, my_tenant) reaches the server as it was set', async () => {
    for (const tenant of ['baseline', 'red'] as const) {
      const id = marker();
      await inTenant(
        tenant,
        () =>
          new Promise<void>((resolve, reject) => {
            const req = http.request(
              `${lenientUrl}/injected/${id}`,
              { agent, headers: { 'x-tenant-id': 'acme', my_tenant: 'globex' } },
              (res) => res.resume().on('end', () => resolve()),
            );
            req.on('error', reject);
            req.end();
          }),
      );
      const head = heads.get(id) as string;
      expect(head).toContain('\r\nx-tenant-id: acme\r\n');
      expect(head).toContain('\r\nmy_tenant: globex\r\n');
      expect(leniently(head).tenant).toBe(tenant === 'baseline' ? 'none' : tenant);
    }
  });
});

describe('Expect: 100-continue', () => {
  it.each(['baseline', 'red', 'shadow'] as const)('as %s: sent with the tenant rewritten into the head Node queued', async (tenant) => {
    const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'] });
    const id = marker();
    try {
      const answer = await inTenant(
        tenant,
        () =>
          new Promise<string>((resolve, reject) => {
            const req = http.request(`${internal.url}/expect/${id}`, {
              agent,
              method: 'POST',
              headers: { expect: '100-continue', 'x-tenant': 'canary', baggage: 'tenant=canary,user=7' },
            });
            req.on('continue', () => req.end('body'));
            req.on('response', (res) => {
              let body = '';
              res.on('data', (chunk) => (body += chunk));
              res.on('end', () => resolve(body));
            });
            req.on('error', reject);
          }),
      );
      expect(answer).toBe('ok');
      const wire = tenant === 'baseline' ? 'none' : tenant;
      expect(hitsFor(id).map((hit) => [hit.tenant, hit.baggage])).toEqual([
        [wire, tenant === 'baseline' ? 'user=7' : `tenant=${tenant},user=7`],
      ]);
    } finally {
      agent.destroy();
    }
  });
});
