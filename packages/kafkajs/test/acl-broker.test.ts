import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, logLevel, type Producer, ResourcePatternTypes } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OwnKafkaBroker, startKafkaBroker } from '../../../scripts/infra.mjs';
import { freePort } from '../../../test/support/redis-server.js';
import { grantShadowAccess } from '../src/index.js';
import { createTopics, waitFor } from './support.js';

// A broker of this test's own that authenticates clients (SASL/PLAIN) and
// enforces ACLs with Kafka's StandardAuthorizer: what an isolated principal
// may touch is the broker's decision, not only Dye's.
const users = { admin: 'admin-secret', shadow: 'shadow-secret', loader: 'loader-secret' };
let broker: OwnKafkaBroker;
const client = (user: keyof typeof users) =>
  new Kafka({
    clientId: `dye-acl-${user}`,
    brokers: [`127.0.0.1:${broker.port}`],
    logLevel: logLevel.NOTHING,
    sasl: { mechanism: 'plain', username: user, password: users[user] },
    retry: { retries: 2, initialRetryTime: 100 },
  });

/**
 * Sends one message once the broker allows it: ACLs reach its authorizer
 * through the metadata log, a moment after `createAcls` answers.
 */
const sendOnceAllowed = (producer: Producer, topic: string, value: string) =>
  waitFor(
    () =>
      producer.send({ topic, messages: [{ value }] }).then(
        () => true,
        () => false,
      ),
    20_000,
    `${topic} to accept a write`,
  );

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
        await sendOnceAllowed(producer, 'orders_shadow', 'load test');
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

  it('grantShadowAccess: a dry run changes nothing; --apply grants exactly the _shadow topics and groups and removes a production grant; a second run has nothing to do', async () => {
    const admin = client('admin').admin();
    await admin.connect();
    try {
      await createTopics(admin, 'payments', 'payments_shadow', 'refunds', 'refunds_shadow');
      // Someone granted the loader production too.
      await admin.createAcls({
        acl: [
          {
            resourceType: AclResourceTypes.TOPIC,
            resourceName: 'payments',
            resourcePatternType: ResourcePatternTypes.LITERAL,
            principal: 'User:loader',
            host: '*',
            operation: AclOperationTypes.WRITE,
            permissionType: AclPermissionTypes.ALLOW,
          },
        ],
      });
      const plan = { admin, principal: 'User:loader', topics: ['payments', 'refunds'], groups: ['billing'] };
      const dry = await grantShadowAccess(plan);
      expect(dry.applied).toBe(false);
      expect(dry.inSync).toBe(false);
      expect(dry.create.map((acl) => `${acl.resourceType} ${acl.resourceName} ${acl.operation}`).sort()).toEqual([
        'GROUP billing_shadow DESCRIBE',
        'GROUP billing_shadow READ',
        'TOPIC payments_shadow DESCRIBE',
        'TOPIC payments_shadow READ',
        'TOPIC payments_shadow WRITE',
        'TOPIC refunds_shadow DESCRIBE',
        'TOPIC refunds_shadow READ',
        'TOPIC refunds_shadow WRITE',
      ]);
      expect(dry.remove.map((acl) => `${acl.resourceType} ${acl.resourceName} ${acl.operation}`)).toEqual(['TOPIC payments WRITE']);

      const high = async (topic: string) => (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
      const loader = client('loader').producer();
      await loader.connect();
      try {
        // Before --apply the broker lets the loader write production: what the grant is for.
        await sendOnceAllowed(loader, 'payments', 'before the grant');
        expect(await high('payments')).toBe(1);

        const applied = await grantShadowAccess({ ...plan, apply: true });
        expect(applied.applied).toBe(true);
        expect((await grantShadowAccess(plan)).inSync).toBe(true);
      } finally {
        await loader.disconnect();
      }
      // A fresh client, as a load test starts with (kafkajs keeps asking for
      // metadata of every topic a producer wrote, and payments is refused now).
      const afterGrant = client('loader').producer();
      await afterGrant.connect();
      try {
        // The grant deleted before it created: once its creations are seen, so is the deletion.
        await sendOnceAllowed(afterGrant, 'payments_shadow', 'load test');
        await expect(afterGrant.send({ topic: 'payments', messages: [{ value: 'must not land' }] })).rejects.toThrow(/authoriz/i);
      } finally {
        await afterGrant.disconnect();
      }
      expect(await high('payments')).toBe(1);
      expect(await high('payments_shadow')).toBe(1);
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
