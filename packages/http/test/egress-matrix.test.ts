/**
 * Egress, hop by hop, for every outbound client: {fetch, undici.request,
 * http.request, https.request (local TLS), axios, got} × {internal host,
 * outside host, mocked outside host} × {baseline, red, shadow} × {direct, 302
 * redirect, retry after a 503}. Servers count what reaches them: tenant
 * headers exactly on internal hops, none outside, and an isolated tenant's
 * request outside refused before a byte leaves (the outside server counts 0).
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { readTenantInput, setLogger, withTenant } from '@dye/core';
import { enableNodeHttp, tenantDispatcher } from '@dye/http';
import axios, { type AxiosError } from 'axios';
import got from 'got';
import { type Dispatcher, interceptors, request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forGlobalFetch } from './support.js';

const tls = {
  key: readFileSync(new URL('./fixtures/loopback-key.pem', import.meta.url)),
  cert: readFileSync(new URL('./fixtures/loopback-cert.pem', import.meta.url)),
};
const INTERNAL = '127.0.0.1';
const OUTSIDE = '127.0.0.3';
const MOCKED = '127.0.0.4';

interface Hit {
  server: string;
  path: string;
  tenant: string;
}

/** Every request any test server received, by probe id (the path's last segment). */
const hits: Hit[] = [];
const flaky = new Set<string>();

function handler(name: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const read = readTenantInput(req.headers as Record<string, unknown>);
    hits.push({ server: name, path: url.pathname, tenant: read.kind === 'named' ? read.name : read.kind === 'none' ? 'none' : read.kind });
    if (url.pathname.startsWith('/redirect/')) {
      res.writeHead(302, { location: url.searchParams.get('to') as string });
      res.end();
      return;
    }
    if (url.pathname.startsWith('/flaky/') && !flaky.has(url.pathname)) {
      flaky.add(url.pathname);
      res.writeHead(503, { 'retry-after': '0' });
      res.end('try again');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  };
}

type Protocol = 'http' | 'https';
const servers: Array<http.Server | https.Server> = [];
const origins: Record<Protocol, Record<'internal' | 'outside' | 'mocked' | 'mock', string>> = {
  http: { internal: '', outside: '', mocked: '', mock: '' },
  https: { internal: '', outside: '', mocked: '', mock: '' },
};

async function start(protocol: Protocol, role: 'internal' | 'outside' | 'mocked' | 'mock', host: string): Promise<void> {
  const server = protocol === 'https' ? https.createServer(tls, handler(role)) : http.createServer(handler(role));
  server.listen(0, host);
  await once(server, 'listening');
  servers.push(server);
  origins[protocol][role] = `${protocol}://${host}:${(server.address() as AddressInfo).port}`;
}

const egressFor = (protocol: Protocol) => ({
  internal: [`${INTERNAL}/32`],
  mocks: { [MOCKED]: origins[protocol].mock },
});

type Client = 'fetch' | 'undici.request' | 'http.request' | 'https.request' | 'axios' | 'got';
type Mode = 'direct' | 'redirect' | 'retry';
let restoreNodeHttp: () => void;
let fetchDispatcher: Dispatcher;
let undiciDispatcher: Dispatcher;

/** One GET through a client, following one redirect and retrying one 503 the way that client does. */
async function get(client: Client, url: string): Promise<number> {
  switch (client) {
    case 'fetch':
      return (await fetch(url, { dispatcher: forGlobalFetch(fetchDispatcher) })).status;
    case 'undici.request': {
      const response = await undiciRequest(url, { dispatcher: undiciDispatcher });
      await response.body.dump();
      return response.statusCode;
    }
    case 'http.request':
    case 'https.request':
      return nodeGet(url, 1, 1);
    case 'axios':
      return axiosGet(url, 1);
    case 'got':
      return (
        await got(url, {
          https: { certificateAuthority: tls.cert },
          retry: { limit: 1, statusCodes: [503], methods: ['GET'], calculateDelay: ({ attemptCount }) => (attemptCount > 1 ? 0 : 5) },
        })
      ).statusCode;
  }
}

/** node:http by hand: the redirect is followed and the retry made from the response callback, where the tenant must hold. */
function nodeGet(url: string, redirects: number, retries: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const module = url.startsWith('https:') ? https : http;
    const request = module.get(url, { ca: tls.cert }, (response) => {
      response.resume();
      if (response.statusCode === 302 && redirects > 0) {
        nodeGet(response.headers.location as string, redirects - 1, retries).then(resolve, reject);
      } else if (response.statusCode === 503 && retries > 0) {
        setTimeout(() => nodeGet(url, redirects, retries - 1).then(resolve, reject), 5);
      } else {
        resolve(response.statusCode ?? 0);
      }
    });
    request.on('error', reject);
  });
}

