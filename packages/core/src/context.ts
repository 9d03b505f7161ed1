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
 * builder of Knex, Drizzle or Kysely), what is returned is that thenable with
 * its `then` run inside `tenant`, so the query it starts when awaited, later
 * and elsewhere, still belongs to `tenant`.
 */
export function withTenant<R>(tenant: Tenant | string, fn: () => R): R {
  const resolved = typeof tenant === 'string' ? getDefaultPolicy().tenant(tenant) : assertTenant(tenant);
  return runInTenant(resolved, fn);
}

function runInTenant<R>(tenant: Tenant, fn: () => R): R {
  const result = otelContextActive() ? storage.run(tenant, withOtelTenant, tenant, fn) : storage.run(tenant, fn);
  // Native promises began their work inside the tenant already. A lazy
  // thenable (a Knex, Drizzle or Kysely query builder) does its work only when
  // awaited, which happens after this call returned, outside the tenant.
  return isLazyThenable(result) ? tenantThenable(result, tenant) : result;
}

function isLazyThenable<R>(value: R): value is R & PromiseLike<unknown> & object {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function') || value instanceof Promise) return false;
  return typeof (value as { then?: unknown }).then === 'function';
}

/**
 * The thenable itself, except that `then` (and `catch`/`finally`, which go
 * through it) runs inside `tenant`: whoever awaits it, the query it starts
 * belongs to the tenant it was built in. Other members are the target's own,
 * called on the target (so private fields keep working).
 */
function tenantThenable<T extends PromiseLike<unknown> & object>(target: T, tenant: Tenant): T {
  const then = (onFulfilled?: (value: unknown) => unknown, onRejected?: (reason: unknown) => unknown) =>
    runInTenant(tenant, () => target.then(onFulfilled, onRejected));
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
  return new Proxy(target, {
    get(object, property) {
      if (property in members && (property === 'then' || property in object)) return members[property];
      const value: unknown = Reflect.get(object, property, object);
      return typeof value === 'function' ? value.bind(object) : value;
    },
  });
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
