import { currentTenant, isolatedSuffix, type Tenant, type TenantPolicy } from '@dye/core';

/** Suffix of the queue that receives messages whose tenant cannot be decided: `orders` → `orders.dye-dlq`. */
export const DEAD_LETTER_SUFFIX = '.dye-dlq';

// The twins of any isolated tenant (`_shadow`, `_shadow_lt1`): never consumed
// as production, never twinned again.
const ISOLATED_NAME = /_shadow(?:_[a-z0-9_]+)?$/;

/** Whether `tenant`'s RabbitMQ data lives in `_shadow` exchanges and queues. */
export function isolates(policy: TenantPolicy, tenant: Tenant): boolean {
  return tenant.kind !== 'baseline' && policy.isolates(tenant, 'amqp');
}

/** The current tenant when it isolates RabbitMQ, else undefined (amqplib acts as it is). */
export function isolatedTenantNow(policy: TenantPolicy): Tenant | undefined {
  const tenant = currentTenant();
  return isolates(policy, tenant) ? tenant : undefined;
}

/**
 * Whether a queue or exchange belongs to an isolated tenant or to dead
 * letters: `orders_shadow`, `orders_shadow_lt1`, `orders.dye-dlq`, or a name
 * ending in the suffix of one of `tenants` (an isolated color, `_red`).
 */
export function isReservedName(name: string, tenants: readonly string[] = []): boolean {
  if (name.endsWith(DEAD_LETTER_SUFFIX) || ISOLATED_NAME.test(name)) return true;
  return tenants.some((tenant) => name.endsWith(isolatedSuffix(tenant)));
}

/** Why a message of a production queue that names an isolated tenant is not processed. */
export function isolatedOnProduction(tenant: Tenant, queue: string): string {
  return `it names isolated tenant ${tenant.name} but was delivered from production queue ${queue}, where Dye never sends ${tenant.name} messages; processed in ${tenant.name} it would act as that tenant for a production delivery, processed as baseline it would write production`;
}

// Messages a ShadowLane handed out (deliveries and get() of a twin queue,
// messages the broker returned to a twin's publisher), with the tenant they
// belong to, process-wide (any copy of this package sees what another
// marked): where a message was read decides its tenant, not its headers.
const READ_BY = Symbol.for('dye.amqp.isolatedMessages');
const holder = globalThis as { [READ_BY]?: WeakMap<object, Tenant> };
const readBy = (holder[READ_BY] ??= new WeakMap<object, Tenant>());

/** Marks a message an isolated tenant's channel received. */
export function markIsolatedMessage(message: object, tenant: Tenant): void {
  readBy.set(message, tenant);
}

/** The isolated tenant whose channel received `message`, if one did. */
export function isolatedReader(message: object): Tenant | undefined {
  return readBy.get(message);
}
