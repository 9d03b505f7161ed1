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
  return {
    config: {
      host: parsed.hostname,
      port: parsed.port ? Number(parsed.port) : 3306,
      user: decodeURIComponent(parsed.username || 'root'),
      password: decodeURIComponent(parsed.password),
    },
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || undefined,
  };
}
