import { randomBytes } from 'node:crypto';
import { getDefaultPolicy, isolationRefusal, type Tenant, type TenantPolicy } from '@dye/core';
import type { Cluster, Redis } from 'ioredis';

/**
 * Commands of Redis's `@admin` and `@dangerous` categories the isolated user
 * may run all the same: `INFO` (clients' ready check), `SORT` (Redis 7 checks
 * its BY/GET patterns against the user's keys), `ACL WHOAMI`.
 */
export const ALLOWED_DANGEROUS: readonly string[] = ['info', 'sort', 'sort_ro', 'acl|whoami'];

/**
 * Commands outside `@admin`/`@dangerous` the isolated user must not run
 * either: they reach every key, other databases, or code every tenant uses.
 */
export const FORBIDDEN_COMMANDS: readonly string[] = [
  'move',
  'dbsize',
  'randomkey',
  'cluster|getkeysinslot',
  'cluster|countkeysinslot',
  'function|load',
  'function|delete',
  'function|flush',
  'function|restore',
  'function|kill',
  'script|flush',
  'script|kill',
  'client|tracking',
  'client|caching',
  'memory|purge',
];

/**
 * Commands the isolated ACL user must not be able to run, with arguments:
 * each reaches beyond its own keys. On top of these, every command the
 * server lists in `@admin` or `@dangerous` is probed (see inspectShadowUser).
 * Every one is asked of the server itself (`ACL DRYRUN`), so the verdict is
 * Redis's, whatever rules produced it.
 */
export const FORBIDDEN_PROBES: readonly (readonly string[])[] = [
  ['flushall'],
  ['flushdb'],
  ['swapdb', '0', '1'],
  ['move', 'shadow:dye-probe', '1'],
  ['migrate', '127.0.0.1', '1', 'shadow:dye-probe', '0', '1'],
  ['keys', '*'],
  ['dbsize'],
  ['randomkey'],
  ['config', 'get', 'maxmemory'],
  ['config', 'set', 'maxmemory', '0'],
  ['debug', 'sleep', '0'],
  ['shutdown'],
  ['monitor'],
  ['sync'],
  ['save'],
  ['bgsave'],
  ['bgrewriteaof'],
  ['replicaof', 'no', 'one'],
  ['failover'],
  ['module', 'list'],
  ['acl', 'setuser', 'dye-probe'],
  ['acl', 'getuser', 'default'],
  ['acl', 'list'],
  ['acl', 'log'],
  ['client', 'kill', 'id', '1'],
  ['client', 'list'],
  ['client', 'pause', '1'],
  ['client', 'no-evict', 'on'],
  ['client', 'tracking', 'on'],
  ['latency', 'reset'],
  ['slowlog', 'get'],
  ['script', 'flush'],
  ['script', 'kill'],
  ['function', 'flush'],
  ['function', 'delete', 'dye-probe'],
  ['function', 'load', "#!lua name=dyeprobe\nredis.register_function('dyeprobe', function() return 1 end)"],
  ['function', 'restore', 'x'],
  ['function', 'kill'],
  ['cluster', 'getkeysinslot', '0', '1'],
  ['cluster', 'countkeysinslot', '0'],
  ['memory', 'purge'],
];

/** What an isolated tenant's work needs; `grantShadowAccess` checks these too, so a too narrow user is fixed. */
const CONTAINERS = new Set([
  'acl',
  'client',
  'cluster',
  'command',
  'config',
  'debug',
  'function',
  'latency',
  'memory',
  'module',
  'object',
  'pubsub',
  'script',
  'slowlog',
  'xgroup',
  'xinfo',
]);

