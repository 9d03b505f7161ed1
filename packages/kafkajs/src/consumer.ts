import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  BASELINE,
  currentTenant,
  isolatedName,
  isolatedSuffix,
  isolationRefusal,
  logWarning,
  recordRoutingFallback,
  type Tenant,
  type TenantPolicy,
  withTenant,
} from '@dye/core';
import type { Registration } from '@dye/discovery';
import type {
  Batch,
  Consumer,
  ConsumerConfig,
  ConsumerRunConfig,
  ConsumerSubscribeTopics,
  EachBatchPayload,
  EachMessagePayload,
  Kafka,
  Offsets,
  Producer,
  TopicPartitionOffsetAndMetadata,
  TopicPartitions,
} from 'kafkajs';
import type { IsolatedKafkaClient } from './isolated-client.js';
import { markIsolatedMessage } from './isolated-messages.js';
import { messageTenant } from './message-headers.js';
import { CONSUMER_OPERATIONS } from './operations.js';
import { isolatedOnProduction, isolatedTenantNow, isolates, laneApp } from './tenants.js';
import type { TopicCatalog } from './topic-catalog.js';
import type { TenantKafkaOptions } from './types.js';

/** Suffix of the dead-letter topic that receives messages whose tenant cannot be decided. */
export const DEAD_LETTER_SUFFIX = '.dye-dlq';

/** A consumer with Dye's additions. */
export type TenantConsumer = Consumer & {
  /** Pauses the isolated consumers (shadow traffic) without touching production consumption. */
  pauseIsolated(): void;
  resumeIsolated(): void;
};

/** What an isolated handler is handed besides kafkajs's payload: the topic it really read. */
export interface IsolatedTopicField {
  /** The isolated topic the message was read from (`orders_shadow`); `topic` is the production name (`orders`). */
  isolatedTopic?: string;
}

/**
 * The consumer of one isolated tenant beside a production consumer: group
 * `<group>_shadow` on the `<topic>_shadow` twins that exist.
 */
interface IsolatedTwin {
  readonly tenant: Tenant;
  readonly consumer: Consumer;
  /** Production topic → isolated topic. */
  readonly isolatedOf: ReadonlyMap<string, string>;
  /** Isolated topic → production topic. */
  readonly productionOf: ReadonlyMap<string, string>;
}

// Topics no production group may read: the isolated twins of any isolated
// tenant (`_shadow`, `_shadow_lt1`) and dead letters.
const ISOLATED_TOPIC = /_shadow(?:_[a-z0-9_]+)?$/;

