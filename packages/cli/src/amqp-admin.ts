import type { RabbitManagement } from '@dye/amqplib';
import type { Command } from 'commander';
import { UsageError } from './usage-error.js';

/** How the CLI reaches RabbitMQ: an AMQP URL (credentials and vhost in it) and the management API beside it. */
export interface AmqpAdminOptions {
  amqp?: string;
  amqpManagement?: string;
}

export function addAmqpAdminOptions(command: Command): Command {
  return command
    .option('--amqp <url>', 'RabbitMQ as an administrator, as amqp://admin:secret@127.0.0.1:5672/<vhost> (vhost / when none)')
    .option('--amqp-management <url>', 'its management API (default http://<the --amqp host>:15672, same user)');
}

export interface AmqpTarget {
  /** The AMQP URL, for a connection that declares twins. */
  url: string;
  management: RabbitManagement;
  vhost: string;
}

/** Reads `--amqp` (and `--amqp-management`); a clear usage error for anything else. */
export function amqpTarget(options: AmqpAdminOptions): AmqpTarget {
  let parsed: URL;
  try {
    parsed = new URL(options.amqp ?? '');
  } catch {
    throw new UsageError(`--amqp ${options.amqp}: not a URL (amqp://user:password@host:5672/vhost)`);
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') throw new UsageError(`--amqp ${options.amqp}: use amqp:// or amqps://`);
  const user = decodeURIComponent(parsed.username || 'guest');
  const password = decodeURIComponent(parsed.password || 'guest');
  // amqplib reads the vhost as the path without its leading slash; none is `/`.
  const path = parsed.pathname.replace(/^\//, '');
  const vhost = path === '' ? '/' : decodeURIComponent(path);
  let management = options.amqpManagement;
  if (management === undefined) management = `http://${parsed.hostname.includes(':') ? `[${parsed.hostname}]` : parsed.hostname}:15672`;
  try {
    const url = new URL(management);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new UsageError(`--amqp-management ${management}: use http:// or https://`);
  }
  return { url: parsed.toString(), management: { url: management, user, password }, vhost };
}
