/**
 * What a handler running for an isolated tenant can reach: every consumer,
 * transaction and admin operation, called on whichever object the handler has,
 * acts on the isolated group and topics. Judged by the broker afterwards
 * (committed offsets of both groups, messages handled, topics present).
 */
import { currentTenant, IsolationError, setLogger, withTenant } from '@dye/core';
import { ADMIN_OPERATIONS, CONSUMER_OPERATIONS, PRODUCER_OPERATIONS, TRANSACTION_OPERATIONS, tenantKafka } from '@dye/kafkajs';
import type { Admin, Consumer, EachBatchPayload, EachMessagePayload, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/support/services.js';
import { createTopics, createTopicWithShadow, kafkaClient, messageCount, waitFor } from './support.js';

const kafka = kafkaClient();
const dye = tenantKafka(kafka);
const created: string[] = [];
let admin: Admin;
let producer: Producer;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = kafka.admin();
  await admin.connect();
  producer = dye.producer();
  await producer.connect();
});

afterAll(async () => {
  await producer.disconnect();
  await admin.deleteTopics({ topics: created }).catch(() => {});
  await admin.disconnect();
  await dye.close();
});

const topicWithShadow = (prefix: string) => createTopicWithShadow(admin, prefix, created);

/** The committed offset of `group` on partition 0 of `topic`, read from the broker ('-1': none). */
async function committed(group: string, topic: string): Promise<string> {
  const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return offsets[0]?.partitions.find((partition) => partition.partition === 0)?.offset ?? 'missing';
}

/**
 * Runs a consumer of a fresh group on a fresh topic; `onShadow` runs inside
 * the handler of the first shadow message. Production messages are counted by
 * value. Returns what the test needs to look at afterwards.
 */
async function withShadowHandler(
  name: string,
  onShadow: (consumer: Consumer, payload: EachMessagePayload) => Promise<void> | void,
  options: { autoCommit?: boolean } = {},
) {
  const topic = await topicWithShadow(name);
  const group = uniqueName(`g-${name}`);
  const consumer = dye.consumer({ groupId: group });
  const handled: Array<{ tenant: string; value: string; topic: string }> = [];
  const errors: unknown[] = [];
  let first = true;
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: options.autoCommit ?? true,
    eachMessage: async (payload) => {
      handled.push({ tenant: currentTenant().name, value: String(payload.message.value), topic: payload.topic });
      if (currentTenant().name === 'shadow' && first) {
        first = false;
        try {
          await onShadow(consumer, payload);
        } catch (error) {
          errors.push(error);
        }
      }
    },
  });
  return { topic, group, consumer, handled, errors };
}

const shadowSend = (topic: string, value: string) => withTenant('shadow', () => producer.send({ topic, messages: [{ value }] }));

