import { currentTenant, injectTenant, isolatedName, isolationRefusal, type Tenant, type TenantPolicy } from '@dye/core';
import type { IHeaders, Message, Offsets, Producer, ProducerBatch, ProducerConfig, ProducerRecord, Transaction } from 'kafkajs';
import type { IsolatedKafkaClient } from './isolated-client.js';
import { kafkaHeaders } from './message-headers.js';
import { PRODUCER_OPERATIONS, TRANSACTION_OPERATIONS } from './operations.js';
import { isolates } from './tenants.js';
import type { TopicCatalog } from './topic-catalog.js';

/** A copy of the message with the tenant's headers; the caller's objects are never changed. */
function stamp(message: Message, tenant: Tenant): Message {
  const headers: IHeaders = { ...(message.headers ?? {}) };
  injectTenant(headers, kafkaHeaders, tenant);
  return { ...message, headers };
}

function hasTenantHeaders(messages: readonly Message[]): boolean {
  for (const message of messages) {
    if (message.headers && kafkaHeaders.get(message.headers, 'x-tenant') !== undefined) return true;
    if (message.headers && kafkaHeaders.get(message.headers, 'baggage') !== undefined) return true;
  }
  return false;
}

async function prepareRecord(record: ProducerRecord, tenant: Tenant, catalog: TopicCatalog, policy: TenantPolicy): Promise<ProducerRecord> {
  let topic = record.topic;
  if (isolates(policy, tenant)) {
    topic = isolatedName('kafka-topic', record.topic, tenant);
    // Checked through admin metadata, which never creates topics, whatever the
    // producer's allowAutoTopicCreation says.
    if (!(await catalog.exists(topic))) {
      throw isolationRefusal('kafka', {
        tenant: tenant.name,
        refused: `producing to ${record.topic}`,
        reason: `the isolated topic ${topic} does not exist (create it with syncShadowTopics)`,
      });
    }
  }
  return { ...record, topic, messages: record.messages.map((message) => stamp(message, tenant)) };
}

/** Refuses a method the tables in operations.ts do not name, in an isolated tenant. */
function unknownOperation(object: string, operation: string, tenant: Tenant): never {
  throw isolationRefusal('kafka', {
    tenant: tenant.name,
    refused: `${object}.${operation}()`,
    reason: 'Dye does not know what this kafkajs method touches, so an isolated tenant may not call it',
  });
}

/**
 * With `isolated` (an isolated client of its own), isolated tenants write
 * through producers of that client, one per tenant, made and connected at
 * first use, after the broker is seen to refuse that client production
 * topics; the production producer then never carries an isolated message.
 */
