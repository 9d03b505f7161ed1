import { currentTenant, type Tenant } from '@dye/core';
import { type FlowJob, FlowProducer, type FlowProducerOptions } from 'bullmq';
import { type BullConnection, type IsolationSettings, productionConnection } from './isolated-connection.js';
import { isolatedQueuePrefix, tagOptions } from './job-tenant.js';
import { TenantRouter } from './tenant-routing.js';

export interface TenantFlowProducerOptions extends Omit<FlowProducerOptions, 'connection'>, IsolationSettings {
  /** The production connection: an ioredis client (a `tenantRedis` wrapper is unwrapped) or its options. */
  connection: BullConnection;
}

/** Every node of a flow tagged with the tenant; for an isolated tenant, every explicit prefix moved into its keyspace. */
function tagFlow(flow: FlowJob, tenant: Tenant, isolated: boolean): FlowJob {
  return {
    ...flow,
    ...(isolated && flow.prefix !== undefined ? { prefix: isolatedQueuePrefix(tenant, flow.prefix) } : {}),
    opts: tagOptions(flow.opts ?? {}, tenant),
    ...(flow.children ? { children: flow.children.map((child) => tagFlow(child, tenant, isolated)) } : {}),
  } as FlowJob;
}

/**
 * A BullMQ `FlowProducer` whose flows carry the tenant they are added in:
 * every parent and child job is tagged; an isolated tenant's flow goes, whole,
 * to its own queues (`shadow:<prefix>`, on the isolated ACL user's connection).
 */
export function tenantFlowProducer<T extends FlowProducer = FlowProducer>(options: TenantFlowProducerOptions): T {
  const { isolated, policy, connection, ...flowOptions } = options;
  const production = new FlowProducer({ ...flowOptions, connection: productionConnection(connection) } as FlowProducerOptions);
  const router = new TenantRouter<FlowProducer>(
    production,
    connection,
    { ...(isolated ? { isolated } : {}), ...(policy ? { policy } : {}) },
    (tenant, side) =>
      new FlowProducer({
        ...flowOptions,
        prefix: isolatedQueuePrefix(tenant, flowOptions.prefix),
        connection: side.connection,
      } as FlowProducerOptions),
    'BullMQ flow producer',
  );
  const producerNow = async (): Promise<{ producer: FlowProducer; isolated: boolean }> => {
    const tenant = router.isolatedTenant();
    if (!tenant) return { producer: production, isolated: false };
    const entry = router.isolated(tenant);
    if (entry instanceof Error) throw entry;
    await entry.side.check.ensure();
    return { producer: entry.instance, isolated: true };
  };
  return router.proxy(
    {
      add: async (flow: unknown, opts?: unknown) => {
        const tenant = currentTenant();
        const { producer, isolated: inIsolation } = await producerNow();
        return producer.add(tagFlow(flow as FlowJob, tenant, inIsolation), opts as never);
      },
      addBulk: async (flows: unknown) => {
        const tenant = currentTenant();
        const { producer, isolated: inIsolation } = await producerNow();
        return producer.addBulk((flows as FlowJob[]).map((flow) => tagFlow(flow, tenant, inIsolation)));
      },
      close: () => router.close(),
      disconnect: () => Promise.all(router.all().map((producer) => producer.disconnect())).then(() => undefined),
    },
    ['close', 'disconnect'],
  ) as unknown as T;
}
