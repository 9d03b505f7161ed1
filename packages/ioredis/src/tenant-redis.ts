import {
  currentTenant,
  FirstUseCheck,
  getDefaultPolicy,
  isolatedKeyPrefix,
  isolationRefusal,
  logWarning,
  type Tenant,
  type TenantPolicy,
} from '@dye/core';
import { list as commandList } from '@ioredis/commands';
import { type Cluster, Command, type Redis } from 'ioredis';
import type { PlanOptions } from './command-plan.js';
import { entryPointOf } from './entry-points.js';
import { internalListeners, ListenerRegistry } from './listeners.js';
import { type PendingCommand, plannedFacade, type UseGate } from './planned-facade.js';
import { type IsolatedRedisUser, verifyIsolatedConnection } from './shadow-user.js';

export type { IsolatedRedisUser };

export interface TenantRedisOptions extends PlanOptions {
  /** Which tenants isolate Redis (isolated tenants always; colors with `isolate: ['redis']`). Default: the default policy. */
  policy?: TenantPolicy;
  /**
   * The Redis user isolated tenants' commands run as, on connections of their
   * own. Redis itself then keeps them to their keys. Required unless
   * `enforcement: 'client-only'`.
   */
  isolated?: IsolatedRedisUser;
  /**
   * `account` (the default): isolated tenants run as `isolated`, checked at
   * first use. `client-only`: on the wrapped client's own connection and user,
   * kept apart by Dye's renaming alone (logged at start-up; for development).
   */
  enforcement?: 'account' | 'client-only';
  /** How often the isolated user's confinement is checked again. Default 60 s. */
  accountRecheckInterval?: number;
  /** A check that takes longer has failed (isolated commands are refused until one passes). Default 30 s. */
  accountCheckTimeout?: number;
}

type Client = Redis | Cluster;
type AnyFunction = (...args: unknown[]) => unknown;

/** Isolated tenants a client serves at once, each on a connection of its own. */
export const MAX_ISOLATED_TENANTS = 16;

/** One isolated tenant's way to Redis through one wrapped client. */
interface Lane {
  readonly tenant: Tenant;
  /** Its own connection (account), or the wrapped client (client-only). */
  readonly connection: Client;
  readonly facade: Client;
  /** Plans and sends a built command (the facade's sendCommand). */
  readonly send: (command: PendingCommand) => unknown;
  readonly own: boolean;
}

interface Wrapper {
  readonly target: Client;
  readonly options: TenantRedisOptions;
  readonly lanes: Map<string, Lane>;
  /** The connection the isolated user's ACL is read through, opened at the first check. */
  checker?: Client;
  readonly listeners: ListenerRegistry;
  proxy?: Client;
}

/**
 * Wraps an ioredis client (`Redis` or `Cluster`) for tenants. Baseline and
 * colors pass through untouched. Isolated tenants (`shadow`, or a color whose
 * policy isolates `redis`) run every command in their own keyspace
 * (`shadow:<key>`), on connections of their own authenticated as the
 * `isolated` ACL user, which Redis confines to that keyspace; what cannot be
 * isolated is refused with IsolationError before anything is sent. The result
 * is used exactly like the client it wraps, with the same type.
 */
export function tenantRedis<T extends Client>(client: T, options: TenantRedisOptions = {}): T {
  if (options.enforcement === 'client-only') {
    logWarning(
      'dye.redis.client-only',
      "isolated tenants of Redis share the production connection and user and are kept apart by Dye's renaming only (enforcement: 'client-only'); give them an ACL user of their own with `isolated`",
    );
  } else if (options.isolated && (!options.isolated.username || typeof options.isolated.password !== 'string')) {
    throw new TypeError('tenantRedis: isolated needs the username and password of the ACL user isolated tenants connect as');
  }
  const wrapper: Wrapper = {
    target: client,
    options,
    lanes: new Map(),
    listeners: new ListenerRegistry(() => options.policy ?? getDefaultPolicy()),
  };
  // The isolated connections live as long as the client: when it ends for good, so do they.
  const closeWithClient = () => closeLanes(wrapper, 'disconnect');
  internalListeners.add(closeWithClient);
  client.once('end', closeWithClient);
  return wrap(wrapper) as T;
}

function policyOf(wrapper: Wrapper): TenantPolicy {
  return wrapper.options.policy ?? getDefaultPolicy();
}

/** The tenant in effect when its Redis data is isolated, else undefined (baseline and shared-data colors). */
function isolatedTenant(wrapper: Wrapper): Tenant | undefined {
  const tenant = currentTenant();
  if (tenant.kind === 'baseline') return undefined;
  return policyOf(wrapper).isolates(tenant, 'redis') ? tenant : undefined;
}

const WRAPPED_CLIENT = Symbol.for('dye.tenantRedis.client');

