/**
 * One node:http client hop (http.request through a keep-alive agent), bare vs
 * Dye's tenant agent (what `enableNodeHttp` installs), in baseline and in
 * `red`, to the same bare server in a child process. Measured twice: CPU time
 * per request of client and server together (the verdict, with a 95%
 * interval), and requests per second.
 *
 *   npm run bench -- node-http
 */

import { Agent, request } from 'node:http';
import { setLogger, withTenant } from '@dye/core';
import { TenantHttpAgent } from '@dye/http';
import { forkServer } from './child.js';
import { compareCpu, compareThroughput, printCpu, printThroughput } from './harness.js';

setLogger({ warn: () => {} });

export async function run(): Promise<void> {
  const server = await forkServer('http-server');
  const port = server.ready.port as number;

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

  const bare = 'bare: http.request + keep-alive Agent';
  const variants = [
    { name: bare, run: () => call(bareAgent) },
    { name: 'dye baseline: http.request + TenantHttpAgent', run: () => call(dyeAgent), target: 0.98 },
    // Calls made while serving a red request: the context is red already.
    {
      name: 'dye red: http.request + TenantHttpAgent',
      run: () => call(dyeAgent),
      around: <T>(drive: () => Promise<T>) => withTenant('red', drive),
      target: 0.95,
    },
    // What red sends, written by hand: the cost of carrying a tenant at all.
    {
      name: 'bare, carrying the same headers by hand (x-tenant, baggage)',
      run: () => call(bareAgent, { accept: 'text/plain', 'x-tenant': 'red', baggage: 'tenant=red' }),
    },
    { name: 'bare: http.request + keep-alive Agent again (noise control)', run: () => call(bareAgent) },
  ];

  printCpu(
    'One node:http client hop: CPU time per request, client and server (ratio to bare, 95% interval)',
    await compareCpu('node-http', variants, {
      // Short rounds, many of them: neighbouring rounds share the machine's
      // state, so a pair of them differs by what Dye does and little else.
      rounds: 1200,
      durationMs: 20,
      meters: [server],
    }),
  );
  printThroughput(
    'One node:http client hop: requests/s with 16 in flight (higher is better)',
    await compareThroughput('node-http', variants, { rounds: 8, durationMs: 500 }),
  );

  bareAgent.destroy();
  dyeAgent.destroy();
  await server.close();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
}
