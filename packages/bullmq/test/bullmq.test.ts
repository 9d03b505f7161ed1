import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { tenantFlowProducer, tenantQueue, tenantQueueEvents, tenantWorker } from '@dye/bullmq';
import { currentTenant, IsolationError, setLogger, withTenant } from '@dye/core';
import { grantShadowAccess, type IsolatedRedisUser, tenantRedis } from '@dye/ioredis';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';

// BullMQ on a Redis of this file's own, with the isolated ACL user Redis
// confines to shadow:*; judged by the keyspace, the queues' own counts and
// Redis's ACL LOG (every key the isolated user was refused).
let server: OwnRedisServer;
let admin: Redis;
let connection: Redis;
let isolated: IsolatedRedisUser;

const TENANTS = ['baseline', 'red', 'shadow'] as const;

async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(50);
  }
}

async function keysMatching(pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...page);
  } while (cursor !== '0');
  return keys;
}

beforeAll(async () => {
  setLogger({ warn: () => {} });
  server = new OwnRedisServer(await freePort());
  await server.start();
  admin = new Redis(server.url);
  const password = randomBytes(12).toString('hex');
  await grantShadowAccess(admin, { user: 'dye_shadow', password, apply: true });
  isolated = { username: 'dye_shadow', password };
  connection = new Redis(server.url, { maxRetriesPerRequest: null });
});

afterAll(async () => {
  connection.disconnect();
  admin.disconnect();
  await server.stop();
});

