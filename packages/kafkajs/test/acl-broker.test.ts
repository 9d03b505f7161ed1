import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentTenant, IsolationError, withTenant } from '@dye/core';
import {
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  type Admin,
  Kafka,
  logLevel,
  type Producer,
  ResourcePatternTypes,
} from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OwnKafkaBroker, startKafkaBroker } from '../../../scripts/infra.mjs';
import { freePort } from '../../../test/support/redis-server.js';
import { dye } from '../../cli/test/run-cli.js';
import { grantShadowAccess, tenantKafka } from '../src/index.js';
import { probeWriteAccess } from '../src/isolated-client-check.js';
import { createTopics, waitFor } from './support.js';

// A broker of this test's own that authenticates clients (SASL/PLAIN) and
// enforces ACLs with Kafka's StandardAuthorizer: what an isolated principal
// may touch is the broker's decision, not only Dye's.
const users = {
  admin: 'admin-secret',
  shadow: 'shadow-secret',
  loader: 'loader-secret',
  confined: 'confined-secret',
  leaky: 'leaky-secret',
  wild: 'wild-secret',
  cli: 'cli-secret',
  star: 'star-secret',
};
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
const high = async (admin: Admin, topic: string) => (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);

/** Waits until the broker answers `verdict` for `user` writing `topic` (a probe that writes nothing). */
const writeVerdict = (user: keyof typeof users, topic: string, verdict: 'allowed' | 'refused') =>
  waitFor(
    async () => (await probeWriteAccess(client(user), [topic]).catch(() => new Map())).get(topic) === verdict,
    20_000,
    `${user} ${verdict} to write ${topic}`,
  );

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

