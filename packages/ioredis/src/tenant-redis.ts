import { currentTenant, getDefaultPolicy, isolatedKeyPrefix, isolationRefusal, type Tenant, type TenantPolicy } from '@dye/core';
import { list as commandList } from '@ioredis/commands';
import { type Cluster, Command, type Redis } from 'ioredis';
import { type CommandPlan, type PlanOptions, planCommand } from './command-plan.js';
import { wrapMessageListener } from './pubsub.js';

export interface TenantRedisOptions extends PlanOptions {
  /** Which tenants isolate Redis (isolated tenants always; colors with `isolate: ['redis']`). Default: the default policy. */
  policy?: TenantPolicy;
}

type Client = Redis | Cluster;
type AnyFunction = (...args: unknown[]) => unknown;

const COMMANDS = new Set(commandList);
const STREAM_METHODS = new Set([
  'scanStream',
  'sscanStream',
  'hscanStream',
  'zscanStream',
  'scanBufferStream',
  'sscanBufferStream',
  'hscanBufferStream',
  'zscanBufferStream',
]);
const LISTENER_METHODS = new Set(['on', 'addListener', 'once', 'prependListener', 'prependOnceListener']);
const REMOVE_LISTENER_METHODS = new Set(['off', 'removeListener']);

interface Context {
  readonly target: Client;
  readonly options: TenantRedisOptions;
  /** Fixed for pipelines, transactions and streams; undefined: the tenant current at each call. */
  readonly bound: Tenant | undefined;
  /** The wrapping proxy, returned where the client returns itself (`on()` chaining). */
  proxy?: Client;
}

/**
 * Wraps an ioredis client (`Redis` or `Cluster`) so that every command run in
 * an isolated tenant (`shadow`, or a color whose policy isolates `redis`) uses
 * the tenant's own keyspace (`shadow:<key>`), or is refused with
 * IsolationError before anything is sent. Baseline and colors pass through.
 * The result is used exactly like the client it wraps, with the same type.
 */
export function tenantRedis<T extends Client>(client: T, options: TenantRedisOptions = {}): T {
  return wrap({ target: client, options, bound: undefined }) as T;
}

function policyOf(context: Context): TenantPolicy {
  return context.options.policy ?? getDefaultPolicy();
}

/** The key prefix of the tenant in effect, or undefined when its Redis data is shared. */
function isolatedPrefix(context: Context): { tenant: Tenant; prefix: string } | undefined {
  const tenant = context.bound ?? currentTenant();
  if (tenant.kind === 'baseline') return undefined;
  if (!policyOf(context).isolates(tenant, 'redis')) return undefined;
  return { tenant, prefix: isolatedKeyPrefix(tenant.name) };
}

function wrap(context: Context): Client {
  const cache = new Map<string | symbol, unknown>();
  context.proxy = new Proxy(context.target, {
    get(target, property) {
      const cached = cache.get(property);
      if (cached !== undefined) return cached;
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const wrapped = wrapMethod(context, property, value as AnyFunction);
      cache.set(property, wrapped);
      return wrapped;
    },
  });
  return context.proxy;
}

function wrapMethod(context: Context, property: string | symbol, original: AnyFunction): AnyFunction {
  const { target } = context;
  if (typeof property !== 'string') return original.bind(target);
  // Before the command table: `multi` is a command there, but on a client it
  // builds a transaction that must stay bound to its tenant.
  if (property === 'pipeline' || property === 'multi') return pipelineMethod(context, original);
  if (property === 'call' || property === 'callBuffer') return callMethod(context, original);
  if (property === 'sendCommand') return sendCommandMethod(context, original);
  const commandName = commandOf(target, property);
  if (commandName !== undefined) return commandMethod(context, commandName, property.endsWith('Buffer'), original);
  if (STREAM_METHODS.has(property)) return streamMethod(context, original);
  if (property === 'duplicate') return (...args: unknown[]) => tenantRedis(original.apply(target, args) as Client, context.options);
  if (LISTENER_METHODS.has(property)) return listenerMethod(context, original);
  if (REMOVE_LISTENER_METHODS.has(property)) {
    return (event: unknown, listener: unknown) => {
      original.call(target, event, wrappedListeners.get(listener as AnyFunction)?.get(event as string) ?? listener);
      return proxyOf(context);
    };
  }
  return original.bind(target);
}

/** `get`, `getBuffer`, `hset`, custom `defineCommand` scripts … → the command name. */
function commandOf(target: Client, property: string): string | undefined {
  const base = property.endsWith('Buffer') ? property.slice(0, -'Buffer'.length) : property;
  if (COMMANDS.has(base)) return base;
  const scripts = (target as unknown as { scriptsSet?: Record<string, unknown> }).scriptsSet;
  if (scripts && Object.hasOwn(scripts, base)) return `script:${base}`;
  return undefined;
}

