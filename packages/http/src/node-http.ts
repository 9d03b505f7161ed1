import http, { type ClientRequest } from 'node:http';
import https from 'node:https';
import {
  BAGGAGE_HEADER,
  BASELINE,
  currentTenant,
  injectTenant,
  objectHeaders,
  TENANT_HEADER,
  type Tenant,
  type TenantSetter,
} from '@dye/core';
import { AppRouter } from './app-routing.js';
import type { TenantDispatcherOptions } from './dispatcher.js';
import { createEgressPolicy, type EgressPolicy } from './egress.js';

/** Options of {@link enableNodeHttp} and the tenant agents: those of `tenantDispatcher`, for node:http. */
export type NodeHttpOptions = Omit<TenantDispatcherOptions, 'dispatcher' | 'agent'> & {
  /** Options of the agents made (keep-alive and so on). Default: those of the global agents being replaced. */
  agentOptions?: https.AgentOptions;
};

type AddRequest = (this: http.Agent, req: ClientRequest, options: AgentRequestOptions) => void;

/** What Node hands an agent's `addRequest`: the request options, host and port filled in. */
interface AgentRequestOptions extends https.RequestOptions {
  host?: string;
  port?: number | string;
  servername?: string;
}

const agentAddRequest = (http.Agent.prototype as unknown as { addRequest: AddRequest }).addRequest;
const secureAddRequest = (https.Agent.prototype as unknown as { addRequest: AddRequest }).addRequest;

/**
 * The check every request through a tenant agent passes, as the agent takes it
 * and before it has a socket (so before a byte is written). Headers an
 * OpenTelemetry instrumentation injected before are in the request by then and
 * are rewritten with the rest: tenant headers for
 * internal hosts, none for outside ones, isolated tenants refused outside (or
 * re-aimed to their mock), app routing for `http://<app>/`. The request and its
 * response then run their events in the tenant that sent it, so a client that
 * follows a redirect or retries from a response callback (follow-redirects in
 * axios, got) sends the next hop in the same tenant.
 */
class TenantGate {
  readonly #egress: EgressPolicy;
  readonly #apps: AppRouter | undefined;
  readonly #protocol: 'http:' | 'https:';

  constructor(options: NodeHttpOptions, protocol: 'http:' | 'https:') {
    this.#egress = options.egress ?? createEgressPolicy(options);
    this.#apps = options.registry && protocol === 'http:' ? new AppRouter(options.registry, options.policy) : undefined;
    this.#protocol = protocol;
  }

  admit(agent: http.Agent, req: ClientRequest, options: AgentRequestOptions, addRequest: AddRequest): void {
    // Nothing here holds the request's events in its tenant: Node does. The
    // agent gives a request its socket here, in the sender's async context (or,
    // for a request that waited, inside the async context Node saved when it
    // queued it), and re-aims a reused socket's handle at that context; the
    // response parser and the socket's events then run in the sender's tenant,
    // so a client that follows a redirect or retries from a response callback
    // (follow-redirects in axios, got) sends the next hop in the same tenant.
    const tenant = currentTenant();
    const host = String(options.host ?? options.hostname ?? 'localhost');
    if (this.#apps === undefined && this.#egress.isInternal(host)) {
      // The common case, an internal host: no URL to build, nothing to re-aim.
      if (!keepTenantHeaders(req, tenant)) return;
      addRequest.call(agent, req, options);
      return;
    }
    const port = Number(options.port ?? (this.#protocol === 'https:' ? 443 : 80));
    const url = new URL(`${this.#protocol}//${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`);
    if (this.#apps && AppRouter.candidate(url)) {
      const now = this.#apps.routeNow(url, tenant);
      if (now === undefined) {
        // First request to this host: the request waits (buffering its writes)
        // for the lookup. Its head may be built meanwhile, so the tenant is
        // written now, as for the app instance it most likely goes to.
        if (!keepTenantHeaders(req, tenant)) return;
        this.#apps.route(url, tenant).then(
          (route) => this.#routeApp(agent, req, options, addRequest, tenant, url, route),
          (error: Error) => failRequest(req, error),
        );
        return;
      }
      this.#routeApp(agent, req, options, addRequest, tenant, url, now);
      return;
    }
    this.#send(agent, req, options, addRequest, tenant, url);
  }

  #routeApp(
    agent: http.Agent,
    req: ClientRequest,
    options: AgentRequestOptions,
    addRequest: AddRequest,
    tenant: Tenant,
    url: URL,
    route: ReturnType<AppRouter['routeNow']>,
  ): void {
    if (route === undefined || route === 'not-an-app') return this.#send(agent, req, options, addRequest, tenant, url);
    if (!route.ok) return failRequest(req, route.error);
    const instance = new URL(route.origin);
    if (!keepTenantHeaders(req, tenant)) return;
    addRequest.call(agent, req, { ...options, host: instance.hostname, hostname: instance.hostname, port: Number(instance.port) });
  }

