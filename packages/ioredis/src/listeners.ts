import { bindTenant, type Tenant, type TenantPolicy } from '@dye/core';
import type { Cluster, Redis } from 'ioredis';
import { wrapMessageListener } from './pubsub.js';

type Client = Redis | Cluster;
type AnyFunction = (...args: unknown[]) => unknown;

interface Registration {
  readonly emitter: Client;
  readonly event: string | symbol;
  readonly listener: AnyFunction;
  wrapped: AnyFunction;
  readonly tenant: string;
}

const ONCE = new Set(['once', 'prependOnceListener']);

/**
 * The event listeners registered through one wrapper, and the tenant each was
 * registered in. A listener always runs in its tenant (message listeners hear
 * only their tenant's channels); an isolated tenant sees, removes and counts
 * only its own listeners, and cannot emit: production's listeners are not its
 * to call, drop or inspect.
 */
export class ListenerRegistry {
  #registrations: Registration[] = [];

  constructor(private readonly policy: () => TenantPolicy) {}

  add(emitter: Client, method: string, args: unknown[], tenant: Tenant): void {
    const [event, listener] = args;
    if (typeof listener !== 'function' || (typeof event !== 'string' && typeof event !== 'symbol')) {
      (Reflect.get(emitter, method) as AnyFunction).apply(emitter, args);
      return;
    }
    const bound =
      (typeof event === 'string' ? wrapMessageListener(event, listener as AnyFunction, tenant, this.policy()) : undefined) ??
      bindTenant(listener as AnyFunction, tenant);
    const registration: Registration = { emitter, event, listener: listener as AnyFunction, wrapped: bound, tenant: tenant.name };
    if (ONCE.has(method)) {
      registration.wrapped = (...values: unknown[]) => {
        this.#forget(registration);
        return bound(...values);
      };
    }
    this.#registrations.push(registration);
    (Reflect.get(emitter, method) as AnyFunction).call(emitter, event, registration.wrapped);
  }

  /** `off`/`removeListener`/`removeAllListeners` from `tenant` (undefined: baseline, which may remove any). */
  remove(method: string, args: unknown[], tenant: string | undefined, baselineEmitters: readonly Client[]): void {
    const [event, listener] = args;
    const mine = (registration: Registration) => tenant === undefined || registration.tenant === tenant;
    if (method === 'removeAllListeners') {
      for (const registration of [...this.#registrations]) {
        if (mine(registration) && (args.length === 0 || registration.event === event)) this.#detach(registration);
      }
      // Baseline owns the client: listeners added to it directly go too (Dye's own stay).
      if (tenant === undefined) for (const emitter of baselineEmitters) removeForeign(emitter, args, this.#registrations);
      return;
    }
    const found = [...this.#registrations].reverse().find((r) => mine(r) && r.event === event && r.listener === listener);
    if (found) this.#detach(found);
    else if (tenant === undefined)
      for (const emitter of baselineEmitters) (Reflect.get(emitter, method) as AnyFunction).apply(emitter, args);
  }

  /** `listeners`, `rawListeners`, `listenerCount`, `eventNames` as an isolated tenant sees them: its own only. */
  inspect(method: string, args: unknown[], tenant: string): unknown {
    const own = this.#registrations.filter((registration) => registration.tenant === tenant);
    const [event] = args;
    switch (method) {
      case 'eventNames':
        return [...new Set(own.map((registration) => registration.event))];
      case 'listenerCount':
        return own.filter((registration) => registration.event === event).length;
      default:
        return own.filter((registration) => registration.event === event).map((registration) => registration.listener);
    }
  }

  #detach(registration: Registration): void {
    registration.emitter.removeListener(registration.event, registration.wrapped);
    this.#forget(registration);
  }

  #forget(registration: Registration): void {
    const index = this.#registrations.indexOf(registration);
    if (index !== -1) this.#registrations.splice(index, 1);
  }
}

/** Dye's own listeners on a client (closing isolated connections with it, forwarding their errors). */
export const internalListeners = new WeakSet<AnyFunction>();

function removeForeign(emitter: Client, args: unknown[], registrations: readonly Registration[]): void {
  const events = args.length > 0 ? [args[0] as string | symbol] : emitter.eventNames();
  const ours = new Set(registrations.map((registration) => registration.wrapped));
  for (const event of events) {
    for (const raw of emitter.rawListeners(event) as Array<AnyFunction & { listener?: AnyFunction }>) {
      const listener = raw.listener ?? raw;
      if (internalListeners.has(listener) || ours.has(listener)) continue;
      emitter.removeListener(event, listener);
    }
  }
}
