export type { CommandPlan, PlanOptions } from './command-plan.js';
export { KEYLESS_SAFE_COMMANDS, planCommand, REFUSED_COMMANDS } from './command-plan.js';
export type { TenantRedisOptions } from './tenant-redis.js';
export { tenantRedis } from './tenant-redis.js';
