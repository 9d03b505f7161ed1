import { BASELINE, checkTenantName, isolatedKeyPrefix, type Tenant, type TenantPolicy } from '@dye/core';

/**
 * Where a job keeps the tenant it was added in: a field of its options,
 * which BullMQ stores with the job and gives back to the worker, through
 * delays, retries, flows and job schedulers alike. The job's data stays the
 * user's.
 */
export const JOB_TENANT_OPTION = 'dye';

export interface JobTenantTag {
  readonly tenant: string;
}

/** Job options with the tenant added (baseline adds nothing: an untagged job is a baseline job). */
export function tagOptions<T extends object | undefined>(options: T, tenant: Tenant): T {
  if (tenant.kind === 'baseline') return options;
  return { ...(options ?? {}), [JOB_TENANT_OPTION]: { tenant: tenant.name } satisfies JobTenantTag } as unknown as T;
}

/**
 * The tenant a job was added in, as the policy knows it. A missing, malformed
 * or unknown tag is baseline (bad input is baseline, never a tenant).
 */
export function tenantOfJob(jobOptions: unknown, policy: TenantPolicy): Tenant {
  const tag = (jobOptions as Record<string, unknown> | undefined)?.[JOB_TENANT_OPTION];
  const name = (tag as Partial<JobTenantTag> | undefined)?.tenant;
  if (typeof name !== 'string' || !checkTenantName(name).ok) return BASELINE;
  const resolved = policy.resolve(name);
  return resolved.ok ? resolved.tenant : BASELINE;
}

/** Whether job options carry a tenant tag at all (well-formed or not). */
export function hasTenantTag(jobOptions: unknown): boolean {
  return (jobOptions as Record<string, unknown> | undefined)?.[JOB_TENANT_OPTION] !== undefined;
}

/** Whether a tenant's Redis data is isolated (so its jobs live in its own queues). */
export function isIsolatedForRedis(tenant: Tenant, policy: TenantPolicy): boolean {
  return tenant.kind !== 'baseline' && policy.isolates(tenant, 'redis');
}

/** BullMQ's key prefix for an isolated tenant's queues: `bull` → `shadow:bull`. */
export function isolatedQueuePrefix(tenant: Tenant, prefix: string | undefined): string {
  return `${isolatedKeyPrefix(tenant.name)}${prefix ?? 'bull'}`;
}
