/**
 * A message in a production topic that names an isolated tenant did not come
 * through Dye (Dye sends those to twin topics only): it is dead-lettered,
 * neither processed in that tenant (its handler's commits would move the
 * isolated group for a production delivery) nor as baseline (it would write
 * production), and the production group goes on past it. Judged by the
 * broker: committed offsets and the dead-letter topic.
 */
import { currentTenant, IsolationError, setLogger } from '@dye/core';
import { tenantKafka, withMessageTenant } from '@dye/kafkajs';
import type { Admin, IHeaders, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/support/services.js';
import { createTopics, createTopicWithShadow, kafkaClient, messageCount, waitFor } from './support.js';

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

const forged: Array<[string, IHeaders]> = [
  ['x-tenant: shadow', { 'x-tenant': 'shadow' }],
  ['X-Tenant: SHADOW', { 'X-Tenant': 'SHADOW' }],
  ['baggage only', { baggage: 'tenant=shadow' }],
  ['as Buffers', { 'x-tenant': Buffer.from('shadow'), baggage: Buffer.from('tenant=shadow') }],
];

describe('eachMessage: a production message naming an isolated tenant', () => {
  it.each(forged)('(%s) is dead-lettered; the README commit handler moves only the production group, past it', async (_name, headers) => {
    const topic = await createTopicWithShadow(admin, 'forged', created);
    const group = uniqueName('g-forged');
    const consumer = dye.consumer({ groupId: group });
    const seen: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await bare.send({
      topic,
      messages: [{ value: 'p0' }, { value: 'p1' }, { value: 'forged', headers }, { value: 'p3' }, { value: 'p4' }],
    });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic: from, partition, message }) => {
        seen.push(`${currentTenant().name}:${String(message.value)}`);
        await consumer.commitOffsets([{ topic: from, partition, offset: String(Number(message.offset) + 1) }]);
      },
    });
    try {
      await waitFor(async () => (await committed(group, topic)) === '5', 30_000, 'production commits past the forged message');
      expect(seen).toEqual(['baseline:p0', 'baseline:p1', 'baseline:p3', 'baseline:p4']);
      await waitFor(async () => (await messageCount(admin, `${topic}.dye-dlq`)) === 1, 10_000, 'the dead letter');
      // Nothing was committed for the isolated group, and the twin holds nothing.
      expect(await committed(`${group}_shadow`, `${topic}_shadow`)).toBe('-1');
      expect(await messageCount(admin, `${topic}_shadow`)).toBe(0);
    } finally {
      await consumer.disconnect();
    }
  });

  it('without a twin topic the production partition never stalls on it', async () => {
    const topic = uniqueName('forged-no-twin');
    created.push(topic, `${topic}.dye-dlq`);
    await createTopics(admin, topic, `${topic}.dye-dlq`);
    const group = uniqueName('g-forged-no-twin');
    const consumer = dye.consumer({ groupId: group });
    const seen: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await bare.send({ topic, messages: [{ value: 'p0' }, { value: 'forged', headers: { 'x-tenant': 'shadow' } }, { value: 'p2' }] });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic: from, partition, message }) => {
        seen.push(String(message.value));
        await consumer.commitOffsets([{ topic: from, partition, offset: String(Number(message.offset) + 1) }]);
      },
    });
    try {
      await waitFor(async () => (await committed(group, topic)) === '3', 30_000, 'production commits');
      expect(seen).toEqual(['p0', 'p2']);
    } finally {
      await consumer.disconnect();
    }
  });
});

describe('eachBatch: withMessageTenant', () => {
  it('refuses a production message naming an isolated tenant with IsolationError; the handler that sets it aside commits production only', async () => {
    const topic = await createTopicWithShadow(admin, 'forged-batch', created);
    const group = uniqueName('g-forged-batch');
    const consumer = dye.consumer({ groupId: group });
    const outcome: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await bare.send({ topic, messages: [{ value: 'p0' }, { value: 'forged', headers: { 'x-tenant': 'shadow' } }, { value: 'p2' }] });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          try {
            await withMessageTenant(message, async () => outcome.push(`${currentTenant().name}:${String(message.value)}`));
          } catch (error) {
            outcome.push(`${error instanceof IsolationError ? 'refused' : 'other'}:${String(message.value)}`);
          }
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(Number(message.offset) + 1) }]);
        }
      },
    });
    try {
      await waitFor(async () => (await committed(group, topic)) === '3', 30_000, 'production commits');
      expect(outcome).toEqual(['baseline:p0', 'refused:forged', 'baseline:p2']);
      expect(await committed(`${group}_shadow`, `${topic}_shadow`)).toBe('-1');
    } finally {
      await consumer.disconnect();
    }
  });
});
