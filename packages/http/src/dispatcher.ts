import { createRequire } from 'node:module';
import { BASELINE, currentTenant, injectTenant, objectHeaders, type Tenant, type TenantPolicy, withOtelBaggageFor } from '@dye/core';
import type { Registry } from '@dye/discovery';
import type { Agent, Dispatcher } from 'undici';
import { AppRouter } from './app-routing.js';
import { createEgressPolicy, type EgressOptions, type EgressPolicy } from './egress.js';
import { guardUndiciHops } from './undici-hops.js';

export interface TenantDispatcherOptions extends EgressOptions {
  /** An egress policy built once and shared; otherwise one is built from `internal` and `mocks`. */
  egress?: EgressPolicy;
  /** The dispatcher to wrap. Default: a new undici `Agent` with `agent` options. */
  dispatcher?: Dispatcher;
  /** Options of the default Agent. */
  agent?: Agent.Options;
  /**
   * Routes `http://<app>/…` (a dotted app name such as `shop.inventory`, no
   * port) to an instance of the tenant's lane found in this registry, falling
   * back per policy like gRPC routing.
   */
  registry?: Registry;
  /** Tenant policy for routing fallbacks. Default: the default policy. */
  policy?: TenantPolicy;
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
  const apps = options.registry ? new AppRouter(options.registry, options.policy) : undefined;
  guardUndiciHops(egress);
  return (dispatch) => {
    // Origins repeat: each is parsed and checked against the egress list once
    // (bounded, so a stream of distinct origins cannot grow memory).
    const origins = new Map<string, { origin: string; internal: boolean }>();
    const originOf = (raw: string) => {
      let known = origins.get(raw);
      if (known === undefined) {
        const url = new URL(raw);
        known = { origin: url.origin, internal: egress.isInternal(url.hostname) };
        if (origins.size >= 1024) origins.clear();
        origins.set(raw, known);
      }
      return known;
    };
    // Writes the tenant for `origin` (and re-aims it) and hands the request on.
    const send = (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, tenant: Tenant, routedOrigin?: string) => {
      const target = originOf(String(opts.origin ?? ''));
      // Only an isolated tenant's request outside depends on more than the host (mock or refusal).
      const route = routedOrigin
        ? { origin: routedOrigin, internal: true }
        : target.internal
          ? target
          : egress.route(target.origin, tenant);
      const effective = route.internal ? tenant : BASELINE;
      const headers = toHeaderObject(opts.headers);
      injectTenant(headers, objectHeaders, effective);
      const rewritten: Dispatcher.DispatchOptions = { ...opts, headers: headers as Record<string, string> };
      if (route.origin !== target.origin) rewritten.origin = route.origin;
      // OTel's undici instrumentation injects baggage while this runs: it must say the same.
      return withOtelBaggageFor(effective, dispatch, rewritten, handler);
    };
    // Origins repeat: each is parsed and asked whether it may name an app once (bounded).
    const appUrls = new Map<string, URL | null>();
    const appUrlOf = (raw: string): URL | undefined => {
      let known = appUrls.get(raw);
      if (known === undefined) {
        const url = new URL(raw);
        known = AppRouter.candidate(url) ? url : null;
        if (appUrls.size >= 1024) appUrls.clear();
        appUrls.set(raw, known);
      }
      return known ?? undefined;
    };
    const route = (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, tenant: Tenant): boolean => {
      if (apps && opts.origin !== undefined) {
        const url = appUrlOf(String(opts.origin));
        if (url !== undefined) {
          const now = apps.routeNow(url, tenant);
          if (now !== undefined && now !== 'not-an-app') {
            if (!now.ok) throw now.error;
            return send(opts, failover(apps, opts, handler, tenant, url, now.origin, send), tenant, now.origin);
          }
          if (now === undefined) {
            // First request to this host: look it up, then go on (or fail the request).
            apps.route(url, tenant).then(
              (route) => {
                if (route !== 'not-an-app' && !route.ok) return failRequest(handler, route.error);
                try {
                  if (route === 'not-an-app') send(opts, handler, tenant);
                  else send(opts, failover(apps, opts, handler, tenant, url, route.origin, send), tenant, route.origin);
                } catch (error) {
                  failRequest(handler, error as Error);
                }
              },
              (error: Error) => failRequest(handler, error),
            );
            return true;
          }
        }
      }
      if (tenant.kind === 'baseline' && !hasTenantHeader(opts.headers)) return withOtelBaggageFor(BASELINE, dispatch, opts, handler);
      return send(opts, handler, tenant);
    };
    return function dyeTenantDispatch(opts, handler) {
      // A redirect or retry interceptor composed outside this one dispatches
      // again with the same handler, from whatever async context delivered the
      // response: the hop keeps the tenant of the request that started it.
      const earlier = tenantOfRequest(handler);
      if (earlier === undefined) {
        const tenant = currentTenant();
        rememberTenant(handler, tenant);
        return route(opts, handler, tenant);
      }
      try {
        return route(opts, handler, earlier);
      } catch (error) {
        // Thrown inside undici's response callbacks it would go nowhere; the request fails instead.
        failRequest(handler, error as Error);
        return true;
      }
    };
  };
}

