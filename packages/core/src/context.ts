import { AsyncLocalStorage } from 'node:async_hooks';
import { captureOtelContext, otelContextActive, runInOtelContext, tenantFromOtelBaggage, withOtelTenant } from './otel-bridge.js';
import { getDefaultPolicy } from './policy.js';
import { assertTenant, BASELINE, type Tenant } from './tenant.js';

// One AsyncLocalStorage per process, however many copies of @dye/core the
// dependency tree holds: a tenant set by one copy must be seen by the others
// (the pattern of OpenTelemetry's api/src/internal/global-utils.ts).
const CONTEXT_KEY = Symbol.for('dye.context');
const CONTEXT_VERSION = 1;

interface SharedContext {
  readonly version: number;
  readonly storage: AsyncLocalStorage<Tenant>;
}

function sharedContext(): SharedContext {
  const holder = globalThis as { [CONTEXT_KEY]?: SharedContext };
  const existing = holder[CONTEXT_KEY];
  if (existing) {
    if (existing.version !== CONTEXT_VERSION) {
      throw new Error(
        `@dye/core: another copy registered context version ${existing.version}, this copy needs ${CONTEXT_VERSION}; deduplicate @dye/core`,
      );
    }
    return existing;
  }
  const created: SharedContext = Object.freeze({ version: CONTEXT_VERSION, storage: new AsyncLocalStorage<Tenant>() });
  Object.defineProperty(holder, CONTEXT_KEY, { value: created, enumerable: false, configurable: false, writable: false });
  return created;
}

const storage = sharedContext().storage;

/**
 * Runs `fn` with `tenant` as the current tenant, for `fn` and everything it
 * starts asynchronously (promises, timers, emitters and streams created inside).
 * Also puts `tenant=<name>` into the OpenTelemetry baggage of the active OTel
 * context, so OTel propagators and span processors see it. A name is resolved
 * by the default policy; an invalid name or Tenant object throws a TypeError
 * (a hand-made `{ name: 'shadow', kind: 'color' }` included).
 *
 * When `fn` returns a thenable that is not a native promise (a lazy query
 * builder of Knex or Drizzle), what is returned is that builder with all it
 * does run inside `tenant` (`then`, `execute()`, `prepare()`, `iterator()`,
 * and the builders those return), so the query it starts later and elsewhere
 * still belongs to `tenant`.
 */
export function withTenant<R>(tenant: Tenant | string, fn: () => R): R {
  const resolved = typeof tenant === 'string' ? getDefaultPolicy().tenant(tenant) : assertTenant(tenant);
  return runInTenant(resolved, fn);
}

function runInTenant<R>(tenant: Tenant, fn: () => R): R {
  const result = otelContextActive() ? storage.run(tenant, withOtelTenant, tenant, fn) : storage.run(tenant, fn);
  // Plain values, the common case, leave at once.
  if (result === null || (typeof result !== 'object' && typeof result !== 'function')) return result;
  // Native promises began their work inside the tenant already. A lazy
  // thenable (a Knex, Drizzle or Kysely query builder) does its work only when
  // awaited or executed, which happens after this call returned, outside it.
  return isLazyThenable(result) ? tenantBound(result, tenant) : result;
}

/**
 * Calls `fn` with `thisArg` and `args` inside `tenant` (a Tenant already
 * checked), for hot paths that run per event: no closure is made, and when the
 * tenant is already current (and no OTel context manager needs its baggage
 * aligned) the call is direct. The result is returned as it is.
 */
export function callInTenant<R>(tenant: Tenant, fn: (...args: never[]) => R, thisArg: unknown, args: ArrayLike<unknown>): R {
  if (otelContextActive()) return storage.run(tenant, withOtelTenant, tenant, () => Reflect.apply(fn, thisArg, args) as R);
  const current = storage.getStore();
  // No store at all is baseline too (currentTenant answers so without OTel).
  if (current === tenant || (current === undefined && tenant.kind === 'baseline')) return Reflect.apply(fn, thisArg, args) as R;
  return storage.run(tenant, Reflect.apply, fn, thisArg, args) as R;
}

/**
 * Whether calling code now would run in `tenant` already (and no OTel context
 * manager needs its baggage aligned): then a hot path calls straight through,
 * without handing its `arguments` to {@link callInTenant}.
 */
export function inTenantAlready(tenant: Tenant): boolean {
  if (otelContextActive()) return false;
  const current = storage.getStore();
  return current === tenant || (current === undefined && tenant.kind === 'baseline');
}

function runRaw<R>(tenant: Tenant, fn: () => R): R {
  return otelContextActive() ? storage.run(tenant, withOtelTenant, tenant, fn) : storage.run(tenant, fn);
}

function isLazyThenable<R>(value: R): value is R & PromiseLike<unknown> & object {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function') || value instanceof Promise) return false;
  return typeof (value as { then?: unknown }).then === 'function';
}

