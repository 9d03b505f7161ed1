import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentTenant, setLogger, withTenant } from '@dye/core';
import { grantShadowAccess, type IsolatedRedisUser, tenantRedis } from '@dye/ioredis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { shadowUser } from './support.js';

let server: OwnRedisServer;
let isolated: IsolatedRedisUser;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  server = new OwnRedisServer(await freePort());
  await server.start();
  const admin = new Redis(server.url);
  isolated = await shadowUser(admin);
  // Redis lets a restricted user PSUBSCRIBE only patterns identical to its own.
  await grantShadowAccess(admin, { user: isolated.username, channelPatterns: ['orders.*'], apply: true });
  admin.disconnect();
});
afterAll(() => server.stop());

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('pub/sub isolation', () => {
  it('a baseline subscriber never hears a shadow publication, and the reverse', async () => {
    const subscriber = tenantRedis(new Redis(server.url), { isolated });
    const publisher = tenantRedis(new Redis(server.url), { isolated });
    const heard: string[] = [];
    try {
      // Both tenants subscribe to "news" on one shared connection.
      subscriber.on('message', (channel: string, message: string) =>
        heard.push(`baseline listener: ${channel} ${message} in ${currentTenant().name}`),
      );
      await subscriber.subscribe('news');
      await withTenant('shadow', async () => {
        subscriber.on('message', (channel: string, message: string) =>
          heard.push(`shadow listener: ${channel} ${message} in ${currentTenant().name}`),
        );
        await subscriber.subscribe('news');
      });
      await withTenant('shadow', () => publisher.publish('news', 'load-test'));
      await publisher.publish('news', 'real');
      await pause(100);
      expect(heard.sort()).toEqual(['baseline listener: news real in baseline', 'shadow listener: news load-test in shadow']);
      // What the server has: the shadow subscription under its prefix.
      const raw = new Redis(server.url);
      expect((await raw.pubsub('CHANNELS', '*')).sort()).toEqual(['news', 'shadow:news']);
      raw.disconnect();
    } finally {
      subscriber.disconnect();
      publisher.disconnect();
    }
  });

  it('pattern subscriptions are isolated too', async () => {
    const subscriber = tenantRedis(new Redis(server.url), { isolated });
    const publisher = tenantRedis(new Redis(server.url), { isolated });
    const heard: string[] = [];
    try {
      await withTenant('shadow', async () => {
        subscriber.on('pmessage', (pattern: string, channel: string, message: string) => heard.push(`${pattern} ${channel} ${message}`));
        await subscriber.psubscribe('orders.*');
      });
      await publisher.publish('orders.created', 'production');
      await withTenant('shadow', () => publisher.publish('orders.created', 'shadow'));
      await pause(100);
      expect(heard).toEqual(['orders.* orders.created shadow']);
    } finally {
      subscriber.disconnect();
      publisher.disconnect();
    }
  });
});

describe('offline queue and reconnect', () => {
  it('commands issued in shadow while Redis is down land on shadow keys after it is back', async () => {
    // The ACL user lives in an ACL file, so it is there again after the restart.
    const aclFile = join(mkdtempSync(join(tmpdir(), 'dye-acl-')), 'users.acl');
    writeFileSync(aclFile, '');
    const own = new OwnRedisServer(await freePort(), ['--aclfile', aclFile]);
    await own.start();
    const admin = new Redis(own.url);
    const ownUser = await shadowUser(admin);
    admin.disconnect();
    expect(readFileSync(aclFile, 'utf8')).toContain('user dye_shadow on');
    const raw = new Redis(own.url, { retryStrategy: () => 50, maxRetriesPerRequest: null });
    raw.on('error', () => {}); // connection refused while the server is down, by design
    const redis = tenantRedis(raw, { isolated: ownUser });
    try {
      await redis.ping();
      await withTenant('shadow', () => redis.ping());
      await own.stop();
      await pause(100);
      // Queued in ioredis's offline queue, already renamed.
      const queued = withTenant('shadow', () => Promise.all([redis.set('queued:1', 'a'), redis.incr('queued:count')]));
      const baselineQueued = redis.set('queued:1', 'production');
      await pause(200);
      await own.start();
      await Promise.all([queued, baselineQueued]);
      const check = new Redis(own.url);
      expect(await check.mget('shadow:queued:1', 'shadow:queued:count', 'queued:1', 'queued:count')).toEqual([
        'a',
        '1',
        'production',
        null,
      ]);
      check.disconnect();
    } finally {
      raw.disconnect();
      await own.stop();
    }
  });
});
