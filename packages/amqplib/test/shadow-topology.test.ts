import { checkShadowTopology, syncShadowTopology } from '@dye/amqplib';
import { setLogger } from '@dye/core';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { RABBITMQ_MANAGEMENT } from '../../../test/support/services.js';
import { beforeAllOrFail, connectAmqp, createVhost, deleteVhost, exists, managementApi, queueDepth, vhostUrl, waitFor } from './support.js';

// A vhost of this file's own: the sync reads a whole vhost, and others' tests must not show up in it.
let vhost: string;
let connection: ChannelModel;
let channel: ConfirmChannel;
const management = RABBITMQ_MANAGEMENT;

beforeAllOrFail(async () => {
  setLogger({ warn: () => {} });
  vhost = await createVhost('dye_topology');
  connection = await connectAmqp(vhostUrl(vhost));
  channel = await connection.createConfirmChannel();
  // Production: a topic exchange into a queue with a dead-letter exchange, an
  // exchange-to-exchange binding, a headers binding with arguments, and what
  // must not be twinned.
  await channel.assertExchange('orders', 'topic', { durable: true });
  await channel.assertExchange('orders.dlx', 'fanout', { durable: true });
  await channel.assertExchange('audit', 'headers', { durable: false, autoDelete: false });
  await channel.assertQueue('billing', { durable: true, deadLetterExchange: 'orders.dlx', messageTtl: 60_000 });
  await channel.assertQueue('billing.parked', { durable: true });
  await channel.assertQueue('audit-log', { durable: false });
  await channel.assertQueue('leaky', { durable: false, deadLetterExchange: 'amq.direct' });
  await channel.assertQueue('by-own-key', { durable: false, deadLetterExchange: '' });
  await channel.assertQueue('billing.dye-dlq', { durable: true });
  await channel.bindQueue('billing', 'orders', 'order.*');
  await channel.bindQueue('billing.parked', 'orders.dlx', '');
  await channel.bindExchange('audit', 'orders', '#');
  await channel.bindQueue('audit-log', 'audit', '', { 'x-match': 'all', kind: 'order' });
  await channel.bindQueue('billing', 'amq.topic', 'legacy.#');
});

afterAll(async () => {
  await connection?.close().catch(() => {});
  if (vhost) await deleteVhost(vhost);
});

const names = (declarations: ReadonlyArray<{ kind: string; name?: string; source?: string; destination?: string }>) =>
  declarations.map((d) => (d.kind === 'binding' ? `binding ${d.source} → ${d.destination}` : `${d.kind} ${d.name}`)).sort();

