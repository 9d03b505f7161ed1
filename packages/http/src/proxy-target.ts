import type { ClientRequest } from 'node:http';

/**
 * Where a request really goes when it is sent to a proxy: the URL of an
 * absolute-form path (`GET http://payments.example/charge`), or the authority
 * of a CONNECT (`CONNECT payments.example:443`). Undefined for an ordinary
 * origin-form request (`/…`) and for `OPTIONS *`. Any other path is read as a
 * URL, as a proxy would read it (`http:payments.example/a` and
 * `http:\\payments.example` name that host to a WHATWG parser);
 * 'unreadable' when no URL parser reads it (a proxy might read it some other way).
 */
export function proxyTarget(req: Pick<ClientRequest, 'method' | 'path'>): URL | 'unreadable' | undefined {
  const path = req.path;
  if (req.method === 'CONNECT') return readable(`http://${path}`);
  // Origin form, nearly every request: one character decides.
  if (path.charCodeAt(0) === 47 || (path === '*' && req.method === 'OPTIONS')) return undefined;
  return readable(path);
}

function readable(text: string): URL | 'unreadable' {
  try {
    return new URL(text);
  } catch {
    return 'unreadable';
  }
}
