/**
 * What isolated code could reach besides the documented methods, and copies
 * of messages: amqplib's own events and internal state of the production
 * channel, a copy of a shadow message acknowledged from baseline, routing
 * headers in a dead letter and in caller objects read twice. Judged by the
 * broker: queue depths and unacknowledged counts.
 */
import { type TenantAmqp } from '@dye/amqplib';
import { IsolationError, withTenant } from '@dye/core';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/support/services.js';
import { cleanupList, declareRoute, managementApi, queueDepth, sleep, useAmqpFixture, waitFor } from './support.js';

const cleanup = cleanupList();
let admin: ChannelModel;
let app: ChannelModel;
let dye: TenantAmqp;
let raw: ConfirmChannel;
useAmqpFixture(cleanup, (opened) => {
  ({ admin, app, dye, raw } = opened);
});

const shadow = <T>(fn: () => T) => withTenant('shadow', fn);
const fill = async (queue: string, ...values: string[]) => {
  for (const value of values) raw.sendToQueue(queue, Buffer.from(value));
  await raw.waitForConfirms();
};
/** Ready and unacknowledged messages of a queue, from the management API (its figures lag a few seconds). */
const unacked = async (queue: string) =>
  ((await managementApi('GET', `/queues/%2F/${encodeURIComponent(queue)}`)) as { messages_unacknowledged?: number })
    .messages_unacknowledged ?? 0;

describe("amqplib's events and internal state are not isolated code's", () => {
  it('delivery listeners, consumers, the raw connection and listener lists: refused in shadow; production keeps its unacked messages', async () => {
    const route = await declareRoute(admin, 'reach', cleanup);
    await fill(route.queue, 'p1', 'p2', 'p3');
    const channel = await dye.createChannel();
    const held: ConsumeMessage[] = [];
    const { consumerTag } = await channel.consume(route.queue, (message) => void (message && held.push(message)));
    await waitFor(() => held.length === 3, 10_000, 'three production deliveries');
    const reach = channel as unknown as Record<string, unknown> & { listeners(event: string): unknown[] };
    expect(() => shadow(() => reach.listeners('delivery'))).toThrow(IsolationError);
    expect(() => shadow(() => (reach.rawListeners as (e: string) => unknown)('delivery'))).toThrow(IsolationError);
    expect(() => shadow(() => (reach.removeAllListeners as (e: string) => void)('delivery'))).toThrow(IsolationError);
    expect(() => shadow(() => channel.on('delivery' as never, () => {}))).toThrow(IsolationError);
    expect(() => shadow(() => reach.consumers)).toThrow(IsolationError);
    expect(() => shadow(() => reach.ch)).toThrow(IsolationError);
    const connection = shadow(() => reach.connection) as Record<string, unknown>;
    expect(Object.keys(connection)).toEqual(['serverProperties']);
    // What a user listens to stays possible.
    expect(shadow(() => channel.on('error', () => {}))).toBe(channel);
    // Baseline reaches them as amqplib has them.
    expect(reach.listeners('delivery').length).toBeGreaterThan(0);
    await waitFor(async () => (await unacked(route.queue)) === 3, 15_000, 'the management API to count 3 unacked');
    await channel.cancel(consumerTag);
    await channel.close();
  });
});

describe('a copy of a shadow message', () => {
  it('acknowledged from baseline is refused: neither the production message with its tag nor anything else is settled', async () => {
    const route = await declareRoute(admin, 'copy', cleanup);
    await fill(route.queue, 'p1');
    await fill(`${route.queue}_shadow`, 's1');
    const channel = await dye.createChannel();
    const production: ConsumeMessage[] = [];
    const copies: ConsumeMessage[] = [];
    await channel.consume(route.queue, (message) => {
      if (message === null) return;
      if ((message.fields as { isolatedQueue?: string }).isolatedQueue) copies.push(structuredClone(message));
      else production.push(message);
    });
    await waitFor(() => production.length === 1 && copies.length === 1, 10_000, 'one delivery of each');
    expect(() => channel.ack(copies[0] as ConsumeMessage)).toThrow(IsolationError);
    expect(() => channel.nack(copies[0] as ConsumeMessage, true, false)).toThrow(IsolationError);
    await sleep(200);
    await waitFor(
      async () => (await unacked(route.queue)) === 1 && (await unacked(`${route.queue}_shadow`)) === 1,
      15_000,
      'both messages still unacked',
    );
    await channel.close();
    expect(await queueDepth(admin, route.queue)).toBe(1);
  });
});

describe('routing headers', () => {
  it('a dead letter never carries the CC it came with: one copy in the dead-letter queue, none in the queue CC named', async () => {
    const route = await declareRoute(admin, 'dlqcc', cleanup, { deadLetters: true });
    const named = uniqueName('dlqcc_named');
    const setup = await admin.createChannel();
    await setup.assertQueue(named, { durable: false });
    await setup.close();
    cleanup.queues.push(named);
    raw.sendToQueue(route.queue, Buffer.from('two tenants'), {
      headers: { 'x-tenant': 'red', baggage: 'tenant=blue', CC: [named, route.queue] },
    });
    await raw.waitForConfirms();
    // CC named both queues when the message was first sent: one copy each there already.
    const channel = await dye.createChannel();
    let handled = 0;
    await channel.consume(route.queue, () => void handled++);
    await waitFor(async () => (await queueDepth(admin, `${route.queue}.dye-dlq`)) === 1, 10_000, 'the dead letter');
    await sleep(1_000);
    await channel.close();
    expect(handled).toBe(0);
    expect(await queueDepth(admin, `${route.queue}.dye-dlq`)).toBe(1);
    expect(await queueDepth(admin, named)).toBe(1);
  });

  it('CC checked on the copy Dye sends: headers that change between reads never route a shadow message to production', async () => {
    const route = await declareRoute(admin, 'ccread', cleanup);
    const channel = await dye.createChannel();
    channel.on('error', () => {});
    let reads = 0;
    const options = {
      get headers() {
        reads++;
        return reads === 1 ? undefined : { CC: [route.queue] };
      },
    };
    let outcome: unknown;
    try {
      shadow(() => channel.sendToQueue(route.queue, Buffer.from('no'), options));
      outcome = 'sent';
    } catch (error) {
      outcome = error;
    }
    await sleep(500);
    await channel.close();
    // Either refused (the copy held CC) or sent without it; never into production.
    if (outcome !== 'sent') expect(outcome).toBeInstanceOf(IsolationError);
    expect(await queueDepth(admin, route.queue)).toBe(0);
  });
});
