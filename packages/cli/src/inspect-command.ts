import { type InstanceRecord, RedisRegistry } from '@dye/discovery';
import Table from 'cli-table3';
import type { Command } from 'commander';
import pc from 'picocolors';
import { formatSeconds } from './token-command.js';
import { UsageError } from './usage-error.js';

interface InspectOptions {
  redis: string;
  app?: string;
  prefix: string;
  ttl: string;
  json?: boolean;
}

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description('list the instances in a Redis registry: apps × lanes × instances')
    .requiredOption('--redis <url>', 'the registry’s Redis, as redis://127.0.0.1:6379')
    .option('--app <name>', 'only this app (shop.inventory)')
    .option('--prefix <prefix>', 'the registry’s key prefix', 'dye:registry')
    .option('--ttl <ms>', 'the TTL to assume for entries that do not record theirs, ms', '30000')
    .option('--json', 'print the instances as JSON')
    .action(async (options: InspectOptions) => {
      const ttl = Number(options.ttl);
      if (!Number.isInteger(ttl) || ttl < 1000) throw new UsageError(`--ttl is in milliseconds, at least 1000; got ${options.ttl}`);
      if (!/^rediss?:\/\//.test(options.redis)) throw new UsageError(`--redis must be a redis:// or rediss:// URL, got ${options.redis}`);
      // Only reads: the heartbeat settings of this registry object never run.
      const registry = new RedisRegistry({ redis: options.redis, prefix: options.prefix, ttl, heartbeatInterval: Math.floor(ttl / 3) });
      try {
        let records: InstanceRecord[];
        try {
          const apps = options.app ? [options.app] : await registry.apps();
          records = (await Promise.all(apps.map(async (app) => registry.records(app)))).flat();
        } catch (error) {
          if (error instanceof TypeError) throw new UsageError(`--app: ${error.message}`);
          throw error;
        }
        const now = Date.now();
        if (options.json) {
          const rows = records.map((record) => ({
            ...record.instance,
            registeredAt: new Date(record.registeredAt).toISOString(),
            lastHeartbeat: new Date(record.expiresAt - (record.ttl ?? ttl)).toISOString(),
            expiresAt: new Date(record.expiresAt).toISOString(),
          }));
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        process.stdout.write(`${instancesTable(records, now, ttl)}\n`);
      } finally {
        await registry.close();
      }
    });
}

function instancesTable(records: readonly InstanceRecord[], now: number, ttl: number): string {
  if (records.length === 0) return 'no instances registered';
  const sorted = [...records].sort(
    (a, b) =>
      a.instance.app.localeCompare(b.instance.app) ||
      a.instance.lane.localeCompare(b.instance.lane) ||
      a.instance.id.localeCompare(b.instance.id),
  );
  const table = new Table({
    style: { head: [], border: [] },
    head: ['app', 'lane', 'instance', 'address', 'age', 'last heartbeat', 'expires'],
  });
  for (const { instance, registeredAt, expiresAt, ttl: recordedTtl } of sorted) {
    const expiresIn = (expiresAt - now) / 1000;
    table.push([
      instance.app,
      instance.lane === 'baseline' ? instance.lane : pc.cyan(instance.lane),
      instance.id,
      instance.address,
      formatSeconds((now - registeredAt) / 1000),
      `${formatSeconds((now - (expiresAt - (recordedTtl ?? ttl))) / 1000)} ago`,
      expiresIn > 0 ? `in ${formatSeconds(expiresIn)}` : pc.red(`${formatSeconds(-expiresIn)} ago (expired)`),
    ]);
  }
  const lanes = new Set(sorted.map((record) => `${record.instance.app}/${record.instance.lane}`)).size;
  const apps = new Set(sorted.map((record) => record.instance.app)).size;
  return `${table.toString()}\n${apps} apps, ${lanes} lanes, ${sorted.length} instances`;
}