/**
 * The client a `tenantRedis` wrapper wraps (or the client itself): for
 * libraries that name their own keys per tenant and must not be renamed again.
 */
export function unwrapTenantRedis<T extends Client>(client: T): T {
  return ((client as unknown as Record<symbol, T | undefined>)[WRAPPED_CLIENT] ?? client) as T;
}

function wrap(wrapper: Wrapper): Client {
  const { target } = wrapper;
  const cache = new Map<string | symbol, unknown>();
  const refuseState = (tenant: Tenant, what: string) =>
    isolationRefusal('redis', {
      tenant: tenant.name,
      refused: what,
      reason: "it reaches the production client's own connection, options or state, which an isolated tenant may not read or change",
    });
  wrapper.proxy = new Proxy(target, {
    get(client, property) {
      const cached = cache.get(property);
      if (cached !== undefined) return cached;
      const value = Reflect.get(client, property, client);
      if (typeof value === 'function' && typeof property === 'string') {
        const dispatch = dispatcher(wrapper, property, value as AnyFunction);
        cache.set(property, dispatch);
        return dispatch;
      }
      // State of the client (its socket, options, queues): production's own.
      const tenant = isolatedTenant(wrapper);
      if (!tenant) return property === WRAPPED_CLIENT ? client : typeof value === 'function' ? value.bind(client) : value;
      if (property === 'then' || (typeof property === 'symbol' && property !== WRAPPED_CLIENT)) return value;
      if (property === 'status' || property === 'isCluster' || property === 'mode') return value;
      if (property === 'options') return redactedOptions(client.options);
      throw refuseState(tenant, `ioredis ${String(property)}`);
    },
    set(client, property, value) {
      const tenant = isolatedTenant(wrapper);
      if (tenant) throw refuseState(tenant, `setting ioredis ${String(property)}`);
      return Reflect.set(client, property, value, client);
    },
    defineProperty(client, property, descriptor) {
      const tenant = isolatedTenant(wrapper);
      if (tenant) throw refuseState(tenant, `defining ioredis ${String(property)}`);
      return Reflect.defineProperty(client, property, descriptor);
    },
    deleteProperty(client, property) {
      const tenant = isolatedTenant(wrapper);
      if (tenant) throw refuseState(tenant, `deleting ioredis ${String(property)}`);
      return Reflect.deleteProperty(client, property);
    },
  });
  return wrapper.proxy;
}

/** A copy of the client's options an isolated tenant may read: no credentials, nothing to change. */
function redactedOptions(options: object): object {
  const {
    password: _password,
    username: _username,
    sentinelPassword: _sentinel,
    redisOptions,
    ...rest
  } = options as Record<string, unknown>;
  return Object.freeze({ ...rest, ...(redisOptions ? { redisOptions: redactedOptions(redisOptions as object) } : {}) });
}

/** Builtin commands the fast path builds itself (as ioredis's own methods do): `get`, `setBuffer`, … */
const BUILTIN = new Set(commandList.filter((name) => !['multi', 'quit', 'monitor'].includes(name)));

function dispatcher(wrapper: Wrapper, property: string, original: AnyFunction): AnyFunction {
  const { target } = wrapper;
  const buffer = property.endsWith('Buffer');
  const builtin = BUILTIN.has(buffer ? property.slice(0, -'Buffer'.length) : property)
    ? buffer
      ? property.slice(0, -6)
      : property
    : undefined;
  if (builtin) {
    return function tenantCommand(...args: unknown[]) {
      const tenant = isolatedTenant(wrapper);
      if (!tenant) return original.apply(target, args);
      const lane = laneFor(wrapper, tenant);
      if (lane instanceof Error) return rejectCall(lane, args);
      const client = lane.connection;
      // Auto-pipelining groups commands itself, and a script may shadow a builtin
      // name: let ioredis build those, through the facade.
      if (
        client.options.enableAutoPipelining ||
        client.options.showFriendlyErrorStack ||
        builtin in (target as unknown as Definitions).scriptsSet
      ) {
        return isolatedCall(wrapper, tenant, property, original, args);
      }
      const callback = typeof args[args.length - 1] === 'function' ? (args.pop() as AnyFunction) : undefined;
      const command = new Command(
        builtin,
        args as string[],
        { keyPrefix: client.options.keyPrefix, replyEncoding: buffer ? null : 'utf8' },
        callback,
      );
      return lane.send(command as unknown as PendingCommand);
    };
  }
  // What baseline does differently is fixed per method name: worked out once, not per call.
  const baselineKind = entryPointOf(target, property);
  return function tenantDispatch(...args: unknown[]) {
    const tenant = isolatedTenant(wrapper);
    // Baseline and shared-data tenants: one context lookup, then the client itself.
    if (!tenant) {
      switch (baselineKind) {
        case 'listen':
          wrapper.listeners.add(target, property, args, currentTenant());
          return wrapper.proxy;
        case 'unlisten':
          wrapper.listeners.remove(property, args, undefined, [target]);
          return wrapper.proxy;
        case 'duplicate':
          return tenantRedis(original.apply(target, args) as Client, wrapper.options);
        case 'define':
          return define(wrapper, property as 'defineCommand' | 'addBuiltinCommand', args);
        default:
          return original.apply(target, args);
      }
    }
    return isolatedCall(wrapper, tenant, property, original, args);
  };
}

