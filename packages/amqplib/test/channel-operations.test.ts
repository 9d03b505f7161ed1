/**
 * What shadow code can reach through a wrapped channel: every amqplib method
 * called in an isolated tenant acts on the `_shadow` twins, on Dye's own
 * channel, or is refused. Judged by the broker afterwards: production queues'
 * depths, consumers and bindings, and which exchanges and queues exist.
 */

import { CHANNEL_OPERATIONS, type TenantAmqp } from '@dye/amqplib';
import { currentTenant, IsolationError, withTenant } from '@dye/core';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { uniqueName } from '../../../test/support/services.js';
import { cleanupList, declareRoute, exists, queueDepth, sleep, useAmqpFixture, waitFor } from './support.js';

const cleanup = cleanupList();
let admin: ChannelModel;
let app: ChannelModel;
let dye: TenantAmqp;
let raw: ConfirmChannel;
useAmqpFixture(cleanup, (opened) => {
  ({ admin, app, dye, raw } = opened);
});

const shadow = <T>(fn: () => T) => withTenant('shadow', fn);
/** Puts messages into a queue with plain amqplib, confirmed by the broker. */
const fill = async (queue: string, ...values: string[]) => {
  for (const value of values) raw.sendToQueue(queue, Buffer.from(value));
  await raw.waitForConfirms();
};
/** Production and twin depths, as the broker reports them. */
const depths = async (queue: string) => [await queueDepth(admin, queue), await queueDepth(admin, `${queue}_shadow`)];

describe('every amqplib method is classified', () => {
  // A method amqplib adds later is refused in isolated tenants until it is
  // classified in operations.ts; this test names it the day amqplib is upgraded.
  it.each(['createChannel', 'createConfirmChannel'] as const)('%s: the whole prototype chain of a live channel', async (create) => {
    const channel = await admin[create]();
    const names = new Set<string>();
    for (let object: object | null = channel; object !== null && object !== Object.prototype; object = Object.getPrototypeOf(object)) {
      for (const key of Reflect.ownKeys(object)) {
        const descriptor = Object.getOwnPropertyDescriptor(object, key);
        if (typeof descriptor?.value === 'function' || descriptor?.get !== undefined) names.add(String(key));
      }
    }
    await channel.close();
    expect([...names].filter((name) => !Object.hasOwn(CHANNEL_OPERATIONS, name))).toEqual([]);
    // amqplib sets these on the instance while it works (a pending reply, the frame state machine).
    const stateful = new Set(['reply', 'handleMessage']);
    // Names only some supported amqplib versions have (2.x; not 0.10.x).
    const versionSpecific = new Set(['_waitForConfirms']);
    const known = new Set([...names, ...stateful, ...versionSpecific]);
    if (create === 'createConfirmChannel') expect(Object.keys(CHANNEL_OPERATIONS).filter((name) => !known.has(name))).toEqual([]);
  });

  it('an unclassified method is refused in an isolated tenant and passes through in baseline', async () => {
    const channel = await dye.createChannel();
    let calls = 0;
    (channel as unknown as { brandNew: () => number }).brandNew = () => ++calls;
    const call = () => (channel as unknown as { brandNew: () => unknown }).brandNew();
    expect(() => shadow(call)).toThrow(IsolationError);
    expect(calls).toBe(0);
    expect(call()).toBe(1);
    await channel.close();
  });

  it("amqplib's machinery and emit are refused in an isolated tenant; listeners are neutral and chain on the wrapper", async () => {
    const channel = await dye.createChannel();
    expect(() => shadow(() => channel.emit('ack', { deliveryTag: 1, multiple: true }))).toThrow(IsolationError);
    const machinery = channel as unknown as {
      sendImmediately: (...args: unknown[]) => unknown;
      rpc: (...args: unknown[]) => Promise<unknown>;
    };
    expect(() => shadow(() => machinery.sendImmediately(0, {}))).toThrow(IsolationError);
    await expect(shadow(() => machinery.rpc(0, {}, 0))).rejects.toBeInstanceOf(IsolationError);
    const chained = shadow(() => channel.on('drain', () => {}).once('return', () => {}));
    expect(chained).toBe(channel);
    await channel.close();
  });
});

