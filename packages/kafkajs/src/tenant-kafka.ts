import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  currentTenant,
  getDefaultPolicy,
  injectTenant,
  isolatedName,
  isolationRefusal,
  logWarning,
  recordRoutingFallback,
  type Tenant,
  TenantConflictError,
  type TenantPolicy,
  withTenant,
} from '@dye/core';
import type { Registration, Registry } from '@dye/discovery';
import type {
  Consumer,
  ConsumerConfig,
  ConsumerRunConfig,
  ConsumerSubscribeTopics,
  EachMessagePayload,
  IHeaders,
  Kafka,
  KafkaMessage,
  Message,
  Producer,
  ProducerBatch,
  ProducerConfig,
  ProducerRecord,
  Transaction,
} from 'kafkajs';
import { kafkaHeaders, messageTenant } from './message-headers.js';
import { TopicCatalog } from './topic-catalog.js';

export interface TenantKafkaOptions {
  /** Which tenants isolate Kafka (isolated tenants always; colors with `isolate: ['kafka']`). Default: the default policy. */
  policy?: TenantPolicy;
  /**
   * Next to every consumer of group `g` on topics `t…`, also consume `t_<tenant>`
   * with group `g_<tenant>` (when those topics exist), handlers in that tenant.
   * Default true.
   */
  isolatedConsumers?: boolean;
  /** The isolated tenants whose topics consumers also read. Default `['shadow']`. */
  isolatedTenants?: readonly string[];
  /**
   * Enables lane-aware consumption of colors on shared topics: lane consumers
   * register here, and baseline consumers leave a color's messages to its lane
   * while one lives.
   */
  registry?: Registry;
  /** The lane of this service instance. Default `process.env.DYE_TENANT`, else baseline. */
  lane?: string;
}

/** A consumer with Dye's additions. */
export type TenantConsumer = Consumer & {
  /** Pauses the isolated consumers (shadow traffic) without touching production consumption. */
  pauseIsolated(): void;
  resumeIsolated(): void;
};

export interface TenantKafka {
  producer(config?: ProducerConfig): Producer;
  consumer(config: ConsumerConfig): TenantConsumer;
  admin: Kafka['admin'];
  /** Closes the admin connection Dye uses to look up topics. */
  close(): Promise<void>;
}

/** Suffix of the dead-letter topic that receives messages whose tenant cannot be decided. */
export const DEAD_LETTER_SUFFIX = '.dye-dlq';

/**
 * Wraps a kafkajs client: producers stamp `x-tenant` and baggage on copies of
 * every message and send isolated tenants' messages to `<topic>_shadow` (or
 * refuse with IsolationError when it does not exist: never auto-created);
 * consumers run handlers in each message's tenant, dead-letter messages with
 * conflicting tenants, and consume the shadow topics with their own groups.
 */
export function tenantKafka(kafka: Kafka, options: TenantKafkaOptions = {}): TenantKafka {
  const catalog = new TopicCatalog(kafka.admin());
  const policy = () => options.policy ?? getDefaultPolicy();
  return {
    producer: (config) => tenantProducer(kafka.producer(config), catalog, policy),
    consumer: (config) => tenantConsumer(kafka, config, catalog, policy, options),
    admin: (config) => kafka.admin(config),
    close: () => catalog.close(),
  };
}

function isolates(policy: TenantPolicy, tenant: Tenant): boolean {
  return tenant.kind !== 'baseline' && policy.isolates(tenant, 'kafka');
}

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