/** ioredis turns `mset({…})` and `hset(key, {…})` into flat lists, then flattens arrays one level. */
function flatten(name: string, args: unknown[]): unknown[] {
  const transformer = (Command as unknown as { _transformer: { argument: Record<string, (args: unknown[]) => unknown[]> } })._transformer
    .argument[name];
  return (transformer ? transformer(args) : args).flat();
}

function splitCallback(args: unknown[]): { rest: unknown[]; callback: ((error: unknown, value?: unknown) => void) | undefined } {
  const last = args[args.length - 1];
  if (typeof last === 'function') return { rest: args.slice(0, -1), callback: last as (error: unknown, value?: unknown) => void };
  return { rest: args, callback: undefined };
}

function refused(tenant: Tenant, name: string, reason: string, callback: ((error: unknown) => void) | undefined): Promise<never> {
  const error = isolationRefusal('redis', { tenant: tenant.name, refused: `Redis ${name.toUpperCase()}`, reason });
  const rejection = Promise.reject(error);
  if (callback) {
    rejection.catch(() => {});
    process.nextTick(callback, error);
  }
  return rejection;
}

function settle(
  result: unknown,
  plan: Extract<CommandPlan, { kind: 'send' }>,
  callback: ((error: unknown, value?: unknown) => void) | undefined,
) {
  const transformed = plan.reply ? (result as Promise<unknown>).then(plan.reply) : (result as Promise<unknown>);
  if (callback)
    transformed.then(
      (value) => callback(null, value),
      (error: unknown) => callback(error),
    );
  return transformed;
}

/** Plans a custom script (`defineCommand`) call: its first `numberOfKeys` arguments are keys. */
function planScript(target: Client, scriptName: string, args: unknown[], prefix: string): CommandPlan {
  const script = (target as unknown as { scriptsSet: Record<string, { numberOfKeys: number | null }> }).scriptsSet[scriptName];
  const count = script?.numberOfKeys ?? Number(args[0]);
  const offset = script?.numberOfKeys === null ? 1 : 0;
  if (!Number.isInteger(count) || count < 0) return { kind: 'refuse', reason: `the number of keys of script ${scriptName} is unknown` };
  const rewritten = [...args];
  for (let i = offset; i < offset + count; i++) rewritten[i] = `${prefix}${String(rewritten[i])}`;
  return { kind: 'send', name: scriptName, args: rewritten };
}

function commandMethod(context: Context, name: string, buffer: boolean, original: AnyFunction): AnyFunction {
  const { target } = context;
  return function tenantCommand(...args: unknown[]) {
    const isolated = isolatedPrefix(context);
    // Baseline and shared-data tenants: one context lookup, then the client itself.
    if (!isolated) return original.apply(target, args);
    const { rest, callback } = splitCallback(args);
    const plan = name.startsWith('script:')
      ? planScript(target, name.slice('script:'.length), rest.flat(), isolated.prefix)
      : planCommand(name, flatten(name, rest), isolated.prefix, context.options);
    if (plan.kind === 'refuse') return refused(isolated.tenant, name, plan.reason, callback);
    const result =
      plan.name === name || name.startsWith('script:')
        ? original.apply(target, plan.args)
        : (buffer ? target.callBuffer : target.call).call(target, plan.name, ...(plan.args as string[]));
    return settle(result, plan, callback);
  };
}

function callMethod(context: Context, original: AnyFunction): AnyFunction {
  const { target } = context;
  return function tenantCall(...args: unknown[]) {
    const isolated = isolatedPrefix(context);
    if (!isolated) return original.apply(target, args);
    const { rest, callback } = splitCallback(args);
    const [name, ...commandArgs] = rest;
    const lower = String(name).toLowerCase();
    const plan = planCommand(lower, flatten(lower, commandArgs), isolated.prefix, context.options);
    if (plan.kind === 'refuse') return refused(isolated.tenant, lower, plan.reason, callback);
    return settle(original.apply(target, [plan.name, ...plan.args]), plan, callback);
  };
}

interface MutableCommand {
  name: string;
  args: unknown[];
  keys?: unknown;
  slot?: unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  promise: Promise<unknown>;
}

function sendCommandMethod(context: Context, original: AnyFunction): AnyFunction {
  const { target } = context;
  return function tenantSendCommand(command: unknown, ...rest: unknown[]) {
    const isolated = isolatedPrefix(context);
    if (!isolated) return original.call(target, command, ...rest);
    const cmd = command as MutableCommand;
    const plan = planCommand(cmd.name, cmd.args, isolated.prefix, context.options);
    if (plan.kind === 'refuse') {
      cmd.reject(
        isolationRefusal('redis', { tenant: isolated.tenant.name, refused: `Redis ${cmd.name.toUpperCase()}`, reason: plan.reason }),
      );
      return cmd.promise;
    }
    // The command was built but not sent: rewrite it in place and forget any
    // keys or slot computed from the old arguments.
    cmd.name = plan.name;
    cmd.args = plan.args;
    delete cmd.keys;
    delete cmd.slot;
    if (plan.reply) {
      const resolve = cmd.resolve;
      const transform = plan.reply;
      cmd.resolve = (value) => resolve(transform(value));
    }
    return original.call(target, cmd, ...rest);
  };
}

