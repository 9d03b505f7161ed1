/**
 * The RabbitMQ user isolated tenants connect as, confined by the broker: it
 * may use the `_shadow` twins and nothing else. Judged by the broker: its
 * refusals (403) and the queues' depths.
 */

import { grantShadowAccess, syncShadowTopology, tenantAmqp } from '@dye/amqplib';
import { currentTenant, IsolationError, setLogger, withTenant } from '@dye/core';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { RABBITMQ_MANAGEMENT, uniqueName } from '../../../test/support/services.js';
import { beforeAllOrFail, connectAmqp, createVhost, deleteVhost, managementApi, queueDepth, sleep, vhostUrl, waitFor } from './support.js';

const management = RABBITMQ_MANAGEMENT;
const user = uniqueName('dye_shadow');
const password = 'shadow-secret';
let vhost: string;
let other: string;
let admin: ChannelModel;
const opened: ChannelModel[] = [];

beforeAllOrFail(async () => {
  setLogger({ warn: () => {} });
  vhost = await createVhost('dye_grant');
  other = await createVhost('dye_grant_other');
  admin = await connectAmqp(vhostUrl(vhost));
  const channel = await admin.createChannel();
  await channel.assertExchange('orders', 'direct', { durable: false });
  await channel.assertQueue('billing', { durable: false });
  await channel.bindQueue('billing', 'orders', 'created');
  await channel.close();
  await syncShadowTopology({ connection: admin, management, vhost, apply: true });
  // Someone made the user by hand, too powerful: an administrator, allowed everything, in two vhosts.
  await managementApi('PUT', `/users/${user}`, { password: 'old-password', tags: 'administrator' });
  for (const where of [vhost, other])
    await managementApi('PUT', `/permissions/${encodeURIComponent(where)}/${user}`, { configure: '.*', write: '.*', read: '.*' });
});

afterAll(async () => {
  for (const connection of opened) await connection.close().catch(() => {});
  await admin?.close().catch(() => {});
  await managementApi('DELETE', `/users/${user}`).catch(() => {});
  if (vhost) await deleteVhost(vhost);
  if (other) await deleteVhost(other);
});

const asShadowUser = async () => {
  const connection = await connectAmqp(vhostUrl(vhost, user, password));
  opened.push(connection);
  return connection;
};

/** What the broker answers one operation of the connection's user: 'ok', or the AMQP reply code that refused it. */
async function attempt(connection: ChannelModel, operation: (channel: ConfirmChannel) => Promise<unknown>): Promise<'ok' | number> {
  const channel = await connection.createConfirmChannel();
  let code: number | undefined;
  channel.on('error', (error: { code?: number }) => {
    code = error.code;
  });
  try {
    await operation(channel);
    await channel.close();
    return 'ok';
  } catch (error) {
    await sleep(50);
    return code ?? (error as { code?: number }).code ?? -1;
  }
}

