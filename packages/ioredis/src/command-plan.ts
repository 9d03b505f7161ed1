import { exists, getKeyIndexes } from '@ioredis/commands';

/**
 * How one command runs for a tenant whose Redis data is isolated: its key
 * arguments renamed into the tenant's keyspace (and replies renamed back), or
 * refused before anything is sent.
 */
export type CommandPlan =
  | { readonly kind: 'send'; readonly name: string; readonly args: unknown[]; readonly reply?: (reply: unknown) => unknown }
  | { readonly kind: 'refuse'; readonly reason: string };

export interface PlanOptions {
  /** Refuse EVAL/EVALSHA/FCALL (and `_RO` forms) for isolated tenants: literal key names inside scripts are not renamed. */
  refuseScripts?: boolean;
}

/** Commands never run for an isolated tenant: they reach every key, other databases, or the server itself. */
export const REFUSED_COMMANDS: Readonly<Record<string, string>> = Object.freeze({
  flushall: 'it deletes every key, production keys included',
  flushdb: 'it deletes every key of the database, production keys included',
  swapdb: 'it swaps whole databases, production data included',
  select: 'it switches the shared connection to another database',
  move: 'it moves a key to another database, outside the isolated keyspace',
  migrate: 'it moves keys to another server, outside the isolated keyspace',
  config: 'it changes the server for every tenant',
  debug: 'it can crash or reconfigure the server for every tenant',
  shutdown: 'it stops the server for every tenant',
  monitor: 'it reads every command of every tenant',
  save: 'it writes the whole dataset to disk',
  bgsave: 'it writes the whole dataset to disk',
  bgrewriteaof: 'it rewrites the whole append-only file',
  replicaof: 'it reconfigures replication for every tenant',
  slaveof: 'it reconfigures replication for every tenant',
  failover: 'it reconfigures replication for every tenant',
  'script flush': 'it removes the scripts every tenant uses',
  'script kill': "it kills another tenant's script",
  'function flush': 'it removes the functions every tenant uses',
  'function delete': 'it removes a function every tenant uses',
  'function restore': 'it replaces the functions every tenant uses',
  'function load': 'it installs code for every tenant',
  'function kill': "it kills another tenant's function",
  'cluster getkeysinslot': 'it lists production keys',
  'cluster countkeysinslot': 'it counts production keys',
  dbsize: 'it counts production keys',
  'client kill': 'it disconnects other tenants',
  'client pause': 'it pauses every tenant',
  'client unpause': 'it affects every tenant',
  'client no-evict': 'it changes server behaviour for the connection every tenant shares',
  'client tracking': 'it tracks keys across tenants on the shared connection',
  'client reply': 'it changes replies on the connection every tenant shares',
  acl: 'it changes users and permissions for every tenant',
  latency: 'it reads or resets server-wide state',
  slowlog: "it reads other tenants' commands",
  module: 'it loads code into the server for every tenant',
  'memory purge': 'it acts on the whole server',
});

/**
 * Keyless commands that touch no data and are safe for isolated tenants. Any
 * other command whose keys the command table cannot name is refused.
 */
export const KEYLESS_SAFE_COMMANDS: readonly string[] = Object.freeze([
  'ping',
  'echo',
  'time',
  'quit',
  'info',
  'lastsave',
  'role',
  'wait',
  'waitaof',
  'multi',
  'exec',
  'discard',
  'unwatch',
  'hello',
  'auth',
  'readonly',
  'readwrite',
  'asking',
  'command',
  'lolwut',
  'script load',
  'script exists',
  'function list',
  'function stats',
  'function dump',
  'client setname',
  'client getname',
  'client id',
  'client info',
  'client setinfo',
  'cluster info',
  'cluster nodes',
  'cluster slots',
  'cluster shards',
  'cluster myid',
  'memory stats',
  'memory doctor',
  'pubsub numpat',
  'object help',
]);
const KEYLESS_SAFE = new Set(KEYLESS_SAFE_COMMANDS);