async function axiosGet(url: string, retries: number): Promise<number> {
  try {
    return (await axios.get(url, { maxRedirects: 1 })).status;
  } catch (error) {
    const status = (error as AxiosError).response?.status;
    if (status === 503 && retries > 0) return axiosGet(url, retries - 1);
    throw error;
  }
}

const CLIENTS: Client[] = ['fetch', 'undici.request', 'http.request', 'https.request', 'axios', 'got'];
const KINDS = ['internal', 'outside', 'mocked'] as const;
const TENANTS = ['baseline', 'red', 'shadow'] as const;
const MODES: Mode[] = ['direct', 'redirect', 'retry'];

beforeAll(async () => {
  setLogger({ warn: () => {} });
  for (const protocol of ['http', 'https'] as const) {
    await start(protocol, 'internal', INTERNAL);
    await start(protocol, 'outside', OUTSIDE);
    await start(protocol, 'mocked', MOCKED);
    await start(protocol, 'mock', INTERNAL);
  }
  restoreNodeHttp = enableNodeHttp(egressFor('http'));
  // Redirect and retry interceptors composed outside Dye's (fetch follows redirects itself).
  const retry = interceptors.retry({ statusCodes: [503], maxRetries: 1, minTimeout: 5, methods: ['GET'], errorCodes: [] });
  fetchDispatcher = tenantDispatcher(egressFor('http')).compose(retry);
  undiciDispatcher = tenantDispatcher(egressFor('http')).compose(interceptors.redirect({ maxRedirections: 1 }), retry);
});
afterAll(async () => {
  restoreNodeHttp();
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
});

describe.each(CLIENTS)('%s', (client) => {
  const protocol: Protocol = client === 'https.request' ? 'https' : 'http';
  const cases = KINDS.flatMap((kind) => TENANTS.flatMap((tenant) => MODES.map((mode) => [kind, tenant, mode] as const)));

  it.each(cases)('to the %s host as %s, %s', async (kind, tenant, mode) => {
    if (protocol === 'https') {
      // The https mock is an https server: the global agents are set up with it for this case.
      restoreNodeHttp();
      restoreNodeHttp = enableNodeHttp(egressFor('https'));
    }
    const id = randomUUID();
    const path = mode === 'retry' ? `/flaky/${id}` : `/ok/${id}`;
    const target = `${origins[protocol][kind]}${path}`;
    const url = mode === 'redirect' ? `${origins[protocol].internal}/redirect/${id}?to=${encodeURIComponent(target)}` : target;

    const run = () => get(client, url);
    const outcome = await (tenant === 'baseline' ? run() : withTenant(tenant, run)).then(
      (status) => ({ status }),
      (error: Error) => ({ error }),
    );
    if (protocol === 'https') {
      restoreNodeHttp();
      restoreNodeHttp = enableNodeHttp(egressFor('http'));
    }

    const seen = hits.filter((hit) => hit.path.endsWith(id));
    const expectedTenant = tenant === 'baseline' ? 'none' : tenant;
    const firstHop = mode === 'redirect' ? [{ server: 'internal', path: `/redirect/${id}`, tenant: expectedTenant }] : [];
    const targetHops = (server: string, tenantThere: string) =>
      mode === 'retry'
        ? [
            { server, path, tenant: tenantThere },
            { server, path, tenant: tenantThere },
          ]
        : [{ server, path, tenant: tenantThere }];

    if (kind === 'internal') {
      expect(outcome).toEqual({ status: 200 });
      expect(seen).toEqual([...firstHop, ...targetHops('internal', expectedTenant)]);
    } else if (tenant === 'shadow' && kind === 'outside') {
      // Refused before a byte left: the outside server saw nothing.
      expect(outcome).toMatchObject({ error: expect.anything() });
      expect(seen).toEqual(firstHop);
    } else if (tenant === 'shadow' && kind === 'mocked') {
      expect(outcome).toEqual({ status: 200 });
      expect(seen).toEqual([...firstHop, ...targetHops('mock', 'shadow')]);
    } else {
      expect(outcome).toEqual({ status: 200 });
      expect(seen).toEqual([...firstHop, ...targetHops(kind, 'none')]);
    }
  });
});
