import { currentTenant, isolationRefusal, logWarning, type Tenant, withTenant } from '@dye/core';
import { type Job, type Processor, UnrecoverableError, Worker, type WorkerOptions } from 'bullmq';
import { type BullConnection, type IsolationSettings, productionConnection } from './isolated-connection.js';
import { hasTenantTag, isIsolatedForRedis, isolatedQueuePrefix, tenantOfJob } from './job-tenant.js';
import { TenantRouter } from './tenant-routing.js';

export interface TenantWorkerOptions extends Omit<WorkerOptions, 'connection'>, IsolationSettings {
  /** The production connection: an ioredis client (a `tenantRedis` wrapper is unwrapped) or its options. */
  connection: BullConnection;
  /**
   * Isolated tenants whose queues this worker also processes, each with a
   * worker of its own on the isolated ACL user's connection. Default
   * `['shadow']` when `isolated` is given, none otherwise.
   */
  isolatedTenants?: readonly string[];
}

/** How often a running isolated worker's user is checked again; a failed check pauses it until one passes. */
const RECHECK_MS = 60_000;

/**
 * A BullMQ `Worker` that runs each job's processor in the tenant the job was
 * added in, so what the processor does (queries, calls, jobs it adds) carries
 * it. Alongside the production worker it runs one worker per isolated tenant
 * on that tenant's own queue (`shadow:<prefix>`), started once Dye has checked
 * that Redis confines the isolated user. A production worker never runs a
 * job tagged with an isolated tenant: the job fails, unprocessed.
 */
export function tenantWorker<T extends Worker = Worker>(name: string, processor: Processor, options: TenantWorkerOptions): T {
  if (typeof processor !== 'function') {
    throw new TypeError(
      'tenantWorker needs a processor function: Dye runs it in the tenant of each job (sandboxed processor files are not supported)',
    );
  }
  const { isolated, policy: policyOption, connection, isolatedTenants, ...workerOptions } = options;
  const settings: IsolationSettings = { ...(isolated ? { isolated } : {}), ...(policyOption ? { policy: policyOption } : {}) };
  let router: TenantRouter<Worker> | undefined;

  const runProduction: Processor = (job, token, signal) => {
    const policy = (router as TenantRouter<Worker>).policy;
    const tenant = tenantOfJob(job.opts, policy);
    if (isIsolatedForRedis(tenant, policy)) {
      const refusal = isolationRefusal('redis', {
        tenant: tenant.name,
        refused: `BullMQ job ${job.id} in production queue ${name}`,
        reason: "a production worker never runs an isolated tenant's job; isolated jobs belong in the tenant's own queue",
      });
      throw new UnrecoverableError(refusal.message);
    }
    // A baseline job in a baseline loop needs no context of its own.
    if (tenant.kind === 'baseline' && currentTenant().kind === 'baseline') return processor(job, token, signal);
    return withTenant(tenant, () => processor(job, token, signal));
  };

  const production = new Worker(name, runProduction, { ...workerOptions, connection: productionConnection(connection) } as WorkerOptions);
  router = new TenantRouter<Worker>(
    production,
    connection,
    settings,
    (tenant, side) =>
      new Worker(name, isolatedProcessor(tenant, processor, router as TenantRouter<Worker>, name), {
        ...workerOptions,
        prefix: isolatedQueuePrefix(tenant, workerOptions.prefix),
        connection: side.connection,
        // Started only once the isolated user is checked.
        autorun: false,
      } as WorkerOptions),
    `BullMQ worker ${name}`,
  );
  const starters: Promise<void>[] = [];
  const tenants = isolatedTenants ?? (isolated ? ['shadow'] : []);
  for (const tenantName of tenants) {
    const resolved = router.policy.resolve(tenantName);
    if (!resolved.ok || !isIsolatedForRedis(resolved.tenant, router.policy)) {
      throw new TypeError(`tenantWorker: ${JSON.stringify(tenantName)} is not a tenant whose Redis data is isolated`);
    }
    const entry = router.isolated(resolved.tenant);
    if (entry instanceof Error) throw entry;
    starters.push(startWhenConfined(entry.instance, entry.side.check, resolved.tenant, name, workerOptions.autorun !== false));
  }
  const all = () => (router as TenantRouter<Worker>).all();
  return router.proxy(
    {
      run: () => Promise.all(all().map((worker) => (worker === production ? worker.run() : Promise.resolve()))).then(() => undefined),
      close: (force?: unknown) =>
        Promise.all(all().map((worker) => worker.close(force as boolean))).then(() => (router as TenantRouter<Worker>).close()),
      pause: (doNotWaitActive?: unknown) =>
        Promise.all(all().map((worker) => worker.pause(doNotWaitActive as boolean))).then(() => undefined),
      resume: () => {
        for (const worker of all()) worker.resume();
      },
      waitUntilReady: () => production.waitUntilReady(),
    },
    ['run', 'close', 'pause', 'resume', 'disconnect', 'cancelJob', 'cancelAllJobs', 'startStalledCheckTimer'],
  ) as unknown as T;
}

/**
 * An isolated tenant's processor: its jobs run in it. Only the isolated user
 * can write its queue, so an untagged job there (BullMQ's own `Job.create`)
 * is the tenant's; a job tagged with another tenant is refused.
 */
function isolatedProcessor(tenant: Tenant, processor: Processor, router: TenantRouter<Worker>, name: string): Processor {
  return (job: Job, token, signal) => {
    const tagged = tenantOfJob(job.opts, router.policy);
    if (hasTenantTag(job.opts) && tagged.name !== tenant.name) {
      throw new UnrecoverableError(
        `Dye refused BullMQ job ${job.id} in ${tenant.name}'s queue ${name}: it was tagged ${JSON.stringify(tagged.name)}, not added by this tenant`,
      );
    }
    return withTenant(tenant, () => processor(job, token, signal));
  };
}

/**
 * Starts an isolated worker once its user is confirmed confined; while a
 * check fails it stays (or is put back) paused, and the check is retried.
 */
async function startWhenConfined(
  worker: Worker,
  check: { ensure(): Promise<void> },
  tenant: Tenant,
  name: string,
  autorun: boolean,
): Promise<void> {
  let running = false;
  const attempt = async () => {
    try {
      await check.ensure();
      if (!running) {
        running = true;
        if (autorun) void worker.run().catch(() => {});
      } else if (worker.isPaused()) worker.resume();
    } catch (error) {
      if (running && !worker.isPaused()) await worker.pause(true).catch(() => {});
      logWarning('dye.bullmq.isolated-worker', `the ${tenant.name} worker of ${name} is not running: ${(error as Error).message}`, {
        tenant: tenant.name,
      });
    }
  };
  await attempt();
  const timer = setInterval(() => {
    if (worker.closing) clearInterval(timer);
    else void attempt();
  }, RECHECK_MS / 12);
  timer.unref();
  worker.on('closed', () => clearInterval(timer));
}
