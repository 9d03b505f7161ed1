import { IsolationError, setLogger, withTenant } from '@dye/core';
import { tenantKafka } from '@dye/kafkajs';
import type { Admin, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/support/services.js';
import { createTopics, kafkaClient, messageCount } from './support.js';

const kafka = kafkaClient();
const dye = tenantKafka(kafka);
const orders = uniqueName('orders');
const noShadow = uniqueName('no_shadow');
let admin: Admin;
let producer: Producer;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = kafka.admin();
  await admin.connect();
  await createTopics(admin, orders, `${orders}_shadow`, noShadow);
  producer = dye.producer({ allowAutoTopicCreation: true });
  await producer.connect();
});

afterAll(async () => {
  await producer.disconnect();
  await admin.deleteTopics({ topics: [orders, `${orders}_shadow`, noShadow] }).catch(() => {});
  await admin.disconnect();
  await dye.close();
});

async function readAll(topic: string, count: number) {
  const consumer = kafka.consumer({ groupId: uniqueName('reader') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const messages: Array<{ value: string; headers: Record<string, string> }> = [];
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([key, value]) => [key, String(value)]));
        messages.push({ value: String(message.value), headers });
        if (messages.length === count) resolve();
      },
    });
  });
  await consumer.disconnect();
  return messages;
}

describe('producer', () => {
  it('sends shadow messages to <topic>_shadow only, stamped, without touching the caller objects', async () => {
    const message = { value: 'load-test order', headers: { 'x-request': '1' } };
    await withTenant('shadow', () => producer.send({ topic: orders, messages: [message] }));
    expect(message).toEqual({ value: 'load-test order', headers: { 'x-request': '1' } });
    expect(await messageCount(admin, orders)).toBe(0);
    const [received] = await readAll(`${orders}_shadow`, 1);
    expect(received).toEqual({ value: 'load-test order', headers: { 'x-request': '1', 'x-tenant': 'shadow', baggage: 'tenant=shadow' } });
  });

  it('stamps colors and sends them to the shared topic; baseline carries no tenant headers', async () => {
    await withTenant('red', () => producer.send({ topic: orders, messages: [{ value: 'red order' }] }));
    await producer.send({
      topic: orders,
      messages: [{ value: 'baseline order', headers: { 'x-tenant': 'shadow', baggage: 'tenant=shadow,a=1' } }],
    });
    const received = await readAll(orders, 2);
    expect(received).toEqual([
      { value: 'red order', headers: { 'x-tenant': 'red', baggage: 'tenant=red' } },
      { value: 'baseline order', headers: { baggage: 'a=1' } },
    ]);
  });

  it('refuses when the shadow topic is missing, writes nothing anywhere, and creates no topic', async () => {
    const before = await messageCount(admin, noShadow);
    const error = await withTenant('shadow', () => producer.send({ topic: noShadow, messages: [{ value: 'x' }] })).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(IsolationError);
    expect(await messageCount(admin, noShadow)).toBe(before);
    expect(await admin.listTopics()).not.toContain(`${noShadow}_shadow`);
  });

  it('refuses a whole sendBatch when one topic has no shadow twin', async () => {
    const before = [await messageCount(admin, orders), await messageCount(admin, `${orders}_shadow`)];
    const error = await withTenant('shadow', () =>
      producer.sendBatch({
        topicMessages: [
          { topic: orders, messages: [{ value: 'a' }] },
          { topic: noShadow, messages: [{ value: 'b' }] },
        ],
      }),
    ).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(IsolationError);
    expect([await messageCount(admin, orders), await messageCount(admin, `${orders}_shadow`)]).toEqual(before);
  });
});