/** An instance of some class (a builder, a prepared query, an iterator), not plain data. */
function isWorkObject(value: unknown): value is object {
  if (value === null || typeof value !== 'object' || value instanceof Promise || Array.isArray(value) || ArrayBuffer.isView(value))
    return false;
  const prototype = Object.getPrototypeOf(value);
  if (prototype === Object.prototype || prototype === null) return false;
  return !(
    value instanceof Date ||
    value instanceof RegExp ||
    value instanceof Map ||
    value instanceof Set ||
    value instanceof WeakMap ||
    value instanceof WeakSet ||
    value instanceof Error ||
    value instanceof ArrayBuffer
  );
}

/** A plain object with behaviour (an iterator `{ next() }`), as opposed to plain data. */
function hasMethods(value: unknown): value is object {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  return Reflect.ownKeys(value).some((key) => typeof (value as Record<PropertyKey, unknown>)[key] === 'function');
}

const boundObjects = new WeakMap<object, Map<string, object>>();

/**
 * The builder itself, except that everything it does runs inside `tenant`:
 * `then` (and `catch`/`finally`, which go through it), and every other method
 * (`execute()`, `prepare()`, `iterator()`…), whose results are bound the same
 * way when they are builders, prepared queries or iterators in turn. Whoever
 * awaits or executes it, the query it starts belongs to the tenant it was built
 * in. Methods are called on the target itself, so private fields keep working.
 */
function tenantBound<T extends object>(target: T, tenant: Tenant): T {
  let byTenant = boundObjects.get(target);
  const existing = byTenant?.get(tenant.name);
  if (existing) return existing as T;
  // Whatever the builder hands out keeps working in its tenant: builders, prepared
  // queries, iterators, and functions (a runner it returns, called later).
  const bind = (value: unknown): unknown => {
    if (typeof value === 'function') {
      return function (this: unknown, ...args: unknown[]) {
        return bind(runRaw(tenant, () => (value as (...a: unknown[]) => unknown).apply(this, args)));
      };
    }
    // What an `async prepare()` resolves to is handed out too.
    if (value instanceof Promise) return value.then(bind);
    return isLazyThenable(value) || isWorkObject(value) || hasMethods(value) ? tenantBound(value as object, tenant) : value;
  };
  const call = (method: (...args: unknown[]) => unknown, args: unknown[]) => bind(runRaw(tenant, () => method.apply(target, args)));
  const then = (onFulfilled?: (value: unknown) => unknown, onRejected?: (reason: unknown) => unknown) =>
    call((target as unknown as PromiseLike<unknown>).then as (...args: unknown[]) => unknown, [onFulfilled, onRejected]);
  const members: Record<PropertyKey, unknown> = {
    then,
    catch: (onRejected?: (reason: unknown) => unknown) => then(undefined, onRejected),
    finally: (onFinally?: () => unknown) =>
      then(
        async (value) => {
          await onFinally?.();
          return value;
        },
        async (reason) => {
          await onFinally?.();
          throw reason;
        },
      ),
  };
  const proxy = new Proxy(target, {
    get(object, property) {
      if (
        property in members &&
        (property === 'then' || property in object) &&
        typeof (object as Record<PropertyKey, unknown>).then === 'function'
      ) {
        return members[property];
      }
      // A getter may start work: it runs in the tenant too.
      const value: unknown = runRaw(tenant, () => Reflect.get(object, property, object));
      if (typeof value === 'function') return (...args: unknown[]) => call(value as (...args: unknown[]) => unknown, args);
      return bind(value);
    },
  });
  if (!byTenant) {
    byTenant = new Map();
    boundObjects.set(target, byTenant);
  }
  byTenant.set(tenant.name, proxy);
  return proxy;
}

/**
 * The tenant of the work running now: the innermost `withTenant`, else a
 * `tenant` member of the active OpenTelemetry baggage, else baseline.
 */
export function currentTenant(): Tenant {
  return storage.getStore() ?? tenantFromOtelBaggage() ?? BASELINE;
}

/**
 * Returns `fn` bound to the tenant current now (or `tenant`): whoever calls it
 * later, from whatever context, it runs in that tenant (and in the OpenTelemetry
 * context active now, when an OTel context manager is registered). For callbacks that a
 * library stores and calls from another request's context (pool queues,
 * listeners registered once, callbacks kept in a map).
 */
export function bindTenant<A extends unknown[], R>(fn: (...args: A) => R, tenant?: Tenant | string): (...args: A) => R {
  const bound =
    tenant === undefined ? currentTenant() : typeof tenant === 'string' ? getDefaultPolicy().tenant(tenant) : assertTenant(tenant);
  // The OTel context (trace, other baggage) travels too, as context.bind would carry it.
  const otelContext = captureOtelContext();
  return function (this: unknown, ...args: A): R {
    return runInOtelContext(otelContext, () => runInTenant(bound, () => fn.apply(this, args)));
  };
}

/** @internal The process-wide storage, for tests that check sharing across copies. */
export function tenantStorage(): AsyncLocalStorage<Tenant> {
  return storage;
}