describe('tenantKafka with an isolated client of its own principal', () => {
  const allow = (principal: string, resourceName: string, patternType = ResourcePatternTypes.LITERAL) => ({
    resourceType: AclResourceTypes.TOPIC,
    resourceName,
    resourcePatternType: patternType,
    principal,
    host: '*',
    operation: AclOperationTypes.WRITE,
    permissionType: AclPermissionTypes.ALLOW,
  });

  it('a confined principal: shadow sends go through it to <topic>_shadow, baseline through the production client; the check writes nothing', async () => {
    const admin = client('admin').admin();
    await admin.connect();
    const kafka = tenantKafka(client('admin'), { isolatedClient: client('confined') });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await createTopics(admin, 'inventory', 'inventory_shadow');
      await grantShadowAccess({ admin, principal: 'User:confined', topics: ['inventory'], groups: ['stock'], apply: true });
      await writeVerdict('confined', 'inventory_shadow', 'allowed');
      await withTenant('shadow', () => producer.send({ topic: 'inventory', messages: [{ value: 'load test' }] }));
      await producer.send({ topic: 'inventory', messages: [{ value: 'a real order' }] });
      expect(await high(admin, 'inventory')).toBe(1);
      expect(await high(admin, 'inventory_shadow')).toBe(1);

      // The isolated principal really is the one writing: a twin it was not
      // granted is refused by the broker (on a producer of its own: kafkajs
      // keeps failing a producer once a topic it wrote is refused).
      await createTopics(admin, 'stock', 'stock_shadow');
      const ungranted = kafka.producer();
      await ungranted.connect();
      try {
        await expect(withTenant('shadow', () => ungranted.send({ topic: 'stock', messages: [{ value: 'no grant' }] }))).rejects.toThrow(
          /authoriz/i,
        );
      } finally {
        await ungranted.disconnect();
      }
      expect(await high(admin, 'stock')).toBe(0);
      expect(await high(admin, 'stock_shadow')).toBe(0);
    } finally {
      await producer.disconnect();
      await kafka.close();
      await admin.disconnect();
    }
  }, 60_000);

  it('a principal the broker lets write a production topic: every shadow send is refused and nothing lands anywhere; guard-only is the explicit way round', async () => {
    const admin = client('admin').admin();
    await admin.connect();
    const kafka = tenantKafka(client('admin'), { isolatedClient: client('leaky') });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await createTopics(admin, 'ledger', 'ledger_shadow');
      await grantShadowAccess({ admin, principal: 'User:leaky', topics: ['ledger'], groups: [], apply: true });
      await admin.createAcls({ acl: [allow('User:leaky', 'ledger')] });
      await writeVerdict('leaky', 'ledger', 'allowed');
      await writeVerdict('leaky', 'ledger_shadow', 'allowed');
      const send = () => withTenant('shadow', () => producer.send({ topic: 'ledger', messages: [{ value: 'must not land' }] }));
      await expect(send()).rejects.toThrow(IsolationError);
      await expect(send()).rejects.toThrow(/may write production|write ledger/);
      const batch = withTenant('shadow', () => producer.sendBatch({ topicMessages: [{ topic: 'ledger', messages: [{ value: 'no' }] }] }));
      await expect(batch).rejects.toThrow(IsolationError);
      const isolatedAdminRead = withTenant('shadow', async () => {
        const admin2 = kafka.admin();
        await admin2.connect();
        try {
          return await admin2.fetchTopicOffsets('ledger');
        } finally {
          await admin2.disconnect();
        }
      });
      // An admin call through the isolated client is checked too (the made-up topic is refused to leaky, so it passes; the call reads ledger_shadow).
      await expect(isolatedAdminRead).resolves.toBeDefined();
      expect(await high(admin, 'ledger')).toBe(0);
      expect(await high(admin, 'ledger_shadow')).toBe(0);

      const unchecked = tenantKafka(client('admin'), { isolatedClient: client('leaky'), enforcement: 'guard-only' });
      const uncheckedProducer = unchecked.producer();
      await uncheckedProducer.connect();
      try {
        await withTenant('shadow', () => uncheckedProducer.send({ topic: 'ledger', messages: [{ value: 'load test' }] }));
      } finally {
        await uncheckedProducer.disconnect();
        await unchecked.close();
      }
      expect(await high(admin, 'ledger')).toBe(0);
      expect(await high(admin, 'ledger_shadow')).toBe(1);
    } finally {
      await producer.disconnect();
      await kafka.close();
      await admin.disconnect();
    }
  }, 90_000);

  it('a principal with a wildcard grant is refused although the production topic itself is not named', async () => {
    const admin = client('admin').admin();
    await admin.connect();
    const kafka = tenantKafka(client('admin'), { isolatedClient: client('wild') });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await createTopics(admin, 'audit', 'audit_shadow');
      await admin.createAcls({
        acl: [allow('User:wild', 'audit_', ResourcePatternTypes.PREFIXED), allow('User:wild', 'dye-probe-', ResourcePatternTypes.PREFIXED)],
      });
      await writeVerdict('wild', 'dye-probe-anything', 'allowed');
      await expect(withTenant('shadow', () => producer.send({ topic: 'audit', messages: [{ value: 'no' }] }))).rejects.toThrow(
        /dye-probe-/,
      );
      expect(await high(admin, 'audit')).toBe(0);
      expect(await high(admin, 'audit_shadow')).toBe(0);
    } finally {
      await producer.disconnect();
      await kafka.close();
      await admin.disconnect();
    }
  }, 60_000);

  it('the isolated consumer reads <topic>_shadow as the isolated principal; a principal that may write production gets no isolated consumer', async () => {
    const admin = client('admin').admin();
    await admin.connect();
    try {
      await createTopics(admin, 'parcels', 'parcels_shadow', 'returns', 'returns_shadow');
      await grantShadowAccess({ admin, principal: 'User:confined', topics: ['parcels', 'inventory'], groups: ['shipping'], apply: true });
      await grantShadowAccess({ admin, principal: 'User:leaky', topics: ['returns'], groups: ['returns-readers'], apply: true });
      await admin.createAcls({ acl: [allow('User:leaky', 'returns')] });
      await writeVerdict('confined', 'parcels_shadow', 'allowed');
      await writeVerdict('leaky', 'returns', 'allowed');
      const seeder = client('admin').producer();
      await seeder.connect();
      await seeder.send({ topic: 'parcels_shadow', messages: [{ value: 'shadow parcel' }] });
      await seeder.send({ topic: 'returns_shadow', messages: [{ value: 'shadow return' }] });
      await seeder.disconnect();

      const seen: string[] = [];
      for (const [user, expected] of [
        ['confined', ['shadow:shadow parcel']],
        ['leaky', []],
      ] as const) {
        const kafka = tenantKafka(client('admin'), { isolatedClient: client(user) });
        const consumer = kafka.consumer({ groupId: user === 'confined' ? 'shipping' : 'returns-readers' });
        seen.length = 0;
        try {
          await consumer.connect();
          await consumer.subscribe({ topics: [user === 'confined' ? 'parcels' : 'returns'], fromBeginning: true });
          await consumer.run({
            eachMessage: async ({ message }) => {
              seen.push(`${currentTenant().name}:${String(message.value)}`);
            },
          });
          if (expected.length > 0) await waitFor(() => seen.length >= expected.length, 30_000, 'the shadow message');
          else await new Promise((resolve) => setTimeout(resolve, 3_000));
          expect(seen).toEqual(expected);
        } finally {
          await consumer.disconnect();
          await kafka.close();
        }
      }
      // The isolated group committed on the isolated topic; the production group has nothing.
      const committed = await admin.fetchOffsets({ groupId: 'shipping_shadow', topics: ['parcels_shadow'] });
      expect(committed[0]?.partitions[0]?.offset).toBe('1');
      const untouched = await admin.fetchOffsets({ groupId: 'returns-readers_shadow', topics: ['returns_shadow'] });
      expect(untouched[0]?.partitions[0]?.offset).toBe('-1');
    } finally {
      await admin.disconnect();
    }
  }, 120_000);
});

