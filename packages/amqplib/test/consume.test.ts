import { DEAD_LETTER_HEADERS, type IsolatedMessageFields, type TenantAmqp } from '@dye/amqplib';
import { currentTenant, IsolationError, withTenant } from '@dye/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/support/services.js';
import { cleanupList, declareRoute, queueDepth, sleep, takeAll, useAmqpFixture, waitFor } from './support.js';

const cleanup = cleanupList();
let admin: ChannelModel;
let app: ChannelModel;
let dye: TenantAmqp;
let raw: Channel;
useAmqpFixture(
  cleanup,
  (opened) => {
    ({ admin, app, dye, raw } = opened);
  },
  false,
);

const body = (text: string) => Buffer.from(text);

interface Seen {
  expected: string;
  actual: string;
  isolatedQueue: string | undefined;
  routingKey: string;
}

describe('consumers run handlers in the message tenant', () => {
  it('3,000 interleaved messages of baseline, red and shadow, awaits inside handlers: 0 in the wrong tenant', async () => {
    const route = await declareRoute(admin, 'interleaved', cleanup);
    const producer = await dye.createConfirmChannel();
    const tenants = ['baseline', 'red', 'shadow'];
    for (let i = 0; i < 3000; i++) {
      const tenant = tenants[i % 3] as string;
      withTenant(tenant, () => producer.publish(route.exchange, route.key, body(`${tenant}:${i}`)));
    }
    for (const tenant of tenants) await withTenant(tenant, () => producer.waitForConfirms());
    expect(await queueDepth(admin, route.queue)).toBe(2000);
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(1000);

    const consumer = await dye.createChannel();
    await consumer.prefetch(100);
    const seen: Seen[] = [];
    await consumer.consume(route.queue, async (message) => {
      if (!message) return;
      await new Promise((resolve) => setImmediate(resolve));
      await sleep(Math.random() * 3);
      const fields = message.fields as ConsumeMessage['fields'] & IsolatedMessageFields;
      seen.push({
        expected: message.content.toString().split(':')[0] as string,
        actual: currentTenant().name,
        isolatedQueue: fields.isolatedQueue,
        routingKey: fields.routingKey,
      });
      consumer.ack(message);
    });
    await waitFor(() => seen.length >= 3000, 30_000, '3,000 messages');
    await sleep(200);
    expect(seen).toHaveLength(3000);
    expect(seen.filter((entry) => entry.expected !== entry.actual)).toEqual([]);
    const shadowSeen = seen.filter((entry) => entry.actual === 'shadow');
    expect(shadowSeen).toHaveLength(1000);
    expect(new Set(shadowSeen.map((entry) => entry.isolatedQueue))).toEqual(new Set([`${route.queue}_shadow`]));
    expect(seen.filter((entry) => entry.actual !== 'shadow' && entry.isolatedQueue !== undefined)).toEqual([]);
    // Handlers see production names.
    expect(new Set(seen.map((entry) => entry.routingKey))).toEqual(new Set([route.key]));
    // Every acknowledgement reached the channel that delivered it: both queues are empty, nothing unacknowledged.
    await consumer.close();
    expect(await queueDepth(admin, route.queue)).toBe(0);
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(0);
    await producer.close();
  }, 60_000);

  it('consume() called inside a shadow context still runs production messages in their own tenant', async () => {
    const route = await declareRoute(admin, 'ctx', cleanup);
    const channel = await withTenant('shadow', () => dye.createChannel());
    const seen: string[] = [];
    await withTenant('shadow', () =>
      channel.consume(
        route.queue,
        (message) => {
          if (message) seen.push(`${message.content.toString()}:${currentTenant().name}`);
        },
        { noAck: true },
      ),
    );
    raw.sendToQueue(route.queue, body('plain'));
    raw.sendToQueue(route.queue, body('red'), { headers: { 'x-tenant': 'red' } });
    await waitFor(() => seen.length === 2);
    expect(seen).toEqual(['plain:baseline', 'red:red']);
    await channel.close();
  });

  it('a message in a _shadow queue runs in shadow whatever its headers say; one in production claiming shadow is dead-lettered, run in no tenant', async () => {
    const route = await declareRoute(admin, 'claims', cleanup, { deadLetters: true });
    const channel = await dye.createChannel();
    const seen: string[] = [];
    await channel.consume(route.queue, (message) => {
      if (!message) return;
      seen.push(`${message.content.toString()}:${currentTenant().name}`);
      channel.ack(message);
    });
    // Written by plain amqplib, as a careless tool would.
    raw.sendToQueue(`${route.queue}_shadow`, body('headerless twin'));
    raw.sendToQueue(`${route.queue}_shadow`, body('twin claiming baseline'), { headers: { 'x-tenant': 'baseline' } });
    raw.sendToQueue(`${route.queue}_shadow`, body('twin claiming red'), { headers: { 'x-tenant': 'red', baggage: 'tenant=red' } });
    raw.sendToQueue(route.queue, body('production claiming shadow'), { headers: { 'x-tenant': 'shadow' } });
    await waitFor(() => seen.length === 3);
    await waitFor(async () => (await queueDepth(admin, `${route.queue}.dye-dlq`)) === 1, 10_000, 'the dead letter');
    expect(seen.sort()).toEqual(['headerless twin:shadow', 'twin claiming baseline:shadow', 'twin claiming red:shadow']);
    await channel.close();
    expect(await queueDepth(admin, route.queue)).toBe(0);
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(0);
  });

  it('consuming an isolated or dead-letter queue as production is refused', async () => {
    const route = await declareRoute(admin, 'reserved', cleanup, { deadLetters: true });
    const channel = await dye.createChannel();
    await expect(channel.consume(`${route.queue}_shadow`, () => {})).rejects.toBeInstanceOf(IsolationError);
    await expect(channel.consume(`${route.queue}.dye-dlq`, () => {})).rejects.toBeInstanceOf(IsolationError);
    expect((await raw.checkQueue(`${route.queue}_shadow`)).consumerCount).toBe(0);
    await channel.close();
  });

  it('without a twin queue, production consumption goes on alone', async () => {
    const route = await declareRoute(admin, 'no_twin', cleanup, { shadow: false });
    const channel = await dye.createChannel();
    const seen: string[] = [];
    await channel.consume(route.queue, (message) => void (message && seen.push(currentTenant().name)), { noAck: true });
    raw.sendToQueue(route.queue, body('x'));
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual(['baseline']);
    await channel.close();
  });
});