function isolatedCall(wrapper: Wrapper, tenant: Tenant, property: string, original: AnyFunction, args: unknown[]): unknown {
  const { target } = wrapper;
  const kind = entryPointOf(target, property);
  switch (kind) {
    case 'command': {
      const lane = laneFor(wrapper, tenant);
      if (lane instanceof Error) return rejectCall(lane, args);
      if (!(property in lane.connection)) syncDefinitions(wrapper, lane);
      try {
        return (Reflect.get(lane.facade, property) as AnyFunction).apply(lane.facade, args);
      } catch (error) {
        // A refusal while queueing (autopipelining) surfaces as the call's own rejection.
        return rejectCall(error, args);
      }
    }
    case 'pipeline': {
      const lane = laneFor(wrapper, tenant);
      if (lane instanceof Error) throw lane;
      syncDefinitions(wrapper, lane);
      return (Reflect.get(lane.facade, property) as AnyFunction).apply(lane.facade, args);
    }
    case 'duplicate':
      return tenantRedis(original.apply(target, args) as Client, wrapper.options);
    case 'listen': {
      // Heard on the tenant's own connection (its messages, its connection's events), run in the tenant.
      const lane = laneFor(wrapper, tenant);
      if (lane instanceof Error) throw lane;
      wrapper.listeners.add(lane.connection, property, args, tenant);
      return wrapper.proxy;
    }
    case 'unlisten':
      wrapper.listeners.remove(property, args, tenant.name, []);
      return wrapper.proxy;
    case 'listeners':
      return wrapper.listeners.inspect(property, args, tenant.name);
    case 'inspect':
      return original.apply(target, args);
    default:
      throw isolationRefusal('redis', {
        tenant: tenant.name,
        refused: `ioredis ${property}()`,
        reason:
          kind === 'lifecycle'
            ? 'it opens or closes the client production shares; that is baseline’s to do'
            : kind === 'define'
              ? 'it adds a command to the client every tenant uses; define commands in baseline, at start-up'
              : kind === 'refuse'
                ? 'it reaches a raw connection or the client’s internal machinery, where Dye cannot keep the tenant to its keyspace'
                : 'Dye does not know what this method sends, so it cannot keep the tenant to its keyspace',
      });
  }
}

function rejectCall(error: unknown, args: unknown[]): Promise<never> {
  const callback = args[args.length - 1];
  const rejection = Promise.reject(error);
  if (typeof callback === 'function') {
    rejection.catch(() => {});
    process.nextTick(callback as AnyFunction, error);
  }
  return rejection;
}

/** The tenant's lane, opened at first use; an Error when isolated tenants cannot be served. */
function laneFor(wrapper: Wrapper, tenant: Tenant): Lane | Error {
  const existing = wrapper.lanes.get(tenant.name);
  if (existing) return existing;
  const { options, target } = wrapper;
  const prefix = isolatedKeyPrefix(tenant.name);
  if (options.enforcement === 'client-only') {
    const gate: UseGate = { passed: true, ensure: () => Promise.resolve() };
    const { facade, send } = plannedFacade(target, { tenant, prefix, options, sharedConnection: true, gate });
    const lane: Lane = { tenant, connection: target, facade, send, own: false };
    wrapper.lanes.set(tenant.name, lane);
    return lane;
  }
  if (!options.isolated) {
    return isolationRefusal('redis', {
      tenant: tenant.name,
      refused: 'Redis commands',
      reason:
        "isolated tenants run as a Redis ACL user of their own, and none is configured: create it with `dye shadow grant --redis <url> --user <name> --apply` (or grantShadowAccess) and pass tenantRedis(client, { isolated: { username, password } }); enforcement: 'client-only' runs them on the production connection instead",
    });
  }
  if (wrapper.lanes.size >= MAX_ISOLATED_TENANTS) {
    return isolationRefusal('redis', {
      tenant: tenant.name,
      refused: 'Redis commands',
      reason: `a client serves at most ${MAX_ISOLATED_TENANTS} isolated tenants at once, each on connections of its own`,
    });
  }
  const connection = openIsolatedConnection(wrapper, tenant, options.isolated);
  const user = options.isolated;
  const check = new FirstUseCheck(
    () => {
      // A connection of its own for reading the ACL: the wrapped client may be a subscriber, or blocked.
      wrapper.checker ??= user.checkWith ?? duplicateForCheck(target);
      return verifyIsolatedConnection({ connection, checker: wrapper.checker, user, tenant, policy: policyOf(wrapper) });
    },
    5_000,
    options.accountRecheckInterval ?? 60_000,
    options.accountCheckTimeout ?? 30_000,
  );
  const { facade, send } = plannedFacade(connection, { tenant, prefix, options, sharedConnection: false, gate: check });
  const lane: Lane = { tenant, connection, facade, send, own: true };
  wrapper.lanes.set(tenant.name, lane);
  syncDefinitions(wrapper, lane);
  return lane;
}

