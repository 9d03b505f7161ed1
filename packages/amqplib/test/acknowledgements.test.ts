/**
 * Delivery tags are numbered per channel: the production channel's tag 1 and
 * the shadow channel's tag 1 are different messages. Whatever wrapper a
 * handler calls ack/nack/reject on, each acknowledgement must reach the
 * channel that delivered its message. Judged by the broker: after the
 * consumer's channel closes, every unacknowledged message is back in its queue.
 */

import { type TenantAmqp } from '@dye/amqplib';
import { currentTenant, IsolationError, withTenant } from '@dye/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { cleanupList, declareRoute, queueDepth, sleep, useAmqpFixture, waitFor } from './support.js';

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

/**
 * A consumer holding three production messages unacknowledged (tags 1–3 on
 * its channel) when the first shadow message (tag 1 on Dye's channel)
 * arrives; `onShadow` runs in its handler.
 */
async function withHeldProduction(name: string, onShadow: (channel: Channel, message: ConsumeMessage) => void | Promise<void>) {
  const route = await declareRoute(admin, name, cleanup);
  const channel = await dye.createChannel();
  const production: ConsumeMessage[] = [];
  const shadowSeen: ConsumeMessage[] = [];
  const errors: unknown[] = [];
  await channel.consume(route.queue, async (message) => {
    if (!message) return;
    if (currentTenant().name !== 'shadow') {
      production.push(message);
      return;
    }
    shadowSeen.push(message);
    try {
      await onShadow(channel, message);
    } catch (error) {
      errors.push(error);
    }
  });
  for (const value of ['p1', 'p2', 'p3']) raw.sendToQueue(route.queue, Buffer.from(value));
  await waitFor(() => production.length === 3, 10_000, 'three production messages held');
  return { route, channel, production, shadowSeen, errors };
}

const shadowSend = (queue: string, value: string) => raw.sendToQueue(`${queue}_shadow`, Buffer.from(value));

describe('acknowledgements from a shadow handler act on the shadow queue only', () => {
  it.each([
    ['ack', (channel: Channel, message: ConsumeMessage) => channel.ack(message)],
    ['nack without requeue', (channel: Channel, message: ConsumeMessage) => channel.nack(message, false, false)],
    ['reject without requeue', (channel: Channel, message: ConsumeMessage) => channel.reject(message, false)],
    ['ack with allUpTo', (channel: Channel, message: ConsumeMessage) => channel.ack(message, true)],
  ])('%s: the shadow message is settled, production tags 1–3 stay unacknowledged', async (name, settle) => {
    const run = await withHeldProduction(name.replace(/\W+/g, '_'), settle);
    expect(run.production[0]?.fields.deliveryTag).toBe(1);
    shadowSend(run.route.queue, 's1');
    await waitFor(() => run.shadowSeen.length === 1);
    // The shadow message had tag 1 too: the collision the routing must survive.
    expect(run.shadowSeen[0]?.fields.deliveryTag).toBe(1);
    await sleep(200);
    expect(run.errors).toEqual([]);
    await run.channel.close();
    expect(await queueDepth(admin, run.route.queue)).toBe(3);
    expect(await queueDepth(admin, `${run.route.queue}_shadow`)).toBe(0);
  });

  it('nack with requeue redelivers the shadow message on the shadow channel; production is untouched', async () => {
    let deliveries = 0;
    const run = await withHeldProduction('nack_requeue', (channel, message) => {
      deliveries++;
      if (deliveries === 1) channel.nack(message, false, true);
      else channel.ack(message);
    });
    shadowSend(run.route.queue, 's1');
    await waitFor(() => run.shadowSeen.length === 2);
    expect(run.shadowSeen[1]?.fields.redelivered).toBe(true);
    expect(run.errors).toEqual([]);
    await run.channel.close();
    expect(await queueDepth(admin, run.route.queue)).toBe(3);
    expect(await queueDepth(admin, `${run.route.queue}_shadow`)).toBe(0);
  });

  it('ackAll and nackAll in a shadow handler settle only shadow messages', async () => {
    let count = 0;
    const run = await withHeldProduction('ack_all', (channel) => {
      count++;
      if (count === 2) channel.ackAll();
    });
    shadowSend(run.route.queue, 's1');
    shadowSend(run.route.queue, 's2');
    await waitFor(() => run.shadowSeen.length === 2);
    await sleep(200);
    await run.channel.close();
    expect(await queueDepth(admin, run.route.queue)).toBe(3);
    expect(await queueDepth(admin, `${run.route.queue}_shadow`)).toBe(0);

    const again = await withHeldProduction('nack_all', (channel) => channel.nackAll(false));
    shadowSend(again.route.queue, 's1');
    await waitFor(() => again.shadowSeen.length === 1);
    await sleep(200);
    await again.channel.close();
    expect(await queueDepth(admin, again.route.queue)).toBe(3);
    expect(await queueDepth(admin, `${again.route.queue}_shadow`)).toBe(0);
  });

  it('a production ack never settles a shadow delivery: shadow tag 1 stays unacknowledged when production tag 1 is acked', async () => {
    const route = await declareRoute(admin, 'prod_ack', cleanup);
    const channel = await dye.createChannel();
    const seen: Array<{ tenant: string; message: ConsumeMessage }> = [];
    await channel.consume(route.queue, (message) => {
      if (message) seen.push({ tenant: currentTenant().name, message });
    });
    shadowSend(route.queue, 's1');
    await waitFor(() => seen.length === 1);
    raw.sendToQueue(route.queue, Buffer.from('p1'));
    await waitFor(() => seen.length === 2);
    const [shadowMessage, productionMessage] = [seen[0], seen[1]];
    expect(shadowMessage?.tenant).toBe('shadow');
    expect(productionMessage?.message.fields.deliveryTag).toBe(shadowMessage?.message.fields.deliveryTag);
    // Acked from a baseline context (a batch acknowledger, say): each to its own channel.
    channel.ack(productionMessage?.message as ConsumeMessage);
    await sleep(200);
    await channel.close();
    expect(await queueDepth(admin, route.queue)).toBe(0);
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(1);
  });

  it('a shadow message acked later from a baseline context still settles on the shadow channel', async () => {
    const route = await declareRoute(admin, 'late_ack', cleanup);
    const channel = await dye.createChannel();
    const pending: ConsumeMessage[] = [];
    await channel.consume(route.queue, (message) => void (message && pending.push(message)));
    raw.sendToQueue(route.queue, Buffer.from('p1'));
    shadowSend(route.queue, 's1');
    await waitFor(() => pending.length === 2);
    // A copy of the message, as code that spreads it would hold.
    withTenant('baseline', () => {
      for (const message of pending) channel.ack({ ...message });
    });
    await sleep(200);
    await channel.close();
    expect(await queueDepth(admin, route.queue)).toBe(0);
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(0);
  });

  it('in a shadow context, acknowledging a message Dye did not deliver is refused: its tag could be a production one', async () => {
    const run = await withHeldProduction('forged', (channel, message) => {
      const forged = { ...message, fields: { ...message.fields } };
      channel.ack(forged);
    });
    shadowSend(run.route.queue, 's1');
    await waitFor(() => run.errors.length === 1);
    expect(run.errors[0]).toBeInstanceOf(IsolationError);
    await run.channel.close();
    expect(await queueDepth(admin, run.route.queue)).toBe(3);
    expect(await queueDepth(admin, `${run.route.queue}_shadow`)).toBe(1);
  });
});
