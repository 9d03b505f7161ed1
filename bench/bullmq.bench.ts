/**
 * BullMQ add-then-process through bare Queue/Worker vs tenantQueue/tenantWorker,
 * in baseline and in shadow (its own queue, as the isolated ACL user), in one
 * run against the Redis on 127.0.0.1:6379: each operation adds a job and
 * waits until a worker has processed it.
 *
 *   npm run bench -- bullmq
 */
import { randomBytes } from 'node:crypto';
import { tenantQueue, tenantWorker } from '@dye/bullmq';
import { setLogger, withTenant } from '@dye/core';
import { grantShadowAccess } from '@dye/ioredis';
import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { compareThroughput, printThroughput } from './harness.js';

setLogger({ warn: () => {} });
const url = process.env.DYE_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function run() {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const user = `dye_bench_bull_${process.pid}`;
  const password = randomBytes(12).toString('hex');
  await grantShadowAccess(connection, { user, password, apply: true });
  const isolated = { username: user, password };
  const waiting = new Map<string, () => void>();
  const done = async (job: Job) => {
    waiting.get(job.data.id)?.();
  };
  const bareName = `dye-bench-bare-${process.pid}`;
  const dyeName = `dye-bench-dye-${process.pid}`;
  const bareQueue = new Queue(bareName, { connection });
  const bareWorker = new Worker(bareName, done, { connection, concurrency: 16 });
  const queue = tenantQueue(dyeName, { connection, isolated });
  const worker = tenantWorker(dyeName, done, { connection, isolated, concurrency: 16 });
  let counter = 0;
  const addAndWait = (target: Queue) => () => {
    const id = String(counter++);
    const processed = new Promise<void>((resolve) => waiting.set(id, resolve));
    return target.add('job', { id }, { removeOnComplete: true }).then(() => processed.finally(() => waiting.delete(id)));
  };
  await withTenant('shadow', addAndWait(queue));
  const results = await compareThroughput(
    'bullmq',
    [
      { name: 'bare BullMQ: add + process', run: addAndWait(bareQueue) },
      { name: 'tenantQueue/tenantWorker baseline', run: addAndWait(queue) },
      { name: 'tenantQueue/tenantWorker shadow', run: () => withTenant('shadow', addAndWait(queue)) },
      { name: 'bare BullMQ again (noise control)', run: addAndWait(bareQueue) },
    ],
    { rounds: 5, durationMs: 1500 },
  );
  printThroughput('Add a job, wait until it is processed (jobs/s, 16 in flight)', results);
  await worker.close();
  await bareWorker.close();
  await bareQueue.obliterate({ force: true });
  await queue.obliterate({ force: true });
  await withTenant('shadow', () => queue.obliterate({ force: true }));
  await bareQueue.close();
  await queue.close();
  await connection.call('ACL', 'DELUSER', user);
  connection.disconnect();
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
}