  #send(agent: http.Agent, req: ClientRequest, options: AgentRequestOptions, addRequest: AddRequest, tenant: Tenant, url: URL): void {
    let route: ReturnType<EgressPolicy['route']>;
    try {
      route = this.#egress.route(url, tenant);
    } catch (refusal) {
      // No socket was asked for: nothing reaches the host. This is how Node's
      // own Agent fails a request whose socket could not be made.
      failRequest(req, refusal as Error);
      return;
    }
    const effective = route.internal ? tenant : BASELINE;
    if (!keepTenantHeaders(req, effective)) return;
    let target = options;
    if (route.origin !== url.origin) {
      const mock = new URL(route.origin);
      if (mock.protocol !== this.#protocol) {
        failRequest(
          req,
          new Error(
            `dye: ${url.origin} is mocked for ${tenant.name} by ${route.origin}, which speaks ${mock.protocol} where the request speaks ${this.#protocol}`,
          ),
        );
        return;
      }
      const port = Number(mock.port || (mock.protocol === 'https:' ? 443 : 80));
      target = { ...options, host: mock.hostname, hostname: mock.hostname, port, servername: mock.hostname };
    }
    addRequest.call(agent, req, target);
  }
}

/** Fails a request that has no socket: it emits 'error' and 'close' as for a failed connect. */
function failRequest(req: ClientRequest, error: Error): void {
  (req as ClientRequest & { onSocket(socket: undefined, error: Error): void }).onSocket(undefined, error);
}

// Node's own header methods: the guarded ones below call them, and Dye's own writes skip the guard.
const outgoing = http.OutgoingMessage.prototype;
const setHeaderOf = outgoing.setHeader;
const removeHeaderOf = outgoing.removeHeader;

/** Reads and writes a ClientRequest's headers before they are sent (Node's own methods, not the guarded ones). */
const clientRequestHeaders: TenantSetter<ClientRequest> = {
  get: (req, key) => {
    const value = req.getHeader(key);
    return value === undefined ? undefined : Array.isArray(value) ? value : String(value);
  },
  set: (req, key, value) => void setHeaderOf.call(req, key, value),
  remove: (req, key) => removeHeaderOf.call(req, key),
};

const isTenantCarrier = (name: unknown) => {
  // Most headers differ in length from both carriers: no lowercase copy for them.
  if (typeof name !== 'string' || (name.length !== TENANT_HEADER.length && name.length !== BAGGAGE_HEADER.length)) return false;
  const lower = name.toLowerCase();
  return lower === TENANT_HEADER || lower === BAGGAGE_HEADER;
};

// The tenant a request admitted by a tenant agent must keep saying (baseline:
// none), on the request itself under a process-wide key: any copy of this
// package reads what another wrote.
const OUTBOUND_TENANT = Symbol.for('dye.http.outboundTenant');
type Admitted = ClientRequest & { [OUTBOUND_TENANT]?: Tenant };

const outboundTenantOf = (req: ClientRequest) => (req as Admitted)[OUTBOUND_TENANT];

// Headers set after `http.request()` returned (hand-written proxies copying
// inbound headers, `setHeaders`, `appendHeader`) come after the agent's check:
// each change to a tenant carrier of an admitted request is followed by the
// tenant rule again. The guard sits on ClientRequest's prototype, installed
// once, so an admitted request costs one property and not a method each; on a
// request no tenant agent admitted it only compares a header name's length.
const GUARD_INSTALLED = Symbol.for('dye.http.headerGuard');

function installHeaderGuard(): void {
  const prototype = http.ClientRequest.prototype as ClientRequest & { [GUARD_INSTALLED]?: true };
  if (prototype[GUARD_INSTALLED]) return;
  const setHeader = prototype.setHeader;
  const appendHeader = prototype.appendHeader;
  const removeHeader = prototype.removeHeader;
  Object.defineProperties(prototype, {
    [GUARD_INSTALLED]: { value: true },
    setHeader: {
      configurable: true,
      writable: true,
      value: function guardedSetHeader(this: ClientRequest, name: string, value: number | string | readonly string[]) {
        setHeader.call(this, name, value);
        if (isTenantCarrier(name)) rewriteTenant(this);
        return this;
      },
    },
    appendHeader: {
      configurable: true,
      writable: true,
      value: function guardedAppendHeader(this: ClientRequest, name: string, value: string | readonly string[]) {
        appendHeader.call(this, name, value);
        if (isTenantCarrier(name)) rewriteTenant(this);
        return this;
      },
    },
    removeHeader: {
      configurable: true,
      writable: true,
      value: function guardedRemoveHeader(this: ClientRequest, name: string) {
        removeHeader.call(this, name);
        if (isTenantCarrier(name)) rewriteTenant(this);
      },
    },
  });
}

