import { setLogger } from '@dye/core';
import { syncShadowTopics } from '@dye/kafkajs';
import { type Admin, ConfigResourceTypes } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/support/services.js';
import { kafkaClient } from './support.js';

const kafka = kafkaClient();
const topic = uniqueName('order_created');
const other = uniqueName('payments');
let admin: Admin;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        numPartitions: 3,
        configEntries: [
          { name: 'retention.ms', value: '3600000' },
          { name: 'cleanup.policy', value: 'delete' },
        ],
      },
      { topic: other, numPartitions: 2 },
    ],
  });
});

afterAll(async () => {
  await admin.deleteTopics({ topics: [topic, `${topic}_shadow`, other, `${other}_shadow`] }).catch(() => {});
  await admin.disconnect();
});

async function retention(name: string): Promise<string | undefined> {
  const described = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name }], includeSynonyms: false });
  return described.resources[0]?.configEntries.find((entry) => entry.configName === 'retention.ms')?.configValue;
}

describe('syncShadowTopics', () => {
  it('reports missing shadow topics without creating them when apply is false', async () => {
    const report = await syncShadowTopics({ admin, topics: [topic], apply: false });
    expect(report).toEqual({ created: [], missing: [`${topic}_shadow`], drift: [], inSync: false });
    expect(await admin.listTopics()).not.toContain(`${topic}_shadow`);
  });

  it('creates <topic>_shadow with the partition count and topic configs of production; a second run changes nothing', async () => {
    const first = await syncShadowTopics({ admin, topics: [topic, other] });
    expect(first.created).toEqual([`${topic}_shadow`, `${other}_shadow`]);
    const metadata = await admin.fetchTopicMetadata({ topics: [`${topic}_shadow`, `${other}_shadow`] });
    const partitions = Object.fromEntries(metadata.topics.map((entry) => [entry.name, entry.partitions.length]));
    expect(partitions).toEqual({ [`${topic}_shadow`]: 3, [`${other}_shadow`]: 2 });
    expect(await retention(`${topic}_shadow`)).toBe('3600000');
    const second = await syncShadowTopics({ admin, topics: [topic, other] });
    expect(second).toEqual({ created: [], missing: [], drift: [], inSync: true });
  });

  it('reports partition and config drift', async () => {
    await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] });
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: `${other}_shadow`, configEntries: [{ name: 'retention.ms', value: '1000' }] }],
    });
    const report = await syncShadowTopics({ admin, topics: [topic, other] });
    expect(report.inSync).toBe(false);
    expect(report.drift).toEqual([
      { topic, shadowTopic: `${topic}_shadow`, kind: 'partitions', production: 4, shadow: 3 },
      { topic: other, shadowTopic: `${other}_shadow`, kind: 'config', name: 'retention.ms', production: null, shadow: '1000' },
    ]);
  });
});
