import { createRequire } from 'node:module';

/**
 * How one command runs for a tenant whose Redis data is isolated: its key
 * arguments renamed into the tenant's keyspace (and replies renamed back), or
 * refused before anything is sent.
 */
export type CommandPlan =
  | { readonly kind: 'send'; readonly name: string; readonly args: unknown[]; readonly reply?: (reply: unknown) => unknown }
  | { readonly kind: 'refuse'; readonly reason: string };

export interface PlanOptions {
  /** Refuse EVAL/EVALSHA/FCALL (and `_RO` forms, and `defineCommand` scripts) for isolated tenants. */
  refuseScripts?: boolean;
}

/** Where a command is planned: on its own, or queued in a pipeline (written to the connection in one piece). */
export interface PlanSite {
  /** In a pipeline, MULTI/EXEC/DISCARD cannot interleave with other callers' commands. */
  readonly inPipeline?: boolean;
  /** The connection is shared with baseline (`enforcement: 'client-only'`): WATCH/UNWATCH would act on baseline's transactions. */
  readonly sharedConnection?: boolean;
}

/** Commands never run for an isolated tenant: they reach every key, other databases, or the server itself. */
export const REFUSED_COMMANDS: Readonly<Record<string, string>> = Object.freeze({
  flushall: 'it deletes every key, production keys included',
  flushdb: 'it deletes every key of the database, production keys included',
  swapdb: 'it swaps whole databases, production data included',
  move: 'it moves a key to another database, outside the isolated keyspace',
  migrate: 'it moves keys to another server, outside the isolated keyspace',
  config: 'it changes the server for every tenant',
  debug: 'it can crash or reconfigure the server for every tenant',
  shutdown: 'it stops the server for every tenant',
  monitor: 'it reads every command of every tenant',
  sync: 'it copies the whole dataset',
  psync: 'it copies the whole dataset',
  save: 'it writes the whole dataset to disk',
  bgsave: 'it writes the whole dataset to disk',
  bgrewriteaof: 'it rewrites the whole append-only file',
  lastsave: 'it reads server-wide state',
  role: 'it reads server-wide state',
  replicaof: 'it reconfigures replication for every tenant',
  slaveof: 'it reconfigures replication for every tenant',
  replconf: 'it reconfigures replication for every tenant',
  failover: 'it reconfigures replication for every tenant',
  pfdebug: 'it is a debugging command',
  pfselftest: 'it is a debugging command',
  'script flush': 'it removes the scripts every tenant uses',
  'script kill': "it kills another tenant's script",
  'script debug': 'it changes how scripts run on the connection',
  'function flush': 'it removes the functions every tenant uses',
  'function delete': 'it removes a function every tenant uses',
  'function restore': 'it replaces the functions every tenant uses',
  'function load': 'it installs code for every tenant',
  'function kill': "it kills another tenant's function",
  'cluster getkeysinslot': 'it lists production keys',
  'cluster countkeysinslot': 'it counts production keys',
  dbsize: 'it counts production keys',
  acl: 'it changes users and permissions for every tenant',
  latency: 'it reads or resets server-wide state',
  slowlog: "it reads other tenants' commands",
  module: 'it loads code into the server for every tenant',
  'memory purge': 'it acts on the whole server',
  'memory malloc-stats': 'it reads server-wide state',
});

/**
 * Commands that change the state of the connection they run on. An isolated
 * tenant's connection is shared by all its concurrent callers (and, with
 * `enforcement: 'client-only'`, by baseline): a protocol switch, a transaction
 * left open or a database switch would reach commands that are not its own.
 */
const CONNECTION_STATE: Readonly<Record<string, string>> = Object.freeze({
  hello: 'it switches the protocol or the user of the connection other callers share',
  auth: 'it switches the user of the connection other callers share',
  reset: 'it resets the connection other callers share',
  select: 'it switches the connection other callers share to another database',
  quit: 'it closes the connection other callers share (close the client instead)',
  'client reply': 'it silences replies on the connection other callers share',
  'client tracking': 'it tracks keys on the connection other callers share',
  'client caching': 'it changes tracking on the connection other callers share',
  'client no-evict': 'it changes server behaviour for the connection other callers share',
  'client no-touch': 'it changes server behaviour for the connection other callers share',
  'client kill': 'it disconnects other tenants',
  'client pause': 'it pauses every tenant',
  'client unpause': 'it affects every tenant',
  'client unblock': "it unblocks another caller's command",
  'client list': 'it lists every connection of every tenant',
});