function pipelineMethod(context: Context, original: AnyFunction): AnyFunction {
  const { target } = context;
  return function tenantPipeline(...args: unknown[]) {
    const isolated = isolatedPrefix(context);
    if (!isolated) return original.apply(target, args);
    // Commands passed up front go through the same planning as chained ones.
    const [first, ...others] = args;
    const initial = Array.isArray(first) ? (first as unknown[][]) : [];
    const pipeline = original.apply(target, Array.isArray(first) ? others : args) as Record<string, AnyFunction> & { exec: AnyFunction };
    const bound = wrapPipeline(pipeline, isolated.tenant, isolated.prefix, context.options);
    for (const [name, ...commandArgs] of initial) (bound[String(name)] as AnyFunction)(...commandArgs);
    return bound;
  };
}

/**
 * A pipeline or transaction bound to the tenant current when it was created:
 * each queued command is planned for that tenant; a refusal throws at queue
 * time, so nothing of the pipeline is sent; replies are renamed back at exec.
 */
function wrapPipeline(
  pipeline: Record<string, AnyFunction>,
  tenant: Tenant,
  prefix: string,
  options: PlanOptions,
): Record<string, AnyFunction> {
  const replies: Array<((reply: unknown) => unknown) | undefined> = [];
  const proxy: Record<string, AnyFunction> = new Proxy(pipeline, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      if (property === 'exec') {
        return (...args: unknown[]) => {
          const { callback } = splitCallback(args);
          const result = (value as AnyFunction).call(target) as Promise<Array<[Error | null, unknown]> | null>;
          const transformed = result.then((results) =>
            results
              ? results.map(
                  ([error, reply], index) => [error, error ? reply : (replies[index]?.(reply) ?? reply)] as [Error | null, unknown],
                )
              : results,
          );
          if (callback)
            transformed.then(
              (value) => callback(null, value),
              (error: unknown) => callback(error),
            );
          return transformed;
        };
      }
      const base = property.endsWith('Buffer') ? property.slice(0, -'Buffer'.length) : property;
      const isCall = base === 'call';
      if (!COMMANDS.has(base) && !isCall) return (value as AnyFunction).bind(target);
      return (...args: unknown[]) => {
        const { rest, callback } = splitCallback(args);
        const [name, commandArgs] = isCall ? [String(rest[0]).toLowerCase(), rest.slice(1)] : [base, rest];
        const plan = planCommand(name, flatten(name, commandArgs), prefix, options);
        if (plan.kind === 'refuse')
          throw isolationRefusal('redis', {
            tenant: tenant.name,
            refused: `Redis ${name.toUpperCase()} in a pipeline`,
            reason: plan.reason,
          });
        const queueArgs = callback ? [...plan.args, callback] : plan.args;
        if (plan.name !== name || isCall) (target.call as AnyFunction).call(target, plan.name, ...queueArgs);
        else (value as AnyFunction).apply(target, queueArgs);
        replies.push(plan.reply);
        return proxy;
      };
    },
  });
  return proxy;
}

function streamMethod(context: Context, original: AnyFunction): AnyFunction {
  return function tenantStream(...args: unknown[]) {
    const isolated = isolatedPrefix(context);
    if (!isolated) return original.apply(context.target, args);
    // The stream issues SCAN/SSCAN/… later, from stream callbacks: bind it to
    // this tenant by giving it a client that is.
    const bound = wrap({ target: context.target, options: context.options, bound: isolated.tenant });
    return original.apply(bound, args);
  };
}

const wrappedListeners = new WeakMap<AnyFunction, Map<string, AnyFunction>>();

function listenerMethod(context: Context, original: AnyFunction): AnyFunction {
  return function tenantListener(event: unknown, listener: unknown) {
    const wrapped =
      typeof event === 'string' && typeof listener === 'function'
        ? wrapMessageListener(event, listener as AnyFunction, context.bound ?? currentTenant(), policyOf(context))
        : undefined;
    if (wrapped) {
      let byEvent = wrappedListeners.get(listener as AnyFunction);
      if (!byEvent) wrappedListeners.set(listener as AnyFunction, (byEvent = new Map()));
      byEvent.set(event as string, wrapped);
    }
    original.call(context.target, event, wrapped ?? listener);
    return proxyOf(context);
  };
}

function proxyOf(context: Context): Client {
  return context.proxy ?? context.target;
}
