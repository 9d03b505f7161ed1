/**
 * One node:http client hop (http.request through a keep-alive agent), bare vs
 * Dye's tenant agent (what `enableNodeHttp` installs), in baseline and in
 * `red`, to the same bare server in one process.
 *
 *   npm run bench -- node-http
 */

import { once } from 'node:events';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setLogger, withTenant } from '@dye/core';
import { TenantHttpAgent } from '@dye/http';
import { compareThroughput, printThroughput, type ThroughputResult } from './harness.js';

setLogger({ warn: () => {} });

export async function run(): Promise<ThroughputResult[]> {
  const server = createServer({ keepAlive: true }, (_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const agentOptions = { keepAlive: true, maxSockets: 32 };
  const bareAgent = new Agent(agentOptions);
  const dyeAgent = new TenantHttpAgent({ internal: ['loopback'], agentOptions });

  const call = (agent: Agent, headers: Record<string, string> = { accept: 'text/plain' }) =>
    new Promise<void>((resolve, reject) => {
      const outgoing = request({ host: '127.0.0.1', port, path: '/', agent, headers }, (response) => {
        response.on('end', resolve);
        response.resume();
      });
      outgoing.on('error', reject);
      outgoing.end();
    });

  const results = await compareThroughput(
    'node-http',
    [
      { name: 'bare: http.request + keep-alive Agent', run: () => call(bareAgent) },
      { name: 'dye baseline: http.request + TenantHttpAgent', run: () => call(dyeAgent) },
      { name: 'dye red: http.request + TenantHttpAgent', run: () => withTenant('red', () => call(dyeAgent)) },
      // What red sends, written by hand: the cost of carrying a tenant at all, to compare red with.
      {
        name: 'bare, carrying the same headers by hand (x-tenant, baggage)',
        run: () => call(bareAgent, { accept: 'text/plain', 'x-tenant': 'red', baggage: 'tenant=red' }),
      },
      { name: 'bare: http.request + keep-alive Agent again (noise control)', run: () => call(bareAgent) },
      // More, shorter rounds than the default: a median over 15 alternations sits closer to the truth on a shared machine.
    ],
    { rounds: 15, durationMs: 800 },
  );
  printThroughput('One node:http client hop: requests/s with 16 in flight (higher is better)', results);

  bareAgent.destroy();
  dyeAgent.destroy();
  server.closeAllConnections();
  server.close();
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
}
