import { type TenantAmqp } from '@dye/amqplib';
import { currentTenant, IsolationError, withTenant } from '@dye/core';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { cleanupList, declareRoute, queueDepth, sleep, useAmqpFixture, waitFor } from './support.js';

const cleanup = cleanupList();
let admin: ChannelModel;
let app: ChannelModel;
let dye: TenantAmqp;
let raw: ConfirmChannel;
useAmqpFixture(cleanup, (opened) => {
  ({ admin, app, dye, raw } = opened);
});

const send = async (queue: string, values: string[], headers?: Record<string, string>) => {
  for (const value of values) raw.sendToQueue(queue, Buffer.from(value), headers ? { headers } : {});
  await raw.waitForConfirms();
};

describe('channel errors', () => {
  it('when RabbitMQ closes the shadow channel, Dye reopens it and its consumer; production consumption is untouched', async () => {
    const route = await declareRoute(admin, 'reopen', cleanup);
    const channel = await dye.createChannel();
    const errors: unknown[] = [];
    channel.on('error', (error) => errors.push(error));
    const seen: string[] = [];
    let broke = false;
    await channel.consume(route.queue, (message) => {
      if (!message) return;
      seen.push(`${message.content.toString()}:${currentTenant().name}`);
      channel.ack(message);
      if (currentTenant().name === 'shadow' && !broke) {
        broke = true;
        // A second ack of the same delivery: RabbitMQ closes the channel (406 PRECONDITION_FAILED).
        channel.ack(message);
      }
    });
    await send(`${route.queue}_shadow`, ['s1']);
    await waitFor(() => broke && errors.length > 0, 10_000, 'the shadow channel to close');
    expect(errors[0]).toBeInstanceOf(IsolationError);
    await send(`${route.queue}_shadow`, ['s2']);
    await send(route.queue, ['p1']);
    await waitFor(() => seen.includes('s2:shadow') && seen.includes('p1:baseline'), 10_000, 'consumption after the reopen');
    expect([...seen].sort()).toEqual(['p1:baseline', 's1:shadow', 's2:shadow']);
    expect((await raw.checkQueue(`${route.queue}_shadow`)).consumerCount).toBe(1);
    await channel.close();
    expect(await queueDepth(admin, route.queue)).toBe(0);
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(0);
  });

  it('a user who re-creates the channel after a channel error and consumes again keeps tenants right, with one shadow consumer', async () => {
    const route = await declareRoute(admin, 'recreate', cleanup);
    const seen: Array<{ value: string; tenant: string }> = [];
    const start = async () => {
      const channel = await dye.createChannel();
      channel.on('error', () => {});
      await channel.consume(route.queue, (message) => {
        if (!message) return;
        seen.push({ value: message.content.toString(), tenant: currentTenant().name });
        channel.ack(message);
      });
      return channel;
    };
    const first = await start();
    const closed = new Promise((resolve) => first.once('close', resolve));
    // A baseline mistake closes the caller's channel, as amqplib does (404 on a passive declare).
    await expect(first.checkQueue(`${route.queue}_missing`)).rejects.toThrow(/404/);
    await closed;
    await sleep(100);
    expect((await raw.checkQueue(route.queue)).consumerCount).toBe(0);
    expect((await raw.checkQueue(`${route.queue}_shadow`)).consumerCount).toBe(0);

    const second = await start();
    const producer = await dye.createConfirmChannel();
    const tenants = ['baseline', 'red', 'shadow'];
    for (let i = 0; i < 300; i++) {
      const tenant = tenants[i % 3] as string;
      withTenant(tenant, () => producer.sendToQueue(route.queue, Buffer.from(`${tenant}:${i}`)));
    }
    for (const tenant of tenants) await withTenant(tenant, () => producer.waitForConfirms());
    await waitFor(() => seen.length >= 300, 10_000, '300 messages');
    await sleep(200);
    expect(seen).toHaveLength(300);
    expect(seen.filter((entry) => entry.value.split(':')[0] !== entry.tenant)).toEqual([]);
    expect((await raw.checkQueue(`${route.queue}_shadow`)).consumerCount).toBe(1);
    await producer.close();
    await second.close();
  });

  it('a twin deleted after it was known: the shadow channel takes the 404, the next message is refused, the caller’s channel stays open', async () => {
    const route = await declareRoute(admin, 'deleted', cleanup);
    const channel = await dye.createConfirmChannel();
    const errors: unknown[] = [];
    channel.on('error', (error) => errors.push(error));
    withTenant('shadow', () => channel.publish(route.exchange, route.key, Buffer.from('s1')));
    await withTenant('shadow', () => channel.waitForConfirms());
    await raw.deleteExchange(`${route.exchange}_shadow`);
    // Still believed present: published on Dye's channel, which RabbitMQ closes.
    withTenant('shadow', () => channel.publish(route.exchange, route.key, Buffer.from('s2')));
    await expect(withTenant('shadow', () => channel.waitForConfirms())).rejects.toBeTruthy();
    await waitFor(() => errors.length > 0);
    // Known missing from then on.
    await waitFor(async () => {
      try {
        withTenant('shadow', () => channel.publish(route.exchange, route.key, Buffer.from('s3')));
        await withTenant('shadow', () => channel.waitForConfirms());
        return false;
      } catch (error) {
        return error instanceof IsolationError;
      }
    });
    channel.publish(route.exchange, route.key, Buffer.from('p1'));
    await channel.waitForConfirms();
    expect(await queueDepth(admin, route.queue)).toBe(1);
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(1);
    await channel.close();
  });
});