export function tenantConsumer(
  kafka: Kafka,
  config: ConsumerConfig,
  catalog: TopicCatalog,
  policy: () => TenantPolicy,
  options: TenantKafkaOptions,
  isolatedClient?: IsolatedKafkaClient,
): TenantConsumer {
  const laneTenant = policy().tenant(options.lane ?? process.env.DYE_TENANT ?? 'baseline');
  const registry = options.registry;
  // A color instance with a registry consumes its own lane in group `<group>_<lane>`.
  const laneConsumer = registry !== undefined && laneTenant.kind === 'color';
  const groupId = laneConsumer ? isolatedName('kafka-group', config.groupId, laneTenant) : config.groupId;
  const consumer = kafka.consumer({ ...config, groupId });
  const app = laneApp(config.groupId);
  const isolatedTenants = options.isolatedTenants ?? ['shadow'];
  const extraSuffixes = isolatedTenants.map((name) => isolatedSuffix(policy().tenant(name).name));
  let registration: Registration | undefined;
  let liveLanes = new Set<string>();
  let unwatch: (() => void) | undefined;
  const topics = new Set<string>();
  const twins = new Map<string, IsolatedTwin>();
  let fromBeginning = false;
  let deadLetters: Producer | undefined;

  function isReserved(topic: string): boolean {
    return (
      topic.endsWith(DEAD_LETTER_SUFFIX) ||
      ISOLATED_TOPIC.test(topic) ||
      extraSuffixes.some((suffix) => topic.endsWith(suffix)) ||
      isolatedByPolicy(topic)
    );
  }

  /**
   * Whether a topic is the twin of some tenant the policy isolates Kafka for
   * (`orders_perf` for an isolated `perf`, `orders_blue` for a color with
   * `isolate: ['kafka']`), whichever tenants this consumer reads twins of:
   * every `_`-suffix is tried as a tenant name, as isolatedSuffix writes it.
   */
  function isolatedByPolicy(topic: string): boolean {
    for (let at = topic.indexOf('_'); at !== -1; at = topic.indexOf('_', at + 1)) {
      const resolved = policy().resolve(topic.slice(at + 1).replaceAll('_', '-'));
      if (resolved.ok && isolates(policy(), resolved.tenant)) return true;
    }
    return false;
  }

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
      // Dye sends an isolated tenant's messages to its twin topics only: one on
      // a production topic came from outside Dye. Run as that tenant, its
      // handler's consumer calls would act on the isolated group for a
      // production delivery; run as baseline, it would write production.
      if (isolates(policy(), decided.tenant)) return deadLetter(payload, isolatedOnProduction(decided.tenant, payload.topic));
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

  /** Resolves a subscription to topic names, as kafkajs does (patterns match once, at subscribe), leaving isolated topics out. */
  async function subscribedTopics(listed: ReadonlyArray<string | RegExp>): Promise<string[]> {
    const names: string[] = [];
    for (const topic of listed) {
      if (typeof topic === 'string') {
        if (isReserved(topic)) {
          throw isolationRefusal('kafka', {
            tenant: BASELINE.name,
            refused: `subscribing production group ${groupId} to ${topic}`,
            reason:
              'it is an isolated or dead-letter topic; its messages would run as production. Isolated topics are consumed by the isolated group Dye runs beside this one',
          });
        }
        names.push(topic);
        continue;
      }
      // A fresh copy: a global or sticky pattern keeps state between test() calls.
      const pattern = new RegExp(topic.source, topic.flags.replace(/[gy]/g, ''));
      for (const name of await catalog.list()) if (pattern.test(name) && !isReserved(name)) names.push(name);
    }
    return [...new Set(names)];
  }

  async function startIsolated(runConfig: ConsumerRunConfig): Promise<void> {
    if (options.isolatedConsumers === false) return;
    for (const name of isolatedTenants) {
      const tenant = policy().tenant(name);
      const isolatedOf = new Map<string, string>();
      const productionOf = new Map<string, string>();
      for (const topic of topics) {
        const isolatedTopic = isolatedName('kafka-topic', topic, tenant);
        if (!(await catalog.exists(isolatedTopic))) continue;
        isolatedOf.set(topic, isolatedTopic);
        productionOf.set(isolatedTopic, topic);
      }
      if (isolatedOf.size === 0) continue;
      if (isolatedClient) {
        // A principal the broker does not confine gets no twin: shadow messages
        // wait in their topics, production consumption goes on.
        const confirmed = await isolatedClient.confirm(isolatedOf.keys(), tenant).then(
          () => true,
          (error: unknown) => {
            logWarning(
              'dye.kafka.isolated-refused',
              `isolated consumer of ${tenant.name} not started: ${String((error as Error).message ?? error)}`,
            );
            return false;
          },
        );
        if (!confirmed) continue;
      }
      const isolated = (isolatedClient?.client ?? kafka).consumer({
        ...config,
        groupId: isolatedName('kafka-group', config.groupId, tenant),
      });
      const twin: IsolatedTwin = { tenant, consumer: isolated, isolatedOf, productionOf };
      twins.set(tenant.name, twin);
      isolated.on(isolated.events.CRASH, (event) => {
        logWarning(
          'dye.kafka.isolated-crash',
          `isolated consumer of ${tenant.name} crashed; production consumption goes on: ${String(event.payload.error)}`,
        );
      });
      await isolated.connect();
      await isolated.subscribe({ topics: [...productionOf.keys()], fromBeginning });
      const { eachMessage, eachBatch } = runConfig;
      // The topic decides the tenant here; handlers see the production topic name.
      await withTenant(tenant, () =>
        isolated.run({
          ...runConfig,
          ...(eachMessage
            ? {
                eachMessage: (payload) => {
                  markIsolatedMessage(payload.message, tenant);
                  return withTenant(tenant, () =>
                    eachMessage({
                      ...payload,
                      topic: productionOf.get(payload.topic) ?? payload.topic,
                      isolatedTopic: payload.topic,
                    } as EachMessagePayload),
                  );
                },
              }
            : {}),
          ...(eachBatch
            ? {
                eachBatch: (payload) => {
                  for (const message of payload.batch.messages) markIsolatedMessage(message, tenant);
                  return withTenant(tenant, () => eachBatch(isolatedBatchPayload(twin, payload)));
                },
              }
            : {}),
        }),
      );
    }
  }

  /** Refuses in an isolated tenant that has no twin here, or for a topic the twin does not consume. */
  function twinOf(tenant: Tenant, operation: string): IsolatedTwin {
    const twin = twins.get(tenant.name);
    if (twin) return twin;
    throw isolationRefusal('kafka', {
      tenant: tenant.name,
      refused: `consumer.${operation}() of group ${groupId}`,
      reason: `no isolated consumer of ${tenant.name} runs beside this consumer, and the production group must not be touched`,
    });
  }

  function isolatedTopic(twin: IsolatedTwin, topic: string, operation: string): string {
    const renamed = twin.isolatedOf.get(topic);
    if (renamed !== undefined) return renamed;
    throw isolationRefusal('kafka', {
      tenant: twin.tenant.name,
      refused: `consumer.${operation}() on topic ${topic}`,
      reason: `the isolated consumer of ${twin.tenant.name} reads no twin of ${topic} (handlers name production topics; Dye renames them)`,
    });
  }

  const renameOffsets = (twin: IsolatedTwin, list: TopicPartitionOffsetAndMetadata[], operation: string) =>
    list.map((entry) => ({ ...entry, topic: isolatedTopic(twin, entry.topic, operation) }));
  const renamePartitions = (
    twin: IsolatedTwin,
    list: TopicPartitions[] | Array<{ topic: string; partitions?: number[] }>,
    operation: string,
  ) => list.map((entry) => ({ ...entry, topic: isolatedTopic(twin, entry.topic, operation) }));

  /** One consumer operation called in an isolated tenant: done on that tenant's twin, names renamed. */
  function onTwin(operation: string, tenant: Tenant, args: unknown[]): unknown {
    switch (operation) {
      case 'commitOffsets': {
        const twin = twinOf(tenant, operation);
        return twin.consumer.commitOffsets(renameOffsets(twin, args[0] as TopicPartitionOffsetAndMetadata[], operation));
      }
      case 'seek': {
        const twin = twinOf(tenant, operation);
        const target = args[0] as { topic: string; partition: number; offset: string };
        return twin.consumer.seek({ ...target, topic: isolatedTopic(twin, target.topic, operation) });
      }
      case 'pause':
      case 'resume': {
        const twin = twinOf(tenant, operation);
        return twin.consumer[operation](renamePartitions(twin, args[0] as TopicPartitions[], operation));
      }
      case 'paused': {
        const twin = twinOf(tenant, operation);
        return twin.consumer
          .paused()
          .map((entry) => ({ ...entry, topic: twin.productionOf.get(entry.topic) ?? entry.topic, isolatedTopic: entry.topic }));
      }
      case 'describeGroup':
        return twinOf(tenant, operation).consumer.describeGroup();
      case 'stop':
        return twinOf(tenant, operation).consumer.stop();
      case 'disconnect':
        return twinOf(tenant, operation).consumer.disconnect();
      default:
        throw isolationRefusal('kafka', {
          tenant: tenant.name,
          refused: `consumer.${operation}()`,
          reason: 'Dye does not know what this kafkajs method touches, so an isolated tenant may not call it',
        });
    }
  }

  const additions = {
    pauseIsolated() {
      for (const twin of twins.values()) twin.consumer.pause([...twin.productionOf.keys()].map((topic) => ({ topic })));
    },
    resumeIsolated() {
      for (const twin of twins.values()) twin.consumer.resume([...twin.productionOf.keys()].map((topic) => ({ topic })));
    },
  };

  const subscribe = (subscription: ConsumerSubscribeTopics | { topic: string | RegExp; fromBeginning?: boolean }) =>
    // Setting up production consumption is the same whoever asks.
    withTenant(BASELINE, async () => {
      const listed = 'topics' in subscription ? subscription.topics : [subscription.topic];
      const names = await subscribedTopics(listed);
      for (const name of names) topics.add(name);
      fromBeginning ||= Boolean(subscription.fromBeginning);
      if (names.length === 0) {
        logWarning('dye.kafka.empty-subscription', `no production topic matches ${listed.map(String).join(', ')}; nothing subscribed`);
        return;
      }
      return consumer.subscribe({ topics: names, fromBeginning: Boolean(subscription.fromBeginning) });
    });

  const run = (runConfig: ConsumerRunConfig = {}) =>
    // kafkajs's fetch loop starts here and calls every handler from it: it runs
    // in baseline whoever calls run(), and each handler in its own tenant.
    withTenant(BASELINE, async () => {
      const { eachMessage, eachBatch } = runConfig;
      await joinLanes();
      await consumer.run({
        ...runConfig,
        ...(eachMessage ? { eachMessage: inMessageTenant(eachMessage) } : {}),
        // A batch mixes tenants: its handler runs in baseline and puts each
        // message in its tenant with withMessageTenant.
        ...(eachBatch ? { eachBatch: (payload: EachBatchPayload) => withTenant(BASELINE, () => eachBatch(payload)) } : {}),
      });
      // Lane consumers leave isolated topics to the baseline instances.
      if (laneConsumer) return;
      // Shadow consumption must never stop production consumption.
      startIsolated(runConfig).catch((error: Error) =>
        logWarning('dye.kafka.isolated-failed', `isolated consumers did not start; production consumption goes on: ${error.message}`),
      );
    });

  async function close(operation: 'stop' | 'disconnect'): Promise<void> {
    await leaveLanes();
    // All at once: each consumer waits for its fetch in flight (up to
    // maxWaitTimeInMs), and one after another those waits add up.
    const production = consumer[operation]();
    await Promise.allSettled([...twins.values()].map((twin) => twin.consumer[operation]()));
    await production;
    // Last: a handler still finishing may dead-letter a message.
    if (operation === 'disconnect') await deadLetters?.disconnect();
  }

  const isSync = (operation: string) => operation === 'seek' || operation === 'pause' || operation === 'resume' || operation === 'paused';

  return new Proxy(consumer, {
    get(target, property, receiver) {
      if (typeof property !== 'string') return Reflect.get(target, property, receiver);
      if (Object.hasOwn(additions, property)) return additions[property as keyof typeof additions];
      if (property === 'subscribe') return subscribe;
      if (property === 'run') return run;
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const kind = Object.hasOwn(CONSUMER_OPERATIONS, property) ? CONSUMER_OPERATIONS[property] : undefined;
      if (kind === 'neutral' || kind === 'setup') return value.bind(target);
      return (...args: unknown[]) => {
        const tenant = isolatedTenantNow(policy());
        if (tenant === undefined) {
          if (property === 'stop' || property === 'disconnect') return close(property);
          return Reflect.apply(value, target, args);
        }
        if (isSync(property)) return onTwin(property, tenant, args);
        try {
          return Promise.resolve(onTwin(property, tenant, args));
        } catch (error) {
          return Promise.reject(error);
        }
      };
    },
  }) as TenantConsumer;
}

