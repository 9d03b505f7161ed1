import http from 'node:http';
import { withTenant, currentTenant } from '@dye/core';
import { TenantHttpAgent } from '@dye/http';
import got from 'got';
import { trace, sleep } from './lib.ts';
// A server that, after answering its first request with Connection: close, stops listening for 300 ms (a restart).
const recs: string[] = [];
let first = true;
const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
  recs.push(`${req.url} x-tenant=${req.headers['x-tenant']} baggage=${req.headers.baggage}`);
  req.resume();
  if (first) {
    first = false;
    setTimeout(() => {
      srv.close();
      res.setHeader('connection', 'close');
      res.end('bye');
      setTimeout(() => { srv = http.createServer(handler); srv.listen(port, '127.0.0.1'); }, 300);
    }, 100);
  } else res.end('ok');
};
let srv = http.createServer(handler);
await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
const port = (srv.address() as any).port;
const url = `http://127.0.0.1:${port}`;
const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'], agentOptions: { keepAlive: true, maxSockets: 1 } });
withTenant('baseline', () => http.request(url + '/baseline-first', { agent }).end());
await sleep(20);
const seen: string[] = [];
const result = await withTenant('shadow', () =>
  got(url + '/shadow-order', {
    agent: { http: agent },
    retry: { limit: 2, calculateDelay: ({ computedValue }) => (computedValue ? 500 : 0) },
    hooks: { beforeRetry: [(err) => { seen.push(`beforeRetry(${err.code}) tenant=${currentTenant().name}`); }] },
  }).text().then((t) => `${t} continuation tenant=${currentTenant().name}`, (e) => `failed ${e.code}`),
);
console.log(seen.join('\n'));
console.log(result);
console.log('server recorded:\n' + recs.join('\n'));
agent.destroy(); srv.close();