describe('a shadow handler calling consumer operations acts on the shadow group only', () => {
  it('commitOffsets: the production group keeps its offset, the shadow group gets the commit', async () => {
    const run = await withShadowHandler(
      'commit',
      (consumer, payload) => consumer.commitOffsets([{ topic: payload.topic, partition: 0, offset: '42' }]),
      { autoCommit: false },
    );
    try {
      await shadowSend(run.topic, 'one');
      await waitFor(() => run.handled.length === 1, 30_000, 'the shadow message');
      await waitFor(async () => (await committed(`${run.group}_shadow`, `${run.topic}_shadow`)) === '42', 10_000, 'the shadow commit');
      expect(run.errors).toEqual([]);
      expect(await committed(run.group, run.topic)).toBe('-1');
    } finally {
      await run.consumer.disconnect();
    }
  });

  it('seek: rewinds the shadow consumer; production messages are handled once each', async () => {
    const run = await withShadowHandler('seek', (consumer, payload) => consumer.seek({ topic: payload.topic, partition: 0, offset: '0' }));
    try {
      await producer.send({ topic: run.topic, messages: [{ value: 'p1' }, { value: 'p2' }] });
      await waitFor(() => run.handled.filter((h) => h.tenant === 'baseline').length === 2, 30_000, 'production messages');
      await shadowSend(run.topic, 's1');
      // Seen twice: once, then again after the seek rewound the shadow consumer.
      await waitFor(() => run.handled.filter((h) => h.value === 's1').length === 2, 30_000, 'the rewound shadow message');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(run.errors).toEqual([]);
      expect(run.handled.filter((h) => h.tenant === 'baseline').map((h) => h.value)).toEqual(['p1', 'p2']);
    } finally {
      await run.consumer.disconnect();
    }
  });

  it('pause, paused and resume: shadow consumption pauses, production goes on', async () => {
    let pausedInShadow: unknown;
    const run = await withShadowHandler('pause', (consumer, payload) => {
      consumer.pause([{ topic: payload.topic }]);
      pausedInShadow = consumer.paused();
    });
    try {
      await shadowSend(run.topic, 's1');
      await waitFor(() => run.handled.some((h) => h.value === 's1'), 30_000, 'the first shadow message');
      await shadowSend(run.topic, 's2');
      await producer.send({ topic: run.topic, messages: [{ value: 'p1' }] });
      await waitFor(() => run.handled.some((h) => h.value === 'p1'), 30_000, 'production while shadow is paused');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(run.errors).toEqual([]);
      expect(run.handled.some((h) => h.value === 's2')).toBe(false);
      expect(pausedInShadow).toEqual([{ topic: run.topic, partitions: [0], isolatedTopic: `${run.topic}_shadow` }]);
      expect(run.consumer.paused()).toEqual([]);
      withTenant('shadow', () => run.consumer.resume([{ topic: run.topic }]));
      await waitFor(() => run.handled.some((h) => h.value === 's2'), 30_000, 'shadow after resume');
    } finally {
      await run.consumer.disconnect();
    }
  });

  it('describeGroup describes the shadow group', async () => {
    let described: string | undefined;
    const run = await withShadowHandler('describe', async (consumer) => {
      described = (await consumer.describeGroup()).groupId;
    });
    try {
      await shadowSend(run.topic, 's1');
      await waitFor(() => described !== undefined, 30_000, 'describeGroup');
      expect(described).toBe(`${run.group}_shadow`);
    } finally {
      await run.consumer.disconnect();
    }
  });

  it('stop stops the shadow consumer; production consumption goes on', async () => {
    const run = await withShadowHandler('stop', async (consumer) => {
      // Not awaited: kafkajs's stop waits for the handler in flight to finish.
      void consumer.stop();
    });
    try {
      await shadowSend(run.topic, 's1');
      await waitFor(() => run.handled.some((h) => h.value === 's1'), 30_000, 'the shadow message');
      await new Promise((resolve) => setTimeout(resolve, 500));
      await shadowSend(run.topic, 's2');
      await producer.send({ topic: run.topic, messages: [{ value: 'p1' }] });
      await waitFor(() => run.handled.some((h) => h.value === 'p1'), 30_000, 'production after the shadow stop');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(run.handled.some((h) => h.value === 's2')).toBe(false);
    } finally {
      await run.consumer.disconnect();
    }
  });

  it('an operation naming a topic the shadow consumer does not read is refused, and production is untouched', async () => {
    const other = await topicWithShadow('other');
    const run = await withShadowHandler('refused', (consumer) => consumer.commitOffsets([{ topic: other, partition: 0, offset: '5' }]), {
      autoCommit: false,
    });
    try {
      await shadowSend(run.topic, 's1');
      await waitFor(() => run.errors.length === 1, 30_000, 'the refusal');
      expect(run.errors[0]).toBeInstanceOf(IsolationError);
      expect(await committed(run.group, other)).toBe('-1');
      expect(await committed(`${run.group}_shadow`, `${other}_shadow`)).toBe('-1');
    } finally {
      await run.consumer.disconnect();
    }
  });

  it('a method Dye has not classified is refused in an isolated tenant and passes through in baseline', async () => {
    const consumer = dye.consumer({ groupId: uniqueName('g-unknown') });
    let calls = 0;
    (consumer as unknown as { brandNew: () => number }).brandNew = () => ++calls;
    const call = () => (consumer as unknown as { brandNew: () => unknown }).brandNew();
    // Dye cannot know whether the method is asynchronous: a throw or a rejection.
    const outcome = await withTenant('shadow', async () => {
      try {
        return await call();
      } catch (error) {
        return error;
      }
    });
    expect(outcome).toBeInstanceOf(IsolationError);
    expect(calls).toBe(0);
    expect(call()).toBe(1);
  });
});

