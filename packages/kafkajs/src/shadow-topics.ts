import { isolatedName } from '@dye/core';
import kafkajs, { type Admin } from 'kafkajs';

// kafkajs is CommonJS: its enums come through the default export under Node's ESM.
const { ConfigResourceTypes } = kafkajs;

export interface SyncShadowTopicsOptions {
  admin: Admin;
  /** Production topics whose isolated twins to create or check. */
  topics: readonly string[];
  /** The isolated tenant. Default `shadow` → `<topic>_shadow`. */
  tenant?: string;
  /** Create missing isolated topics. Default true; false only reports. */
  apply?: boolean;
}

export interface TopicDrift {
  readonly topic: string;
  readonly shadowTopic: string;
  readonly kind: 'partitions' | 'config';
  readonly name?: string;
  readonly production: string | number | null;
  readonly shadow: string | number | null;
}

export interface SyncShadowTopicsResult {
  readonly created: readonly string[];
  readonly missing: readonly string[];
  readonly drift: readonly TopicDrift[];
  readonly inSync: boolean;
}

async function topicConfigs(admin: Admin, topic: string): Promise<Map<string, string>> {
  const described = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false });
  const configs = new Map<string, string>();
  for (const entry of described.resources[0]?.configEntries ?? []) {
    // Only what was set on the topic itself: defaults follow the broker.
    if (!entry.isDefault && entry.configValue !== null) configs.set(entry.configName, entry.configValue);
  }
  return configs;
}

/**
 * Creates `<topic>_shadow` for each production topic with the same partition
 * count, replication factor and topic-level configs, and reports drift of the
 * ones that exist (partitions, configs). Production topics are only read.
 */
export async function syncShadowTopics(options: SyncShadowTopicsOptions): Promise<SyncShadowTopicsResult> {
  const { admin } = options;
  const tenant = options.tenant ?? 'shadow';
  const existing = new Set(await admin.listTopics());
  const created: string[] = [];
  const missing: string[] = [];
  const drift: TopicDrift[] = [];
  for (const topic of options.topics) {
    if (!existing.has(topic)) throw new Error(`syncShadowTopics: production topic ${topic} does not exist`);
    const shadowTopic = isolatedName('kafka-topic', topic, tenant);
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    const partitions = metadata?.partitions.length ?? 1;
    const replicationFactor = metadata?.partitions[0]?.replicas.length ?? 1;
    const configs = await topicConfigs(admin, topic);
    if (!existing.has(shadowTopic)) {
      if (options.apply === false) {
        missing.push(shadowTopic);
        continue;
      }
      await admin.createTopics({
        // kafkajs's own wait gives up when a KRaft broker briefly answers
        // UNKNOWN_TOPIC_OR_PARTITION for a topic it has just created.
        waitForLeaders: false,
        topics: [
          {
            topic: shadowTopic,
            numPartitions: partitions,
            replicationFactor,
            configEntries: [...configs].map(([name, value]) => ({ name, value })),
          },
        ],
      });
      await waitForLeaders(admin, shadowTopic, partitions);
      created.push(shadowTopic);
      continue;
    }
    const [shadowMetadata] = (await admin.fetchTopicMetadata({ topics: [shadowTopic] })).topics;
    const shadowPartitions = shadowMetadata?.partitions.length ?? 0;
    if (shadowPartitions !== partitions)
      drift.push({ topic, shadowTopic, kind: 'partitions', production: partitions, shadow: shadowPartitions });
    const shadowConfigs = await topicConfigs(admin, shadowTopic);
    for (const name of new Set([...configs.keys(), ...shadowConfigs.keys()])) {
      const production = configs.get(name) ?? null;
      const shadow = shadowConfigs.get(name) ?? null;
      if (production !== shadow) drift.push({ topic, shadowTopic, kind: 'config', name, production, shadow });
    }
  }
  return { created, missing, drift, inSync: missing.length === 0 && drift.length === 0 };
}

const LEADER_WAIT_MS = 30_000;

/**
 * Resolves once every partition of a topic just created has a leader, so a
 * producer can write to it at once. Unknown-topic answers while the cluster's
 * metadata catches up count as "not yet".
 */
async function waitForLeaders(admin: Admin, topic: string, partitions: number): Promise<void> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  let last = 'no metadata yet';
  while (Date.now() < deadline) {
    try {
      const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      const led = metadata?.partitions.filter((partition) => partition.leader >= 0).length ?? 0;
      if (led === partitions) return;
      last = `${led} of ${partitions} partitions have a leader`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${topic} was created but its partitions have no leader after ${LEADER_WAIT_MS / 1000} s (${last})`);
}