describe('BullMQ jobs carry their tenant', () => {
  it('1,000 interleaved baseline/red/shadow jobs, delayed jobs and flows: each processed once, in its own tenant, shadow only under shadow:', async () => {
    const name = 'orders';
    const cache = tenantRedis(new Redis(server.url), { isolated });
    const queue = tenantQueue(name, { connection, isolated });
    const followUps = tenantQueue('follow-ups', { connection, isolated });
    const flows = tenantFlowProducer({ connection, isolated });
    const processed: Array<{ expected: string; ran: string; job: string }> = [];
    const followed: Array<{ expected: string; ran: string }> = [];
    const worker = tenantWorker(
      name,
      async (job: Job) => {
        await sleep(Math.random() * 5);
        const ran = currentTenant().name;
        // What a processor does carries the job's tenant: a cache write, a job it adds.
        await cache.set(`last:${job.data.index}`, ran);
        await sleep(Math.random() * 5);
        if (job.data.index % 10 === 0) await followUps.add('follow-up', { expected: job.data.expected });
        processed.push({ expected: job.data.expected, ran: currentTenant().name, job: job.name });
      },
      { connection, isolated, concurrency: 25 },
    );
    const followUpWorker = tenantWorker(
      'follow-ups',
      async (job: Job) => {
        followed.push({ expected: job.data.expected, ran: currentTenant().name });
      },
      { connection, isolated, concurrency: 10 },
    );
    try {
      let expectedJobs = 0;
      await Promise.all(
        Array.from({ length: 1000 }, (_, index) => {
          const tenant = TENANTS[index % 3] as string;
          return withTenant(tenant, async () => {
            await sleep(Math.random() * 3);
            if (index % 50 === 0) {
              expectedJobs += 3;
              return flows.add({
                name: 'parent',
                queueName: name,
                data: { index, expected: tenant },
                children: [
                  { name: 'child', queueName: name, data: { index: index + 0.1, expected: tenant } },
                  { name: 'child', queueName: name, data: { index: index + 0.2, expected: tenant } },
                ],
              });
            }
            expectedJobs += 1;
            return queue.add('order', { index, expected: tenant }, index % 7 === 0 ? { delay: 50 + (index % 5) * 20 } : {});
          });
        }),
      );
      await until(() => processed.length >= expectedJobs && followed.length >= 100);
      await sleep(300);
      expect(processed).toHaveLength(expectedJobs);
      expect(processed.filter((entry) => entry.expected !== entry.ran)).toEqual([]);
      expect(followed).toHaveLength(100);
      expect(followed.filter((entry) => entry.expected !== entry.ran)).toEqual([]);

      // Production's queue holds exactly the baseline and red jobs; shadow's, exactly its own.
      const shadowJobs = processed.filter((entry) => entry.expected === 'shadow').length;
      const productionQueue = new Queue(name, { connection });
      const shadowQueue = new Queue(name, { connection, prefix: 'shadow:bull' });
      expect(await productionQueue.getCompletedCount()).toBe(expectedJobs - shadowJobs);
      expect(await shadowQueue.getCompletedCount()).toBe(shadowJobs);
      expect(await productionQueue.getFailedCount()).toBe(0);
      expect(await shadowQueue.getFailedCount()).toBe(0);
      const productionData = await Promise.all((await productionQueue.getCompleted(0, -1)).map((job) => job.data.expected));
      expect(productionData.filter((tenant) => tenant === 'shadow')).toEqual([]);
      await productionQueue.close();
      await shadowQueue.close();

      // Keyspace: every key of shadow work is under shadow:, and the cache writes landed per tenant.
      const bullKeys = await keysMatching('bull:*');
      const shadowKeys = await keysMatching('shadow:*');
      expect(bullKeys.length).toBeGreaterThan(0);
      expect(shadowKeys.some((key) => key.startsWith('shadow:bull:orders:'))).toBe(true);
      expect(await admin.get('shadow:last:2')).toBe('shadow');
      expect(await admin.get('last:2')).toBeNull();
      expect(await admin.get('last:1')).toBe('red');
      // Redis refused the isolated user nothing: it never even tried a production key.
      const refusals = (await admin.call('ACL', 'LOG')) as unknown[];
      expect(refusals).toEqual([]);
    } finally {
      await worker.close();
      await followUpWorker.close();
      await queue.close();
      await followUps.close();
      await flows.close();
      cache.disconnect();
    }
  }, 120_000);

  it('a production worker never runs a job tagged with an isolated tenant: it fails, unprocessed', async () => {
    const name = 'smuggled';
    const ran: string[] = [];
    const worker = tenantWorker(name, async (job: Job) => void ran.push(job.name), { connection, isolated });
    const bare = new Queue(name, { connection });
    try {
      const job = await bare.add('smuggled', {}, { dye: { tenant: 'shadow' } } as never);
      await bare.add('plain', {});
      await until(async () => (await bare.getFailedCount()) === 1 && ran.length === 1);
      expect(ran).toEqual(['plain']);
      const failed = await bare.getJob(job.id as string);
      expect(failed?.failedReason).toMatch(/never runs an isolated tenant's job/);
      expect(failed?.attemptsMade).toBeLessThanOrEqual(1);
    } finally {
      await worker.close();
      await bare.obliterate({ force: true });
      await bare.close();
    }
  });

  it('without an isolated user, a shadow add is refused and production gains nothing', async () => {
    const queue = tenantQueue('no-user', { connection });
    try {
      const error = await withTenant('shadow', () => queue.add('x', {})).catch((failure: unknown) => failure);
      expect(error).toBeInstanceOf(IsolationError);
      expect(await queue.getJobCounts()).toMatchObject({ waiting: 0, delayed: 0 });
      expect(await keysMatching('bull:no-user:*')).toEqual(expect.not.arrayContaining([expect.stringMatching(/:1$/)]));
    } finally {
      await queue.close();
    }
  });

  it('an over-privileged isolated user: shadow jobs are refused and the shadow worker does not start', async () => {
    await admin.call('ACL', 'SETUSER', 'dye_wide', 'reset', 'on', '>wide', '~*', '&*', '+@all');
    const wide = { username: 'dye_wide', password: 'wide' };
    const queue = tenantQueue('wide', { connection, isolated: wide });
    const ran: string[] = [];
    const worker = tenantWorker('wide', async () => void ran.push(currentTenant().name), { connection, isolated: wide });
    try {
      const error = await withTenant('shadow', () => queue.add('x', {})).catch((failure: unknown) => failure);
      expect(error).toBeInstanceOf(IsolationError);
      expect((error as Error).message).toMatch(/key pattern ~\* reaches production keys/);
      await withTenant('red', () => queue.add('y', {}));
      await until(() => ran.length === 1);
      expect(ran).toEqual(['red']);
      expect(await keysMatching('shadow:bull:wide:*')).toEqual([]);
    } finally {
      await worker.close();
      await queue.close();
    }
  });

  it('job schedulers and queue events respect the tenant', async () => {
    const name = 'scheduled';
    const queue = tenantQueue(name, { connection, isolated });
    const events = tenantQueueEvents(name, { connection, isolated });
    const ran: string[] = [];
    const heard: string[] = [];
    const worker = tenantWorker(name, async () => void ran.push(currentTenant().name), { connection, isolated });
    try {
      events.on('completed', () => heard.push(`baseline listener in ${currentTenant().name}`));
      withTenant('shadow', () => events.on('completed', () => heard.push(`shadow listener in ${currentTenant().name}`)));
      await events.waitUntilReady();
      await sleep(300);
      await withTenant('shadow', () => queue.upsertJobScheduler('tick', { every: 100, limit: 2 }, { name: 'tick', data: {} }));
      await until(() => ran.length >= 2 && heard.length >= 2);
      await sleep(300);
      expect(ran).toEqual(['shadow', 'shadow']);
      expect(heard).toEqual(['shadow listener in shadow', 'shadow listener in shadow']);
      expect(await keysMatching('bull:scheduled:repeat*')).toEqual([]);
      expect((await keysMatching('shadow:bull:scheduled:*')).length).toBeGreaterThan(0);
    } finally {
      await worker.close();
      await events.close();
      await queue.close();
    }
  });

  it("an isolated tenant reads its own queue's state: opts.connection, keys, Job.create, Job.fromId", async () => {
    const name = 'state';
    const queue = tenantQueue(name, { connection, isolated });
    const worker = tenantWorker(name, async () => {}, { connection, isolated, autorun: false });
    const flows = tenantFlowProducer({ connection, isolated });
    const bare = new Queue(name, { connection });
    try {
      const productionJob = await bare.add('production', { secret: 'production data' });
      await withTenant('shadow', async () => {
        for (const client of [queue.opts.connection, worker.opts.connection, flows.opts.connection] as Redis[]) {
          expect(await client.call('ACL', 'WHOAMI')).toBe('dye_shadow');
          await expect(client.set('user:1', 'x')).rejects.toThrow(/NOPERM/);
        }
        expect(queue.keys.wait).toBe(`shadow:bull:${name}:wait`);
        expect(await Job.fromId(queue, productionJob.id as string)).toBeUndefined();
        await new Job(queue, 'x', {}, {}, productionJob.id).remove().catch(() => {});
        await Job.create(queue, 'created', { by: 'Job.create' });
      });
      expect(await bare.getJob(productionJob.id as string)).toBeDefined();
      expect(await bare.getJobCounts()).toMatchObject({ waiting: 1, delayed: 0 });
      const shadowQueue = new Queue(name, { connection, prefix: 'shadow:bull' });
      expect((await shadowQueue.getWaiting()).map((job) => job.data)).toEqual([{ by: 'Job.create' }]);
      await shadowQueue.close();
    } finally {
      await worker.close();
      await flows.close();
      await queue.close();
      await bare.obliterate({ force: true });
      await bare.close();
    }
  });

  it('closing, pausing or disconnecting the shared worker and queue from shadow is refused; production keeps working', async () => {
    const name = 'lifecycle';
    const queue = tenantQueue(name, { connection, isolated });
    const ran: string[] = [];
    const worker = tenantWorker(name, async (job: Job) => void ran.push(job.name), { connection, isolated });
    try {
      for (const attempt of [
        () => worker.close(),
        () => worker.pause(),
        () => worker.run(),
        () => queue.close(),
        () => queue.disconnect(),
      ]) {
        const error = await withTenant('shadow', attempt).catch((failure: unknown) => failure);
        expect(error).toBeInstanceOf(IsolationError);
      }
      await queue.add('after', {});
      await until(() => ran.includes('after'));
    } finally {
      await worker.close();
      await queue.close();
    }
  });
});
