import http from 'node:http';
import { currentTenant, setLogger } from '@dye/core';
setLogger({ warn: () => {} });
export type Rec = { ip: string; method?: string; path?: string; headers: http.IncomingHttpHeaders; raw: string[] };
export async function server(ip: string, handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void, port = 0) {
  const recs: Rec[] = [];
  const s = http.createServer((req, res) => {
    recs.push({ ip, method: req.method, path: req.url, headers: req.headers, raw: req.rawHeaders });
    if (handler) return handler(req, res);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => s.listen(port, ip, () => r()));
  const p = (s.address() as any).port;
  return { s, recs, port: p, url: `http://${ip}:${p}` };
}
export const T = () => currentTenant().name;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export function trace(label: string, req: http.ClientRequest, log: string[]) {
  const rec = (ev: string) => () => log.push(`${label} req.${ev}: ${T()}`);
  for (const ev of ['socket', 'finish', 'close', 'timeout', 'information', 'continue']) req.on(ev, rec(ev));
  req.on('error', (e) => log.push(`${label} req.error(${(e as any).code ?? e.message}): ${T()}`));
  req.on('response', (res) => {
    log.push(`${label} req.response: ${T()}`);
    res.on('data', () => log.push(`${label} res.data: ${T()}`));
    res.on('end', () => log.push(`${label} res.end: ${T()}`));
    res.on('close', () => log.push(`${label} res.close: ${T()}`));
    res.on('error', (e) => log.push(`${label} res.error: ${T()}`));
    res.on('aborted', () => log.push(`${label} res.aborted: ${T()}`));
  });
}
