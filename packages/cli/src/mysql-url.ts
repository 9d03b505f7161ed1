import type mysql from 'mysql2/promise';
import { UsageError } from './usage-error.js';

/** `--mysql mysql://user:password@host:port/db` read as connection settings and the database it names (if any). */
export function parseMysqlUrl(url: string): { config: mysql.ConnectionOptions; database: string | undefined } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--mysql is not a URL: ${url}`);
  }
  if (parsed.protocol !== 'mysql:') throw new UsageError(`--mysql must start with mysql://, got ${parsed.protocol}`);
  // Settings in the query would be silently dropped (a TLS the user thinks is on): only ssl is read.
  const ssl = parsed.searchParams.get('ssl');
  for (const key of parsed.searchParams.keys())
    if (key !== 'ssl') throw new UsageError(`--mysql: the URL setting ${key} is not read; only ssl=true is`);
  if (ssl !== null && ssl !== 'true' && ssl !== 'false') throw new UsageError(`--mysql: ssl takes true or false, got ${ssl}`);
  return {
    config: {
      // An IPv6 literal comes bracketed in a URL, bare to a socket.
      host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
      ...(ssl === 'true' ? { ssl: { rejectUnauthorized: true } } : {}),
      port: parsed.port ? Number(parsed.port) : 3306,
      user: decodeURIComponent(parsed.username || 'root'),
      password: decodeURIComponent(parsed.password),
    },
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || undefined,
  };
}