const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);
const SUBSCRIBE_COMMANDS = new Set(['subscribe', 'psubscribe', 'ssubscribe', 'unsubscribe', 'punsubscribe', 'sunsubscribe']);
/** Container commands whose subcommand names a key at argument 1. */
const KEY_AFTER_SUBCOMMAND: Readonly<Record<string, ReadonlySet<string>>> = {
  object: new Set(['encoding', 'freq', 'idletime', 'refcount']),
  memory: new Set(['usage']),
  xinfo: new Set(['stream', 'groups', 'consumers']),
  xgroup: new Set(['create', 'createconsumer', 'delconsumer', 'destroy', 'setid']),
  cluster: new Set(['keyslot']),
};
/** Replies that name a key first: [key, …]. */
const REPLY_KEY_FIRST = new Set(['blpop', 'brpop', 'bzpopmin', 'bzpopmax', 'blmpop', 'lmpop', 'zmpop', 'bzmpop']);

// RANDOMKEY would return any key of the database. For an isolated tenant it
// becomes a scan of its own keyspace that returns one of the keys found.
const RANDOM_OWN_KEY = `local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  if #page[2] > 0 then return page[2][math.random(#page[2])] end
until cursor == '0'
return false`;

/** A key with the tenant prefix; Buffers stay Buffers, everything else becomes a string. */
export function prefixKey(prefix: string, key: unknown): unknown {
  if (Buffer.isBuffer(key)) return Buffer.concat([Buffer.from(prefix), key]);
  if (key instanceof Uint8Array) return Buffer.concat([Buffer.from(prefix), Buffer.from(key)]);
  return `${prefix}${String(key)}`;
}

/** Removes the tenant prefix from a key in a reply (strings and Buffers alike). */
export function stripKey(prefix: string, key: unknown): unknown {
  if (typeof key === 'string') return key.startsWith(prefix) ? key.slice(prefix.length) : key;
  if (Buffer.isBuffer(key)) {
    const head = Buffer.from(prefix);
    return key.subarray(0, head.length).equals(head) ? key.subarray(head.length) : key;
  }
  return key;
}

function refuse(reason: string): CommandPlan {
  return { kind: 'refuse', reason };
}

function withPrefixedIndexes(name: string, args: readonly unknown[], indexes: readonly number[], prefix: string): CommandPlan {
  const rewritten = [...args];
  for (const index of indexes) rewritten[index] = prefixKey(prefix, rewritten[index]);
  return { kind: 'send', name, args: rewritten };
}

/**
 * Plans a command for an isolated tenant whose key prefix is `prefix`. `args`
 * must already be flat (after ioredis's argument transformers): the plan
 * rewrites positions, and ioredis then builds the command from the result, so
 * slots and auto-pipelining see the renamed keys.
 */