const TRANSACTION_COMMANDS = new Set(['multi', 'exec', 'discard']);
const WATCH_COMMANDS = new Set(['watch', 'unwatch']);

/** Keyless commands that touch no data and are safe for isolated tenants. Any other keyless command is refused. */
export const KEYLESS_SAFE_COMMANDS: readonly string[] = Object.freeze([
  'ping',
  'echo',
  'time',
  'info',
  'wait',
  'waitaof',
  'readonly',
  'readwrite',
  'asking',
  'lolwut',
  'command count',
  'command docs',
  'command info',
  'command list',
  'command getkeys',
  'command getkeysandflags',
  'command help',
  'script load',
  'script exists',
  'script help',
  'function list',
  'function stats',
  'function dump',
  'function help',
  'client setname',
  'client getname',
  'client id',
  'client info',
  'client setinfo',
  'client help',
  'cluster info',
  'cluster nodes',
  'cluster slots',
  'cluster shards',
  'cluster myid',
  'cluster help',
  'memory stats',
  'memory doctor',
  'memory help',
  'object help',
  'xinfo help',
  'xgroup help',
  'pubsub numpat',
  'pubsub help',
  'acl whoami',
]);
const KEYLESS_SAFE = new Set(KEYLESS_SAFE_COMMANDS);

const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);
const SUBSCRIBE_COMMANDS = new Set(['subscribe', 'psubscribe', 'ssubscribe', 'unsubscribe', 'punsubscribe', 'sunsubscribe']);
/** Container commands whose subcommand names a key at argument 1, with the argument counts Redis accepts. */
const KEY_AFTER_SUBCOMMAND: Readonly<Record<string, Readonly<Record<string, readonly [min: number, max: number]>>>> = {
  object: { encoding: [2, 2], freq: [2, 2], idletime: [2, 2], refcount: [2, 2] },
  memory: { usage: [2, 4] },
  xinfo: { stream: [2, 5], groups: [2, 2], consumers: [3, 3] },
  xgroup: { create: [4, 7], createconsumer: [4, 4], delconsumer: [4, 4], destroy: [3, 3], setid: [4, 6] },
  cluster: { keyslot: [2, 2] },
};
/** Replies that name a key first: [key, …]. */
const REPLY_KEY_FIRST = new Set(['blpop', 'brpop', 'bzpopmin', 'bzpopmax', 'blmpop', 'lmpop', 'zmpop', 'bzmpop']);

// RANDOMKEY would return any key of the database, and KEYS lists them all
// (both are refused to the isolated ACL user): for an isolated tenant they
// become scans of its own keyspace, inside a script so they stay atomic.
const RANDOM_OWN_KEY = `local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  if #page[2] > 0 then return page[2][math.random(#page[2])] end
until cursor == '0'
return false`;
const OWN_KEYS = `local cursor = '0'
local found = {}
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do found[#found + 1] = key end
until cursor == '0'
return found`;

interface TableEntry {
  readonly arity: number;
  readonly flags: readonly string[];
  readonly keyStart: number;
  readonly keyStop: number;
  readonly step: number;
}
// The table ioredis itself uses (arity, flags, first/last key, step), read as data.
const TABLE = createRequire(import.meta.url)('@ioredis/commands/built/commands.json') as Readonly<Record<string, TableEntry>>;

/** An argument as Redis reads a word: strings, Buffers (latin1, byte for byte) and numbers alike. */
export function word(arg: unknown): string {
  if (typeof arg === 'string') return arg;
  if (Buffer.isBuffer(arg)) return arg.toString('latin1');
  if (arg instanceof Uint8Array) return Buffer.from(arg).toString('latin1');
  return String(arg);
}

