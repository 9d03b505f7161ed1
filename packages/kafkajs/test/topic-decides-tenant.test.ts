/**
 * Where the topic, not the headers, decides a message's tenant: a message in
 * an isolated topic is that tenant's however an `eachBatch` handler asks for
 * its tenant again; production groups never read any tenant's isolated topic
 * the policy names; a transaction is ended only by the tenant that opened it.
 * Judged by the broker: committed offsets, messages handled, what a
 * read_committed consumer sees.
 */
import { createPolicy, currentTenant, IsolationError, setDefaultPolicy, setLogger, withTenant } from '@dye/core';
import { tenantKafka, withMessageTenant } from '@dye/kafkajs';
import type { Admin, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/support/services.js';
import { createTopics, createTopicWithShadow, kafkaClient, waitFor } from './support.js';

const kafka = kafkaClient();
const dye = tenantKafka(kafka);
const created: string[] = [];
let admin: Admin;
let bare: Producer;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = kafka.admin();
  await admin.connect();
  bare = kafka.producer();
  await bare.connect();
});

afterAll(async () => {
  await bare.disconnect();
  await admin.deleteTopics({ topics: created }).catch(() => {});
  await admin.disconnect();
  await dye.close();
});

async function committed(group: string, topic: string): Promise<string> {
  const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return offsets[0]?.partitions.find((partition) => partition.partition === 0)?.offset ?? 'missing';
}

describe('in an isolated topic the topic decides the tenant', () => {
  it('eachBatch with withMessageTenant: headerless and red-labelled messages in t_shadow run in shadow; their commits move only the shadow group', async () => {
    const topic = await createTopicWithShadow(admin, 'batch-tenant', created);
    const group = uniqueName('g-batch-tenant');
    const consumer = dye.consumer({ groupId: group });
    const seen: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await bare.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ value: `p${i}` })) });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          await withMessageTenant(message, async () => {
            await new Promise((resolve) => setImmediate(resolve));
            seen.push(`${currentTenant().name}:${String(message.value)}`);
            await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(Number(message.offset) + 1) }]);
          });
        }
      },
    });
    try {
      await waitFor(async () => (await committed(group, topic)) === '5', 30_000, 'production commits');
      // Written straight into the isolated topic by another tool: no headers, or a color's.
      await bare.send({ topic: `${topic}_shadow`, messages: [{ value: 'bare' }, { value: 'claims red', headers: { 'x-tenant': 'red' } }] });
      await waitFor(() => seen.length === 7, 30_000, 'the shadow messages');
      await waitFor(async () => (await committed(`${group}_shadow`, `${topic}_shadow`)) === '2', 10_000, 'the shadow commits');
      expect(seen.slice(5)).toEqual(['shadow:bare', 'shadow:claims red']);
      expect(await committed(group, topic)).toBe('5');
    } finally {
      await consumer.disconnect();
    }
  });

  it('withMessageTenant never takes isolated code out of its tenant through headers', async () => {
    const outcome = withTenant('shadow', () => withMessageTenant({ headers: { 'x-tenant': 'baseline' } }, () => currentTenant().name));
    expect(outcome).toBe('shadow');
    expect(withMessageTenant({ headers: { 'x-tenant': 'red' } }, () => currentTenant().name)).toBe('red');
  });
});

describe('production groups never read a twin the policy names', () => {
  it('an isolated tenant and a color that isolates Kafka: their topics are left out of a RegExp subscription and refused by name', async () => {
    setDefaultPolicy(createPolicy({ tenants: { perf: { kind: 'isolated' }, blue: { kind: 'color', isolate: ['kafka'] } } }));
    try {
      const stem = uniqueName('policy_twins');
      created.push(stem, `${stem}_perf`, `${stem}_blue`);
      await createTopics(admin, stem, `${stem}_perf`, `${stem}_blue`);
      await bare.send({ topic: `${stem}_perf`, messages: [{ value: 'perf' }] });
      await bare.send({ topic: `${stem}_blue`, messages: [{ value: 'blue' }] });
      await bare.send({ topic: stem, messages: [{ value: 'production' }] });
      const group = uniqueName('g-policy-twins');
      const consumer = dye.consumer({ groupId: group });
      const seen: string[] = [];
      await consumer.connect();
      try {
        await expect(consumer.subscribe({ topics: [`${stem}_blue`] })).rejects.toThrow(IsolationError);
        await consumer.subscribe({ topics: [new RegExp(`^${stem}`)], fromBeginning: true });
        await consumer.run({ eachMessage: async ({ message }) => void seen.push(String(message.value)) });
        await waitFor(() => seen.length >= 1, 30_000, 'the production message');
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        expect(seen).toEqual(['production']);
      } finally {
        await consumer.disconnect();
      }
      expect(await committed(group, `${stem}_perf`)).toBe('-1');
      expect(await committed(group, `${stem}_blue`)).toBe('-1');
    } finally {
      setDefaultPolicy(createPolicy({}));
    }
  });
});

describe('a transaction is ended by the tenant that opened it', () => {
  it('shadow code can neither abort nor commit a baseline transaction; baseline commits it and it is visible', async () => {
    const topic = uniqueName('txn_end');
    created.push(topic, `${topic}_shadow`);
    await createTopics(admin, topic, `${topic}_shadow`);
    const transactional = dye.producer({ transactionalId: uniqueName('txn-end'), maxInFlightRequests: 1, idempotent: true });
    await transactional.connect();
    try {
      const transaction = await transactional.transaction();
      await transaction.send({ topic, messages: [{ value: 'order' }] });
      await expect(withTenant('shadow', () => transaction.abort())).rejects.toThrow(IsolationError);
      await expect(withTenant('shadow', () => transaction.commit())).rejects.toThrow(IsolationError);
      await transaction.commit();
    } finally {
      await transactional.disconnect();
    }
    const reader = kafka.consumer({ groupId: uniqueName('g-txn-end'), readUncommitted: false });
    const seen: string[] = [];
    await reader.connect();
    try {
      await reader.subscribe({ topic, fromBeginning: true });
      await reader.run({ eachMessage: async ({ message }) => void seen.push(String(message.value)) });
      await waitFor(() => seen.length === 1, 30_000, 'the committed message');
      expect(seen).toEqual(['order']);
    } finally {
      await reader.disconnect();
    }
  });
});