function tenantProducer(producer: Producer, catalog: TopicCatalog, policy: () => TenantPolicy): Producer {
  const send = async (target: Pick<Producer, 'send' | 'sendBatch'>, record: ProducerRecord, tenant: Tenant) =>
    target.send(await prepareRecord(record, tenant, catalog, policy()));
  const sendBatch = async (target: Pick<Producer, 'send' | 'sendBatch'>, batch: ProducerBatch, tenant: Tenant) => {
    // Every topic is checked before anything is sent: a refusal sends nothing.
    const topicMessages = await Promise.all(
      (batch.topicMessages ?? []).map((entry) =>
        prepareRecord({ topic: entry.topic, messages: entry.messages }, tenant, catalog, policy()),
      ),
    );
    return target.sendBatch({ ...batch, topicMessages });
  };
  return new Proxy(producer, {
    get(target, property, receiver) {
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
          // A transaction belongs to the tenant that opened it.
          const tenant = currentTenant();
          const transaction = await target.transaction();
          return new Proxy(transaction, {
            get(inner, name) {
              if (name === 'send') return (record: ProducerRecord) => send(inner, record, tenant);
              if (name === 'sendBatch') return (batch: ProducerBatch) => sendBatch(inner, batch, tenant);
              const value = Reflect.get(inner, name, inner);
              return typeof value === 'function' ? value.bind(inner) : value;
            },
          }) as Transaction;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Runs `fn` in the tenant of a consumed message, for `eachBatch` handlers.
 * Throws TenantConflictError when the message names two tenants.
 */
export function withMessageTenant<R>(message: Pick<KafkaMessage, 'headers'>, fn: () => R, policy: TenantPolicy = getDefaultPolicy()): R {
  const decided = messageTenant(message.headers, policy);
  if (!decided.ok) throw new TenantConflictError(decided.names);
  return withTenant(decided.tenant, fn);
}

/** The registry app under which lane consumers of a group register: `kafka.<group>`. */
export function laneApp(groupId: string): string {
  const name = groupId
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .replace(/\.{2,}/g, '.');
  return `kafka.${name || 'group'}`;
}

function tenantConsumer(
  kafka: Kafka,
  config: ConsumerConfig,
  catalog: TopicCatalog,
  policy: () => TenantPolicy,
  options: TenantKafkaOptions,
): TenantConsumer {
  const laneTenant = policy().tenant(options.lane ?? process.env.DYE_TENANT ?? 'baseline');
  const registry = options.registry;
  // A color instance with a registry consumes its own lane in group `<group>_<lane>`.
  const laneConsumer = registry !== undefined && laneTenant.kind === 'color';
  const groupId = laneConsumer ? isolatedName('kafka-group', config.groupId, laneTenant) : config.groupId;
  const consumer = kafka.consumer({ ...config, groupId });
  const app = laneApp(config.groupId);
  let registration: Registration | undefined;
  let liveLanes = new Set<string>();
  let unwatch: (() => void) | undefined;
  const topics: string[] = [];
  const isolatedConsumers: Array<{ consumer: Consumer; topics: Array<{ topic: string }> }> = [];
  let fromBeginning = false;
  let deadLetters: Producer | undefined;

  async function deadLetter(payload: EachMessagePayload, reason: string): Promise<void> {
    deadLetters ??= kafka.producer({ allowAutoTopicCreation: false });
    await deadLetters.connect();
    const topic = `${payload.topic}${DEAD_LETTER_SUFFIX}`;
    logWarning(
      'dye.kafka.dead-letter',
      `message ${payload.topic}/${payload.partition}@${payload.message.offset} sent to ${topic}: ${reason}`,
    );
    await deadLetters.send({
      topic,
      messages: [
        {
          key: payload.message.key,
          value: payload.message.value,
          headers: {
            ...payload.message.headers,
            'x-dye-dlq-reason': reason,
            'x-dye-dlq-topic': payload.topic,
            'x-dye-dlq-partition': String(payload.partition),
            'x-dye-dlq-offset': payload.message.offset,
          },
        },
      ],
    });
  }

  function inMessageTenant(handler: NonNullable<ConsumerRunConfig['eachMessage']>): NonNullable<ConsumerRunConfig['eachMessage']> {
    return async (payload) => {
      const decided = messageTenant(payload.message.headers, policy());
      // Never processed as a guess: a message naming two tenants goes aside.
      if (!decided.ok) return deadLetter(payload, decided.reason);
      if (belongsElsewhere(decided.tenant)) return;
      return withTenant(decided.tenant, () => handler(payload));
    };
  }

  /** Whether this consumer leaves a message to another lane's consumer (it is committed unprocessed). */
  function belongsElsewhere(tenant: Tenant): boolean {
    if (!registry) return false;
    if (laneConsumer) return tenant.name !== laneTenant.name;
    if (tenant.kind !== 'color') return false;
    if (liveLanes.has(tenant.name)) return true;
    recordRoutingFallback({ app, tenant, via: 'kafka' });
    return false;
  }

  /** Lane consumers announce themselves; baseline consumers learn which lanes live before consuming. */
  async function joinLanes(): Promise<void> {
    if (!registry) return;
    if (laneConsumer) {
      const host =
        hostname()
          .toLowerCase()
          .replace(/[^a-z0-9.-]/g, '-') || 'consumer';
      registration = await registry.register({ app, id: randomUUID(), address: `${host}:0`, lane: laneTenant.name });
      return;
    }
    const first = await registry.snapshot(app);
    liveLanes = new Set(first.instances.map((instance) => instance.lane));
    unwatch = registry.watch(app, (update) => {
      liveLanes = new Set(update.instances.map((instance) => instance.lane));
    });
  }

  async function leaveLanes(): Promise<void> {
    unwatch?.();
    unwatch = undefined;
    await registration?.deregister();
    registration = undefined;
  }

  async function startIsolated(runConfig: ConsumerRunConfig): Promise<void> {
    if (options.isolatedConsumers === false) return;
    for (const name of options.isolatedTenants ?? ['shadow']) {
      const tenant = policy().tenant(name);
      const renamed = new Map<string, string>();
      for (const topic of topics) {
        const isolatedTopic = isolatedName('kafka-topic', topic, tenant);
        if (await catalog.exists(isolatedTopic)) renamed.set(isolatedTopic, topic);
      }
      if (renamed.size === 0) continue;
      const isolated = kafka.consumer({ ...config, groupId: isolatedName('kafka-group', config.groupId, tenant) });
      isolatedConsumers.push({ consumer: isolated, topics: [...renamed.keys()].map((topic) => ({ topic })) });
      isolated.on(isolated.events.CRASH, (event) => {
        logWarning(
          'dye.kafka.isolated-crash',
          `isolated consumer of ${tenant.name} crashed; production consumption goes on: ${String(event.payload.error)}`,
        );
      });
      await isolated.connect();
      await isolated.subscribe({ topics: [...renamed.keys()], fromBeginning });
      const { eachMessage, eachBatch } = runConfig;
      await isolated.run({
        ...runConfig,
        // The topic decides the tenant here; handlers see the production topic name.
        ...(eachMessage
          ? {
              eachMessage: (payload) =>
                withTenant(tenant, () => eachMessage({ ...payload, topic: renamed.get(payload.topic) ?? payload.topic })),
            }
          : {}),
        ...(eachBatch ? { eachBatch: (payload) => withTenant(tenant, () => eachBatch(payload)) } : {}),
      });
    }
  }

  const additions = {
    pauseIsolated() {
      for (const isolated of isolatedConsumers) isolated.consumer.pause(isolated.topics);
    },
    resumeIsolated() {
      for (const isolated of isolatedConsumers) isolated.consumer.resume(isolated.topics);
    },
  };

  return new Proxy(consumer, {
    get(target, property, receiver) {
      if (property in additions) return additions[property as keyof typeof additions];
      if (property === 'subscribe') {
        return async (subscription: ConsumerSubscribeTopics | { topic: string | RegExp; fromBeginning?: boolean }) => {
          const listed = 'topics' in subscription ? subscription.topics : [subscription.topic];
          for (const topic of listed) {
            if (typeof topic === 'string') topics.push(topic);
            else
              logWarning(
                'dye.kafka.regex-subscription',
                `topic pattern ${String(topic)} is consumed for production only; isolated topics need names`,
              );
          }
          fromBeginning ||= Boolean(subscription.fromBeginning);
          return target.subscribe(subscription as ConsumerSubscribeTopics);
        };
      }
      if (property === 'run') {
        return async (runConfig: ConsumerRunConfig = {}) => {
          const { eachMessage } = runConfig;
          await joinLanes();
          await target.run({ ...runConfig, ...(eachMessage ? { eachMessage: inMessageTenant(eachMessage) } : {}) });
          // Lane consumers leave isolated topics to the baseline instances.
          if (laneConsumer) return;
          // Shadow consumption must never stop production consumption.
          startIsolated(runConfig).catch((error: Error) =>
            logWarning('dye.kafka.isolated-failed', `isolated consumers did not start; production consumption goes on: ${error.message}`),
          );
        };
      }
      if (property === 'disconnect' || property === 'stop') {
        return async () => {
          await leaveLanes();
          // All at once: each consumer waits for its fetch in flight (up to
          // maxWaitTimeInMs), and one after another those waits add up.
          const production = target[property]();
          await Promise.allSettled(
            isolatedConsumers.map(({ consumer: isolated }) => (property === 'stop' ? isolated.stop() : isolated.disconnect())),
          );
          await production;
          // Last: a handler still finishing may dead-letter a message.
          if (property === 'disconnect') await deadLetters?.disconnect();
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as TenantConsumer;
}