function lowerWord(arg: unknown): string {
  return word(arg).toLowerCase();
}

/** A key with the tenant prefix; Buffers stay Buffers, everything else becomes a string. */
export function prefixKey(prefix: string, key: unknown): unknown {
  if (typeof key === 'string') return prefix + key;
  if (Buffer.isBuffer(key)) return Buffer.concat([Buffer.from(prefix), key]);
  if (key instanceof Uint8Array) return Buffer.concat([Buffer.from(prefix), Buffer.from(key)]);
  return prefix + String(key);
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

/**
 * A count argument (numkeys) as Redis accepts it, or undefined: a decimal
 * integer in canonical form, at most `max`. Anything else is refused, never
 * guessed: `1e400`, `-1`, `01`, ` 2` and counts beyond the arguments given.
 */
export function countArgument(arg: unknown, min: number, max: number): number | undefined {
  let value: number;
  if (typeof arg === 'number') value = arg;
  else {
    const text = word(arg);
    if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) return undefined;
    value = Number(text);
  }
  return Number.isSafeInteger(value) && value >= min && value <= max ? value : undefined;
}

/** Key positions of one command, or why they cannot be found. */
type KeyPositions = readonly number[] | string;
type KeyFinder = (args: readonly unknown[]) => KeyPositions;

function range(start: number, count: number): number[] {
  const positions: number[] = [];
  for (let i = 0; i < count; i++) positions.push(start + i);
  return positions;
}

/** `numkeys key…` starting at `at`, with `after` arguments required after the keys. */
function numkeysAt(at: number, min: number, after: number, leading: readonly number[] = []): KeyFinder {
  return (args) => {
    const count = countArgument(args[at], min, args.length - at - 1 - after);
    if (count === undefined) return `numkeys ${JSON.stringify(word(args[at]))} is not a count of the keys given`;
    return [...leading, ...range(at + 1, count)];
  };
}

/** SORT key [BY p] [LIMIT o c] [GET p …] [ASC|DESC] [ALPHA] [STORE dst], as sortCommand parses it. */
function sortKeys(readOnly: boolean): KeyFinder {
  return (args) => {
    const positions = [0];
    for (let i = 1; i < args.length; i++) {
      const option = lowerWord(args[i]);
      if (option === 'asc' || option === 'desc' || option === 'alpha') continue;
      if (option === 'limit' && i + 2 < args.length) i += 2;
      else if ((option === 'by' || option === 'get') && i + 1 < args.length) {
        i++;
        // GET # is the element itself; every other pattern names keys.
        if (!(option === 'get' && word(args[i]) === '#')) positions.push(i);
      } else if (option === 'store' && !readOnly && i + 1 < args.length) positions.push(++i);
      else return `SORT option ${JSON.stringify(word(args[i]))} is not one Redis accepts here`;
    }
    return positions;
  };
}

/** GEORADIUS(BYMEMBER) … [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT n [ANY]] [ASC|DESC] [STORE k] [STOREDIST k]. */
function georadiusKeys(fixed: number): KeyFinder {
  return (args) => {
    if (args.length < fixed) return 'too few arguments';
    const positions = [0];
    for (let i = fixed; i < args.length; i++) {
      const option = lowerWord(args[i]);
      if (['withcoord', 'withdist', 'withhash', 'asc', 'desc'].includes(option)) continue;
      if (option === 'count' && i + 1 < args.length) {
        i++;
        if (lowerWord(args[i + 1]) === 'any') i++;
      } else if ((option === 'store' || option === 'storedist') && i + 1 < args.length) positions.push(++i);
      else return `GEORADIUS option ${JSON.stringify(word(args[i]))} is not one Redis accepts here`;
    }
    return positions;
  };
}

