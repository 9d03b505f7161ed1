import { createRequire } from 'node:module';
import { BASELINE, currentTenant, injectTenant, objectHeaders } from '@dye/core';
import type { Agent, Dispatcher } from 'undici';
import { createEgressPolicy, type EgressOptions, type EgressPolicy } from './egress.js';

export interface TenantDispatcherOptions extends EgressOptions {
  /** An egress policy built once and shared; otherwise one is built from `internal` and `mocks`. */
  egress?: EgressPolicy;
  /** The dispatcher to wrap. Default: a new undici `Agent` with `agent` options. */
  dispatcher?: Dispatcher;
  /** Options of the default Agent. */
  agent?: Agent.Options;
}

type DispatchHeaders = Dispatcher.DispatchOptions['headers'];

/**
 * An undici interceptor (for `dispatcher.compose(...)`) that writes the current
 * tenant onto every request to a host inside the system, removes tenant headers
 * from requests to anything else, re-aims an isolated tenant's requests to
 * configured mocks, and refuses the rest for isolated tenants with
 * IsolationError before a byte is sent. It only reads and rewrites the dispatch
 * options, so it composes with any dispatcher and handler API.
 */
export function tenantInterceptor(options: TenantDispatcherOptions = {}): Dispatcher.DispatcherComposeInterceptor {
  const egress = options.egress ?? createEgressPolicy(options);
  return (dispatch) =>
    function dyeTenantDispatch(opts, handler) {
      const tenant = currentTenant();
      if (tenant.kind === 'baseline' && !hasTenantHeader(opts.headers)) return dispatch(opts, handler);
      const origin = opts.origin ?? '';
      const route = egress.route(origin, tenant);
      const headers = toHeaderObject(opts.headers);
      injectTenant(headers, objectHeaders, route.internal ? tenant : BASELINE);
      const rewritten: Dispatcher.DispatchOptions = { ...opts, headers: headers as Record<string, string> };
      if (route.origin !== new URL(String(origin)).origin) rewritten.origin = route.origin;
      return dispatch(rewritten, handler);
    };
}

/**
 * An undici dispatcher carrying the tenant, for `fetch(url, { dispatcher })`,
 * undici's `request`, or every `fetch` of the process:
 * `setGlobalDispatcher(tenantDispatcher({ internal: ['.svc.cluster.local'] }))`.
 */
export function tenantDispatcher(options: TenantDispatcherOptions = {}): Dispatcher {
  const base = options.dispatcher ?? new (loadUndici().Agent)(options.agent);
  return base.compose(tenantInterceptor(options));
}

const TENANT_KEYS = new Set(['x-tenant', 'baggage']);

/** Whether outbound headers carry anything tenant-related (so baseline must clean them). */
function hasTenantHeader(headers: DispatchHeaders): boolean {
  if (headers === null || headers === undefined) return false;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i++) {
      const entry = headers[i];
      // Flat [name, value, ...] or [[name, value], ...].
      const name = Array.isArray(entry) ? entry[0] : i % 2 === 0 ? entry : undefined;
      if (typeof name === 'string' && TENANT_KEYS.has(name.toLowerCase())) return true;
    }
    return false;
  }
  if (isIterable(headers)) {
    for (const [name] of headers as Iterable<[string, unknown]>) if (TENANT_KEYS.has(name.toLowerCase())) return true;
    return false;
  }
  for (const name of Object.keys(headers)) if (TENANT_KEYS.has(name.toLowerCase())) return true;
  return false;
}

/** undici accepts headers as an object, a flat array, an array of pairs or an iterable; Dye writes an object. */
function toHeaderObject(headers: DispatchHeaders): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  const add = (name: string, value: unknown) => {
    const existing = result[name];
    if (existing === undefined) result[name] = value;
    else result[name] = ([] as unknown[]).concat(existing, value);
  };
  if (headers === null || headers === undefined) return result;
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const [name, value] of headers as unknown as [string, unknown][]) add(name, value);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i] as string, headers[i + 1]);
    }
    return result;
  }
  if (isIterable(headers)) {
    for (const [name, value] of headers as Iterable<[string, unknown]>) add(name, value);
    return result;
  }
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) add(name, value);
  return result;
}

function isIterable(value: unknown): value is Iterable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as Iterable<unknown>)[Symbol.iterator] === 'function';
}

// undici is an optional peer: loaded only when a default Agent is needed, so
// @dye/http imports fine in services that use only the middleware.
function loadUndici(): typeof import('undici') {
  try {
    return createRequire(import.meta.url)('undici') as typeof import('undici');
  } catch (error) {
    throw new Error('tenantDispatcher needs the undici package (npm install undici), or pass options.dispatcher', { cause: error });
  }
}
