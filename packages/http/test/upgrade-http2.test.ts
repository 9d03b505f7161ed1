import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createHttp2Server, constants as h2, connect as http2Connect } from 'node:http2';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { currentTenant, readTenantInput, setLogger, signTenantToken } from '@dye/core';
import { guardUpgrades, tenantMiddleware } from '@dye/http';
import { fastifyTenant } from '@dye/http/fastify';
import Fastify from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';

const secret = 'upgrade-test-secret-'.padEnd(40, 'u');
const shadowToken = signTenantToken({ tenant: 'shadow', ttl: '1h' }, secret);
const edgeOptions = { mode: 'edge' as const, secrets: [secret], onInvalidToken: 'reject' as const };

beforeAll(() => setLogger({ warn: () => {} }));

interface Seen {
  connection?: string;
  message?: string;
  headers?: Record<string, unknown>;
}

/** Opens a WebSocket, sends one message, waits for the echo (or the refusal). */
async function talk(url: string, headers: Record<string, string>): Promise<{ echoed?: string; refusedWith?: number }> {
  const socket = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    socket.on('unexpected-response', (_request, response) => {
      resolve({ refusedWith: response.statusCode });
      socket.terminate();
    });
    socket.on('open', () => socket.send('hello'));
    socket.on('message', (data) => {
      resolve({ echoed: String(data) });
      socket.close();
    });
    socket.on('error', reject);
  });
}