/** XREAD [COUNT n] [BLOCK ms] STREAMS k… id…; XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS k… id…. */
function xreadKeys(group: boolean): KeyFinder {
  return (args) => {
    let i = 0;
    if (group) {
      if (lowerWord(args[0]) !== 'group' || args.length < 3) return 'XREADGROUP starts with GROUP <group> <consumer>';
      i = 3;
    }
    for (; i < args.length; i++) {
      const option = lowerWord(args[i]);
      if ((option === 'count' || option === 'block') && i + 1 < args.length) i++;
      else if (option === 'noack' && group) continue;
      else if (option === 'streams') break;
      else return `option ${JSON.stringify(word(args[i]))} is not one Redis accepts before STREAMS`;
    }
    const rest = args.length - i - 1;
    if (i >= args.length || rest <= 0 || rest % 2 !== 0) return 'STREAMS needs as many IDs as keys';
    return range(i + 1, rest / 2);
  };
}

/** COPY src dst [DB n] [REPLACE]: DB leaves the database, so it is refused. */
const copyKeys: KeyFinder = (args) => {
  for (let i = 2; i < args.length; i++) {
    const option = lowerWord(args[i]);
    if (option === 'db') return 'COPY … DB copies into another database, outside the isolated keyspace';
    if (option !== 'replace') return `COPY option ${JSON.stringify(word(args[i]))} is not one Redis accepts`;
  }
  return [0, 1];
};

/** MSETEX numkeys k v … [options]. */
const msetexKeys: KeyFinder = (args) => {
  const count = countArgument(args[0], 1, Math.floor((args.length - 1) / 2));
  if (count === undefined) return `numkeys ${JSON.stringify(word(args[0]))} is not a count of the pairs given`;
  return range(0, count).map((i) => 1 + i * 2);
};

/**
 * Commands whose keys move with their arguments, each parsed as Redis parses
 * it. A movable-keys command not listed here is refused.
 */
const MOVABLE: Readonly<Record<string, KeyFinder>> = {
  eval: numkeysAt(1, 0, 0),
  evalsha: numkeysAt(1, 0, 0),
  eval_ro: numkeysAt(1, 0, 0),
  evalsha_ro: numkeysAt(1, 0, 0),
  fcall: numkeysAt(1, 0, 0),
  fcall_ro: numkeysAt(1, 0, 0),
  zunionstore: numkeysAt(1, 1, 0, [0]),
  zinterstore: numkeysAt(1, 1, 0, [0]),
  zdiffstore: numkeysAt(1, 1, 0, [0]),
  zunion: numkeysAt(0, 1, 0),
  zinter: numkeysAt(0, 1, 0),
  zdiff: numkeysAt(0, 1, 0),
  zintercard: numkeysAt(0, 1, 0),
  sintercard: numkeysAt(0, 1, 0),
  lmpop: numkeysAt(0, 1, 1),
  zmpop: numkeysAt(0, 1, 1),
  blmpop: numkeysAt(1, 1, 1),
  bzmpop: numkeysAt(1, 1, 1),
  sort: sortKeys(false),
  sort_ro: sortKeys(true),
  georadius: georadiusKeys(5),
  georadiusbymember: georadiusKeys(4),
  xread: xreadKeys(false),
  xreadgroup: xreadKeys(true),
  msetex: msetexKeys,
};
const OVERRIDES: Readonly<Record<string, KeyFinder>> = { copy: copyKeys };

/** Fixed key positions from the command table (first, last, step), for a given argument count. */
function fixedKeys(entry: TableEntry): KeyFinder {
  const first = entry.keyStart - 1;
  // Positions depend only on the argument count: worked out once per count seen.
  const byCount: KeyPositions[] = [];
  return (args) => {
    if (args.length < 64) {
      const known = byCount[args.length];
      if (known !== undefined) return known;
      return (byCount[args.length] = positionsFor(args.length));
    }
    return positionsFor(args.length);
  };
  function positionsFor(count: number): KeyPositions {
    const last = entry.keyStop > 0 ? entry.keyStop - 1 : count + entry.keyStop;
    if (last >= count) return 'too few arguments';
    if (entry.step > 1 && entry.keyStop < 0 && (count - first) % entry.step !== 0) return 'keys and values do not pair up';
    const positions: number[] = [];
    for (let i = first; i <= last; i += entry.step) positions.push(i);
    return Object.freeze(positions);
  }
}