describe('transactions', () => {
  it('sendOffsets in a shadow transaction commits the shadow group on the shadow topic', async () => {
    const topic = await topicWithShadow('txn');
    const group = uniqueName('g-txn');
    const transactional = dye.producer({ transactionalId: uniqueName('txn'), idempotent: true, maxInFlightRequests: 1 });
    await transactional.connect();
    try {
      await withTenant('shadow', async () => {
        const transaction = await transactional.transaction();
        await transaction.send({ topic, messages: [{ value: 'in the transaction' }] });
        await transaction.sendOffsets({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: '7' }] }] });
        await transaction.commit();
      });
      // The broker makes a transaction's offsets visible once its markers are written.
      await waitFor(async () => (await committed(`${group}_shadow`, `${topic}_shadow`)) === '7', 10_000, 'the shadow group offset');
      expect(await committed(group, topic)).toBe('-1');
      expect(await messageCount(admin, topic)).toBe(0);
    } finally {
      await transactional.disconnect();
    }
  });

  it('a shadow handler may not write through a transaction baseline opened: refused, nothing written, no offsets', async () => {
    const topic = await topicWithShadow('txn-foreign');
    const group = uniqueName('g-txn-foreign');
    const transactional = dye.producer({ transactionalId: uniqueName('txn'), idempotent: true, maxInFlightRequests: 1 });
    await transactional.connect();
    try {
      const transaction = await transactional.transaction();
      const attempts = await withTenant('shadow', () =>
        Promise.allSettled([
          transaction.send({ topic, messages: [{ value: 'shadow data' }] }),
          transaction.sendBatch({ topicMessages: [{ topic, messages: [{ value: 'shadow data' }] }] }),
          transaction.sendOffsets({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: '3' }] }] }),
        ]),
      );
      expect(attempts.map((attempt) => attempt.status === 'rejected' && attempt.reason instanceof IsolationError)).toEqual([
        true,
        true,
        true,
      ]);
      await transaction.commit();
      expect(await messageCount(admin, topic)).toBe(0);
      expect(await committed(group, topic)).toBe('-1');
    } finally {
      await transactional.disconnect();
    }
  });
});