describe('syncShadowTopology', () => {
  it('a dry run plans the twins and declares nothing; resources whose dead letters cannot be kept apart are skipped', async () => {
    const plan = await syncShadowTopology({ management, vhost });
    expect(plan.created).toEqual([]);
    expect(plan.inSync).toBe(false);
    expect(names(plan.missing)).toEqual([
      'binding audit_shadow → audit-log_shadow',
      'binding orders.dlx_shadow → billing.parked_shadow',
      'binding orders_shadow → audit_shadow',
      'binding orders_shadow → billing_shadow',
      'exchange audit_shadow',
      'exchange orders.dlx_shadow',
      'exchange orders_shadow',
      'queue audit-log_shadow',
      'queue billing.parked_shadow',
      'queue billing_shadow',
    ]);
    const billing = plan.missing.find((d) => d.kind === 'queue' && d.name === 'billing_shadow');
    expect(billing).toMatchObject({
      options: { durable: true, arguments: { 'x-dead-letter-exchange': 'orders.dlx_shadow', 'x-message-ttl': 60_000 } },
    });
    expect(plan.skipped.map((s) => `${s.kind} ${s.name}`).sort()).toEqual([
      'binding amq.topic → billing',
      'queue by-own-key',
      'queue leaky',
    ]);
    expect(await exists(connection, 'exchange', 'orders_shadow')).toBe(false);
    expect(await exists(connection, 'queue', 'billing_shadow')).toBe(false);
  });

  it('apply declares the twins, with bindings that route and dead letters that stay in shadow; a second run is in sync', async () => {
    const applied = await syncShadowTopology({ connection, management, vhost, apply: true });
    expect(names(applied.created)).toHaveLength(10);
    expect(applied.inSync).toBe(true);
    // Routing through the twins: topic, exchange-to-exchange, headers with arguments.
    channel.publish('orders_shadow', 'order.created', Buffer.from('o'), { headers: { kind: 'order' } });
    await channel.waitForConfirms();
    await waitFor(
      async () => (await queueDepth(connection, 'billing_shadow')) === 1 && (await queueDepth(connection, 'audit-log_shadow')) === 1,
    );
    expect(await queueDepth(connection, 'billing')).toBe(0);
    expect(await queueDepth(connection, 'audit-log')).toBe(0);
    // A rejected shadow message dead-letters into the twin of the dead-letter exchange, not production's.
    const message = await channel.get('billing_shadow');
    if (message) channel.nack(message, false, false);
    await waitFor(async () => (await queueDepth(connection, 'billing.parked_shadow')) === 1);
    expect(await queueDepth(connection, 'billing.parked')).toBe(0);

    const again = await syncShadowTopology({ connection, management, vhost, apply: true });
    expect(again.created).toEqual([]);
    expect(again.inSync).toBe(true);
    expect((await checkShadowTopology({ management, vhost })).inSync).toBe(true);
  });

  it('reports drift: a different argument, and a twin bound into production (a leak)', async () => {
    await channel.deleteQueue('audit-log_shadow');
    await channel.assertQueue('audit-log_shadow', { durable: false, messageTtl: 1000 });
    await channel.bindQueue('audit-log_shadow', 'audit_shadow', '', { 'x-match': 'all', kind: 'order' });
    await channel.bindQueue('billing', 'orders_shadow', 'leak.#');
    const report = await checkShadowTopology({ management, vhost });
    expect(report.inSync).toBe(false);
    expect(report.missing).toEqual([]);
    expect(report.drift).toEqual([
      {
        resource: 'queue',
        name: 'audit-log',
        shadowName: 'audit-log_shadow',
        kind: 'argument',
        setting: 'x-message-ttl',
        production: null,
        shadow: 1000,
      },
      {
        resource: 'binding',
        name: 'orders_shadow → queue billing (leak.#)',
        shadowName: 'orders_shadow',
        kind: 'binding',
        production: null,
        shadow: 'orders_shadow → queue billing (leak.#): between a twin and a production resource',
      },
    ]);
    await channel.unbindQueue('billing', 'orders_shadow', 'leak.#');
  });

  it('reports policies whose pattern also matches a twin and route its messages to production (an alternate exchange, dead letters through the default exchange), and a shadow message proves the route', async () => {
    const at = encodeURIComponent(vhost);
    await channel.assertExchange('unrouted', 'fanout', { durable: false, autoDelete: false });
    await channel.assertQueue('unrouted-log', { durable: false });
    await channel.bindQueue('unrouted-log', 'unrouted', '');
    await channel.assertQueue('parking', { durable: false });
    const policies = {
      'catch-unroutable': {
        pattern: '^orders$|^orders_',
        'apply-to': 'exchanges',
        definition: { 'alternate-exchange': 'unrouted' },
        priority: 1,
      },
      'park-audit': {
        pattern: '^audit-log$|^audit-log_',
        'apply-to': 'queues',
        definition: { 'dead-letter-exchange': '', 'dead-letter-routing-key': 'parking' },
        priority: 1,
      },
    };
    for (const [name, body] of Object.entries(policies)) await managementApi('PUT', `/policies/${at}/${name}`, body);
    try {
      // RabbitMQ applies policies a moment after they are set. billing's own
      // dead-letter argument (its twin's points at a twin) overrides a policy: not reported.
      await waitFor(
        async () => {
          const report = await checkShadowTopology({ management, vhost });
          return report.drift.filter((entry) => entry.kind === 'policy').length === 2;
        },
        10_000,
        'both policies reported',
      );
      const report = await checkShadowTopology({ management, vhost });
      expect(report.inSync).toBe(false);
      expect(
        report.drift
          .filter((entry) => entry.kind === 'policy')
          .map((entry) => `${entry.shadowName} ${entry.setting} → ${JSON.stringify(entry.shadow)}`)
          .sort(),
      ).toEqual([
        'audit-log_shadow park-audit: dead-letter-exchange → ""',
        'orders_shadow catch-unroutable: alternate-exchange → "unrouted"',
      ]);
      // What the report is about: a shadow message that expires in the twin lands in production.
      channel.sendToQueue('audit-log_shadow', Buffer.from('shadow'), { expiration: '1', headers: { 'x-tenant': 'shadow' } });
      await channel.waitForConfirms();
      await waitFor(async () => (await queueDepth(connection, 'parking')) === 1, 5_000, 'the policy route');
    } finally {
      for (const name of Object.keys(policies)) await managementApi('DELETE', `/policies/${at}/${name}`);
    }
    // Without them, the topology is as before.
    await waitFor(
      async () => (await checkShadowTopology({ management, vhost })).drift.every((entry) => entry.kind !== 'policy'),
      10_000,
      'policies gone',
    );
  });

  it('names another isolated tenant’s twins with its suffix, and refuses tenants that do not isolate', async () => {
    const plan = await syncShadowTopology({ management, vhost, tenants: ['shadow-lt1'], exchanges: ['orders'], queues: ['billing'] });
    expect(names(plan.missing)).toEqual([
      'binding orders_shadow_lt1 → billing_shadow_lt1',
      'exchange orders_shadow_lt1',
      'queue billing_shadow_lt1',
    ]);
    const billing = plan.missing.find((d) => d.kind === 'queue');
    // orders.dlx is not in the selection, but the twin still names its twin: never production.
    expect(billing).toMatchObject({ options: { arguments: { 'x-dead-letter-exchange': 'orders.dlx_shadow_lt1' } } });
    await expect(syncShadowTopology({ management, vhost, tenants: ['red'] })).rejects.toThrow(TypeError);
    await expect(syncShadowTopology({ management, vhost, apply: true })).rejects.toThrow(/connection/);
    expect(await managementApi('GET', `/vhosts/${encodeURIComponent(vhost)}`)).toBeDefined();
  });
});
