import { BASELINE_NAME, checkTenantName, type Tenant } from './tenant.js';

/** The kinds of resource an isolated tenant renames. */
export type IsolatedResource = 'redis-key' | 'mysql-database' | 'kafka-topic' | 'kafka-group' | 'amqp-exchange' | 'amqp-queue';

/**
 * The name a resource has for a tenant that isolates it:
 *
 * | resource | `shadow` | `shadow-lt1` |
 * | --- | --- | --- |
 * | `redis-key` | `shadow:<key>` | `shadow-lt1:<key>` |
 * | `mysql-database` | `<db>_shadow` | `<db>_shadow_lt1` |
 * | `kafka-topic` | `<topic>_shadow` | `<topic>_shadow_lt1` |
 * | `kafka-group` | `<group>_shadow` | `<group>_shadow_lt1` |
 * | `amqp-exchange` | `<exchange>_shadow` | `<exchange>_shadow_lt1` |
 * | `amqp-queue` | `<queue>_shadow` | `<queue>_shadow_lt1` |
 *
 * Dashes become underscores in suffixes because MySQL identifiers would need
 * quoting otherwise. Whether a tenant isolates a store is the policy's call;
 * this function only names.
 */
export function isolatedName(resource: IsolatedResource, name: string, tenant: Tenant | string): string {
  const tenantName = typeof tenant === 'string' ? checkedName(tenant) : tenant.name;
  if (tenantName === BASELINE_NAME) throw new TypeError('isolatedName: baseline has no isolated names');
  switch (resource) {
    case 'redis-key':
      return `${isolatedKeyPrefix(tenantName)}${name}`;
    case 'mysql-database':
    case 'kafka-topic':
    case 'kafka-group':
    case 'amqp-exchange':
    case 'amqp-queue':
      if (name.length === 0) throw new TypeError(`isolatedName: empty ${resource} name`);
      return `${name}${isolatedSuffix(tenantName)}`;
    default:
      throw new TypeError(`isolatedName: unknown resource ${JSON.stringify(resource)}`);
  }
}

/** `shadow` → `shadow:`; the prefix of every Redis key and channel of the tenant. */
export function isolatedKeyPrefix(tenantName: string): string {
  return `${tenantName}:`;
}

/** `shadow-lt1` → `_shadow_lt1`; appended to databases, topics and consumer groups. */
export function isolatedSuffix(tenantName: string): string {
  return `_${tenantName.replaceAll('-', '_')}`;
}

function checkedName(name: string): string {
  const checked = checkTenantName(name);
  if (!checked.ok) throw new TypeError(`isolatedName: ${checked.reason}`);
  return checked.name;
}