const syncedCounts = new WeakMap<Lane, [scripts: number, builtins: number]>();

interface Definitions {
  scriptsSet: Record<string, { lua: string; numberOfKeys: number | null; readOnly: boolean }>;
  addedBuiltinSet: Set<string>;
}

/**
 * Scripts (`defineCommand`) and commands (`addBuiltinCommand`) live on the
 * client they were added to, the wrapped one or the wrapper: the isolated
 * connection gets the same, so the same methods exist in every tenant.
 */
function syncDefinitions(wrapper: Wrapper, lane: Lane): void {
  if (!lane.own) return;
  const from = wrapper.target as unknown as Definitions;
  const to = lane.connection as unknown as Definitions;
  // Nothing added since the last sync (the usual case, checked on every pipeline).
  const seen = syncedCounts.get(lane);
  const scripts = Object.keys(from.scriptsSet).length;
  if (seen && seen[0] === scripts && seen[1] === from.addedBuiltinSet.size && scripts === 0) return;
  syncedCounts.set(lane, [scripts, from.addedBuiltinSet.size]);
  for (const [name, script] of Object.entries(from.scriptsSet)) {
    if (to.scriptsSet[name]?.lua === script.lua) continue;
    lane.connection.defineCommand(name, {
      lua: script.lua,
      ...(script.numberOfKeys === null ? {} : { numberOfKeys: script.numberOfKeys }),
      readOnly: script.readOnly,
    });
  }
  for (const name of from.addedBuiltinSet) if (!to.addedBuiltinSet.has(name)) lane.connection.addBuiltinCommand(name);
}

function openIsolatedConnection(wrapper: Wrapper, tenant: Tenant, user: IsolatedRedisUser): Client {
  const { target } = wrapper;
  const credentials = { username: user.username, password: user.password };
  let connection: Client;
  if ((target as Cluster).isCluster) {
    const cluster = target as Cluster;
    // Autopipelining groups commands by the slot of names before renaming; off, each command goes to its renamed slot.
    connection = cluster.duplicate([], {
      redisOptions: { ...cluster.options.redisOptions, ...credentials },
      enableAutoPipelining: false,
    });
  } else {
    const name = (target as Redis).options.connectionName;
    connection = (target as Redis).duplicate({ ...credentials, ...(name ? { connectionName: `${name}:${tenant.name}` } : {}) });
  }
  const forwardError = (error: Error) => {
    if (target.listenerCount('error') > 0) target.emit('error', error);
    else
      logWarning('dye.redis.isolated-connection', `the isolated Redis connection of tenant ${tenant.name} failed: ${error.message}`, {
        tenant: tenant.name,
      });
  };
  internalListeners.add(forwardError as AnyFunction);
  connection.on('error', forwardError);
  return connection;
}

function define(wrapper: Wrapper, method: 'defineCommand' | 'addBuiltinCommand', args: unknown[]): unknown {
  const result = (wrapper.target[method] as AnyFunction)(...args);
  for (const lane of wrapper.lanes.values()) syncDefinitions(wrapper, lane);
  return result;
}

/** A connection to read ACLs through, beside `target`, for the isolated user's check. */
export function duplicateForCheck(target: Client): Client {
  const checker = (target as Cluster).isCluster ? (target as Cluster).duplicate() : (target as Redis).duplicate();
  checker.on('error', () => {}); // a failed check says why; the connection's own errors add nothing
  return checker;
}

function closeLanes(wrapper: Wrapper, how: 'quit' | 'disconnect'): void {
  if (wrapper.checker && wrapper.checker !== wrapper.options.isolated?.checkWith) wrapper.checker.disconnect();
  wrapper.checker = undefined;
  for (const lane of wrapper.lanes.values()) {
    if (!lane.own) continue;
    if (how === 'quit') lane.connection.quit().catch(() => lane.connection.disconnect());
    else lane.connection.disconnect();
  }
  wrapper.lanes.clear();
}
