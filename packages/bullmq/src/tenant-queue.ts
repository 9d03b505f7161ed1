import { currentTenant } from '@dye/core';
import { type JobsOptions, Queue, type QueueOptions } from 'bullmq';
import { type BullConnection, type IsolationSettings, productionConnection } from './isolated-connection.js';
import { isolatedQueuePrefix, tagOptions } from './job-tenant.js';
import { TenantRouter } from './tenant-routing.js';

export interface TenantQueueOptions extends Omit<QueueOptions, 'connection'>, IsolationSettings {
  /** The production connection: an ioredis client (a `tenantRedis` wrapper is unwrapped) or its options. */
  connection: BullConnection;
}

interface BulkJob {
  name: string;
  data: unknown;
  opts?: JobsOptions;
}

/**
 * A BullMQ `Queue` whose jobs carry the tenant they are added in. Baseline
 * and colors add to the production queue (a color's jobs tagged with it);
 * isolated tenants add to their own queue, `shadow:<prefix>` on a connection
 * as the isolated ACL user, after Dye has checked Redis confines that user.
 * Every other method acts on the queue of the tenant in effect. Same type
 * and API as `Queue`.
 */
export function tenantQueue<T extends Queue = Queue>(name: string, options: TenantQueueOptions): T {
  const { isolated, policy, connection, ...queueOptions } = options;
  const production = new Queue(name, { ...queueOptions, connection: productionConnection(connection) } as QueueOptions);
  const router = new TenantRouter<Queue>(
    production,
    connection,
    { ...(isolated ? { isolated } : {}), ...(policy ? { policy } : {}) },
    (tenant, side) =>
      new Queue(name, {
        ...queueOptions,
        prefix: isolatedQueuePrefix(tenant, queueOptions.prefix),
        connection: side.connection,
      } as QueueOptions),
    `BullMQ queue ${name}`,
  );
  /** The queue for the tenant in effect, once it may be used. */
  const queueNow = async (): Promise<Queue> => {
    const tenant = router.isolatedTenant();
    if (!tenant) return production;
    const entry = router.isolated(tenant);
    if (entry instanceof Error) throw entry;
    await entry.side.check.ensure();
    return entry.instance;
  };
  return router.proxy(
    {
      add: async (jobName: unknown, data: unknown, jobOptions?: unknown) => {
        const tenant = currentTenant();
        const queue = await queueNow();
        return queue.add(jobName as string, data, tagOptions(jobOptions as JobsOptions | undefined, tenant));
      },
      addBulk: async (jobs: unknown) => {
        const tenant = currentTenant();
        const queue = await queueNow();
        return queue.addBulk((jobs as BulkJob[]).map((job) => ({ ...job, opts: tagOptions(job.opts, tenant) })) as never);
      },
      upsertJobScheduler: async (id: unknown, repeat: unknown, template?: unknown) => {
        // Jobs a scheduler produces later carry the tenant it was set up in.
        const tenant = currentTenant();
        const queue = await queueNow();
        const job = (template ?? {}) as { opts?: JobsOptions };
        return queue.upsertJobScheduler(id as string, repeat as never, { ...job, opts: tagOptions(job.opts ?? {}, tenant) } as never);
      },
      close: () => router.close(),
      disconnect: () => Promise.all(router.all().map((queue) => queue.disconnect())).then(() => undefined),
    },
    ['close', 'disconnect'],
  ) as unknown as T;
}
