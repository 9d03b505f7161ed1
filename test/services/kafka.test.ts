import { type Admin, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KAFKA_BROKERS, uniqueName } from '../support/services.js';

// Proves the Kafka every integration test uses is a real broker: a topic is
// created, a message with a header goes in and comes back out through a
// consumer group.
describe('Kafka service', () => {
  const topic = uniqueName('smoke');
  const kafka = new Kafka({ clientId: 'dye-smoke', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING, retry: { retries: 2 } });
  let admin: Admin;

  beforeAll(async () => {
    admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  });

  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  });

  it('does not create topics on its own', async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: true, retry: { retries: 0 } });
    await producer.connect();
    try {
      const missing = uniqueName('missing');
      await expect(producer.send({ topic: missing, messages: [{ value: 'x' }] })).rejects.toThrow();
      expect(await admin.listTopics()).not.toContain(missing);
    } finally {
      await producer.disconnect();
    }
  });

  it('creates a topic, produces and consumes a message with a header', async () => {
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: uniqueName('smoke_group') });
    await producer.connect();
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = new Promise<{ value: string; header: string }>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            resolve({ value: String(message.value), header: String(message.headers?.['x-smoke']) });
          },
        });
      });
      await producer.send({ topic, messages: [{ value: 'hello', headers: { 'x-smoke': 'yes' } }] });
      expect(await received).toEqual({ value: 'hello', header: 'yes' });
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
  });
});
