import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentTenant, setLogger, withTenant } from '@dye/core';
import { syncShadowTopics, tenantKafka } from '@dye/kafkajs';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OwnKafkaBroker, startKafkaBroker } from '../../../scripts/infra.mjs';
import { freePort } from '../../../test/support/redis-server.js';
import { createTopics, waitFor } from './support.js';

// A broker of this test's own, restarted while messages of three tenants flow.
let broker: OwnKafkaBroker;
let kafka: Kafka;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  broker = await startKafkaBroker({
    port: await freePort(),
    controllerPort: await freePort(),
    runDir: mkdtempSync(join(tmpdir(), 'dye-kafka-')),
  });
  kafka = new Kafka({
    clientId: 'dye-restart',
    brokers: [`127.0.0.1:${broker.port}`],
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 200 },
  });
}, 120_000);

afterAll(async () => {
  await broker?.destroy();
});

describe('broker restart mid-run', () => {
  it('keeps headers, keeps shadow messages away from the production group, and resumes', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, 'orders');
    await syncShadowTopics({ admin, topics: ['orders'] });
    await admin.disconnect();

    const dye = tenantKafka(kafka);
    const producer = dye.producer();
    await producer.connect();
    const seen: Array<{ expected: string; actual: string }> = [];
    const consumer = dye.consumer({ groupId: 'fulfilment', sessionTimeout: 6000, heartbeatInterval: 500 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void seen.push({ expected: String(message.value), actual: currentTenant().name }),
    });

    const tenants = ['baseline', 'red', 'shadow'];
    let sent = 0;
    const sendRound = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const tenant = tenants[sent % 3] as string;
        await withTenant(tenant, () => producer.send({ topic: 'orders', messages: [{ value: tenant }] }));
        sent++;
      }
    };
    try {
      await sendRound(30);
      await waitFor(() => seen.length >= 30, 60_000, 'messages before the restart');
      await broker.restart();
      await sendRound(30);
      await waitFor(() => seen.length >= 60, 90_000, 'messages after the restart');
      // At-least-once: a message may come twice around the restart, never in the wrong tenant.
      expect(seen.filter((entry) => entry.expected !== entry.actual)).toEqual([]);
      expect(new Set(seen.filter((entry) => entry.actual === 'shadow').map((entry) => entry.expected))).toEqual(new Set(['shadow']));
      const check = kafka.admin();
      await check.connect();
      const offsets = await check.fetchOffsets({ groupId: 'fulfilment', topics: ['orders', 'orders_shadow'] });
      await check.disconnect();
      const shadowOffsets = offsets.find((entry) => entry.topic === 'orders_shadow')?.partitions ?? [];
      // The production group never consumed the shadow topic.
      expect(shadowOffsets.every((partition) => partition.offset === '-1')).toBe(true);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await dye.close();
    }
  }, 180_000);
});