export const REQUIRED_PROBES: readonly (readonly string[])[] = [
  ['get', 'shadow:dye-probe'],
  ['set', 'shadow:dye-probe', 'v'],
  ['eval', 'return 1', '1', 'shadow:dye-probe'],
  ['evalsha', '0000000000000000000000000000000000000000', '1', 'shadow:dye-probe'],
  ['script', 'load', 'return 1'],
  ['scan', '0'],
  ['info'],
  ['subscribe', 'shadow:dye-probe'],
  ['publish', 'shadow:dye-probe', 'v'],
  ['xread', 'streams', 'shadow:dye-probe', '0'],
  ['bzpopmin', 'shadow:dye-probe', '1'],
  ['client', 'setname', 'dye'],
  ['acl', 'whoami'],
  ['select', '0'],
  ['cluster', 'slots'],
];

export interface ShadowUserReport {
  /** The user exists, is enabled, and the server confines it to isolated keys and channels. */
  readonly confined: boolean;
  /** Why not, one line per finding (empty when confined). */
  readonly problems: readonly string[];
  /** Commands of `REQUIRED_PROBES` the user cannot run. */
  readonly missing: readonly string[];
  /** The user's key patterns, channel patterns and password hashes as the server reports them. */
  readonly keys: readonly string[];
  readonly channels: readonly string[];
  readonly passwordHashes: readonly string[];
  readonly exists: boolean;
}

type Node = Redis;

export interface IsolatedRedisUser {
  /** The ACL user isolated tenants connect as (`grantShadowAccess`, `dye shadow grant --redis`). */
  username: string;
  password: string;
  /**
   * The connection Dye reads the user's ACL through (`ACL GETUSER`, `ACL
   * DRYRUN`). Default: a connection beside the wrapped client, as its user,
   * which must then be allowed to.
   */
  checkWith?: Redis | Cluster;
}

/**
 * `ACL GETUSER` reply (flat field/value list, nested for selectors) as a map;
 * or, from a client with ioredis 6's `replyMapping: 'resp3'`, a plain object.
 */
function fields(reply: unknown): Map<string, unknown> {
  const map = new Map<string, unknown>();
  if (typeof reply === 'object' && reply !== null && !Array.isArray(reply) && !Buffer.isBuffer(reply)) {
    return new Map(Object.entries(reply));
  }
  if (!Array.isArray(reply)) return map;
  for (let i = 0; i + 1 < reply.length; i += 2) map.set(String(reply[i]), reply[i + 1]);
  return map;
}

function tokens(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  const text = String(value ?? '').trim();
  return text === '' ? [] : text.split(' ');
}