function rewriteTenant(req: ClientRequest): void {
  const tenant = outboundTenantOf(req);
  if (tenant !== undefined) injectTenant(req, clientRequestHeaders, tenant);
}

/**
 * Makes the request say `tenant` (none for baseline) and keep saying it
 * whatever the caller sets later. False when that cannot hold (the head was
 * already queued saying something else): the request is failed, nothing sent.
 */
function keepTenantHeaders(req: ClientRequest, tenant: Tenant): boolean {
  try {
    writeTenant(req, tenant);
  } catch (error) {
    failRequest(req, error as Error);
    return false;
  }
  (req as Admitted)[OUTBOUND_TENANT] = tenant;
  return true;
}

/**
 * Writes the tenant onto a request not yet sent. Node has already serialized
 * the head when the caller passed headers as an array (or an `Expect` header):
 * then the serialized head is rewritten, which is possible until it is queued
 * for the socket.
 */
function writeTenant(req: ClientRequest, tenant: Tenant): void {
  const internal = req as ClientRequest & { _header?: string | null; _headerSent?: boolean };
  if (!internal._header) {
    if (tenant.kind !== 'baseline' || req.hasHeader(TENANT_HEADER) || req.hasHeader(BAGGAGE_HEADER)) {
      injectTenant(req, clientRequestHeaders, tenant);
    }
    return;
  }
  if (internal._headerSent) {
    if (outboundTenantOf(req) === tenant) return;
    throw new Error(`dye: the request head was queued before its tenant (${tenant.name}) could be written; nothing was sent`);
  }
  const lines = internal._header.split('\r\n');
  const first = lines[0] as string;
  const kept: string[] = [];
  const carried: Record<string, unknown> = {};
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const name = line.slice(0, line.indexOf(':')).trim().toLowerCase();
    const value = line.slice(line.indexOf(':') + 1).trim();
    if (name === TENANT_HEADER || name === BAGGAGE_HEADER)
      carried[name] = ([] as string[]).concat((carried[name] as string[]) ?? [], value);
    else kept.push(line);
  }
  injectTenant(carried, objectHeaders, tenant);
  for (const [name, value] of Object.entries(carried)) kept.push(`${name}: ${String(value)}`);
  internal._header = `${first}\r\n${kept.map((line) => `${line}\r\n`).join('')}\r\n`;
}

/** An `http.Agent` whose requests carry the tenant and obey egress; for clients given their own agent. */
export class TenantHttpAgent extends http.Agent {
  readonly #gate: TenantGate;
  constructor(options: NodeHttpOptions = {}) {
    super(options.agentOptions);
    installHeaderGuard();
    this.#gate = new TenantGate(options, 'http:');
  }
  addRequest(req: ClientRequest, options: AgentRequestOptions): void {
    this.#gate.admit(this, req, options, agentAddRequest);
  }
}

/** An `https.Agent` whose requests carry the tenant and obey egress; for clients given their own agent. */
export class TenantHttpsAgent extends https.Agent {
  readonly #gate: TenantGate;
  constructor(options: NodeHttpOptions = {}) {
    super(options.agentOptions);
    installHeaderGuard();
    this.#gate = new TenantGate(options, 'https:');
  }
  addRequest(req: ClientRequest, options: AgentRequestOptions): void {
    this.#gate.admit(this, req, options, secureAddRequest);
  }
}

/**
 * One setup call for node:http clients: replaces `http.globalAgent` and
 * `https.globalAgent` with tenant agents, so every `http.request`,
 * `https.request` and `get` that uses the global agent (axios, got,
 * node-fetch 2, superagent and kin by default) writes the tenant for internal
 * hosts, strips it for outside hosts, refuses isolated tenants outside (or
 * re-aims them to their mock) and routes `http://<app>/` with `registry`. A
 * client given its own agent needs a `TenantHttpAgent`/`TenantHttpsAgent`
 * instead; a request with `agent: false` passes no agent and is not covered.
 * Returns a function that puts the previous global agents back.
 */
export function enableNodeHttp(options: NodeHttpOptions = {}): () => void {
  const previous = { http: http.globalAgent, https: https.globalAgent };
  const egress = options.egress ?? createEgressPolicy(options);
  // Node's global agents keep their construction options (keep-alive since Node 19) on `options`.
  const optionsOf = (agent: http.Agent) => (agent as http.Agent & { options?: https.AgentOptions }).options;
  const httpAgent = new TenantHttpAgent({ ...options, egress, agentOptions: options.agentOptions ?? optionsOf(previous.http) });
  const httpsAgent = new TenantHttpsAgent({ ...options, egress, agentOptions: options.agentOptions ?? optionsOf(previous.https) });
  http.globalAgent = httpAgent;
  https.globalAgent = httpsAgent;
  return () => {
    http.globalAgent = previous.http;
    https.globalAgent = previous.https;
    httpAgent.destroy();
    httpsAgent.destroy();
  };
}
