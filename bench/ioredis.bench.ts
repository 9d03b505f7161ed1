/**
 * GET/SET through bare ioredis vs the same client wrapped by tenantRedis, in
 * baseline and in shadow (on its own connection, as the isolated ACL user),
 * one at a time and pipelined, in one run against the Redis on 127.0.0.1:6379.
 *
 *   npm run bench -- ioredis
 */

import { randomBytes } from 'node:crypto';
import { setLogger, withTenant } from '@dye/core';
import { grantShadowAccess, tenantRedis } from '@dye/ioredis';
import { Redis } from 'ioredis';
import { compareThroughput, printThroughput } from './harness.js';

setLogger({ warn: () => {} });
const url = process.env.DYE_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function run() {
  const raw = new Redis(url);
  // Shadow runs as its own ACL user, on a connection of its own, as in production.
  const user = `dye_bench_${process.pid}`;
  const password = randomBytes(12).toString('hex');
  await grantShadowAccess(raw, { user, password, apply: true });
  const wrapped = tenantRedis(raw, { isolated: { username: user, password } });
  const key = `dye-bench:${process.pid}`;
  const single = (client: Redis) => async () => {
    await client.set(key, 'v');
    await client.get(key);
  };
  const pipelined = (client: Redis) => async () => {
    const pipeline = client.pipeline();
    for (let i = 0; i < 10; i++) pipeline.set(`${key}:${i}`, 'v').get(`${key}:${i}`);
    await pipeline.exec();
  };
  await withTenant('shadow', single(wrapped)); // the isolated user's first-use check, before timing
  const one = await compareThroughput('ioredis', [
    { name: 'bare ioredis: SET+GET', run: single(raw) },
    { name: 'tenantRedis baseline: SET+GET', run: single(wrapped) },
    { name: 'tenantRedis shadow: SET+GET', run: () => withTenant('shadow', single(wrapped)) },
    // The context alone (withTenant per operation), on the bare client: what the shadow row pays before Dye's adapter.
    { name: 'bare ioredis inside withTenant(shadow)', run: () => withTenant('shadow', single(raw)) },
    // The same bare client again: how far two identical variants drift in one run.
    { name: 'bare ioredis again (noise control)', run: single(raw) },
  ]);
  printThroughput('SET then GET, one at a time (pairs/s, 16 in flight)', one);
  const batched = await compareThroughput('ioredis-pipeline', [
    { name: 'bare ioredis: pipeline of 20', run: pipelined(raw) },
    { name: 'tenantRedis baseline: pipeline of 20', run: pipelined(wrapped) },
    { name: 'tenantRedis shadow: pipeline of 20', run: () => withTenant('shadow', pipelined(wrapped)) },
    { name: 'bare ioredis inside withTenant(shadow)', run: () => withTenant('shadow', pipelined(raw)) },
    { name: 'bare ioredis again (noise control)', run: pipelined(raw) },
  ]);
  printThroughput('Pipelines of 10 SET + 10 GET (pipelines/s, 16 in flight)', batched);
  const keys = [...(await raw.keys(`${key}*`)), ...(await raw.keys(`shadow:${key}*`))];
  if (keys.length > 0) await raw.del(...keys);
  await raw.call('ACL', 'DELUSER', user);
  raw.disconnect();
  return [...one, ...batched];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
}
