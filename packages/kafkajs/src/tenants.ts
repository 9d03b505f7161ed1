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

/** Why a message on a production topic that names an isolated tenant is not processed. */
export function isolatedOnProduction(tenant: Tenant, topic: string): string {
  return `it names isolated tenant ${tenant.name} but was read from production topic ${topic}, where Dye never sends ${tenant.name} messages; processed in ${tenant.name} it would act on the isolated group for a production delivery, processed as baseline it would write production`;
}
