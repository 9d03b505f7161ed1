import { currentTenant, setLogger, withTenant } from '@dye/core';
import { tenantKafka, withMessageTenant } from '@dye/kafkajs';
import type { Admin, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/support/services.js';
import { createTopics, createTopicWithShadow, kafkaClient, waitFor } from './support.js';

const kafka = kafkaClient();
const dye = tenantKafka(kafka);
const topics: string[] = [];
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
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
  await dye.close();
});

const topicWithShadow = (prefix: string) => createTopicWithShadow(admin, prefix, topics);

async function produceInterleaved(topic: string, count: number): Promise<void> {
  const tenants = ['baseline', 'red', 'shadow'];
  await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const tenant = tenants[i % 3] as string;
      return withTenant(tenant, () => producer.send({ topic, messages: [{ key: String(i), value: tenant }] }));
    }),
  );
}

describe('consumers run handlers in the message tenant', () => {
  it('eachMessage: 1,000 interleaved messages of three tenants, 0 misattributed, shadow ones by the isolated group', async () => {
    const topic = await topicWithShadow('interleaved');
    await produceInterleaved(topic, 1000);
    const seen: Array<{ expected: string; actual: string; topic: string }> = [];
    const consumer = dye.consumer({ groupId: uniqueName('g') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic: seenTopic, message }) => {
        await new Promise((resolve) => setImmediate(resolve));
        seen.push({ expected: String(message.value), actual: currentTenant().name, topic: seenTopic });
      },
    });
    try {
      await waitFor(() => seen.length >= 1000, 30_000, '1,000 messages');
      expect(seen.filter((entry) => entry.expected !== entry.actual)).toEqual([]);
      expect(seen.filter((entry) => entry.actual === 'shadow')).toHaveLength(333);
      // Handlers see the production topic name, also for shadow messages.
      expect(new Set(seen.map((entry) => entry.topic))).toEqual(new Set([topic]));
    } finally {
      await consumer.disconnect();
    }
  });

  it('eachBatch: 1,000 interleaved messages, withMessageTenant puts each in its tenant', async () => {
    const topic = await topicWithShadow('batched');
    await produceInterleaved(topic, 1000);
    const seen: Array<{ expected: string; actual: string }> = [];
    const consumer = dye.consumer({ groupId: uniqueName('g') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const message of batch.messages) {
          await withMessageTenant(message, async () => {
            await Promise.resolve();
            seen.push({ expected: String(message.value), actual: currentTenant().name });
          });
          resolveOffset(message.offset);
        }
      },
    });
    try {
      await waitFor(() => seen.length >= 1000, 30_000, '1,000 messages');
      expect(seen.filter((entry) => entry.expected !== entry.actual)).toEqual([]);
    } finally {
      await consumer.disconnect();
    }
  });
});

describe('dead letters', () => {
  it('sends a message with conflicting tenant headers to <topic>.dye-dlq with the reason, unprocessed', async () => {
    const topic = await topicWithShadow('conflict');
    const raw = kafka.producer();
    await raw.connect();
    await raw.send({
      topic,
      messages: [{ value: 'ambiguous', headers: { 'x-tenant': 'red', baggage: 'tenant=shadow' } }, { value: 'fine' }],
    });
    await raw.disconnect();
    const processed: string[] = [];
    const consumer = dye.consumer({ groupId: uniqueName('g') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void processed.push(String(message.value)) });
    const dead: Array<{ value: string; reason: string }> = [];
    const dlqReader = kafka.consumer({ groupId: uniqueName('dlq') });
    await dlqReader.connect();
    await dlqReader.subscribe({ topic: `${topic}.dye-dlq`, fromBeginning: true });
    await dlqReader.run({
      eachMessage: async ({ message }) =>
        void dead.push({ value: String(message.value), reason: String(message.headers?.['x-dye-dlq-reason']) }),
    });
    try {
      await waitFor(() => processed.length >= 1 && dead.length >= 1, 30_000, 'processing and dead letter');
      expect(processed).toEqual(['fine']);
      expect(dead).toEqual([{ value: 'ambiguous', reason: 'conflicting tenants in one request: "red" vs "shadow"' }]);
    } finally {
      await consumer.disconnect();
      await dlqReader.disconnect();
    }
  });
});

describe('isolated consumption', () => {
  it('can be paused and resumed on its own, production consumption going on', async () => {
    const topic = await topicWithShadow('pausable');
    const seen: string[] = [];
    const consumer = dye.consumer({ groupId: uniqueName('g') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async () => void seen.push(currentTenant().name) });
    try {
      await withTenant('shadow', () => producer.send({ topic, messages: [{ value: 'warm-up' }] }));
      await waitFor(() => seen.includes('shadow'), 30_000, 'the isolated consumer');
      consumer.pauseIsolated();
      await withTenant('shadow', () => producer.send({ topic, messages: [{ value: 'while paused' }] }));
      await producer.send({ topic, messages: [{ value: 'production' }] });
      await waitFor(() => seen.includes('baseline'), 30_000, 'production consumption');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(seen.filter((tenant) => tenant === 'shadow')).toHaveLength(1);
      consumer.resumeIsolated();
      await waitFor(() => seen.filter((tenant) => tenant === 'shadow').length === 2, 30_000, 'resumed isolated consumer');
    } finally {
      await consumer.disconnect();
    }
  });
});
