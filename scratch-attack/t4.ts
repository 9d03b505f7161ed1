// shadow → mocked outside host; a restart of the mock makes got retry in baseline, straight to the real outside host
import http from 'node:http';
import { withTenant, currentTenant } from '@dye/core';
import { TenantHttpAgent } from '@dye/http';
import got from 'got';
import { server, sleep } from './lib.ts';
const outside = await server('127.0.0.2'); // "api.payments.example": must never see shadow traffic
const recs: string[] = [];
let first = true;
const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
  recs.push(`mock ${req.url} x-tenant=${req.headers['x-tenant']}`);
  req.resume();
  if (first) {
    first = false;
    setTimeout(() => { mock.close(); res.setHeader('connection', 'close'); res.end('bye');
      setTimeout(() => { mock = http.createServer(handler); mock.listen(port, '127.0.0.1'); }, 300); }, 100);
  } else res.end('mocked');
};
let mock = http.createServer(handler);
await new Promise<void>((r) => mock.listen(0, '127.0.0.1', () => r()));
const port = (mock.address() as any).port;
const agent = new TenantHttpAgent({
  internal: ['127.0.0.1/32'],
  mocks: { '127.0.0.2': `http://127.0.0.1:${port}` },
  agentOptions: { keepAlive: true, maxSockets: 1 },
});
withTenant('baseline', () => http.request(`http://127.0.0.1:${port}/health`, { agent }).end());
await sleep(20);
const r = await withTenant('shadow', () =>
  got.post(`${outside.url}/charge`, { body: 'amount=100', agent: { http: agent }, retry: { limit: 2, methods: ['POST'], calculateDelay: ({ computedValue }) => (computedValue ? 500 : 0) } })
    .text().then((t) => `got: ${t}`, (e) => `got error ${e.code}`));
console.log(r);
console.log(recs.join('\n'));
console.log('outside server recorded:', outside.recs.map((x) => `${x.method} ${x.path} x-tenant=${x.headers['x-tenant']}`));
agent.destroy(); mock.close(); outside.s.close();