describe('dead letters', () => {
  it('a message naming two tenants goes to <queue>.dye-dlq with the reason, unprocessed, and is acknowledged', async () => {
    const route = await declareRoute(admin, 'conflict', cleanup, { deadLetters: true });
    const channel = await dye.createChannel();
    const processed: string[] = [];
    await channel.consume(route.queue, (message) => {
      if (!message) return;
      processed.push(message.content.toString());
      channel.ack(message);
    });
    raw.sendToQueue(route.queue, body('ambiguous'), { headers: { 'x-tenant': 'red', baggage: 'tenant=shadow' }, messageId: 'm-7' });
    raw.sendToQueue(route.queue, body('fine'));
    await waitFor(async () => processed.length === 1 && (await queueDepth(admin, `${route.queue}.dye-dlq`)) === 1);
    expect(processed).toEqual(['fine']);
    const [dead] = await takeAll(admin, `${route.queue}.dye-dlq`);
    expect(dead?.body).toBe('ambiguous');
    expect(dead?.headers).toMatchObject({
      [DEAD_LETTER_HEADERS.reason]: 'conflicting tenants in one request: "red" vs "shadow"',
      [DEAD_LETTER_HEADERS.queue]: route.queue,
      'x-tenant': 'red',
    });
    await channel.close();
    // Acknowledged: nothing comes back to the production queue.
    expect(await queueDepth(admin, route.queue)).toBe(0);
  });

  it('without <queue>.dye-dlq it is rejected without requeue, so the queue’s own dead-letter exchange takes it', async () => {
    const queue = uniqueName('conflict_dlx_q');
    const dlx = uniqueName('conflict_dlx_x');
    const parked = uniqueName('conflict_dlx_parked');
    cleanup.queues.push(queue, parked);
    cleanup.exchanges.push(dlx);
    await raw.assertExchange(dlx, 'fanout', { durable: false });
    await raw.assertQueue(parked, { durable: false });
    await raw.bindQueue(parked, dlx, '');
    await raw.assertQueue(queue, { durable: false, deadLetterExchange: dlx });
    const channel = await dye.createChannel();
    const processed: string[] = [];
    await channel.consume(queue, (message) => void (message && processed.push(message.content.toString())));
    raw.sendToQueue(queue, body('ambiguous'), { headers: { 'x-tenant': ['red', 'blue'] } });
    await waitFor(async () => (await queueDepth(admin, parked)) === 1);
    const [dead] = await takeAll(admin, parked);
    expect(dead?.body).toBe('ambiguous');
    expect((dead?.headers['x-death'] as Array<{ reason: string }>)[0]?.reason).toBe('rejected');
    expect(processed).toEqual([]);
    await channel.close();
    expect(await queueDepth(admin, queue)).toBe(0);
  });
});

describe('cancel', () => {
  it('in baseline cancels the production consumer and its twin; in shadow only the twin', async () => {
    const route = await declareRoute(admin, 'cancel', cleanup);
    const channel = await dye.createChannel();
    const seen: string[] = [];
    const { consumerTag } = await channel.consume(route.queue, (message) => void (message && seen.push(currentTenant().name)), {
      noAck: true,
    });
    expect((await raw.checkQueue(`${route.queue}_shadow`)).consumerCount).toBe(1);
    await withTenant('shadow', () => channel.cancel(consumerTag));
    expect((await raw.checkQueue(`${route.queue}_shadow`)).consumerCount).toBe(0);
    expect((await raw.checkQueue(route.queue)).consumerCount).toBe(1);
    await expect(withTenant('shadow', () => channel.cancel(consumerTag))).rejects.toBeInstanceOf(IsolationError);

    const second = await channel.consume(route.queue, (message) => void (message && seen.push(currentTenant().name)), { noAck: true });
    await channel.cancel(second.consumerTag);
    await channel.cancel(consumerTag);
    expect((await raw.checkQueue(route.queue)).consumerCount).toBe(0);
    expect((await raw.checkQueue(`${route.queue}_shadow`)).consumerCount).toBe(0);
    await channel.close();
  });
});
