import { EventEmitter } from 'node:events';
import { bindTenant, currentTenant, getDefaultPolicy, isolationRefusal, logWarning, type Tenant, type TenantPolicy } from '@dye/core';
import { type BullConnection, IsolatedConnection, type IsolationSettings, noIsolatedUser } from './isolated-connection.js';
import { isIsolatedForRedis } from './job-tenant.js';

type AnyFunction = (...args: unknown[]) => unknown;
interface Closable extends EventEmitter {
  close(): Promise<void>;
}

/** Isolated tenants one queue (worker, flow producer, event stream) serves at once, each over connections of its own. */
export const MAX_ISOLATED_TENANTS = 16;

export interface IsolatedEntry<T> {
  readonly side: IsolatedConnection;
  /** The BullMQ object (built on first access). */
  readonly instance: T;
  /** The BullMQ object if built. */
  readonly built: T | undefined;
}

const LISTEN = new Set(['on', 'once', 'addListener', 'prependListener', 'prependOnceListener']);
const UNLISTEN = new Set(['off', 'removeListener', 'removeAllListeners']);
/** Methods that send nothing to Redis: served at once, without waiting for the isolated user's check. */
const LOCAL = new Set([
  ...Object.getOwnPropertyNames(EventEmitter.prototype),
  'toKey',
  'base64Name',
  'clientName',
  'trace',
  'getBackend',
  'createBackend',
  'Job',
  'parseClientList',
  'constructor',
]);

/**
 * One BullMQ object per tenant that has its own queues: the production one
 * (baseline and colors) and, opened at first use, one per isolated tenant on
 * that tenant's confined connection, with BullMQ's key prefix `shadow:<prefix>`.
 */
export class TenantRouter<T extends Closable> {
  readonly policy: TenantPolicy;
  readonly #isolated = new Map<string, IsolatedEntry<T>>();

  constructor(
    readonly production: T,
    readonly connection: BullConnection,
    readonly settings: IsolationSettings,
    private readonly createIsolated: (tenant: Tenant, connection: IsolatedConnection) => T,
    readonly what: string,
  ) {
    this.policy = settings.policy ?? getDefaultPolicy();
  }

