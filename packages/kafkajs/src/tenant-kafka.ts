import { currentTenant, getDefaultPolicy, isolationRefusal, TenantConflictError, type TenantPolicy, withTenant } from '@dye/core';
import type { Admin, AdminConfig, ConsumerConfig, Kafka, KafkaMessage, Producer, ProducerConfig } from 'kafkajs';
import { tenantAdmin } from './admin.js';
import { type TenantConsumer, tenantConsumer } from './consumer.js';
import { IsolatedKafkaClient } from './isolated-client.js';
import { isolatedReader } from './isolated-messages.js';
import { messageTenant } from './message-headers.js';
import { tenantProducer } from './producer.js';
import { isolatedOnProduction } from './tenants.js';
import { TopicCatalog } from './topic-catalog.js';
import type { TenantKafkaOptions } from './types.js';

export interface TenantKafka {
  producer(config?: ProducerConfig): Producer;
  consumer(config: ConsumerConfig): TenantConsumer;
  admin(config?: AdminConfig): Admin;
  /** Closes the admin connections Dye uses to look up topics (and the isolated client's). */
  close(): Promise<void>;
}

/**
 * Wraps a kafkajs client: producers stamp `x-tenant` and baggage on copies of
 * every message and send isolated tenants' messages to `<topic>_shadow` (or
 * refuse with IsolationError when it does not exist: never auto-created);
 * consumers run handlers in each message's tenant, dead-letter messages with
 * conflicting tenants, and consume the shadow topics with their own groups;
 * in an isolated tenant every consumer, transaction and admin operation acts
 * on the isolated groups and topics only (see operations.ts).
 */
export function tenantKafka(kafka: Kafka, options: TenantKafkaOptions = {}): TenantKafka {
  const enforcement = options.enforcement ?? (options.isolatedClient ? 'account' : 'guard-only');
  if (enforcement !== 'account' && enforcement !== 'guard-only') throw new TypeError(`unknown enforcement ${JSON.stringify(enforcement)}`);
  if (enforcement === 'account' && options.isolatedClient === undefined) {
    throw new TypeError(
      "tenantKafka: enforcement 'account' needs isolatedClient, a kafkajs client authenticated as the isolated principal (see grantShadowAccess)",
    );
  }
  const isolated = options.isolatedClient ? new IsolatedKafkaClient(options.isolatedClient, enforcement) : undefined;
  const catalog = new TopicCatalog(kafka.admin());
  const policy = () => options.policy ?? getDefaultPolicy();
  return {
    producer: (config) => tenantProducer(kafka.producer(config), catalog, policy, isolated && { client: isolated, config }),
    consumer: (config) => tenantConsumer(kafka, config, catalog, policy, options, isolated),
    admin: (config) => tenantAdmin(kafka.admin(config), policy, isolated),
    close: async () => {
      await Promise.all([catalog.close(), isolated?.close()]);
    },
  };
}

/**
 * Runs `fn` in the tenant of a consumed message, for `eachBatch` handlers.
 * A message an isolated consumer read is its tenant's whatever its headers
 * say (the topic decides), and isolated code never leaves its tenant through
 * a message's headers. Otherwise the headers decide; throws
 * TenantConflictError when they name two tenants, and IsolationError when
 * they name an isolated tenant (Dye never sends its messages to a production
 * topic: this one came from outside Dye; dead-letter it).
 */
export function withMessageTenant<R>(message: Pick<KafkaMessage, 'headers'>, fn: () => R, policy: TenantPolicy = getDefaultPolicy()): R {
  const reader = isolatedReader(message);
  if (reader !== undefined) return withTenant(reader, fn);
  const now = currentTenant();
  if (now.kind !== 'baseline' && policy.isolates(now, 'kafka')) return withTenant(now, fn);
  const decided = messageTenant(message.headers, policy);
  if (!decided.ok) throw new TenantConflictError(decided.names);
  // Read by a production consumer, yet naming an isolated tenant: not through Dye (see isolatedOnProduction).
  if (decided.tenant.kind !== 'baseline' && policy.isolates(decided.tenant, 'kafka'))
    throw isolationRefusal('kafka', {
      tenant: decided.tenant.name,
      refused: 'processing a message of a production topic in an isolated tenant',
      reason: isolatedOnProduction(decided.tenant, 'its topic'),
    });
  return withTenant(decided.tenant, fn);
}
