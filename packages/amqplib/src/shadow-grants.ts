import { checkTenantName, getDefaultPolicy, isolatedSuffix, type TenantPolicy } from '@dye/core';
import { ManagementApi, type RabbitManagement, segment } from './management-api.js';
import { passwordMatches } from './rabbit-password.js';

export interface GrantAmqpShadowAccessOptions {
  /** The management HTTP API, as a user that may manage users and permissions (an administrator). */
  management: RabbitManagement;
  /** The RabbitMQ user isolated tenants connect as (`dye_shadow`). */
  user: string;
  /** Its password: needed to create the user; for an existing one, set when it differs. */
  password?: string;
  /** The vhost it works in. Default `/`. */
  vhost?: string;
  /** Isolated tenants whose resources it may use (default `['shadow']` → names ending in `_shadow`). */
  tenants?: readonly string[];
  /** Which tenants isolate RabbitMQ. Default: the default policy. */
  policy?: TenantPolicy;
  /** Make the changes. Without it, a dry run: `changes` says what would change. */
  apply?: boolean;
}

/** A user's permissions in one vhost: regular expressions over exchange and queue names. */
export interface RabbitPermissions {
  vhost: string;
  configure: string;
  write: string;
  read: string;
}

export interface GrantAmqpShadowAccessResult {
  user: string;
  vhost: string;
  /** What the user should be allowed, and nothing else. */
  wanted: RabbitPermissions;
  /** What changes (or, without `apply`, would change), in words; the password is never shown. */
  changes: string[];
  /** Permissions the user held in other vhosts, removed. */
  remove: RabbitPermissions[];
  applied: boolean;
  /** Nothing to change. */
  inSync: boolean;
}

interface ManagedUser {
  name: string;
  password_hash?: string;
  hashing_algorithm?: string;
  tags: string | string[];
}

/** `^.*(?:_shadow)$`: only names that end in an isolated tenant's suffix, the suffix escaped. */
export function shadowResourcePattern(tenants: readonly string[]): string {
  const suffixes = tenants.map((tenant) => isolatedSuffix(tenant).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return `^.*(?:${suffixes.join('|')})$`;
}

/**
 * Creates or updates the RabbitMQ user isolated tenants connect as, so that
 * RabbitMQ itself confines them: in `vhost`, configure, write and read only
 * on names ending in an isolated tenant's suffix (`_shadow`), no permission in
 * any other vhost, and no tags (no management or policy rights). It never
 * gets write on `amq.default`, the default exchange: through it the user
 * could publish to every queue, so RabbitMQ refuses it `sendToQueue` (and any
 * publish to the default exchange): isolated tenants publish through an
 * exchange whose twin routes to the twin queue. Idempotent: a second run has
 * nothing to do. Without `apply` it changes nothing and returns the plan.
 */
export async function grantShadowAccess(options: GrantAmqpShadowAccessOptions): Promise<GrantAmqpShadowAccessResult> {
  const { user } = options;
  if (!user || /\s/.test(user)) throw new TypeError('grantShadowAccess needs a user name without spaces');
  if (user === options.management.user)
    throw new TypeError(`grantShadowAccess: ${user} is the management user this runs as; confining it would lock the grant out`);
  if (options.password !== undefined && options.password === '') throw new TypeError('grantShadowAccess: the password must not be empty');
  const policy = options.policy ?? getDefaultPolicy();
  const tenants = options.tenants && options.tenants.length > 0 ? options.tenants : ['shadow'];
  for (const tenant of tenants) {
    const checked = checkTenantName(tenant);
    const resolved = policy.resolve(tenant);
    if (!checked.ok || !resolved.ok || !policy.isolates(resolved.tenant, 'amqp'))
      throw new TypeError(`grantShadowAccess: ${JSON.stringify(tenant)} is not a tenant whose RabbitMQ data is isolated`);
  }
  const vhost = options.vhost ?? '/';
  const pattern = shadowResourcePattern(tenants);
  const wanted: RabbitPermissions = { vhost, configure: pattern, write: pattern, read: pattern };
  const api = new ManagementApi(options.management);
  if ((await api.get(`/vhosts/${segment(vhost)}`)) === undefined)
    throw new Error(`grantShadowAccess: RabbitMQ has no vhost ${JSON.stringify(vhost)}`);

  const existing = await api.get<ManagedUser>(`/users/${segment(user)}`);
  if (existing === undefined && options.password === undefined)
    throw new TypeError(`the RabbitMQ user ${user} does not exist: give a password to create it`);
  const tags = existing === undefined ? [] : (Array.isArray(existing.tags) ? existing.tags : existing.tags.split(',')).filter(Boolean);
  const passwordOk =
    existing !== undefined &&
    (options.password === undefined || passwordMatches(options.password, existing.password_hash, existing.hashing_algorithm));
  const held = (await api.get<RabbitPermissions[]>(`/users/${segment(user)}/permissions`)) ?? [];
  const current = held.find((permission) => permission.vhost === vhost);
  const remove = held
    .filter((permission) => permission.vhost !== vhost)
    .map(({ vhost: where, configure, write, read }) => ({ vhost: where, configure, write, read }));

  const changes: string[] = [];
  const userChange = existing === undefined || !passwordOk || tags.length > 0;
  if (existing === undefined) changes.push(`create user ${user} (no tags)`);
  else {
    if (!passwordOk) changes.push(`set the password of ${user}`);
    if (tags.length > 0) changes.push(`remove the tags of ${user} (${tags.join(', ')})`);
  }
  const permissionsOk =
    current !== undefined && current.configure === wanted.configure && current.write === wanted.write && current.read === wanted.read;
  if (!permissionsOk) changes.push(`set permissions of ${user} on vhost ${vhost}: configure, write and read ${pattern}`);
  for (const permission of remove) changes.push(`remove the permissions of ${user} on vhost ${permission.vhost}`);

  const inSync = changes.length === 0;
  if (options.apply && !inSync) {
    if (userChange) {
      // A PUT replaces the user: keep the password it has unless a new one is given.
      const password =
        options.password !== undefined
          ? { password: options.password }
          : { password_hash: existing?.password_hash ?? '', hashing_algorithm: existing?.hashing_algorithm };
      await api.put(`/users/${segment(user)}`, { ...password, tags: '' });
    }
    if (!permissionsOk) {
      await api.put(`/permissions/${segment(vhost)}/${segment(user)}`, { configure: pattern, write: pattern, read: pattern });
    }
    for (const permission of remove) await api.delete(`/permissions/${segment(permission.vhost)}/${segment(user)}`);
  }
  return { user, vhost, wanted, changes, remove, applied: Boolean(options.apply) && !inSync, inSync };
}
