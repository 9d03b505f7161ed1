/**
 * One local HTTP hop (server middleware + outbound fetch), bare vs Dye, in one
 * process: the same node:http server and undici Agent, with and without Dye's
 * middleware and dispatcher, in baseline and in `red`.
 *
 *   npm run bench -- http
 */

import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setLogger, withTenant } from '@dye/core';
import { StaticRegistry } from '@dye/discovery';
import { tenantDispatcher, tenantMiddleware } from '@dye/http';
import { Agent, type Dispatcher } from 'undici';
import { compareThroughput, printThroughput, type ThroughputResult } from './harness.js';

setLogger({ warn: () => {} });

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer({ keepAlive: true }, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

const respond = (res: ServerResponse) => {
  res.setHeader('content-type', 'text/plain');
  res.end('ok');
};

export async function run(): Promise<ThroughputResult[]> {
  const bareServer = await serve((_req, res) => respond(res));
  const middleware = tenantMiddleware({ mode: 'internal' });
  const dyeServer = await serve((req, res) => middleware(req, res, () => respond(res)));
  const edge = tenantMiddleware({ mode: 'edge' });
  const edgeServer = await serve((req, res) => edge(req, res, () => respond(res)));

  const bareAgent = new Agent({ connections: 32 });
  const dyeAgent = tenantDispatcher({ agent: { connections: 32 } });

  const call = async (url: string, dispatcher: Dispatcher, headers?: Record<string, string>) => {
    // Node's fetch types its dispatcher with the bundled undici's types; same object at run time.
    const response = await fetch(url, { dispatcher: dispatcher as unknown as RequestInit['dispatcher'], ...(headers ? { headers } : {}) });
    await response.arrayBuffer();
  };

  const results = await compareThroughput('http', [
    { name: 'bare: node:http + fetch', run: () => call(bareServer.url, bareAgent) },
    { name: 'dye baseline: internal middleware + tenantDispatcher', run: () => call(dyeServer.url, dyeAgent) },
    { name: 'dye red: internal middleware + tenantDispatcher', run: () => withTenant('red', () => call(dyeServer.url, dyeAgent)) },
    {
      name: 'dye edge: untrusted peer, spoofed header stripped',
      run: () => call(edgeServer.url, bareAgent, { 'x-tenant': 'shadow', baggage: 'tenant=shadow,user=u1' }),
    },
    { name: 'bare: node:http + fetch again (noise control)', run: () => call(bareServer.url, bareAgent) },
  ]);
  printThroughput('One HTTP hop: requests/s with 16 in flight (higher is better)', results);

  // App routing: http://bench.pricing/ resolved by the registry to one of two
  // baseline instances (or the red one), next to the same dispatcher sent to
  // an instance's address.
  const secondServer = await serve((req, res) => middleware(req, res, () => respond(res)));
  const redServer = await serve((req, res) => middleware(req, res, () => respond(res)));
  const address = (url: string) => new URL(url).host;
  const registry = new StaticRegistry([
    { app: 'bench.pricing', id: 'p1', address: address(dyeServer.url), lane: 'baseline' },
    { app: 'bench.pricing', id: 'p2', address: address(secondServer.url), lane: 'baseline' },
    { app: 'bench.pricing', id: 'p-red', address: address(redServer.url), lane: 'red' },
  ]);
  const routingAgent = tenantDispatcher({ agent: { connections: 32 }, registry });
  // The first request looks the app up; the figures are of routed requests after it.
  await call('http://bench.pricing/', routingAgent);
  const routed = await compareThroughput('http-routing', [
    { name: 'bare address: tenantDispatcher to an instance address, no routing', run: () => call(dyeServer.url, dyeAgent) },
    { name: 'dye baseline: http://bench.pricing/ routed over 2 instances', run: () => call('http://bench.pricing/', routingAgent) },
    {
      name: 'dye red: http://bench.pricing/ routed to the red lane',
      run: () => withTenant('red', () => call('http://bench.pricing/', routingAgent)),
    },
    { name: 'bare address again (noise control)', run: () => call(dyeServer.url, dyeAgent) },
  ]);
  printThroughput('HTTP app routing: requests/s with 16 in flight, routed through the registry vs sent to an address', routed);

  await Promise.all([bareAgent.close(), dyeAgent.close(), routingAgent.close()]);
  for (const { server } of [bareServer, dyeServer, edgeServer, secondServer, redServer]) {
    server.closeAllConnections();
    server.close();
  }
  return [...results, ...routed];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
}