describe('grantShadowAccess', () => {
  it('a dry run changes nothing and says what it would; apply confines the user; a second run is in sync', async () => {
    const dry = await grantShadowAccess({ management, user, password, vhost });
    expect(dry.applied).toBe(false);
    expect(dry.inSync).toBe(false);
    expect(dry.wanted).toEqual({ vhost, configure: '^.*(?:_shadow)$', write: '^.*(?:_shadow)$', read: '^.*(?:_shadow)$' });
    expect(dry.changes).toEqual([
      `set the password of ${user}`,
      `remove the tags of ${user} (administrator)`,
      `set permissions of ${user} on vhost ${vhost}: configure, write and read ^.*(?:_shadow)$`,
      `remove the permissions of ${user} on vhost ${other}`,
    ]);
    expect(((await managementApi('GET', `/users/${user}`)) as { tags: unknown }).tags).toEqual(['administrator']);

    const applied = await grantShadowAccess({ management, user, password, vhost, apply: true });
    expect(applied.applied).toBe(true);
    const again = await grantShadowAccess({ management, user, password, vhost });
    expect(again).toMatchObject({ inSync: true, changes: [], applied: false });
    // Without a password, the one it has is kept.
    expect((await grantShadowAccess({ management, user, vhost })).inSync).toBe(true);
    expect(((await managementApi('GET', `/users/${user}`)) as { tags: unknown }).tags).toEqual([]);
  });

  it('the broker refuses the user production (publish, consume, the default exchange) while the _shadow twins work', async () => {
    const shadowUser = await asShadowUser();
    expect(
      await attempt(shadowUser, async (channel) => {
        channel.publish('orders', 'created', Buffer.from('must not land'));
        await channel.waitForConfirms();
      }),
    ).toBe(403);
    expect(await attempt(shadowUser, (channel) => channel.consume('billing', () => {}))).toBe(403);
    expect(await attempt(shadowUser, (channel) => channel.get('billing'))).toBe(403);
    expect(await attempt(shadowUser, (channel) => channel.purgeQueue('billing'))).toBe(403);
    expect(await attempt(shadowUser, (channel) => channel.bindQueue('billing', 'orders_shadow', 'created'))).toBe(403);
    // amq.default is never granted: through it, any queue could be written.
    expect(
      await attempt(shadowUser, async (channel) => {
        channel.sendToQueue('billing_shadow', Buffer.from('through the default exchange'));
        await channel.waitForConfirms();
      }),
    ).toBe(403);
    expect(
      await attempt(shadowUser, async (channel) => {
        channel.publish('orders_shadow', 'created', Buffer.from('load test'));
        await channel.waitForConfirms();
      }),
    ).toBe('ok');
    expect(await queueDepth(admin, 'billing')).toBe(0);
    expect(await queueDepth(admin, 'billing_shadow')).toBe(1);
    expect(await attempt(shadowUser, async (channel) => expect(await channel.get('billing_shadow', { noAck: true })).toBeTruthy())).toBe(
      'ok',
    );
  });

  it('refuses to confine the management user itself, and a user it cannot create without a password', async () => {
    await expect(grantShadowAccess({ management, user: management.user, password, vhost })).rejects.toThrow(TypeError);
    await expect(grantShadowAccess({ management, user: uniqueName('nobody'), vhost })).rejects.toThrow(/give a password/);
  });
});

describe('tenantAmqp with the isolated account', () => {
  it('isolated channels run as the confined user: shadow messages reach the twins, the account check passes', async () => {
    const production = await connectAmqp(vhostUrl(vhost));
    opened.push(production);
    const dye = tenantAmqp(production, { isolatedConnection: await asShadowUser() });
    const channel = await dye.createConfirmChannel();
    const seen: string[] = [];
    await channel.consume('billing', (message) => {
      if (!message) return;
      seen.push(`${message.content.toString()}:${currentTenant().name}`);
      channel.ack(message);
    });
    withTenant('shadow', () => channel.publish('orders', 'created', Buffer.from('s1')));
    await withTenant('shadow', () => channel.waitForConfirms());
    channel.publish('orders', 'created', Buffer.from('p1'));
    await channel.waitForConfirms();
    await waitFor(() => seen.length === 2);
    expect(seen.sort()).toEqual(['p1:baseline', 's1:shadow']);
    // The default exchange is the broker's to refuse this account: Dye refuses it first, nothing sent.
    expect(() => withTenant('shadow', () => channel.sendToQueue('billing', Buffer.from('x')))).toThrow(IsolationError);
    await channel.close();
    await dye.close();
    expect(await queueDepth(admin, 'billing')).toBe(0);
    expect(await queueDepth(admin, 'billing_shadow')).toBe(0);
  });

  it('an isolated connection RabbitMQ does not confine is refused for isolated work: nothing published anywhere', async () => {
    const production = await connectAmqp(vhostUrl(vhost));
    const unconfined = await connectAmqp(vhostUrl(vhost));
    opened.push(production, unconfined);
    const dye = tenantAmqp(production, { isolatedConnection: unconfined });
    const readiness = await dye.ready({ exchanges: ['orders'] });
    expect(readiness.ready).toBe(false);
    expect(readiness.missing[0]?.reason).toMatch(/lets the isolated connection's user write orders/);
    const channel = await dye.createConfirmChannel();
    channel.on('error', () => {});
    expect(() => withTenant('shadow', () => channel.publish('orders', 'created', Buffer.from('x')))).toThrow(IsolationError);
    await channel.close();
    await dye.close();
    expect(await queueDepth(admin, 'billing')).toBe(0);
    expect(await queueDepth(admin, 'billing_shadow')).toBe(0);
    expect(() => tenantAmqp(production, { enforcement: 'account' })).toThrow(TypeError);
  });
});
