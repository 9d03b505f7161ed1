/**
 * Where a message came from decides what runs it: a message in a production
 * queue that names an isolated tenant did not come through Dye (Dye publishes
 * those to twins only) and is dead-lettered, neither processed in that tenant
 * nor as baseline; a message the broker returns to a publisher is handled in
 * the publisher's tenant, so a handler that publishes it again publishes it
 * where that tenant may. Judged by the broker: queue depths.
 */
import { type TenantAmqp, withMessageTenant } from '@dye/amqplib';
import { currentTenant, IsolationError, withTenant } from '@dye/core';
import type { ChannelModel, ConfirmChannel, ConsumeMessage, Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { cleanupList, declareRoute, queueDepth, sleep, takeAll, useAmqpFixture, waitFor } from './support.js';

const cleanup = cleanupList();
let admin: ChannelModel;
let app: ChannelModel;
let dye: TenantAmqp;
let raw: ConfirmChannel;
useAmqpFixture(cleanup, (opened) => {
  ({ admin, app, dye, raw } = opened);
});

/** Publishes with a plain amqplib channel, as a producer without Dye would. */
async function publishBare(exchange: string, key: string, value: string, headers?: Record<string, unknown>) {
  raw.publish(exchange, key, Buffer.from(value), headers ? { headers } : {});
  await raw.waitForConfirms();
}

describe('a production queue message naming an isolated tenant', () => {
  // Every spelling a header reader folds to the tenant.
  const forms: Array<Record<string, unknown>> = [
    { 'x-tenant': 'shadow' },
    { 'X-Tenant': 'SHADOW' },
    { baggage: 'tenant=shadow' },
    { 'x-tenant': 'shadow', baggage: 'tenant=shadow,other=1' },
    { 'x-tenant': Buffer.from('shadow') },
  ];

  it.each(forms.map((headers) => [JSON.stringify(headers, (_k, v) => (v?.type === 'Buffer' ? 'Buffer' : v)), headers]))(
    'is dead-lettered, its handler never runs, the twin queue is untouched: %s',
    async (_name, headers) => {
      const route = await declareRoute(admin, 'origin', cleanup, { deadLetters: true });
      const channel = await dye.createChannel();
      const handled: string[] = [];
      await channel.consume(route.queue, (message) => {
        if (!message) return;
        handled.push(`${currentTenant().name}:${message.content.toString()}`);
        channel.ack(message);
      });
      await publishBare(route.exchange, route.key, 'plain-1');
      await publishBare(route.exchange, route.key, 'forged', headers as Record<string, unknown>);
      await publishBare(route.exchange, route.key, 'plain-2');
      await waitFor(() => handled.length === 2, 10_000, 'the plain messages');
      await waitFor(async () => (await queueDepth(admin, `${route.queue}.dye-dlq`)) === 1, 10_000, 'the dead letter');
      await channel.close();
      expect(handled).toEqual(['baseline:plain-1', 'baseline:plain-2']);
      expect(await queueDepth(admin, route.queue)).toBe(0);
      expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(0);
      const [dead] = await takeAll(admin, `${route.queue}.dye-dlq`);
      expect(dead?.body).toBe('forged');
      expect(String(dead?.headers['x-dye-dlq-reason'])).toContain('isolated tenant shadow');
    },
  );

  it('from get(): withMessageTenant refuses it with IsolationError, and runs a twin message in its tenant whatever it says', async () => {
    const route = await declareRoute(admin, 'origin-get', cleanup);
    await publishBare(route.exchange, route.key, 'forged', { 'x-tenant': 'shadow' });
    const channel = await dye.createChannel();
    const production = (await channel.get(route.queue)) as Message;
    expect(production).not.toBe(false);
    const ran: string[] = [];
    expect(() => withMessageTenant(production, () => ran.push(currentTenant().name))).toThrow(IsolationError);
    channel.nack(production, false, false);
    // Written straight into the twin, claiming to be baseline: the queue decides.
    await publishBare(`${route.exchange}_shadow`, route.key, 'claims baseline', { 'x-tenant': 'baseline' });
    const twin = (await withTenant('shadow', () => channel.get(route.queue))) as Message;
    expect(twin.content.toString()).toBe('claims baseline');
    withMessageTenant(twin, () => ran.push(currentTenant().name));
    withTenant('shadow', () => channel.ack(twin));
    expect(ran).toEqual(['shadow']);
    await channel.close();
  });
});

describe("a returned message is handled in its publisher's tenant", () => {
  it('shadow: a return listener that publishes it again reaches the twin queue, never the production one', async () => {
    const route = await declareRoute(admin, 'returns', cleanup);
    const channel = await dye.createConfirmChannel();
    const tenants: string[] = [];
    channel.on('return', (message: Message) => {
      tenants.push(currentTenant().name);
      // A naive retry: the same exchange (its production name), a key that routes.
      channel.publish(message.fields.exchange, route.key, message.content, message.properties);
    });
    await withTenant('shadow', async () => {
      channel.publish(route.exchange, 'nowhere', Buffer.from('unroutable'), { mandatory: true });
      await channel.waitForConfirms();
    });
    await waitFor(() => tenants.length === 1, 10_000, 'the return');
    await withTenant('shadow', () => channel.waitForConfirms());
    await waitFor(async () => (await queueDepth(admin, `${route.queue}_shadow`)) === 1, 10_000, 'the retried message in the twin');
    expect(tenants).toEqual(['shadow']);
    expect(await queueDepth(admin, route.queue)).toBe(0);
    await channel.close();
  });

  it('red: the listener runs in red and the message it publishes again carries red', async () => {
    const route = await declareRoute(admin, 'returns-red', cleanup);
    const channel = await dye.createConfirmChannel();
    const tenants: string[] = [];
    channel.on('return', (message: Message) => {
      tenants.push(currentTenant().name);
      channel.publish(message.fields.exchange, route.key, message.content, message.properties);
    });
    await withTenant('red', async () => {
      channel.publish(route.exchange, 'nowhere', Buffer.from('unroutable'), { mandatory: true });
      await channel.waitForConfirms();
    });
    await waitFor(() => tenants.length === 1, 10_000, 'the return');
    await channel.waitForConfirms();
    await waitFor(async () => (await queueDepth(admin, route.queue)) === 1, 10_000, 'the retried message');
    const [retried] = await takeAll(admin, route.queue);
    expect(tenants).toEqual(['red']);
    expect(String(retried?.headers['x-tenant'])).toBe('red');
    await sleep(50);
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(0);
    await channel.close();
  });

  it('baseline returns stay baseline', async () => {
    const route = await declareRoute(admin, 'returns-base', cleanup);
    const channel = await dye.createConfirmChannel();
    const tenants: string[] = [];
    channel.on('return', (_message: ConsumeMessage) => tenants.push(currentTenant().name));
    channel.publish(route.exchange, 'nowhere', Buffer.from('unroutable'), { mandatory: true });
    await channel.waitForConfirms();
    await waitFor(() => tenants.length === 1, 10_000, 'the return');
    expect(tenants).toEqual(['baseline']);
    await channel.close();
  });
});
