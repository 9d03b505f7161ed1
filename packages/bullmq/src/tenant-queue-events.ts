import { QueueEvents, type QueueEventsOptions } from 'bullmq';
import { type BullConnection, type IsolationSettings, productionConnection } from './isolated-connection.js';
import { isolatedQueuePrefix } from './job-tenant.js';
import { TenantRouter } from './tenant-routing.js';

export interface TenantQueueEventsOptions extends Omit<QueueEventsOptions, 'connection'>, IsolationSettings {
  /** The production connection: an ioredis client (a `tenantRedis` wrapper is unwrapped) or its options. */
  connection: BullConnection;
}

/**
 * A BullMQ `QueueEvents` per tenant: a listener registered in baseline or a
 * color hears the production queue's events; one registered in an isolated
 * tenant hears that tenant's own queue (its stream opened at the first such
 * listener). Every listener runs in the tenant it was registered in.
 */
export function tenantQueueEvents<T extends QueueEvents = QueueEvents>(name: string, options: TenantQueueEventsOptions): T {
  const { isolated, policy, connection, ...eventsOptions } = options;
  const production = new QueueEvents(name, { ...eventsOptions, connection: productionConnection(connection) } as QueueEventsOptions);
  const router = new TenantRouter<QueueEvents>(
    production,
    connection,
    { ...(isolated ? { isolated } : {}), ...(policy ? { policy } : {}) },
    (tenant, side) => {
      const events = new QueueEvents(name, {
        ...eventsOptions,
        prefix: isolatedQueuePrefix(tenant, eventsOptions.prefix),
        connection: side.connection,
        autorun: false,
      } as QueueEventsOptions);
      // Reading the tenant's stream waits for the isolated user's check.
      if (eventsOptions.autorun !== false)
        side.check.ensure().then(
          () => void events.run().catch(() => {}),
          () => {},
        );
      return events;
    },
    `BullMQ queue events ${name}`,
  );
  return router.proxy(
    {
      close: () => router.close(),
      disconnect: () => Promise.all(router.all().map((events) => events.disconnect())).then(() => undefined),
    },
    ['close', 'disconnect', 'run'],
  ) as unknown as T;
}