function arityHolds(entry: TableEntry, argCount: number): boolean {
  const total = argCount + 1;
  return entry.arity >= 0 ? total === entry.arity : total >= -entry.arity;
}

/**
 * Everything about one command name that does not depend on its arguments,
 * worked out once per name: planning a call is then a map lookup and a walk
 * over the key positions.
 */
/**
 * `inPlace`: the caller owns `args` (a built command about to be sent), so
 * renamed keys are written into it rather than into a copy.
 */
type Planner = (args: readonly unknown[], prefix: string, site: PlanSite, options: PlanOptions, inPlace: boolean) => CommandPlan;
const planners = new Map<string, Planner>();

function refuse(reason: string): CommandPlan {
  return { kind: 'refuse', reason };
}

/** The plan of a command renamed in place with nothing else to change: one object for all of them. */
export const RENAMED_IN_PLACE: CommandPlan = Object.freeze({ kind: 'send', name: '', args: [] });

function sendWithKeys(name: string, args: readonly unknown[], positions: readonly number[], prefix: string, inPlace = false): CommandPlan {
  if (inPlace) {
    const target = args as unknown[];
    for (const index of positions) target[index] = prefixKey(prefix, target[index]);
    return RENAMED_IN_PLACE;
  }
  const rewritten = args.slice();
  for (const index of positions) rewritten[index] = prefixKey(prefix, rewritten[index]);
  return { kind: 'send', name, args: rewritten };
}

const stripAll = (prefix: string) => (reply: unknown) => (Array.isArray(reply) ? reply.map((item) => stripKey(prefix, item)) : reply);

/** A RESP3 map as ioredis's `replyMapping: 'resp3'` returns it: a plain object keyed by (here) key names. */
const isMapReply = (reply: unknown): reply is Record<string, unknown> =>
  typeof reply === 'object' && reply !== null && !Array.isArray(reply) && !Buffer.isBuffer(reply);

/** A map reply keyed by key or channel names, with the tenant prefix removed from each. */
const stripMapKeys = (prefix: string, reply: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(reply).map(([key, value]) => [stripKey(prefix, key), value]));

function replyFor(name: string, prefix: string): ((reply: unknown) => unknown) | undefined {
  if (REPLY_KEY_FIRST.has(name))
    return (reply) => (Array.isArray(reply) && reply.length > 0 ? [stripKey(prefix, reply[0]), ...reply.slice(1)] : reply);
  if (name === 'xread' || name === 'xreadgroup')
    return (reply) => {
      if (isMapReply(reply)) return stripMapKeys(prefix, reply);
      return Array.isArray(reply)
        ? reply.map((stream) => (Array.isArray(stream) ? [stripKey(prefix, stream[0]), ...stream.slice(1)] : stream))
        : reply;
    };
  return undefined;
}

function keyedPlanner(name: string, finder: KeyFinder, entry: TableEntry | undefined): Planner {
  const scripts = SCRIPT_COMMANDS.has(name);
  const replies = replyFor(name, '') !== undefined;
  return (args, prefix, _site, options, inPlace) => {
    if (scripts && options.refuseScripts) return refuse('scripts are refused for isolated tenants by configuration (refuseScripts)');
    if (entry && !arityHolds(entry, args.length)) return refuse(`wrong number of arguments for ${name.toUpperCase()}`);
    const positions = finder(args);
    if (typeof positions === 'string') return refuse(`its keys cannot be found: ${positions}`);
    if (scripts && positions.length === 0 && _site.sharedConnection)
      return refuse('a script given no keys may name any key, and on the shared connection nothing but Dye would stop it');
    const plan = sendWithKeys(name, args, positions, prefix, inPlace);
    if (!replies) return plan;
    return {
      kind: 'send',
      name,
      args: plan === RENAMED_IN_PLACE ? (args as unknown[]) : (plan as { args: unknown[] }).args,
      reply: replyFor(name, prefix),
    };
  };
}