  /**
   * The tenant's isolated side, opened at first use; an Error when it cannot
   * be served. Its BullMQ object is built when first asked for: after the
   * user's check, for anything that sends (BullMQ writes as it starts).
   */
  isolated(tenant: Tenant): IsolatedEntry<T> | Error {
    const existing = this.#isolated.get(tenant.name);
    if (existing) return existing;
    if (!this.settings.isolated) return noIsolatedUser(tenant, this.what);
    if (this.#isolated.size >= MAX_ISOLATED_TENANTS) return new Error(`${this.what}: at most ${MAX_ISOLATED_TENANTS} isolated tenants`);
    const side = new IsolatedConnection(this.connection, this.settings.isolated, tenant, this.policy);
    let instance: T | undefined;
    const entry: IsolatedEntry<T> = {
      side,
      get built() {
        return instance;
      },
      get instance() {
        if (instance) return instance;
        instance = router.createIsolated(tenant, side);
        instance.on('error', (error: Error) => {
          if (router.production.listenerCount('error') > 0) router.production.emit('error', error);
          else
            logWarning('dye.bullmq.isolated', `${router.what} of isolated tenant ${tenant.name}: ${error.message}`, {
              tenant: tenant.name,
            });
        });
        return instance;
      },
    };
    const router = this;
    this.#isolated.set(tenant.name, entry);
    return entry;
  }

  /** Every instance built, production first. */
  all(): T[] {
    return [this.production, ...[...this.#isolated.values()].flatMap((entry) => (entry.built ? [entry.built] : []))];
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((instance) => instance.close()));
    for (const { side } of this.#isolated.values()) side.close();
    this.#isolated.clear();
  }

  /** The isolated tenant in effect, or undefined for baseline and colors (production queues). */
  isolatedTenant(): Tenant | undefined {
    const tenant = currentTenant();
    return isIsolatedForRedis(tenant, this.policy) ? tenant : undefined;
  }

  /**
   * A proxy that looks like the production object and sends each call, and
   * each read of its state (`opts`, `keys`, `client`), to the instance of the
   * tenant in effect. `special` overrides some methods; `baselineOnly` ones
   * (starting, closing, pausing the shared object) are refused to isolated
   * tenants.
   */
  proxy(special: Record<string, AnyFunction>, baselineOnly: readonly string[] = []): T {
    const cache = new Map<string | symbol, unknown>();
    const refused = (tenant: Tenant, property: string) =>
      isolationRefusal('redis', {
        tenant: tenant.name,
        refused: `${this.what}: ${property}()`,
        reason: 'it starts, stops or closes what production shares; that is baseline’s to do',
      });
    return new Proxy(this.production, {
      get: (production, property) => {
        if (typeof property === 'string' && baselineOnly.includes(property)) {
          return (...args: unknown[]) => {
            const tenant = this.isolatedTenant();
            if (tenant) return Promise.reject(refused(tenant, property));
            return (special[property] ?? (Reflect.get(production, property) as AnyFunction)).apply(production, args);
          };
        }
        if (typeof property === 'string' && Object.hasOwn(special, property)) return special[property];
        const cached = cache.get(property);
        if (cached !== undefined) return cached;
        const value = Reflect.get(production, property, production);
        if (typeof value === 'function' && typeof property === 'string') {
          const dispatch = (...args: unknown[]) => this.#call(property, value as AnyFunction, args);
          cache.set(property, dispatch);
          return dispatch;
        }
        // State (options and the connection in them, key names, the client):
        // an isolated tenant reads its own instance's.
        const tenant = typeof property === 'string' && property !== 'then' ? this.isolatedTenant() : undefined;
        if (!tenant) return value;
        const entry = this.isolated(tenant);
        if (entry instanceof Error) throw entry;
        const own = Reflect.get(entry.instance, property, entry.instance);
        return typeof own === 'function' ? own.bind(entry.instance) : own;
      },
      set: (production, property, value) => {
        const tenant = this.isolatedTenant();
        if (tenant) throw refused(tenant, `setting ${String(property)}`);
        return Reflect.set(production, property, value, production);
      },
    });
  }

  #call(property: string, original: AnyFunction, args: unknown[]): unknown {
    if (UNLISTEN.has(property)) {
      const [event, listener] = args;
      const bound = typeof listener === 'function' ? boundListeners.get(listener as AnyFunction)?.get(event) : undefined;
      for (const instance of this.all()) (Reflect.get(instance, property) as AnyFunction).apply(instance, bound ? [event, bound] : args);
      return undefined;
    }
    const tenant = this.isolatedTenant();
    if (!tenant) return original.apply(this.production, LISTEN.has(property) ? bindListener(args, currentTenant()) : args);
    const entry = this.isolated(tenant);
    if (entry instanceof Error) {
      if (LOCAL.has(property)) throw entry;
      return Promise.reject(entry);
    }
    const call = () => (Reflect.get(entry.instance, property) as AnyFunction).apply(entry.instance, args);
    if (LISTEN.has(property))
      return (Reflect.get(entry.instance, property) as AnyFunction).apply(entry.instance, bindListener(args, tenant));
    if (LOCAL.has(property) || entry.side.check.passed) return call();
    return entry.side.check.ensure().then(call);
  }
}

const boundListeners = new WeakMap<AnyFunction, Map<unknown, AnyFunction>>();

/** A listener registered in a tenant runs in it (and can still be removed by the function the caller holds). */
function bindListener(args: unknown[], tenant: Tenant): unknown[] {
  const [event, listener, ...rest] = args;
  if (typeof listener !== 'function') return args;
  const bound = bindTenant(listener as AnyFunction, tenant);
  let byEvent = boundListeners.get(listener as AnyFunction);
  if (!byEvent) boundListeners.set(listener as AnyFunction, (byEvent = new Map()));
  byEvent.set(event, bound);
  return [event, bound, ...rest];
}