/** An isolated batch as handlers see it: production topic name, offsets named by production topics. */
function isolatedBatchPayload(twin: IsolatedTwin, payload: EachBatchPayload): EachBatchPayload {
  const production = twin.productionOf.get(payload.batch.topic) ?? payload.batch.topic;
  const batch = new Proxy(payload.batch, {
    get(target, property) {
      if (property === 'topic') return production;
      if (property === 'isolatedTopic') return target.topic;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Batch & IsolatedTopicField;
  const toProduction = (offsets: Offsets): Offsets => ({
    topics: offsets.topics.map((entry) => ({ ...entry, topic: twin.productionOf.get(entry.topic) ?? entry.topic })),
  });
  const toIsolated = (offsets: Offsets): Offsets => ({
    topics: offsets.topics.map((entry) => {
      const renamed = twin.isolatedOf.get(entry.topic);
      if (renamed === undefined) {
        throw isolationRefusal('kafka', {
          tenant: twin.tenant.name,
          refused: `commitOffsetsIfNecessary() on topic ${entry.topic}`,
          reason: `the isolated consumer of ${twin.tenant.name} reads no twin of ${entry.topic}`,
        });
      }
      return { ...entry, topic: renamed };
    }),
  });
  return {
    ...payload,
    batch,
    uncommittedOffsets: () => toProduction(payload.uncommittedOffsets()),
    commitOffsetsIfNecessary: async (offsets?: Offsets) =>
      payload.commitOffsetsIfNecessary(offsets === undefined ? undefined : toIsolated(offsets)),
  };
}
