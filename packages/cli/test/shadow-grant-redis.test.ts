import { IsolationError, setLogger, withTenant } from '@dye/core';
import { tenantRedis } from '@dye/ioredis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { dye } from './run-cli.js';

// On a Redis of this file's own: ACL users are server-wide.
describe('dye shadow grant --redis', () => {
  let server: OwnRedisServer;
  let admin: Redis;
  const env = { DYE_SHADOW_PASSWORD: 'cli-redis-secret' };
  const user = 'cli_shadow';

  beforeAll(async () => {
    setLogger({ warn: () => {} });
    server = new OwnRedisServer(await freePort());
    await server.start();
    admin = new Redis(server.url);
    await admin.set('orders:1', 'production');
  });

  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  it('is a dry run without --apply: the ACL SETUSER it would run, password hidden; nothing created', async () => {
    const run = await dye(['shadow', 'grant', '--redis', server.url, '--user', user], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`ACL SETUSER ${user} reset on >*** ~shadow:* &shadow:* +@all -@admin -@dangerous`);
    expect(run.stdout).toContain('dry run: nothing changed');
    expect(run.stdout).not.toContain(env.DYE_SHADOW_PASSWORD);
    expect(await admin.call('ACL', 'GETUSER', user)).toBeNull();
  });

  it('--apply creates the user Redis confines; a second run has nothing to do; the user works for shadow only', async () => {
    const applied = await dye(['shadow', 'grant', '--redis', server.url, '--user', user, '--apply'], env);
    expect(applied.code, applied.stderr).toBe(0);
    const again = await dye(['shadow', 'grant', '--redis', server.url, '--user', user, '--apply', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ user, keys: ['~shadow:*'], channels: ['&shadow:*'], commands: [], applied: false });
    const bare = new Redis(server.url, { username: user, password: env.DYE_SHADOW_PASSWORD });
    await expect(bare.get('orders:1')).rejects.toThrow(/NOPERM/);
    await bare.set('shadow:orders:1', 'load test');
    bare.disconnect();
    expect(await admin.get('orders:1')).toBe('production');
  });

  it('an over-privileged user is refused at first use; grant --apply confines it again', async () => {
    await admin.call('ACL', 'SETUSER', user, '~orders:*', '+flushall');
    const client = () => tenantRedis(new Redis(server.url), { isolated: { username: user, password: env.DYE_SHADOW_PASSWORD } });
    const refused = client();
    const error = await withTenant('shadow', () => refused.set('orders:1', 'x')).catch((failure: unknown) => failure);
    refused.disconnect();
    expect(error).toBeInstanceOf(IsolationError);
    expect((error as Error).message).toContain('key pattern ~orders:* reaches production keys');
    expect((error as Error).message).toContain('FLUSHALL');
    const fixed = await dye(['shadow', 'grant', '--redis', server.url, '--user', user, '--apply'], env);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toContain('ACL SETUSER');
    const accepted = client();
    await withTenant('shadow', () => accepted.set('orders:1', 'load test'));
    accepted.disconnect();
    expect(await admin.mget('orders:1', 'shadow:orders:1')).toEqual(['production', 'load test']);
  });

  it('needs one store, and a password to create a user', async () => {
    expect((await dye(['shadow', 'grant', '--user', user], env)).code).toBe(2);
    const missing = await dye(['shadow', 'grant', '--redis', server.url, '--user', 'cli_new'], { DYE_SHADOW_PASSWORD: '' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('set DYE_SHADOW_PASSWORD');
  });
});
