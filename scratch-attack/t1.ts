import http from 'node:http';
import { withTenant } from '@dye/core';
import { TenantHttpAgent } from '@dye/http';
import { server, trace, sleep } from './lib.ts';
const srv = await server('127.0.0.1', (req, res) => {
  req.resume();
  if (req.url === '/close') setTimeout(() => { res.setHeader('connection', 'close'); res.end('bye'); }, 100);
  else res.end('ok');
});
for (const [a, b] of [['shadow', 'baseline'], ['baseline', 'shadow'], ['red', 'shadow']]) {
  const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'], agentOptions: { keepAlive: true, maxSockets: 1 } });
  const log: string[] = [];
  withTenant(a, () => { const r = http.request(srv.url + '/close', { agent }); trace('A:' + a, r, log); r.end(); });
  withTenant(b, () => { const r = http.request(srv.url + '/b', { agent }); trace('B:' + b, r, log); r.setTimeout(50, () => {}); r.end(); });
  await sleep(500);
  console.log(log.filter((l) => l.startsWith('B')).join('\n'));
  agent.destroy();
}
console.log(srv.recs.map((r) => `${r.path} x-tenant=${r.headers['x-tenant']} baggage=${r.headers['baggage']}`).join('\n'));
srv.s.close();
