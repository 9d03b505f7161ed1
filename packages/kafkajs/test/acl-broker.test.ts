import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, logLevel, ResourcePatternTypes } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OwnKafkaBroker, startKafkaBroker } from '../../../scripts/infra.mjs';
import { freePort } from '../../../test/support/redis-server.js';
import { createTopics } from './support.js';

// A broker of this test's own that authenticates clients (SASL/PLAIN) and
// enforces ACLs with Kafka's StandardAuthorizer: what an isolated principal
// may touch is the broker's decision, not only Dye's.
const users = { admin: 'admin-secret', shadow: 'shadow-secret' };
let broker: OwnKafkaBroker;
const client = (user: keyof typeof users) =>
  new Kafka({
    clientId: `dye-acl-${user}`,
    brokers: [`127.0.0.1:${broker.port}`],
    logLevel: logLevel.NOTHING,
    sasl: { mechanism: 'plain', username: user, password: users[user] },
    retry: { retries: 2, initialRetryTime: 100 },
  });

beforeAll(async () => {
  broker = await startKafkaBroker({
    port: await freePort(),
    controllerPort: await freePort(),
    runDir: mkdtempSync(join(tmpdir(), 'dye-kafka-acl-')),
    sasl: { users, superUser: 'admin' },
  });
}, 120_000);
afterAll(async () => broker?.destroy(), 60_000);

describe('a SASL/PLAIN broker with StandardAuthorizer', () => {
  it('lets a principal granted only `orders_shadow` write there, and refuses its write to `orders`: nothing lands in production', async () => {
    const admin = client('admin').admin();
    await admin.connect();
    try {
      await createTopics(admin, 'orders', 'orders_shadow');
      await admin.createAcls({
        acl: [AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE].map((operation) => ({
          resourceType: AclResourceTypes.TOPIC,
          resourceName: 'orders_shadow',
          resourcePatternType: ResourcePatternTypes.LITERAL,
          principal: 'User:shadow',
          host: '*',
          operation,
          permissionType: AclPermissionTypes.ALLOW,
        })),
      });
      const producer = client('shadow').producer();
      await producer.connect();
      try {
        await producer.send({ topic: 'orders_shadow', messages: [{ value: 'load test' }] });
        await expect(producer.send({ topic: 'orders', messages: [{ value: 'must not land' }] })).rejects.toThrow(/authoriz/i);
      } finally {
        await producer.disconnect();
      }
      // Judged by the broker's own offsets.
      const high = async (topic: string) => (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
      expect(await high('orders')).toBe(0);
      expect(await high('orders_shadow')).toBe(1);
    } finally {
      await admin.disconnect();
    }
  }, 60_000);

  it('refuses a wrong password', async () => {
    const stranger = new Kafka({
      clientId: 'dye-acl-stranger',
      brokers: [`127.0.0.1:${broker.port}`],
      logLevel: logLevel.NOTHING,
      sasl: { mechanism: 'plain', username: 'shadow', password: 'wrong' },
      retry: { retries: 0 },
    }).producer();
    await expect(stranger.connect()).rejects.toThrow(/SASL|authenticat/i);
    await stranger.disconnect().catch(() => {});
  }, 30_000);
});
