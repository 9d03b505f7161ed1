import { currentTenant, type Tenant, type TenantPolicy } from '@dye/core';

/** Whether `tenant`'s Kafka data lives in `_shadow` topics and groups. */
export function isolates(policy: TenantPolicy, tenant: Tenant): boolean {
  return tenant.kind !== 'baseline' && policy.isolates(tenant, 'kafka');
}

/** The current tenant when it isolates Kafka, else undefined (kafkajs acts as it is). */
export function isolatedTenantNow(policy: TenantPolicy): Tenant | undefined {
  const tenant = currentTenant();
  return isolates(policy, tenant) ? tenant : undefined;
}

/** The registry app under which lane consumers of a group register: `kafka.<group>`. */
export function laneApp(groupId: string): string {
  const name = groupId
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .replace(/\.{2,}/g, '.');
  return `kafka.${name || 'group'}`;
}