type Send = (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, tenant: Tenant, routedOrigin?: string) => boolean;

// Errors of a connection, not of the request: the instance is ejected. Those
// of the first group come before a byte of the request left.
const NOTHING_SENT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);
const CONNECTION_FAILED = new Set([...NOTHING_SENT, 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return typeof cause === 'string' ? cause : undefined;
}

/** Whether the request can be sent again: its body, if any, can be read again. */
function replayable(body: Dispatcher.DispatchOptions['body']): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

/** What a routed request's handler wrapper knows: the instance it went to, and whether it may go elsewhere. */
class Failover {
  current: string;
  #started = false;
  #retried = false;
  constructor(
    readonly apps: AppRouter,
    readonly opts: Dispatcher.DispatchOptions,
    readonly tenant: Tenant,
    readonly url: URL,
    origin: string,
    readonly send: Send,
  ) {
    this.current = origin;
  }

  responded(): void {
    this.#started = true;
    this.apps.succeeded(this.current);
  }

  /** True when the request was sent again (through `wrapper`): its error is not the caller's. */
  retried(error: unknown, wrapper: Dispatcher.DispatchHandler): boolean {
    const code = errorCode(error);
    if (this.#started || code === undefined || !CONNECTION_FAILED.has(code)) return false;
    this.apps.eject(this.current);
    const { opts } = this;
    const safe = NOTHING_SENT.has(code) || (IDEMPOTENT.has(String(opts.method).toUpperCase()) && replayable(opts.body));
    if (this.#retried || !safe) return false;
    this.#retried = true;
    const next = this.apps.routeNow(this.url, this.tenant, this.current);
    if (next === undefined || next === 'not-an-app' || !next.ok) return false;
    this.current = next.origin;
    try {
      this.send(opts, wrapper, this.tenant, next.origin);
      return true;
    } catch {
      // Not sent again: the request fails with its own error.
      return false;
    }
  }
}

type Legacy = {
  onConnect?(abort: (error?: Error) => void, context?: object): void;
  onUpgrade?(statusCode: number, headers: unknown, socket: unknown): void;
  onHeaders?(statusCode: number, headers: unknown, resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: unknown): void;
  onError?(error: Error): void;
  onBodySent?(chunk: unknown): void;
  onResponseStarted?(): void;
};
type Modern = {
  onRequestStart?(controller: unknown, context: unknown): void;
  onRequestUpgrade?(controller: unknown, statusCode: number, headers: unknown, socket: unknown): void;
  onResponseStart?(controller: unknown, statusCode: number, headers: unknown, statusMessage?: string): void;
  onResponseData?(controller: unknown, chunk: Buffer): void;
  onResponseEnd?(controller: unknown, trailers: unknown): void;
  onResponseError?(controller: unknown, error: Error): void;
};

/** A routed request's handler in undici's legacy API (onConnect … onError). */
class LegacyFailoverHandler implements Legacy {
  constructor(
    readonly handler: Legacy,
    readonly failover: Failover,
  ) {}
  onConnect(abort: (error?: Error) => void, context?: object) {
    return this.handler.onConnect?.(abort, context);
  }
  onUpgrade(statusCode: number, headers: unknown, socket: unknown) {
    this.failover.responded();
    return this.handler.onUpgrade?.(statusCode, headers, socket);
  }
  onHeaders(statusCode: number, headers: unknown, resume: () => void, statusText: string) {
    this.failover.responded();
    return this.handler.onHeaders?.(statusCode, headers, resume, statusText) as boolean;
  }
  onData(chunk: Buffer) {
    return this.handler.onData?.(chunk) as boolean;
  }
  onComplete(trailers: unknown) {
    return this.handler.onComplete?.(trailers);
  }
  onError(error: Error) {
    if (this.failover.retried(error, this as unknown as Dispatcher.DispatchHandler)) return;
    return this.handler.onError?.(error);
  }
  onBodySent(chunk: unknown) {
    return this.handler.onBodySent?.(chunk);
  }
  onResponseStarted() {
    return this.handler.onResponseStarted?.();
  }
}

/** A routed request's handler in undici's controller API (onRequestStart … onResponseError). */
class ModernFailoverHandler implements Modern {
  constructor(
    readonly handler: Modern,
    readonly failover: Failover,
  ) {}
  onRequestStart(controller: unknown, context: unknown) {
    return this.handler.onRequestStart?.(controller, context);
  }
  onRequestUpgrade(controller: unknown, statusCode: number, headers: unknown, socket: unknown) {
    this.failover.responded();
    return this.handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }
  onResponseStart(controller: unknown, statusCode: number, headers: unknown, statusMessage?: string) {
    this.failover.responded();
    return this.handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }
  onResponseData(controller: unknown, chunk: Buffer) {
    return this.handler.onResponseData?.(controller, chunk);
  }
  onResponseEnd(controller: unknown, trailers: unknown) {
    return this.handler.onResponseEnd?.(controller, trailers);
  }
  onResponseError(controller: unknown, error: Error) {
    if (this.failover.retried(error, this as unknown as Dispatcher.DispatchHandler)) return;
    return this.handler.onResponseError?.(controller, error);
  }
}

/**
 * The handler of a request routed to an app instance, with outlier ejection:
 * a connection failure before the response ejects the instance from this
 * caller's pools, and the request goes once to another instance of its lane
 * (or where the tenant pool rule sends it without that one: baseline, still
 * carrying the tenant) when that is safe: nothing of it was sent, or it is
 * idempotent with a body that can be sent again. A response marks the
 * instance healthy. The wrapper speaks the handler's own API.
 */
function failover(
  apps: AppRouter,
  opts: Dispatcher.DispatchOptions,
  handler: Dispatcher.DispatchHandler,
  tenant: Tenant,
  url: URL,
  origin: string,
  send: Send,
): Dispatcher.DispatchHandler {
  const state = new Failover(apps, opts, tenant, url, origin, send);
  const modern = typeof (handler as Modern).onRequestStart === 'function' || typeof (handler as Modern).onResponseStart === 'function';
  return (modern
    ? new ModernFailoverHandler(handler as Modern, state)
    : new LegacyFailoverHandler(handler as Legacy, state)) as unknown as Dispatcher.DispatchHandler;
}

/** The tenant each request started in, by the handlers that follow it through redirects and retries. */
const tenantOfHandler = new WeakMap<object, Tenant>();

// undici's redirect and retry handlers keep the handler they wrap in
// `.handler`; an interceptor between them and Dye's wraps anew on every
// dispatch, so the request is recognised by any handler down the chain.
const MAX_WRAPPERS = 8;

function rememberTenant(handler: object, tenant: Tenant): void {
  let current: unknown = handler;
  for (let depth = 0; depth < MAX_WRAPPERS && typeof current === 'object' && current !== null; depth++) {
    tenantOfHandler.set(current, tenant);
    current = (current as { handler?: unknown }).handler;
  }
}

function tenantOfRequest(handler: object): Tenant | undefined {
  let current: unknown = handler;
  for (let depth = 0; depth < MAX_WRAPPERS && typeof current === 'object' && current !== null; depth++) {
    const tenant = tenantOfHandler.get(current);
    if (tenant !== undefined) {
      if (current !== handler) tenantOfHandler.set(handler, tenant);
      return tenant;
    }
    current = (current as { handler?: unknown }).handler;
  }
  return undefined;
}

/** Fails a request whose dispatch was deferred, through whichever handler API it speaks. */
function failRequest(handler: Dispatcher.DispatchHandler, error: Error): void {
  const modern = handler as { onResponseError?: (controller: unknown, error: Error) => void };
  if (typeof modern.onResponseError === 'function') {
    modern.onResponseError({ abort() {}, pause() {}, resume() {}, aborted: false, paused: false, reason: null }, error);
    return;
  }
  (handler as { onError?: (error: Error) => void }).onError?.(error);
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
