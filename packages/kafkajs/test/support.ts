import { type Admin, Kafka, logLevel } from 'kafkajs';
import { KAFKA_BROKERS, uniqueName } from '../../../test/support/services.js';

export function kafkaClient(clientId = uniqueName('dye-test')): Kafka {
  return new Kafka({ clientId, brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING, retry: { retries: 3 } });
}

/**
 * Creates one-partition topics and waits until each has a leader that answers. The wait is
 * ours: kafkajs's own waitForLeaders gives up when a broker that has just
 * started answers UNKNOWN_TOPIC_OR_PARTITION for a topic it just created.
 */
export async function createTopics(admin: Admin, ...topics: string[]): Promise<void> {
  await admin.createTopics({ waitForLeaders: false, topics: topics.map((topic) => ({ topic, numPartitions: 1 })) });
  await waitFor(
    () =>
      admin
        .fetchTopicMetadata({ topics })
        .then((metadata) => metadata.topics.every((topic) => topic.partitions.length > 0 && topic.partitions.every((p) => p.leader >= 0)))
        // A leader in the metadata may not know it leads yet (NOT_LEADER_FOR_PARTITION on
        // ListOffsets): ready when each answers for its offsets.
        .then(async (led) => led && (await Promise.all(topics.map((topic) => admin.fetchTopicOffsets(topic)))).length === topics.length)
        .catch(() => false),
    30_000,
    `leaders for ${topics.join(', ')}`,
  );
}

/**
 * Creates `<prefix>-…`, its `_shadow` twin and its dead-letter topic, and
 * notes all three in `created` for the suite to delete.
 */
export async function createTopicWithShadow(admin: Admin, prefix: string, created: string[]): Promise<string> {
  const topic = uniqueName(prefix);
  created.push(topic, `${topic}_shadow`, `${topic}.dye-dlq`);
  await createTopics(admin, topic, `${topic}_shadow`, `${topic}.dye-dlq`);
  return topic;
}

/** Sum of high watermarks: how many messages a topic holds. */
export async function messageCount(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
