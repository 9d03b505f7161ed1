import { setLogger, withTenant } from '@dye/core';
import { tenantRedis } from '@dye/ioredis';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnRedisCluster } from '../../../test/support/redis-server.js';
import { shadowUser } from './support.js';

// A three-master Redis Cluster started by this test.
const cluster = new OwnRedisCluster();
let raw: Cluster;
let admin: Cluster;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  await cluster.start();
  const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
  raw = new Cluster(nodes, { enableAutoPipelining: true });
  admin = new Cluster(nodes);
  await admin.mset('{user:1}name', 'alice', '{user:1}plan', 'pro');
}, 60_000);

afterAll(async () => {
  raw?.disconnect();
  admin?.disconnect();
  await cluster.stop();
});

describe('Redis Cluster under shadow', () => {
  it('multi-key commands with hash tags work, on shadow keys in the same slot', async () => {
    const redis = tenantRedis(raw, { isolated: await shadowUser(admin) });
    await withTenant('shadow', async () => {
      await redis.mset('{user:1}name', 'mallory', '{user:1}plan', 'free');
      expect(await redis.mget('{user:1}name', '{user:1}plan')).toEqual(['mallory', 'free']);
      await redis.set('single', 'x');
      await redis.rename('{user:1}plan', '{user:1}plan-old');
      const [first] = await Promise.all([redis.get('single'), redis.incr('{user:1}visits')]);
      expect(first).toBe('x');
    });
    expect(await admin.mget('shadow:{user:1}name', 'shadow:{user:1}plan-old', 'shadow:{user:1}visits')).toEqual(['mallory', 'free', '1']);
    expect(await admin.get('shadow:single')).toBe('x');
    // Production, in the same slots, untouched.
    expect(await admin.mget('{user:1}name', '{user:1}plan')).toEqual(['alice', 'pro']);
    expect([await admin.exists('single'), await admin.exists('{user:1}visits')]).toEqual([0, 0]);
    // Every node has the isolated user (each keeps its own), and refuses it production keys.
    for (const node of admin.nodes('master')) {
      expect(await node.call('ACL', 'GETUSER', 'dye_shadow')).not.toBeNull();
      expect(String(await node.call('ACL', 'DRYRUN', 'dye_shadow', 'GET', '{user:1}name'))).toMatch(/no permissions/);
    }
  });
});
