import { createHash } from 'node:crypto';
import { checkTenantName, getDefaultPolicy, isolatedKeyPrefix, type TenantPolicy } from '@dye/core';
import type { Cluster, Redis } from 'ioredis';
import { ALLOWED_DANGEROUS, aclNodes, FORBIDDEN_COMMANDS, inspectShadowUser } from './shadow-user.js';

/**
 * The command rules of the isolated user, in the order Redis applies them:
 * everything on its own keys, then nothing that reaches every key, the
 * server, other databases or other connections. Redis 7 checks SORT's BY/GET
 * patterns against the key patterns itself, so SORT comes back.
 */
export const SHADOW_COMMAND_RULES: readonly string[] = [
  '+@all',
  '-@admin',
  '-@dangerous',
  ...ALLOWED_DANGEROUS.map((command) => `+${command}`),
  ...FORBIDDEN_COMMANDS.map((command) => `-${command}`),
];

export interface GrantShadowAccessOptions {
  /** Isolated tenants whose keys and channels the user may use (`shadow` → `~shadow:*`, `&shadow:*`). Default `['shadow']`. */
  tenants?: readonly string[];
  /** The ACL user's name (`dye_shadow`). */
  user: string;
  /** Its password: needed to create the user; for an existing one, set when it differs. */
  password?: string;
  /**
   * Channel patterns the service subscribes to with PSUBSCRIBE (`orders.*`):
   * Redis lets a restricted user subscribe only to patterns identical to its
   * own, so each becomes `&shadow:orders.*` (still inside the tenant's channels).
   */
  channelPatterns?: readonly string[];
  /** Which tenants isolate Redis. Default: the default policy. */
  policy?: TenantPolicy;
  /** Run the commands. Default false: only say what would run. */
  apply?: boolean;
}

export interface GrantShadowAccessResult {
  readonly user: string;
  /** The key and channel patterns the user is confined to. */
  readonly keys: readonly string[];
  readonly channels: readonly string[];
  /** The commands run (or, without `apply`, that would run), per node (`host:port`), passwords shown as `***`. */
  readonly commands: readonly string[];
  readonly applied: boolean;
}

/**
 * Creates or updates the Redis ACL user isolated tenants connect as, so that
 * Redis itself confines them: keys and channels of the isolated tenants only
 * (`~shadow:*`, `&shadow:*`) and no command that reaches beyond them
 * (`SHADOW_COMMAND_RULES`). On a Cluster, on every node (each keeps its own
 * users). Idempotent: nothing runs when the user is already confined, has
 * exactly these patterns and this password, and can run what isolated work
 * needs. Without `apply` it changes nothing and returns what it would run.
 * With an ACL file, `ACL SAVE` keeps the change across restarts.
 */
export async function grantShadowAccess(admin: Redis | Cluster, options: GrantShadowAccessOptions): Promise<GrantShadowAccessResult> {
  const { user } = options;
  if (!user || /[\s]/.test(user)) throw new TypeError('grantShadowAccess needs a user name without spaces');
  if (options.password !== undefined && (options.password === '' || /[\s]/.test(options.password)))
    throw new TypeError('grantShadowAccess: the password must be non-empty and without spaces');
  const policy = options.policy ?? getDefaultPolicy();
  const tenants = options.tenants ?? ['shadow'];
  if (tenants.length === 0) throw new TypeError('grantShadowAccess needs at least one tenant');
  for (const tenant of tenants) {
    const checked = checkTenantName(tenant);
    const resolved = policy.resolve(tenant);
    if (!checked.ok || !resolved.ok || resolved.tenant.kind === 'baseline' || !policy.isolates(resolved.tenant, 'redis'))
      throw new TypeError(`grantShadowAccess: ${JSON.stringify(tenant)} is not a tenant whose Redis data is isolated`);
  }
  const keys = tenants.map((tenant) => `~${isolatedKeyPrefix(tenant)}*`);
  const channels = tenants.flatMap((tenant) => [
    `&${isolatedKeyPrefix(tenant)}*`,
    ...(options.channelPatterns ?? []).map((pattern) => `&${isolatedKeyPrefix(tenant)}${pattern}`),
  ]);
  for (const pattern of options.channelPatterns ?? [])
    if (pattern === '' || /\s/.test(pattern))
      throw new TypeError(`grantShadowAccess: channel pattern ${JSON.stringify(pattern)} is empty or has spaces`);
  const commands: string[] = [];
  const nodes = await aclNodes(admin);
  const multiple = nodes.length > 1;
  for (const node of nodes) {
    const where = multiple ? `${node.options.host}:${node.options.port} ` : '';
    const report = await inspectShadowUser(node, user, policy);
    if (!report.exists && options.password === undefined)
      throw new TypeError(`the ACL user ${user} does not exist: give a password to create it`);
    const passwordOk =
      options.password === undefined ||
      (report.passwordHashes.length === 1 && report.passwordHashes[0] === createHash('sha256').update(options.password).digest('hex'));
    const inPlace =
      report.confined && report.missing.length === 0 && passwordOk && sameSet(report.keys, keys) && sameSet(report.channels, channels);
    if (inPlace) continue;
    // `reset` first: whatever the user had (other patterns, selectors, extra
    // passwords) is gone, and the rules below are all it has.
    const password = options.password === undefined ? [] : [`>${options.password}`];
    const rules = ['reset', 'on', ...password, ...keys, ...channels, ...SHADOW_COMMAND_RULES];
    if (options.password === undefined) {
      // Keep the passwords it has: reset would drop them.
      rules.splice(2, 0, ...report.passwordHashes.map((hash) => `#${hash}`));
    }
    const shown = rules.map((rule) => (rule.startsWith('>') ? '>***' : rule));
    commands.push(`${where}ACL SETUSER ${user} ${shown.join(' ')}`);
    const aclFile = await aclFileOf(node);
    if (aclFile) commands.push(`${where}ACL SAVE`);
    if (options.apply) {
      await node.call('acl', 'setuser', user, ...rules);
      if (aclFile) await node.call('acl', 'save');
      const after = await inspectShadowUser(node, user, policy);
      if (!after.confined)
        throw new Error(`the ACL user ${user} is still not confined on ${where || 'the server'}: ${after.problems.join('; ')}`);
    }
  }
  return { user, keys, channels, commands, applied: options.apply === true && commands.length > 0 };
}

function sameSet(actual: readonly string[], expected: readonly string[]): boolean {
  return actual.length === expected.length && expected.every((item) => actual.includes(item));
}

async function aclFileOf(node: Redis): Promise<string | undefined> {
  try {
    // [name, value], or { aclfile: value } from a client with ioredis 6's replyMapping 'resp3'.
    const reply = (await node.call('config', 'get', 'aclfile')) as string[] | Record<string, string>;
    const file = Array.isArray(reply) ? reply[1] : reply?.aclfile;
    return file ? file : undefined;
  } catch {
    return undefined;
  }
}