function planSubcommand(name: string, args: readonly unknown[], prefix: string): CommandPlan {
  const sub = lowerWord(args[0] ?? '');
  const qualified = `${name} ${sub}`;
  const refusal = REFUSED_COMMANDS[qualified] ?? CONNECTION_STATE[qualified];
  if (refusal) return refuse(refusal);
  const keyed = KEY_AFTER_SUBCOMMAND[name]?.[sub];
  if (keyed) {
    if (args.length < keyed[0] || args.length > keyed[1]) return refuse(`wrong number of arguments for ${qualified.toUpperCase()}`);
    return sendWithKeys(name, args, [1], prefix);
  }
  if (name === 'pubsub') return planPubsub(sub, args, prefix);
  if (KEYLESS_SAFE.has(qualified)) return { kind: 'send', name, args: args.slice() };
  return refuse(
    REFUSED_COMMANDS[name] ?? `${qualified.toUpperCase()} names no key Dye can isolate and is not a known keyless safe command`,
  );
}

function planPubsub(sub: string, args: readonly unknown[], prefix: string): CommandPlan {
  switch (sub) {
    case 'channels':
    case 'shardchannels':
      if (args.length > 2) return refuse(`wrong number of arguments for PUBSUB ${sub.toUpperCase()}`);
      return { kind: 'send', name: 'pubsub', args: [args[0], prefixKey(prefix, args[1] ?? '*')], reply: stripAll(prefix) };
    case 'numsub':
    case 'shardnumsub':
      return {
        kind: 'send',
        name: 'pubsub',
        args: [args[0], ...args.slice(1).map((channel) => prefixKey(prefix, channel))],
        reply: (reply) => {
          if (isMapReply(reply)) return stripMapKeys(prefix, reply);
          return Array.isArray(reply) ? reply.map((item, index) => (index % 2 === 0 ? stripKey(prefix, item) : item)) : reply;
        },
      };
    case 'numpat':
    case 'help':
      return { kind: 'send', name: 'pubsub', args: args.slice() };
    default:
      return refuse(`PUBSUB ${sub.toUpperCase()} names no channel Dye can isolate`);
  }
}

const CONTAINERS = new Set(['object', 'memory', 'xinfo', 'xgroup', 'cluster', 'client', 'command', 'script', 'function', 'pubsub', 'acl']);

function buildPlanner(name: string): Planner {
  if (CONTAINERS.has(name)) {
    return (args, prefix) => (args.length === 0 ? refuse(`${name.toUpperCase()} needs a subcommand`) : planSubcommand(name, args, prefix));
  }
  const refusal = REFUSED_COMMANDS[name];
  if (refusal) return () => refuse(refusal);
  const stateChange = CONNECTION_STATE[name];
  if (stateChange) return () => refuse(stateChange);
  if (TRANSACTION_COMMANDS.has(name)) {
    return (args, _prefix, site) =>
      site.inPipeline
        ? { kind: 'send', name, args: args.slice() }
        : refuse(
            `${name.toUpperCase()} on its own leaves the connection other callers share inside a transaction; use multi() (pipelined)`,
          );
  }
  if (WATCH_COMMANDS.has(name)) {
    const keyed = keyedPlanner(name, name === 'watch' ? fixedKeys(TABLE.watch as TableEntry) : () => [], TABLE[name]);
    return (args, prefix, site, options, inPlace) =>
      site.sharedConnection
        ? refuse(`${name.toUpperCase()} on the connection baseline shares would act on baseline's transactions`)
        : keyed(args, prefix, site, options, inPlace);
  }
  switch (name) {
    case 'keys':
      return (args, prefix) =>
        args.length !== 1
          ? refuse('KEYS takes exactly one pattern')
          : { kind: 'send', name: 'eval', args: [OWN_KEYS, 0, prefixKey(prefix, args[0])], reply: stripAll(prefix) };
    case 'scan':
      return planScan;
    case 'randomkey':
      return (args, prefix) =>
        args.length !== 0
          ? refuse('RANDOMKEY takes no arguments')
          : { kind: 'send', name: 'eval', args: [RANDOM_OWN_KEY, 0, `${prefix}*`], reply: (reply) => stripKey(prefix, reply ?? null) };
    case 'publish':
    case 'spublish':
      return (args, prefix) =>
        args.length !== 2 ? refuse(`wrong number of arguments for ${name.toUpperCase()}`) : sendWithKeys(name, args, [0], prefix);
  }
  if (SUBSCRIBE_COMMANDS.has(name)) {
    return (args, prefix) =>
      args.length === 0
        ? refuse(`${name.toUpperCase()} without channels would act on every subscription of the connection; name the channels`)
        : sendWithKeys(name, args, range(0, args.length), prefix);
  }
  const entry = TABLE[name];
  if (!entry) return () => refuse(`${name.toUpperCase()} is not in the command table, so its keys cannot be found`);
  const finder = OVERRIDES[name] ?? MOVABLE[name];
  if (finder) return keyedPlanner(name, finder, entry);
  if (entry.flags.includes('movablekeys'))
    return () => refuse(`the keys of ${name.toUpperCase()} move with its arguments and Dye cannot read them`);
  if (entry.step > 0) return keyedPlanner(name, fixedKeys(entry), entry);
  if (KEYLESS_SAFE.has(name)) return (args) => ({ kind: 'send', name, args: args.slice() });
  return () => refuse(`${name.toUpperCase()} names no key Dye can isolate and is not a known keyless safe command`);
}