/** The literal start of a glob pattern: what every name it matches begins with. */
function literalStart(pattern: string): string {
  const end = pattern.search(/[*?[\\]/);
  return end === -1 ? pattern : pattern.slice(0, end);
}

/** A key or channel pattern that only matches names of an isolated tenant (`shadow:…`). */
export function isConfinedPattern(pattern: string, policy: TenantPolicy): boolean {
  const literal = literalStart(pattern);
  const colon = literal.indexOf(':');
  if (colon <= 0) return false;
  const resolved = policy.resolve(literal.slice(0, colon));
  return resolved.ok && resolved.tenant.kind !== 'baseline' && policy.isolates(resolved.tenant, 'redis');
}

function keyPattern(token: string): string | undefined {
  const match = /^(?:%(?:R|W|RW))?~(.*)$/.exec(token);
  return match?.[1];
}

function redisMajor(info: string): number {
  return Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
}

/**
 * Reads what the server lets `user` do, on one node, as the server reports it:
 * `ACL GETUSER` for its key and channel patterns (every one must name only an
 * isolated tenant's keys), `ACL DRYRUN` for the commands that reach beyond
 * them. Needs Redis 7 and a connection allowed to read ACLs.
 */
export async function inspectShadowUser(node: Node, user: string, policy: TenantPolicy = getDefaultPolicy()): Promise<ShadowUserReport> {
  const info = String(await node.info('server'));
  if (redisMajor(info) < 7) {
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    return report(false, [
      `Redis ${version} cannot confine a user to its keys in the way Dye checks (ACL DRYRUN and selectors need Redis 7)`,
    ]);
  }
  const raw = await node.call('acl', 'getuser', user);
  if (raw === null) return report(false, [`the ACL user ${JSON.stringify(user)} does not exist`]);
  const user_ = fields(raw);
  const problems: string[] = [];
  const flags = tokens(user_.get('flags'));
  if (!flags.includes('on')) problems.push('the user is disabled (off)');
  if (flags.includes('nopass')) problems.push('the user accepts any password (nopass)');
  if (flags.includes('allkeys')) problems.push('the user may reach every key (allkeys / ~*)');
  if (flags.includes('allchannels')) problems.push('the user may reach every channel (allchannels / &*)');
  const keys: string[] = [];
  const channels: string[] = [];
  const selectors = Array.isArray(user_.get('selectors')) ? (user_.get('selectors') as unknown[]) : [];
  for (const [index, rules] of [user_, ...selectors.map(fields)].entries()) {
    const where = index === 0 ? '' : ` (selector ${index})`;
    for (const token of tokens(rules.get('keys'))) {
      const pattern = keyPattern(token);
      if (pattern === undefined || !isConfinedPattern(pattern, policy))
        problems.push(`key pattern ${token}${where} reaches production keys`);
      else if (index === 0) keys.push(token);
    }
    for (const token of tokens(rules.get('channels'))) {
      if (!token.startsWith('&') || !isConfinedPattern(token.slice(1), policy))
        problems.push(`channel pattern ${token}${where} reaches production channels`);
      else if (index === 0) channels.push(token);
    }
  }
  const passwordHashes = tokens(user_.get('passwords'));

  // The server's own verdict on each command, for this user: probes are sent
  // in one pipeline and nothing is run. Besides the fixed probes, every
  // command (and subcommand) the server itself puts in @admin or @dangerous,
  // so a rule set that denies only the probes Dye happens to know still fails.
  const probe = `dye-probe:${randomBytes(6).toString('hex')}`;
  const forbidden = [
    ...FORBIDDEN_PROBES,
    ...(await serverForbiddenCommands(node)),
    ['get', probe],
    ['set', probe, 'v'],
    ['publish', probe, 'v'],
    ['eval', 'return 1', '1', probe],
  ];
  const pipeline = node.pipeline();
  for (const probeArgs of [...forbidden, ...REQUIRED_PROBES]) pipeline.call('acl', 'dryrun', user, ...probeArgs);
  const results = (await pipeline.exec()) ?? [];
  const allowed = (index: number) => {
    const [error, reply] = results[index] ?? [new Error('no reply')];
    return !error && String(reply) === 'OK';
  };
  const mayRun = new Set<string>();
  forbidden.forEach((probeArgs, index) => {
    if (!allowed(index)) return;
    const [first = '', second = ''] = probeArgs;
    const named = CONTAINERS.has(first) || ['get', 'set', 'publish'].includes(first) ? `${first} ${second}` : first;
    mayRun.add(named.toUpperCase());
  });
  for (const command of mayRun) problems.push(`the user may run ${command}`);
  const missing = REQUIRED_PROBES.filter((_, index) => !allowed(forbidden.length + index)).map((probeArgs) =>
    probeArgs
      .slice(0, ['client', 'script', 'acl', 'cluster'].includes(probeArgs[0] ?? '') ? 2 : 1)
      .join(' ')
      .toUpperCase(),
  );
  return { ...report(problems.length === 0, problems), missing, keys, channels, passwordHashes, exists: true };
}

/**
 * Every command and subcommand of this server in `@admin` or `@dangerous`
 * (bar ALLOWED_DANGEROUS), and FORBIDDEN_COMMANDS, as DRYRUN probes: the
 * name, then filler arguments up to its arity, each a shadow key so that a
 * refusal can only be the command's.
 */
async function serverForbiddenCommands(node: Node): Promise<string[][]> {
  const table = (await node.call('command', 'info')) as unknown[];
  const probes: string[][] = [];
  const visit = (entry: unknown) => {
    if (!Array.isArray(entry)) return;
    const [name, arity, , , , , categories, , , subcommands] = entry as unknown[];
    const lower = String(name).toLowerCase();
    const inCategory = Array.isArray(categories) && categories.some((category) => ['@admin', '@dangerous'].includes(String(category)));
    const hasSubcommands = Array.isArray(subcommands) && (subcommands as unknown[]).length > 0;
    if (!hasSubcommands && ((inCategory && !ALLOWED_DANGEROUS.includes(lower)) || FORBIDDEN_COMMANDS.includes(lower))) {
      const words = lower.split('|');
      const filler = Math.max(0, Math.abs(Number(arity)) - words.length);
      probes.push([...words, ...Array.from({ length: filler }, () => 'shadow:dye-probe')]);
    }
    if (hasSubcommands) for (const sub of subcommands as unknown[]) visit(sub);
  };
  for (const entry of table ?? []) visit(entry);
  return probes;
}

function report(confined: boolean, problems: string[]): ShadowUserReport {
  return { confined, problems, missing: [], keys: [], channels: [], passwordHashes: [], exists: false };
}

/** The nodes whose ACLs count: the client itself, or every node of a cluster (each keeps its own users). */
export async function aclNodes(client: Redis | Cluster): Promise<Node[]> {
  if (!('isCluster' in client) || !(client as Cluster).isCluster) return [client as Redis];
  const cluster = client as Cluster;
  if (cluster.status !== 'ready') {
    if (cluster.status === 'wait') await cluster.connect().catch(() => {});
    await new Promise<void>((resolve, reject) => {
      if (cluster.status === 'ready') return resolve();
      const onReady = () => {
        cluster.off('error', onError);
        resolve();
      };
      const onError = (error: Error) => {
        cluster.off('ready', onReady);
        reject(error);
      };
      cluster.once('ready', onReady);
      cluster.once('error', onError);
    });
  }
  return cluster.nodes('all');
}

/**
 * The check before an isolated tenant's first command (and again at every
 * recheck): `connection` really runs as the isolated user (a failed AUTH must
 * never leave it running as another), and the server confines that user to
 * isolated keys and channels, on every node. Throws IsolationError saying how
 * to fix it otherwise.
 */
export async function verifyIsolatedConnection(options: {
  connection: Redis | Cluster;
  checker: Redis | Cluster;
  user: IsolatedRedisUser;
  tenant: Tenant;
  policy: TenantPolicy;
}): Promise<void> {
  const { connection, checker, user, tenant, policy } = options;
  const fail = (reason: string) =>
    isolationRefusal('redis', {
      tenant: tenant.name,
      refused: 'Redis commands',
      reason: `${reason}. Fix it with \`dye shadow grant --redis <url> --user ${user.username} --apply\` (or grantShadowAccess)`,
    });
  for (const node of await aclNodes(connection)) {
    const whoami = await node.call('acl', 'whoami').catch((error: Error) => error);
    if (whoami instanceof Error) throw fail(`the isolated connection cannot tell which user it is (${whoami.message})`);
    if (String(whoami) !== user.username)
      throw fail(`the isolated connection runs as ${JSON.stringify(String(whoami))}, not ${JSON.stringify(user.username)}`);
  }
  for (const node of await aclNodes(checker)) {
    const report = await inspectShadowUser(node, user.username, policy).catch((error: Error) => error);
    if (report instanceof Error) {
      throw fail(
        `Dye could not read the ACL of ${user.username} (${report.message}); allow the checking connection ACL GETUSER and ACL DRYRUN, or pass isolated.checkWith an admin client`,
      );
    }
    if (!report.confined) throw fail(`the ACL user ${user.username} is not confined to isolated keys: ${report.problems.join('; ')}`);
  }
}
