import { currentTenant, setLogger, withTenant } from '@dye/core';
import { RedisRegistry } from '@dye/discovery';
import { laneApp, tenantKafka } from '@dye/kafkajs';
import type { Admin, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisKeys, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { createTopics, kafkaClient, waitFor } from './support.js';

// Lane-aware consumption on a shared topic, with a real Redis registry.
const kafka = kafkaClient();
const prefix = uniqueName('dye_lanes');
const timings = { heartbeatInterval: 200, ttl: 1000, resyncInterval: 100 };
const registry = new RedisRegistry({ redis: REDIS_URL, prefix, ...timings });
const topic = uniqueName('shipments');
const group = uniqueName('shipper');
let admin: Admin;
let producer: Producer;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = kafka.admin();
  await admin.connect();
  await createTopics(admin, topic);
  producer = tenantKafka(kafka).producer();
  await producer.connect();
});

afterAll(async () => {
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
  await registry.close();
  await deleteRedisKeys(`${prefix}:`);
});

const send = (tenant: string, value: string) => withTenant(tenant, () => producer.send({ topic, messages: [{ value }] }));

describe('lane-aware consumption', () => {
  it('a live red consumer takes red messages; once it stops, the baseline group does', async () => {
    const baselineSeen: Array<{ value: string; tenant: string }> = [];
    const redSeen: Array<{ value: string; tenant: string }> = [];
    const redInstance = tenantKafka(kafka, { registry, lane: 'red' }).consumer({ groupId: group });
    await redInstance.connect();
    await redInstance.subscribe({ topic, fromBeginning: true });
    await redInstance.run({
      eachMessage: async ({ message }) => void redSeen.push({ value: String(message.value), tenant: currentTenant().name }),
    });
    await waitFor(
      async () => (await registry.snapshot(laneApp(group))).instances.some((instance) => instance.lane === 'red'),
      10_000,
      'red registration',
    );

    const baseline = tenantKafka(kafka, { registry, lane: 'baseline' }).consumer({ groupId: group });
    await baseline.connect();
    await baseline.subscribe({ topic, fromBeginning: true });
    await baseline.run({
      eachMessage: async ({ message }) => void baselineSeen.push({ value: String(message.value), tenant: currentTenant().name }),
    });
    try {
      await send('red', 'red-1');
      await send('baseline', 'base-1');
      await send('red', 'red-2');
      await waitFor(() => redSeen.length >= 2 && baselineSeen.length >= 1, 30_000, 'both lanes consuming');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(redSeen).toEqual([
        { value: 'red-1', tenant: 'red' },
        { value: 'red-2', tenant: 'red' },
      ]);
      expect(baselineSeen).toEqual([{ value: 'base-1', tenant: 'baseline' }]);

      // The red instance goes away (deregistering): the baseline group takes red messages over.
      await redInstance.disconnect();
      await waitFor(async () => (await registry.snapshot(laneApp(group))).instances.length === 0, 10_000, 'red deregistration');
      await new Promise((resolve) => setTimeout(resolve, 3 * timings.resyncInterval));
      await send('red', 'red-3');
      await send('red', 'red-4');
      await waitFor(() => baselineSeen.length >= 3, 30_000, 'baseline taking red over');
      expect(baselineSeen.slice(1)).toEqual([
        { value: 'red-3', tenant: 'red' },
        { value: 'red-4', tenant: 'red' },
      ]);
      expect(redSeen).toHaveLength(2);
    } finally {
      await baseline.disconnect();
      await redInstance.disconnect().catch(() => {});
    }
  });
});