export function planCommand(rawName: string, args: readonly unknown[], prefix: string, options: PlanOptions = {}): CommandPlan {
  const name = rawName.toLowerCase();
  const sub = typeof args[0] === 'string' || Buffer.isBuffer(args[0]) ? String(args[0]).toLowerCase() : '';
  const qualified = `${name} ${sub}`;
  const refusal = REFUSED_COMMANDS[qualified] || REFUSED_COMMANDS[name];
  if (refusal) return refuse(refusal);
  if (SCRIPT_COMMANDS.has(name) && options.refuseScripts)
    return refuse('scripts are refused for isolated tenants by configuration (refuseScripts)');

  switch (name) {
    case 'keys':
      if (args.length !== 1) return refuse('KEYS takes exactly one pattern');
      return {
        kind: 'send',
        name,
        args: [prefixKey(prefix, args[0])],
        reply: (reply) => (Array.isArray(reply) ? reply.map((key) => stripKey(prefix, key)) : reply),
      };
    case 'scan': {
      // SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: anything else cannot be
      // read with certainty, and a MATCH that is not recognised is a MATCH missed.
      if (args.length === 0 || !/^\d+$/.test(String(args[0])) || args.length % 2 !== 1) {
        return refuse('SCAN takes a numeric cursor followed by MATCH/COUNT/TYPE option pairs');
      }
      const rewritten = [args[0]];
      let matched = false;
      for (let i = 1; i < args.length; i += 2) {
        const option = String(args[i]).toLowerCase();
        if (option === 'match') {
          rewritten.push(args[i], prefixKey(prefix, args[i + 1]));
          matched = true;
        } else if (option === 'count' || option === 'type') {
          rewritten.push(args[i], args[i + 1]);
        } else {
          return refuse(`SCAN option ${String(args[i])} is not one Dye knows (MATCH, COUNT, TYPE)`);
        }
      }
      if (!matched) rewritten.push('MATCH', `${prefix}*`);
      return {
        kind: 'send',
        name,
        args: rewritten,
        reply: (reply) =>
          Array.isArray(reply) && Array.isArray(reply[1]) ? [reply[0], (reply[1] as unknown[]).map((key) => stripKey(prefix, key))] : reply,
      };
    }
    case 'randomkey':
      return { kind: 'send', name: 'eval', args: [RANDOM_OWN_KEY, 0, `${prefix}*`], reply: (reply) => stripKey(prefix, reply ?? null) };
    case 'publish':
      return withPrefixedIndexes(name, args, [0], prefix);
    case 'pubsub':
      return planPubsub(sub, args, prefix);
  }
  if (SUBSCRIBE_COMMANDS.has(name)) {
    if (args.length === 0) {
      return refuse(
        `${name.toUpperCase()} without channels would act on every tenant's subscriptions on this connection; name the channels`,
      );
    }
    return withPrefixedIndexes(
      name,
      args,
      args.map((_, index) => index),
      prefix,
    );
  }
  const keyAfterSubcommand = KEY_AFTER_SUBCOMMAND[name];
  if (keyAfterSubcommand) {
    if (keyAfterSubcommand.has(sub) && args.length >= 2) return withPrefixedIndexes(name, args, [1], prefix);
    if (KEYLESS_SAFE.has(qualified)) return { kind: 'send', name, args: [...args] };
    return refuse(`${name.toUpperCase()} ${sub.toUpperCase()} names no key Dye can isolate`);
  }
  if (!exists(name)) return refuse(`${name.toUpperCase()} is not in the command table, so its keys cannot be found`);

  let indexes: number[];
  try {
    indexes = getKeyIndexes(name, args as string[]).map((index) => (Array.isArray(index) ? (index[0] as number) : index));
  } catch (error) {
    return refuse(`its keys cannot be found: ${(error as Error).message}`);
  }
  if (indexes.length === 0) {
    if (KEYLESS_SAFE.has(name) || KEYLESS_SAFE.has(qualified)) return { kind: 'send', name, args: [...args] };
    return refuse(
      `${name.toUpperCase()}${sub ? ` ${sub.toUpperCase()}` : ''} names no key Dye can isolate and is not a known keyless safe command`,
    );
  }
  const plan = withPrefixedIndexes(name, args, indexes, prefix) as Extract<CommandPlan, { kind: 'send' }>;
  if (REPLY_KEY_FIRST.has(name)) {
    return {
      ...plan,
      reply: (reply) => (Array.isArray(reply) && reply.length > 0 ? [stripKey(prefix, reply[0]), ...reply.slice(1)] : reply),
    };
  }
  if (name === 'xread' || name === 'xreadgroup') {
    return {
      ...plan,
      reply: (reply) =>
        Array.isArray(reply)
          ? reply.map((stream) => (Array.isArray(stream) ? [stripKey(prefix, stream[0]), ...stream.slice(1)] : stream))
          : reply,
    };
  }
  return plan;
}

function planPubsub(sub: string, args: readonly unknown[], prefix: string): CommandPlan {
  const stripAll = (reply: unknown) => (Array.isArray(reply) ? reply.map((channel) => stripKey(prefix, channel)) : reply);
  switch (sub) {
    case 'channels':
    case 'shardchannels':
      return { kind: 'send', name: 'pubsub', args: [args[0], prefixKey(prefix, args[1] ?? '*')], reply: stripAll };
    case 'numsub':
    case 'shardnumsub': {
      const channels = args.slice(1).map((channel) => prefixKey(prefix, channel));
      return {
        kind: 'send',
        name: 'pubsub',
        args: [args[0], ...channels],
        reply: (reply) => (Array.isArray(reply) ? reply.map((item, index) => (index % 2 === 0 ? stripKey(prefix, item) : item)) : reply),
      };
    }
    case 'numpat':
      return { kind: 'send', name: 'pubsub', args: [...args] };
    default:
      return refuse(`PUBSUB ${sub.toUpperCase()} names no channel Dye can isolate`);
  }
}