describe('isolated channel methods leave production untouched', () => {
  it('get() takes from the twin, and its ack settles there', async () => {
    const route = await declareRoute(admin, 'get', cleanup);
    await fill(route.queue, 'p1', 'p2');
    await fill(`${route.queue}_shadow`, 's1');
    const channel = await dye.createChannel();
    const message = await shadow(() => channel.get(route.queue));
    expect(message && message.content.toString()).toBe('s1');
    expect(message && (message.fields as typeof message.fields & { isolatedQueue?: string }).isolatedQueue).toBe(`${route.queue}_shadow`);
    if (message) shadow(() => channel.ack(message));
    expect(await shadow(() => channel.get(route.queue))).toBe(false);
    await channel.close();
    expect(await depths(route.queue)).toEqual([2, 0]);
  });

  it('purgeQueue, checkQueue and assertQueue act on the twin; replies name the production queue', async () => {
    const route = await declareRoute(admin, 'purge', cleanup);
    await fill(route.queue, 'p1', 'p2');
    await fill(`${route.queue}_shadow`, 's1', 's2', 's3');
    const channel = await dye.createChannel();
    expect(await shadow(() => channel.checkQueue(route.queue))).toEqual({ queue: route.queue, messageCount: 3, consumerCount: 0 });
    expect(await shadow(() => channel.assertQueue(route.queue, { durable: true }))).toEqual({
      queue: route.queue,
      messageCount: 3,
      consumerCount: 0,
    });
    expect(await shadow(() => channel.purgeQueue(route.queue))).toEqual({ messageCount: 3 });
    expect(await depths(route.queue)).toEqual([2, 0]);
    await channel.close();
  });

  it('assertQueue and assertExchange of something without a twin are refused and declare nothing; checks are refused too', async () => {
    const channel = await dye.createChannel();
    const queue = uniqueName('nothing_q');
    const exchange = uniqueName('nothing_x');
    cleanup.queues.push(queue, `${queue}_shadow`);
    cleanup.exchanges.push(exchange, `${exchange}_shadow`);
    const outcomes = await shadow(() =>
      Promise.allSettled([
        channel.assertQueue(queue),
        channel.assertExchange(exchange, 'topic'),
        channel.checkQueue(queue),
        channel.checkExchange(exchange),
        channel.assertQueue(''),
      ]),
    );
    expect(outcomes.map((outcome) => outcome.status === 'rejected' && outcome.reason instanceof IsolationError)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    for (const [kind, name] of [
      ['queue', queue],
      ['queue', `${queue}_shadow`],
      ['exchange', exchange],
      ['exchange', `${exchange}_shadow`],
    ] as const) {
      expect(await exists(admin, kind, name)).toBe(false);
    }
    // The caller's channel saw none of it: still open.
    expect((await channel.assertQueue(queue, { durable: false })).queue).toBe(queue);
    await channel.close();
  });

  it('assertExchange and checkExchange of an exchange with a twin succeed', async () => {
    const route = await declareRoute(admin, 'assert_x', cleanup);
    const channel = await dye.createChannel();
    expect(await shadow(() => channel.assertExchange(route.exchange, 'direct'))).toEqual({ exchange: route.exchange });
    expect(await shadow(() => channel.checkExchange(route.exchange))).toEqual({});
    await channel.close();
  });

  it('topology changes are refused; production exchanges, queues and bindings stay as they were', async () => {
    const route = await declareRoute(admin, 'topology', cleanup);
    const other = uniqueName('topology_other');
    cleanup.exchanges.push(other);
    await raw.assertExchange(other, 'fanout', { durable: false });
    const channel = await dye.createChannel();
    const outcomes = await shadow(() =>
      Promise.allSettled([
        channel.deleteQueue(route.queue),
        channel.deleteExchange(route.exchange),
        channel.purgeQueue(uniqueName('no_twin')),
        channel.bindQueue(route.queue, other, ''),
        channel.unbindQueue(route.queue, route.exchange, route.key),
        channel.bindExchange(route.exchange, other, ''),
        channel.unbindExchange(route.exchange, other, ''),
      ]),
    );
    expect(outcomes.map((outcome) => outcome.status === 'rejected' && outcome.reason instanceof IsolationError)).toEqual(
      Array(7).fill(true),
    );
    expect(await exists(admin, 'queue', route.queue)).toBe(true);
    expect(await exists(admin, 'exchange', route.exchange)).toBe(true);
    // The binding still routes, and no new one does.
    raw.publish(route.exchange, route.key, Buffer.from('p'));
    raw.publish(other, '', Buffer.from('nowhere'));
    await waitFor(async () => (await queueDepth(admin, route.queue)) === 1);
    await sleep(100);
    expect(await depths(route.queue)).toEqual([1, 0]);
    await channel.close();
  });

  it('prefetch in a shadow context limits the shadow consumer only', async () => {
    const route = await declareRoute(admin, 'prefetch', cleanup);
    const channel = await dye.createChannel();
    await shadow(() => channel.prefetch(1));
    const seen: string[] = [];
    await channel.consume(route.queue, (message) => void (message && seen.push(currentTenant().name)));
    await fill(route.queue, 'p1', 'p2', 'p3', 'p4');
    await fill(`${route.queue}_shadow`, 's1', 's2', 's3', 's4');
    await waitFor(() => seen.filter((tenant) => tenant === 'baseline').length === 4);
    await sleep(300);
    expect(seen.filter((tenant) => tenant === 'shadow')).toHaveLength(1);
    await channel.close();
  });

  it('recover in a shadow handler redelivers shadow messages only', async () => {
    const route = await declareRoute(admin, 'recover', cleanup);
    const channel = await dye.createChannel();
    const seen: Array<{ tenant: string; redelivered: boolean }> = [];
    let recovered = false;
    await channel.consume(route.queue, async (message) => {
      if (!message) return;
      seen.push({ tenant: currentTenant().name, redelivered: message.fields.redelivered });
      if (currentTenant().name === 'shadow' && !recovered) {
        recovered = true;
        await channel.recover();
      }
    });
    await fill(route.queue, 'p1');
    await waitFor(() => seen.length === 1);
    await fill(`${route.queue}_shadow`, 's1');
    await waitFor(() => seen.length === 3);
    await sleep(300);
    expect(seen).toEqual([
      { tenant: 'baseline', redelivered: false },
      { tenant: 'shadow', redelivered: false },
      { tenant: 'shadow', redelivered: true },
    ]);
    await channel.close();
  });

  it('close() in a shadow context closes the shadow channel only; production consumption goes on', async () => {
    const route = await declareRoute(admin, 'close', cleanup);
    const channel = await dye.createChannel();
    const seen: string[] = [];
    let closed = false;
    await channel.consume(
      route.queue,
      async (message) => {
        if (!message) return;
        seen.push(`${message.content.toString()}:${currentTenant().name}`);
        if (currentTenant().name === 'shadow' && !closed) {
          closed = true;
          await channel.close();
        }
      },
      { noAck: true },
    );
    await fill(`${route.queue}_shadow`, 's1');
    await waitFor(() => closed);
    await sleep(200);
    await fill(`${route.queue}_shadow`, 's2');
    await fill(route.queue, 'p1');
    await waitFor(() => seen.includes('p1:baseline'));
    await sleep(200);
    expect(seen).toEqual(['s1:shadow', 'p1:baseline']);
    expect((await raw.checkQueue(`${route.queue}_shadow`)).consumerCount).toBe(0);
    expect((await raw.checkQueue(route.queue)).consumerCount).toBe(1);
    await channel.close();
  });

  it('waitForConfirms in a shadow context waits for shadow messages; baseline’s waits for its own', async () => {
    const route = await declareRoute(admin, 'confirms', cleanup, { shadow: false });
    const channel = await dye.createConfirmChannel();
    channel.on('error', () => {});
    // A shadow message that will be dropped does not fail baseline's wait: each tenant its own confirms.
    shadow(() => channel.publish(route.exchange, route.key, Buffer.from('dropped')));
    channel.publish(route.exchange, route.key, Buffer.from('production'));
    await channel.waitForConfirms();
    await expect(shadow(() => channel.waitForConfirms())).rejects.toBeInstanceOf(IsolationError);
    expect(await queueDepth(admin, route.queue)).toBe(1);
    await channel.close();
  });
});