describe('WebSocket upgrades pass the edge guard (guardUpgrades, ws attached to the server)', () => {
  const seen: Seen[] = [];
  const server = createServer((_req, res) => res.end());
  const wss = new WebSocketServer({ server });
  let url: string;

  beforeAll(async () => {
    guardUpgrades(server, edgeOptions);
    wss.on('connection', (socket, req: IncomingMessage) => {
      const entry: Seen = { connection: currentTenant().name, headers: { ...req.headers } };
      seen.push(entry);
      socket.on('message', (data) => {
        entry.message = currentTenant().name;
        socket.send(`${currentTenant().name}:${String(data)}`);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    wss.close();
    server.closeAllConnections();
    server.close();
  });
  afterEach(() => {
    seen.length = 0;
  });

  it('an upgrade spoofing x-tenant and baggage runs, and its messages are handled, in baseline', async () => {
    const result = await talk(url, { 'x-tenant': 'shadow', baggage: 'tenant=shadow', 'uberctx-tenant': 'shadow' });
    expect(result).toEqual({ echoed: 'baseline:hello' });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ connection: 'baseline', message: 'baseline' });
    expect(readTenantInput(seen[0]?.headers as Record<string, unknown>)).toEqual({ kind: 'none' });
    expect(seen[0]?.headers?.['uberctx-tenant']).toBeUndefined();
  });

  it('an upgrade with a valid token runs in its tenant, every message included', async () => {
    const result = await talk(url, { 'x-tenant-token': shadowToken });
    expect(result).toEqual({ echoed: 'shadow:hello' });
    expect(seen[0]).toMatchObject({ connection: 'shadow', message: 'shadow' });
  });

  it('a refused token answers 401 on the socket and reaches no upgrade listener', async () => {
    const result = await talk(url, { 'x-tenant-token': 'dye1.forged.token' });
    expect(result).toEqual({ refusedWith: 401 });
    expect(seen).toEqual([]);
  });
});

describe('CONNECT requests pass the edge guard too (guardUpgrades)', () => {
  const seen: Array<{ tenant: string; headers: Record<string, unknown> }> = [];
  const server = createServer();
  let port: number;
  beforeAll(async () => {
    guardUpgrades(server, edgeOptions);
    server.on('connect', (req: IncomingMessage, socket) => {
      seen.push({ tenant: currentTenant().name, headers: { ...req.headers } });
      socket.end('HTTP/1.1 200 Connection Established\r\n\r\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const connectWith = (lines: string[]) =>
    new Promise<string>((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => {
        text += String(chunk);
      });
      socket.on('end', () => resolve(text.split('\r\n')[0] ?? ''));
      socket.on('error', reject);
      socket.write(
        `CONNECT partner.example:443 HTTP/1.1\r\nHost: partner.example:443\r\n${lines.map((line) => `${line}\r\n`).join('')}\r\n`,
      );
    });

  it('a spoofed tenant is stripped before the connect listener reads the headers', async () => {
    seen.length = 0;
    expect(await connectWith(['x-tenant: shadow', 'baggage: tenant=shadow', 'uberctx-tenant: shadow'])).toContain('200');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.tenant).toBe('baseline');
    expect(readTenantInput(seen[0]?.headers as Record<string, unknown>)).toEqual({ kind: 'none' });
    expect(seen[0]?.headers['uberctx-tenant']).toBeUndefined();
  });

  it('a refused token answers 401 and reaches no connect listener', async () => {
    seen.length = 0;
    expect(await connectWith(['x-tenant-token: forged'])).toContain('401');
    expect(seen).toEqual([]);
  });
});

describe('fastifyTenant guards the upgrades of its server too', () => {
  const app = Fastify();
  const upgrades: string[] = [];
  let wss: WebSocketServer;
  beforeAll(async () => {
    await app.register(fastifyTenant, edgeOptions);
    app.get('/', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    wss = new WebSocketServer({ server: app.server });
    wss.on('connection', (socket) => {
      upgrades.push(currentTenant().name);
      socket.on('message', () => socket.send(currentTenant().name));
    });
  });
  afterAll(async () => {
    wss.close();
    await app.close();
  });

  it('spoofed and valid upgrades', async () => {
    const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
    expect(await talk(url, { 'x-tenant': 'shadow' })).toEqual({ echoed: 'baseline' });
    expect(await talk(url, { 'x-tenant-token': shadowToken })).toEqual({ echoed: 'shadow' });
    expect(await talk(url, { 'x-tenant-token': 'nonsense' })).toEqual({ refusedWith: 401 });
    expect(upgrades).toEqual(['baseline', 'shadow']);
  });
});

describe('HTTP/2 (compatibility API) through tenantMiddleware', () => {
  const middleware = tenantMiddleware(edgeOptions);
  const seen: Array<Record<string, string>> = [];
  const server = createHttp2Server((req, res) =>
    middleware(req as unknown as IncomingMessage, res as never, () => {
      const entry: Record<string, string> = { handler: currentTenant().name };
      seen.push(entry);
      req.on('data', () => {
        entry.data ??= currentTenant().name;
      });
      req.on('end', () => {
        entry.end = currentTenant().name;
        entry.headerTenant = String(req.headers['x-tenant'] ?? 'none');
        res.end(currentTenant().name);
      });
    }),
  );
  let port: number;
  beforeAll(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  async function post(headers: Record<string, string>): Promise<{ status: number; body: string }> {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request({ [h2.HTTP2_HEADER_METHOD]: 'POST', [h2.HTTP2_HEADER_PATH]: '/', ...headers });
      stream.end('body');
      const [response] = (await once(stream, 'response')) as [Record<string, string | number>];
      let body = '';
      stream.setEncoding('utf8');
      for await (const chunk of stream) body += chunk;
      return { status: Number(response[h2.HTTP2_HEADER_STATUS]), body };
    } finally {
      session.close();
    }
  }

  it('strips a spoofed tenant; body events run in baseline', async () => {
    seen.length = 0;
    expect(await post({ 'x-tenant': 'shadow', baggage: 'tenant=shadow' })).toEqual({ status: 200, body: 'baseline' });
    expect(seen).toEqual([{ handler: 'baseline', data: 'baseline', end: 'baseline', headerTenant: 'none' }]);
  });

  it('a valid token: body events run in its tenant', async () => {
    seen.length = 0;
    expect(await post({ 'x-tenant-token': shadowToken })).toEqual({ status: 200, body: 'shadow' });
    expect(seen).toEqual([{ handler: 'shadow', data: 'shadow', end: 'shadow', headerTenant: 'shadow' }]);
  });
});