export function tenantProducer(
  producer: Producer,
  catalog: TopicCatalog,
  policy: () => TenantPolicy,
  isolated?: { readonly client: IsolatedKafkaClient; readonly config: ProducerConfig | undefined },
): Producer {
  const isolatedProducers = new Map<string, Promise<Producer>>();
  function isolatedProducer(tenant: Tenant): Promise<Producer> | undefined {
    if (isolated === undefined || !isolates(policy(), tenant)) return undefined;
    let made = isolatedProducers.get(tenant.name);
    if (made === undefined) {
      const next = isolated.client.producer(isolated.config, tenant);
      made = next.connect().then(() => next);
      made.catch(() => isolatedProducers.delete(tenant.name));
      isolatedProducers.set(tenant.name, made);
    }
    return made;
  }
  /** The producer a tenant's messages go out on, once the isolated client is confirmed for `topics`. */
  async function writerFor(own: Pick<Producer, 'send' | 'sendBatch'>, tenant: Tenant, topics: string[]) {
    const made = isolatedProducer(tenant);
    if (made === undefined) return own;
    await isolated?.client.confirm(topics, tenant);
    return made;
  }
  const send = async (target: Pick<Producer, 'send' | 'sendBatch'>, record: ProducerRecord, tenant: Tenant) => {
    const prepared = await prepareRecord(record, tenant, catalog, policy());
    return (await writerFor(target, tenant, [record.topic])).send(prepared);
  };
  const sendBatch = async (target: Pick<Producer, 'send' | 'sendBatch'>, batch: ProducerBatch, tenant: Tenant) => {
    // Every topic is checked before anything is sent: a refusal sends nothing.
    const topicMessages = await Promise.all(
      (batch.topicMessages ?? []).map((entry) =>
        prepareRecord({ topic: entry.topic, messages: entry.messages }, tenant, catalog, policy()),
      ),
    );
    const writer = await writerFor(
      target,
      tenant,
      (batch.topicMessages ?? []).map((entry) => entry.topic),
    );
    return writer.sendBatch({ ...batch, topicMessages });
  };

  /**
   * A transaction belongs to the tenant that opened it. An isolated tenant may
   * not write through another tenant's transaction (its messages and offsets
   * would land in production); the other way, baseline code sending through a
   * shadow transaction writes shadow topics only.
   */
  function tenantTransaction(transaction: Transaction, tenant: Tenant): Transaction {
    const writer = () => {
      const now = currentTenant();
      if (now.name !== tenant.name && isolates(policy(), now)) {
        throw isolationRefusal('kafka', {
          tenant: now.name,
          refused: `writing through, committing or aborting a transaction opened by ${tenant.name}`,
          reason: 'its messages and offsets would be committed as that tenant; open a transaction in this tenant',
        });
      }
    };
    const sendOffsets = (offsets: Offsets & { consumerGroupId: string }) => {
      writer();
      if (!isolates(policy(), tenant)) return transaction.sendOffsets(offsets);
      // Offsets of the isolated group on the isolated topics: handlers name production ones.
      return transaction.sendOffsets({
        ...offsets,
        consumerGroupId: isolatedName('kafka-group', offsets.consumerGroupId, tenant),
        topics: offsets.topics.map((entry) => ({ ...entry, topic: isolatedName('kafka-topic', entry.topic, tenant) })),
      });
    };
    return new Proxy(transaction, {
      get(inner, name) {
        if (typeof name !== 'string') return Reflect.get(inner, name, inner);
        if (name === 'send')
          return async (record: ProducerRecord) => {
            writer();
            if (isolates(policy(), tenant)) await isolated?.client.confirm([record.topic], tenant);
            return inner.send(await prepareRecord(record, tenant, catalog, policy()));
          };
        if (name === 'sendBatch')
          return async (batch: ProducerBatch) => {
            writer();
            const topics = (batch.topicMessages ?? []).map((entry) => entry.topic);
            if (isolates(policy(), tenant)) await isolated?.client.confirm(topics, tenant);
            const topicMessages = await Promise.all(
              (batch.topicMessages ?? []).map((entry) =>
                prepareRecord({ topic: entry.topic, messages: entry.messages }, tenant, catalog, policy()),
              ),
            );
            return inner.sendBatch({ ...batch, topicMessages });
          };
        if (name === 'sendOffsets') return async (offsets: Offsets & { consumerGroupId: string }) => sendOffsets(offsets);
        // Committing or aborting decides what another tenant's writes become (visible, or discarded).
        if (name === 'commit' || name === 'abort')
          return async () => {
            writer();
            return inner[name]();
          };
        const value = Reflect.get(inner, name, inner);
        if (typeof value !== 'function') return value;
        if (Object.hasOwn(TRANSACTION_OPERATIONS, name)) return value.bind(inner);
        return (...args: unknown[]) => {
          const now = currentTenant();
          if (isolates(policy(), now) || isolates(policy(), tenant))
            unknownOperation('transaction', name, isolates(policy(), now) ? now : tenant);
          return Reflect.apply(value, inner, args);
        };
      },
    }) as Transaction;
  }

  return new Proxy(producer, {
    get(target, property, receiver) {
      if (typeof property !== 'string') return Reflect.get(target, property, receiver);
      if (property === 'send') {
        return (record: ProducerRecord) => {
          const tenant = currentTenant();
          // Baseline with no tenant headers to remove: kafkajs as it is.
          if (tenant.kind === 'baseline' && !hasTenantHeaders(record.messages)) return target.send(record);
          return send(target, record, tenant);
        };
      }
      if (property === 'sendBatch') return (batch: ProducerBatch) => sendBatch(target, batch, currentTenant());
      if (property === 'transaction') {
        return async () => {
          const tenant = currentTenant();
          const made = isolatedProducer(tenant);
          return tenantTransaction(await (made ? await made : target).transaction(), tenant);
        };
      }
      if (property === 'disconnect') {
        return async () => {
          const made = [...isolatedProducers.values()];
          isolatedProducers.clear();
          await Promise.allSettled(made.map(async (next) => (await next).disconnect()));
          return target.disconnect();
        };
      }
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (Object.hasOwn(PRODUCER_OPERATIONS, property)) return value.bind(target);
      return (...args: unknown[]) => {
        const now = currentTenant();
        if (isolates(policy(), now)) unknownOperation('producer', property, now);
        return Reflect.apply(value, target, args);
      };
    },
  });
}
