import type { ClientRequest } from 'node:http';

// `scheme://…`: what a forward proxy is asked for (http, https, ws, ftp…).
const SCHEME_FORM = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Where a request really goes when it is sent to a proxy: the URL of an
 * absolute-form path (`GET http://payments.example/charge`), or the authority
 * of a CONNECT (`CONNECT payments.example:443`). Undefined for an ordinary
 * origin-form request; 'unreadable' when it names a target no URL parser
 * reads (a proxy might read it some other way).
 */
export function proxyTarget(req: Pick<ClientRequest, 'method' | 'path'>): URL | 'unreadable' | undefined {
  const path = req.path;
  if (req.method === 'CONNECT') return readable(`http://${path}`);
  // Origin form, nearly every request: one character decides.
  if (path.charCodeAt(0) === 47 || !SCHEME_FORM.test(path)) return undefined;
  return readable(path);
}

function readable(text: string): URL | 'unreadable' {
  try {
    return new URL(text);
  } catch {
    return 'unreadable';
  }
}