/** SCAN cursor [MATCH p] [COUNT n] [TYPE t]: every MATCH prefixed (Redis uses the last), one added when there is none. */
const planScan: Planner = (args, prefix) => {
  if (args.length === 0 || !/^[0-9]{1,20}$/.test(word(args[0])) || args.length % 2 !== 1) {
    return refuse('SCAN takes a numeric cursor followed by MATCH/COUNT/TYPE option pairs');
  }
  const rewritten: unknown[] = [args[0]];
  let matched = false;
  for (let i = 1; i < args.length; i += 2) {
    const option = lowerWord(args[i]);
    if (option === 'match') {
      rewritten.push(args[i], prefixKey(prefix, args[i + 1]));
      matched = true;
    } else if (option === 'count' || option === 'type') rewritten.push(args[i], args[i + 1]);
    else return refuse(`SCAN option ${JSON.stringify(word(args[i]))} is not one Dye knows (MATCH, COUNT, TYPE)`);
  }
  if (!matched) rewritten.push('MATCH', `${prefix}*`);
  return {
    kind: 'send',
    name: 'scan',
    args: rewritten,
    reply: (reply) =>
      Array.isArray(reply) && Array.isArray(reply[1]) ? [reply[0], (reply[1] as unknown[]).map((key) => stripKey(prefix, key))] : reply,
  };
};

function plannerFor(rawName: string): Planner {
  let planner = planners.get(rawName);
  if (!planner) {
    const name = rawName.toLowerCase();
    planner = planners.get(name) ?? buildPlanner(name);
    // Names arrive in the case the caller wrote (`call('SET')`): remember the
    // spellings seen, up to a bound, so a stream of made-up names cannot grow it.
    if (planners.size < 2048) planners.set(name, planner).set(rawName, planner);
  }
  return planner;
}

/**
 * Plans a command for an isolated tenant whose key prefix is `prefix`. `args`
 * are the command's final, flat arguments (as ioredis sends them). Every key
 * Redis would read is renamed, as Redis parses the command; a command whose
 * keys cannot be found with certainty, that leaves the database or the
 * keyspace, or that changes the shared connection, is refused.
 */
export function planCommand(
  rawName: string,
  args: readonly unknown[],
  prefix: string,
  options: PlanOptions = {},
  site: PlanSite = {},
): CommandPlan {
  return plannerFor(rawName)(args, prefix, site, options, false);
}

/**
 * As planCommand, for a built command the caller owns: renamed keys are
 * written into `args` itself (the returned plan's args, when it renames
 * anything in place, are that same array).
 */
export function planCommandInPlace(rawName: string, args: unknown[], prefix: string, options: PlanOptions, site: PlanSite): CommandPlan {
  // (RENAMED_IN_PLACE: the keys in `args` are renamed and nothing else changes.)
  return plannerFor(rawName)(args, prefix, site, options, true);
}
