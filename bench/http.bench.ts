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

  await Promise.all([bareAgent.close(), dyeAgent.close()]);
  for (const { server } of [bareServer, dyeServer, edgeServer]) {
    server.closeAllConnections();
    server.close();
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
}
