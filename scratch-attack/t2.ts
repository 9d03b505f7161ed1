import http from 'node:http';
import { withTenant } from '@dye/core';
import { TenantHttpAgent } from '@dye/http';
import { server, trace, sleep } from './lib.ts';
const srv = await server('127.0.0.1', (req, res) => {
  req.resume();
  if (req.url === '/close') setTimeout(() => { res.setHeader('connection', 'close'); res.end('bye'); }, 100);
  else setTimeout(() => res.end('ok'), 300);
});
// Case A: req.setTimeout after a queued request whose new socket is made when A's socket closes
{
  const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'], agentOptions: { keepAlive: true, maxSockets: 1 } });
  const log: string[] = [];
  withTenant('baseline', () => { const r = http.request(srv.url + '/close', { agent }); r.end(); });
  withTenant('shadow', () => { const r = http.request(srv.url + '/slow', { agent }); trace('B:shadow', r, log); r.setTimeout(100); r.end(); });
  await sleep(600);
  console.log('--- queued + req.setTimeout\n' + log.join('\n'));
  agent.destroy();
}
// Case B: keep-alive socket opened by shadow, reused by baseline; agent timeout, no per-request timeout
{
  const agent = new TenantHttpAgent({ internal: ['127.0.0.1/32'], agentOptions: { keepAlive: true, timeout: 150 } });
  const log: string[] = [];
  await withTenant('shadow', () => new Promise<void>((done) => { const r = http.request(srv.url + '/fast', { agent }, (res) => { res.resume(); res.on('end', () => setImmediate(done)); }); r.end(); }));
  await withTenant('red', () => new Promise<void>((done) => { const r = http.request(srv.url + '/slow', { agent }); trace('B:red', r, log); r.on('timeout', () => { r.destroy(); }); r.on('close', () => done()); r.end(); }));
  console.log('--- reused socket, agent timeout\n' + log.join('\n'));
  agent.destroy();
}
srv.s.close();