describe('subscriptions and run()', () => {
  it('a RegExp subscription never reads isolated or dead-letter topics in the production group', async () => {
    const prefix = uniqueName('rx');
    const topic = `${prefix}-orders`;
    created.push(topic, `${topic}_shadow`, `${topic}.dye-dlq`, `${topic}_shadow_lt1`);
    await createTopics(admin, topic, `${topic}_shadow`, `${topic}.dye-dlq`, `${topic}_shadow_lt1`);
    const bare = kafka.producer();
    await bare.connect();
    const consumer = dye.consumer({ groupId: uniqueName('g-rx') });
    const handled: Array<{ tenant: string; topic: string; value: string }> = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [new RegExp(`^${prefix}-.*`)], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ topic: from, message }) =>
          void handled.push({ tenant: currentTenant().name, topic: from, value: String(message.value) }),
      });
      // Headerless messages written straight into the reserved topics, as a careless tool would.
      await bare.send({ topic: `${topic}_shadow`, messages: [{ value: 'straight into shadow' }] });
      await bare.send({ topic: `${topic}.dye-dlq`, messages: [{ value: 'dead letter' }] });
      await bare.send({ topic: `${topic}_shadow_lt1`, messages: [{ value: 'another isolated tenant' }] });
      await bare.send({ topic, messages: [{ value: 'production' }] });
      await waitFor(() => handled.some((h) => h.value === 'straight into shadow') && handled.some((h) => h.value === 'production'), 30_000);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(handled.sort((a, b) => a.value.localeCompare(b.value))).toEqual([
        { tenant: 'baseline', topic, value: 'production' },
        // Read by the isolated group, in shadow, under the production name.
        { tenant: 'shadow', topic, value: 'straight into shadow' },
      ]);
    } finally {
      await consumer.disconnect();
      await bare.disconnect();
    }
  });

  it('subscribing a production group to an isolated or dead-letter topic by name is refused', async () => {
    const topic = await topicWithShadow('named');
    const consumer = dye.consumer({ groupId: uniqueName('g-named') });
    await consumer.connect();
    try {
      await expect(consumer.subscribe({ topics: [`${topic}_shadow`] })).rejects.toBeInstanceOf(IsolationError);
      await expect(consumer.subscribe({ topic: `${topic}.dye-dlq` })).rejects.toBeInstanceOf(IsolationError);
    } finally {
      await consumer.disconnect();
    }
  });

  it('run() called inside a shadow context: production handlers run in baseline (eachBatch) or their message tenant (eachMessage)', async () => {
    const topic = await topicWithShadow('run-ctx');
    const batchConsumer = dye.consumer({ groupId: uniqueName('g-batch') });
    const messageConsumer = dye.consumer({ groupId: uniqueName('g-message') });
    const inBatch: string[] = [];
    const inMessage: string[] = [];
    try {
      await withTenant('shadow', async () => {
        for (const consumer of [batchConsumer, messageConsumer]) {
          await consumer.connect();
          await consumer.subscribe({ topic, fromBeginning: true });
        }
        await batchConsumer.run({ eachBatch: async ({ batch }) => void inBatch.push(`${batch.topic}:${currentTenant().name}`) });
        await messageConsumer.run({ eachMessage: async ({ topic: from }) => void inMessage.push(`${from}:${currentTenant().name}`) });
      });
      await producer.send({ topic, messages: [{ value: 'production' }] });
      await waitFor(() => inBatch.includes(`${topic}:baseline`) && inMessage.includes(`${topic}:baseline`), 30_000);
      expect(inBatch.filter((entry) => entry !== `${topic}:shadow`)).toEqual([`${topic}:baseline`]);
    } finally {
      await batchConsumer.disconnect();
      await messageConsumer.disconnect();
    }
  });

  it('isolated eachBatch handlers see production topic names, and their offset helpers commit the shadow group', async () => {
    const topic = await topicWithShadow('batch-names');
    const group = uniqueName('g-batch-names');
    const consumer = dye.consumer({ groupId: group });
    const seen: Array<{ tenant: string; topic: string; isolatedTopic?: string; uncommitted: string[] }> = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: false,
        eachBatch: async (payload: EachBatchPayload) => {
          const { batch } = payload;
          if (batch.messages.length === 0) return;
          for (const message of batch.messages) payload.resolveOffset(message.offset);
          seen.push({
            tenant: currentTenant().name,
            topic: batch.topic,
            isolatedTopic: (batch as typeof batch & { isolatedTopic?: string }).isolatedTopic,
            uncommitted: payload.uncommittedOffsets().topics.map((entry) => entry.topic),
          });
          await payload.commitOffsetsIfNecessary({
            topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: '9' }] }],
          });
        },
      });
      await shadowSend(topic, 's1');
      await waitFor(() => seen.length > 0, 30_000, 'the isolated batch');
      expect(seen[0]).toEqual({ tenant: 'shadow', topic, isolatedTopic: `${topic}_shadow`, uncommitted: [topic] });
      await waitFor(async () => (await committed(`${group}_shadow`, `${topic}_shadow`)) === '9', 10_000, 'the shadow commit');
      expect(await committed(group, topic)).toBe('-1');
    } finally {
      await consumer.disconnect();
    }
  });
});