describe('dye shadow grant --kafka', () => {
  const grant = (...extra: string[]) =>
    dye(
      [
        'shadow',
        'grant',
        '--kafka',
        `127.0.0.1:${broker.port}`,
        '--kafka-user',
        'admin',
        '--user',
        'cli',
        '--topic',
        'clicks',
        '--group',
        'ui',
        '--transactional-id',
        'checkout',
        ...extra,
      ],
      { DYE_KAFKA_PASSWORD: users.admin },
    );

  it('is a dry run without --apply; --apply writes the ACLs the broker then enforces; a second run has nothing to do', async () => {
    const admin = client('admin').admin();
    await admin.connect();
    try {
      await createTopics(admin, 'clicks', 'clicks_shadow');
      const dry = await grant();
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toContain('add ALLOW WRITE on TOPIC clicks_shadow');
      expect(dry.stdout).toContain('add ALLOW READ on GROUP ui_shadow');
      expect(dry.stdout).toContain('add ALLOW WRITE on TRANSACTIONAL_ID checkout_shadow');
      expect(dry.stdout).toContain('dry run: nothing changed');
      const none = await admin.describeAcls({
        resourceType: AclResourceTypes.ANY,
        resourcePatternType: ResourcePatternTypes.ANY,
        principal: 'User:cli',
        operation: AclOperationTypes.ANY,
        permissionType: AclPermissionTypes.ANY,
      });
      expect(none.resources).toEqual([]);
      await writeVerdict('cli', 'clicks_shadow', 'refused');

      const applied = await grant('--apply');
      expect(applied.code, applied.stderr).toBe(0);
      await writeVerdict('cli', 'clicks_shadow', 'allowed');
      await writeVerdict('cli', 'clicks', 'refused');
      const again = await grant('--json');
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ principal: 'User:cli', inSync: true, create: [], remove: [] });
      expect(await high(admin, 'clicks')).toBe(0);
      expect(await high(admin, 'clicks_shadow')).toBe(0);
    } finally {
      await admin.disconnect();
    }
  }, 90_000);

  it('needs the admin password, topics, and one store', async () => {
    const noPassword = await dye(
      ['shadow', 'grant', '--kafka', `127.0.0.1:${broker.port}`, '--kafka-user', 'admin', '--user', 'cli', '--topic', 'x'],
      {
        DYE_KAFKA_PASSWORD: '',
      },
    );
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('set DYE_KAFKA_PASSWORD');
    const noTopic = await dye(['shadow', 'grant', '--kafka', `127.0.0.1:${broker.port}`, '--user', 'cli']);
    expect(noTopic.code).toBe(2);
    expect(noTopic.stderr).toContain('--topic');
    const topicWithoutKafka = await dye(['shadow', 'grant', '--redis', 'redis://127.0.0.1:6379', '--user', 'cli', '--topic', 'x']);
    expect(topicWithoutKafka.code).toBe(2);
    expect(topicWithoutKafka.stderr).toContain('are for --kafka');
  }, 30_000);
});

describe('ALLOWs for every principal (User:*)', () => {
  const everyone = (resourceName: string, operation: number, patternType = ResourcePatternTypes.LITERAL) => ({
    resourceType: AclResourceTypes.TOPIC,
    resourceName,
    resourcePatternType: patternType,
    principal: 'User:*',
    host: '*',
    operation,
    permissionType: AclPermissionTypes.ALLOW,
  });

  it('grantShadowAccess denies them to the principal; one that also covers a twin is a conflict, never in sync', async () => {
    const admin = client('admin').admin();
    await admin.connect();
    try {
      await createTopics(admin, 'payroll', 'payroll_shadow');
      await admin.createAcls({ acl: [everyone('payroll', AclOperationTypes.WRITE), everyone('payroll', AclOperationTypes.DESCRIBE)] });
      await writeVerdict('star', 'payroll', 'allowed');
      const granted = await grantShadowAccess({ admin, principal: 'User:star', topics: ['payroll'], apply: true });
      expect(granted.conflicts).toEqual([]);
      expect(
        granted.create
          .filter((acl) => acl.permission === 'DENY')
          .map((acl) => `${acl.operation} ${acl.resourceName}`)
          .sort(),
      ).toEqual(['DESCRIBE payroll', 'WRITE payroll']);
      await writeVerdict('star', 'payroll', 'refused');
      await writeVerdict('star', 'payroll_shadow', 'allowed');
      expect((await grantShadowAccess({ admin, principal: 'User:star', topics: ['payroll'] })).inSync).toBe(true);
      expect(await high(admin, 'payroll')).toBe(0);

      // A prefix every principal may write, which also covers the twin: nothing the grant can deny alone.
      const prefix = everyone('pay', AclOperationTypes.WRITE, ResourcePatternTypes.PREFIXED);
      await admin.createAcls({ acl: [prefix] });
      try {
        const conflicted = await grantShadowAccess({ admin, principal: 'User:star', topics: ['payroll'] });
        expect(conflicted.inSync).toBe(false);
        expect(conflicted.conflicts.map((acl) => `${acl.patternType} ${acl.resourceName} ${acl.operation}`)).toEqual([
          'PREFIXED pay WRITE',
        ]);
      } finally {
        await admin.deleteAcls({ filters: [prefix] });
      }
    } finally {
      await admin
        .deleteAcls({ filters: [everyone('payroll', AclOperationTypes.WRITE), everyone('payroll', AclOperationTypes.DESCRIBE)] })
        .catch(() => {});
      await admin.disconnect();
    }
  }, 90_000);
});
