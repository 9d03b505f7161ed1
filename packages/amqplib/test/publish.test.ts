import { type TenantAmqp, tenantAmqp } from '@dye/amqplib';
import { IsolationError, setLogger, withTenant } from '@dye/core';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { beforeAllOrFail, cleanUp, cleanupList, connectAmqp, declareRoute, exists, queueDepth, takeAll, waitFor } from './support.js';

const cleanup = cleanupList();
let admin: ChannelModel;
let app: ChannelModel;
const wrappers: TenantAmqp[] = [];
const fresh = () => {
  // A wrapper of its own: nothing known yet about which twins exist.
  const dye = tenantAmqp(app, { existenceTtl: { missing: 60_000 } });
  wrappers.push(dye);
  return dye;
};

beforeAllOrFail(async () => {
  setLogger({ warn: () => {} });
  admin = await connectAmqp();
  app = await connectAmqp();
});

afterAll(async () => {
  for (const dye of wrappers) await dye.close();
  await cleanUp(admin, cleanup);
  await app?.close();
  await admin?.close();
});

const body = (text: string) => Buffer.from(text);
const shadow = <T>(fn: () => T) => withTenant('shadow', fn);

describe('publishing in an isolated tenant', () => {
  it.each(['plain', 'confirm'] as const)('%s channel: publish and sendToQueue land in the twins only, stamped', async (kind) => {
    const route = await declareRoute(admin, `pub_${kind}`, cleanup);
    const dye = fresh();
    const channel = kind === 'confirm' ? await dye.createConfirmChannel() : await dye.createChannel();
    const options = { headers: { 'x-request': '1' }, messageId: 'm-1' };
    shadow(() => {
      expect(channel.publish(route.exchange, route.key, body('through the exchange'), options)).toBe(true);
      expect(channel.sendToQueue(route.queue, body('straight to the queue'), options)).toBe(true);
    });
    if (kind === 'confirm') await shadow(() => (channel as ConfirmChannel).waitForConfirms());
    await waitFor(async () => (await queueDepth(admin, `${route.queue}_shadow`)) === 2, 10_000, 'both shadow messages');
    // Judged by the broker: production untouched, the caller's options unchanged.
    expect(await queueDepth(admin, route.queue)).toBe(0);
    expect(options).toEqual({ headers: { 'x-request': '1' }, messageId: 'm-1' });
    const taken = await takeAll(admin, `${route.queue}_shadow`);
    expect(taken).toEqual([
      { body: 'through the exchange', headers: { 'x-request': '1', 'x-tenant': 'shadow', baggage: 'tenant=shadow' } },
      { body: 'straight to the queue', headers: { 'x-request': '1', 'x-tenant': 'shadow', baggage: 'tenant=shadow' } },
    ]);
    await channel.close();
  });

  it('tenant headers given by the caller never override: baseline strips them, red and shadow replace them', async () => {
    const route = await declareRoute(admin, 'headers', cleanup);
    const channel = await fresh().createConfirmChannel();
    const claims = { 'X-Tenant': 'shadow', baggage: 'tenant=shadow,a=1', 'x-other': 'kept' };
    channel.publish(route.exchange, route.key, body('baseline'), { headers: claims });
    withTenant('red', () => channel.publish(route.exchange, route.key, body('red'), { headers: { ...claims, 'x-tenant': 'baseline' } }));
    shadow(() =>
      channel.publish(route.exchange, route.key, body('shadow'), { headers: { 'x-tenant': 'baseline', BAGGAGE: 'tenant=red' } }),
    );
    await channel.waitForConfirms();
    await shadow(() => channel.waitForConfirms());
    await waitFor(async () => (await queueDepth(admin, `${route.queue}_shadow`)) === 1);
    expect(await takeAll(admin, route.queue)).toEqual([
      { body: 'baseline', headers: { baggage: 'a=1', 'x-other': 'kept' } },
      { body: 'red', headers: { 'x-tenant': 'red', baggage: 'tenant=red,a=1', 'x-other': 'kept' } },
    ]);
    expect(await takeAll(admin, `${route.queue}_shadow`)).toEqual([
      { body: 'shadow', headers: { 'x-tenant': 'shadow', baggage: 'tenant=shadow' } },
    ]);
    expect(claims).toEqual({ 'X-Tenant': 'shadow', baggage: 'tenant=shadow,a=1', 'x-other': 'kept' });
    await channel.close();
  });

  it('a missing twin: held and then dropped (callback, waitForConfirms, error event), next time refused at once; nothing published, nothing declared, the channel stays open', async () => {
    const route = await declareRoute(admin, 'missing', cleanup, { shadow: false });
    const channel = await fresh().createConfirmChannel();
    const events: unknown[] = [];
    channel.on('error', (error) => events.push(error));
    const confirms: unknown[] = [];
    // Not known yet: taken, checked, then dropped.
    const returned = shadow(() => channel.publish(route.exchange, route.key, body('lost'), {}, (error) => confirms.push(error)));
    expect(returned).toBe(true);
    const waited = await shadow(() => channel.waitForConfirms()).then(
      () => 'confirmed',
      (error: unknown) => error,
    );
    expect(waited).toBeInstanceOf(IsolationError);
    expect(confirms).toHaveLength(1);
    expect(confirms[0]).toBeInstanceOf(IsolationError);
    expect(events).toHaveLength(1);
    expect(events[0]).toBeInstanceOf(IsolationError);
    // Known missing now: refused synchronously, for both forms.
    expect(() => shadow(() => channel.publish(route.exchange, route.key, body('refused')))).toThrow(IsolationError);
    const sent = () => shadow(() => channel.sendToQueue(route.queue, body('refused')));
    // The queue twin is not known yet: held and dropped, then refused at once.
    expect(sent()).toBe(true);
    await expect(shadow(() => channel.waitForConfirms())).rejects.toBeInstanceOf(IsolationError);
    expect(sent).toThrow(IsolationError);
    // Judged by the broker: production holds nothing, no twin was declared.
    expect(await queueDepth(admin, route.queue)).toBe(0);
    expect(await exists(admin, 'exchange', `${route.exchange}_shadow`)).toBe(false);
    expect(await exists(admin, 'queue', `${route.queue}_shadow`)).toBe(false);
    // The caller's channel is open and works.
    channel.publish(route.exchange, route.key, body('production'));
    await channel.waitForConfirms();
    expect(await queueDepth(admin, route.queue)).toBe(1);
    await channel.close();
  });

  it('a plain channel reports a dropped message as an error event only, and stays open', async () => {
    const route = await declareRoute(admin, 'missing_plain', cleanup, { shadow: false });
    const channel = await fresh().createChannel();
    const events: unknown[] = [];
    channel.on('error', (error) => events.push(error));
    shadow(() => channel.publish(route.exchange, route.key, body('lost')));
    await waitFor(() => events.length === 1, 10_000, 'the error event');
    expect(events[0]).toBeInstanceOf(IsolationError);
    expect(await queueDepth(admin, route.queue)).toBe(0);
    expect((await channel.checkQueue(route.queue)).queue).toBe(route.queue);
    await channel.close();
  });

  it('held messages keep their order, and later messages wait behind them', async () => {
    const route = await declareRoute(admin, 'order', cleanup);
    const channel = await fresh().createConfirmChannel();
    shadow(() => {
      for (let i = 0; i < 200; i++) {
        if (i % 2 === 0) channel.publish(route.exchange, route.key, body(String(i)));
        else channel.sendToQueue(route.queue, body(String(i)));
      }
    });
    await shadow(() => channel.waitForConfirms());
    const taken = await takeAll(admin, `${route.queue}_shadow`);
    expect(taken.map((message) => Number(message.body))).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(await queueDepth(admin, route.queue)).toBe(0);
    await channel.close();
  });

  it('ready() checks twins ahead; once the twin is known and the channel open, a publish returns amqplib’s own answer', async () => {
    const route = await declareRoute(admin, 'ready', cleanup);
    const dye = fresh();
    const readiness = await dye.ready({ exchanges: [route.exchange], queues: [route.queue, 'no_such_queue'] });
    expect(readiness.present).toEqual([`${route.exchange}_shadow`, `${route.queue}_shadow`]);
    expect(readiness.missing.map((entry) => entry.name)).toEqual(['no_such_queue_shadow']);
    expect(readiness.ready).toBe(false);
    // A write buffer of one frame: amqplib answers false for a large message.
    const channel = await dye.createConfirmChannel({ highWaterMark: 1 });
    shadow(() => channel.publish(route.exchange, route.key, body('opens the channel')));
    await shadow(() => channel.waitForConfirms());
    const answered = shadow(() => channel.publish(route.exchange, route.key, Buffer.alloc(256 * 1024)));
    expect(answered).toBe(false);
    await shadow(() => channel.waitForConfirms());
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(2);
    expect(await queueDepth(admin, route.queue)).toBe(0);
    await channel.close();
  });

  it('refuses CC/BCC through the default exchange, and amq.* exchanges, naming why', async () => {
    const route = await declareRoute(admin, 'cc', cleanup);
    const channel = await fresh().createChannel();
    expect(() => shadow(() => channel.sendToQueue(route.queue, body('x'), { CC: [route.queue] }))).toThrow(/CC and BCC/);
    expect(() => shadow(() => channel.sendToQueue(route.queue, body('x'), { headers: { BCC: [route.queue] } }))).toThrow(IsolationError);
    const errors: IsolationError[] = [];
    channel.on('error', (error: IsolationError) => errors.push(error));
    shadow(() => channel.publish('amq.direct', route.queue, body('x')));
    await waitFor(() => errors.length === 1);
    expect(errors[0]?.reason).toMatch(/RabbitMQ's own exchanges/);
    expect(await queueDepth(admin, route.queue)).toBe(0);
    expect(await queueDepth(admin, `${route.queue}_shadow`)).toBe(0);
    await channel.close();
  });
});