describe('admin in an isolated tenant', () => {
  it('offsets and groups are the isolated ones; topology changes are refused and leave the cluster as it was', async () => {
    const topic = await topicWithShadow('admin');
    const group = uniqueName('g-admin');
    const tenantAdmin = dye.admin();
    await tenantAdmin.connect();
    const fresh = uniqueName('admin-new');
    try {
      await producer.send({ topic, messages: [{ value: 'p' }] });
      await shadowSend(topic, 's');
      await withTenant('shadow', () => tenantAdmin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '1' }] }));
      expect(await committed(`${group}_shadow`, `${topic}_shadow`)).toBe('1');
      expect(await committed(group, topic)).toBe('-1');
      const offsets = await withTenant('shadow', () => tenantAdmin.fetchTopicOffsets(topic));
      expect(offsets[0]?.high).toBe('1');
      const refused = await withTenant('shadow', () =>
        Promise.allSettled([
          tenantAdmin.createTopics({ topics: [{ topic: fresh }] }),
          tenantAdmin.deleteTopics({ topics: [topic] }),
          tenantAdmin.createPartitions({ topicPartitions: [{ topic, count: 2 }] }),
        ]),
      );
      expect(refused.map((r) => r.status === 'rejected' && r.reason instanceof IsolationError)).toEqual([true, true, true]);
      const topics = await admin.listTopics();
      expect(topics).toContain(topic);
      expect(topics).not.toContain(fresh);
      expect((await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions).toHaveLength(1);
      expect(await messageCount(admin, topic)).toBe(1);
    } finally {
      await tenantAdmin.disconnect();
    }
  });
});

describe('every kafkajs method is classified', () => {
  // A method kafkajs adds later is refused in isolated tenants until it is
  // classified in operations.ts; this test names it the day kafkajs is upgraded.
  it('Consumer, Producer, Transaction and Admin', async () => {
    const methodsOf = (object: object) => Object.keys(object).sort();
    const consumer = kafka.consumer({ groupId: uniqueName('g-enumerate') });
    const plain = kafka.producer();
    const bareAdmin = kafka.admin();
    const transactional = kafka.producer({ transactionalId: uniqueName('txn'), idempotent: true, maxInFlightRequests: 1 });
    await transactional.connect();
    try {
      const transaction = await transactional.transaction();
      const unclassified = {
        consumer: methodsOf(consumer).filter((name) => !Object.hasOwn(CONSUMER_OPERATIONS, name)),
        producer: methodsOf(plain).filter((name) => !Object.hasOwn(PRODUCER_OPERATIONS, name)),
        transaction: methodsOf(transaction).filter((name) => !Object.hasOwn(TRANSACTION_OPERATIONS, name)),
        admin: methodsOf(bareAdmin).filter((name) => !Object.hasOwn(ADMIN_OPERATIONS, name)),
      };
      await transaction.abort();
      expect(unclassified).toEqual({ consumer: [], producer: [], transaction: [], admin: [] });
      // And nothing classified that kafkajs does not have (a renamed method would hide there).
      expect(Object.keys(CONSUMER_OPERATIONS).filter((name) => !methodsOf(consumer).includes(name))).toEqual([]);
      expect(Object.keys(ADMIN_OPERATIONS).filter((name) => !methodsOf(bareAdmin).includes(name))).toEqual([]);
    } finally {
      await transactional.disconnect();
    }
  });
});
