import http, { type ClientRequest } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { BASELINE, currentTenant, isolationRefusal, type Tenant } from '@dye/core';
import { AppRouter } from './app-routing.js';
import {
  admitSender,
  installClientRequestGuards,
  keepOutboundTenant,
  refuseUnadmittedIsolated,
  setConnectFailover,
} from './client-request-guard.js';
import type { TenantDispatcherOptions } from './dispatcher.js';
import { createEgressPolicy, type EgressPolicy } from './egress.js';
import { proxyTarget } from './proxy-target.js';

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

// On the options of a request routed to an app instance: its agent hands it a
// socket only once connected, so a connection that cannot be made reaches
// the request before a byte of it was written (see TenantGate#routeApp).
const APP_INSTANCE = Symbol('dye.http.appInstance');
type RoutedOptions = AgentRequestOptions & { [APP_INSTANCE]?: string };

/** Connection failures that send a routed request to another instance: nothing of it left. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ECONNRESET']);
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

  get apps(): AppRouter | undefined {
    return this.#apps;
  }

  constructor(options: NodeHttpOptions, protocol: 'http:' | 'https:') {
    this.#egress = options.egress ?? createEgressPolicy(options);
    this.#apps = options.registry && protocol === 'http:' ? new AppRouter(options.registry, options.policy) : undefined;
    this.#protocol = protocol;
  }

  admit(agent: http.Agent, req: ClientRequest, options: AgentRequestOptions, addRequest: AddRequest): void {
    // The request's events, and its socket's for as long as it serves it, run
    // in the sender's tenant (client-request-guard.ts), so a client that
    // follows a redirect or retries from a callback (follow-redirects in axios,
    // got) sends the next hop in the same tenant.
    const tenant = currentTenant();
    admitSender(req, tenant);
    // A Unix socket is this machine: it counts as `localhost`.
    const host = options.socketPath !== undefined ? 'localhost' : String(options.host ?? options.hostname ?? 'localhost');
    // A forward proxy is asked for `http://target/…` (or to CONNECT to it): the target decides.
    const target = proxyTarget(req);
    if (target !== undefined) return this.#sendThroughProxy(agent, req, options, addRequest, tenant, host, target);
    if (this.#apps === undefined && this.#egress.isInternal(host)) {
      // The common case, an internal host: no URL to build, nothing to re-aim.
      if (!keepTenantHeaders(req, tenant)) return;
      addRequest.call(agent, req, options);
      return;
    }
    const port = Number(options.port ?? (this.#protocol === 'https:' ? 443 : 80));
    let url: URL;
    try {
      url = new URL(`${this.#protocol}//${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`);
    } catch {
      // A host no URL holds (an IPv6 zone, a space): Node connects, or fails, as
      // it would without Dye; Dye counts it outside the system.
      if (tenant.kind === 'isolated')
        return failRequest(req, outsideRefusal(tenant, `a request to ${host}`, 'the host is not one Dye can check'));
      if (!keepTenantHeaders(req, BASELINE)) return;
      addRequest.call(agent, req, options);
      return;
    }
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
    if (!keepTenantHeaders(req, tenant)) return;
    const apps = this.#apps as AppRouter;
    const toInstance = (origin: string): RoutedOptions => {
      const instance = new URL(origin);
      return { ...options, host: instance.hostname, hostname: instance.hostname, port: Number(instance.port), [APP_INSTANCE]: origin };
    };
    // Outlier ejection: an instance that cannot be connected to leaves this
    // caller's pools, and the request (nothing of it sent) goes once to
    // another instance of its lane, or where the pool rule sends it without
    // that one, still in its tenant.
    setConnectFailover(req, (error) => {
      const code = (error as { code?: string }).code;
      if (code === undefined || !NOT_CONNECTED.has(code)) return false;
      apps.eject(route.origin);
      const next = apps.routeNow(url, tenant, route.origin);
      if (next === undefined || next === 'not-an-app' || !next.ok) return false;
      addRequest.call(agent, req, toInstance(next.origin));
      return true;
    });
    addRequest.call(agent, req, toInstance(route.origin));
  }

  /**
   * A request in absolute form (`GET http://payments.example/charge`) goes to
   * a forward proxy (axios's `proxy`, HTTP_PROXY) and on to its target, as a
   * CONNECT goes to its authority: the target is checked as a direct request
   * would be (by its host alone for a tunnel or another scheme), and tenant
   * headers go only where both the proxy and the target are internal. A
   * mocked http(s) target is reached directly, in origin form; a target no
   * URL parser reads gets no tenant, and no isolated tenant.
   */
  #sendThroughProxy(
    agent: http.Agent,
    req: ClientRequest,
    options: AgentRequestOptions,
    addRequest: AddRequest,
    tenant: Tenant,
    proxy: string,
    target: URL | 'unreadable',
  ): void {
    const proxyInternal = this.#egress.isInternal(proxy);
    if (target === 'unreadable') {
      // The proxy might read it some way Dye does not: no tenant, no isolated tenant.
      if (tenant.kind === 'isolated')
        return failRequest(req, outsideRefusal(tenant, `a request through ${proxy}`, 'its target cannot be read'));
      if (!keepTenantHeaders(req, BASELINE)) return;
      addRequest.call(agent, req, options);
      return;
    }
    const web = req.method !== 'CONNECT' && (target.protocol === 'http:' || target.protocol === 'https:');
    let route: ReturnType<EgressPolicy['route']> | undefined;
    if (web) {
      try {
        route = this.#egress.route(target, tenant);
      } catch (refusal) {
        failRequest(req, refusal as Error);
        return;
      }
      if (route.origin !== target.origin) {
        if ((req as { _header?: string | null })._header) {
          failRequest(
            req,
            new Error(`dye: ${target.origin} is mocked for ${tenant.name}, but the request head was built already; nothing was sent`),
          );
          return;
        }
        req.path = `${target.pathname}${target.search}`;
        admitSender(req, tenant);
        this.#send(agent, req, options, addRequest, tenant, target);
        return;
      }
    }
    // A tunnel (CONNECT) or another scheme: no mock applies, the target's host decides.
    const targetInternal = route ? route.internal : this.#egress.isInternal(target.hostname);
    if (tenant.kind === 'isolated' && !(targetInternal && proxyInternal)) {
      return failRequest(
        req,
        outsideRefusal(
          tenant,
          `a request to ${target.host} through the proxy ${proxy}`,
          `the ${proxyInternal ? 'target' : 'proxy'} is outside the system`,
        ),
      );
    }
    if (!keepTenantHeaders(req, targetInternal && proxyInternal ? tenant : BASELINE)) return;
    addRequest.call(agent, req, options);
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

function outsideRefusal(tenant: Tenant, refused: string, reason: string): Error {
  return isolationRefusal('http', { tenant: tenant.name, refused, reason });
}

/** Fails a request that has no socket: it emits 'error' and 'close' as for a failed connect. */
function failRequest(req: ClientRequest, error: Error): void {
  (req as ClientRequest & { onSocket(socket: undefined, error: Error): void }).onSocket(undefined, error);
}

/**
 * Makes the request say `tenant` (none for baseline) whatever the caller sets
 * later. False when that cannot hold (the head already left saying something
 * else): the request is failed, nothing more sent.
 */
function keepTenantHeaders(req: ClientRequest, tenant: Tenant): boolean {
  try {
    keepOutboundTenant(req, tenant);
  } catch (error) {
    failRequest(req, error as Error);
    return false;
  }
  return true;
}

/** An `http.Agent` whose requests carry the tenant and obey egress; for clients given their own agent. */
export class TenantHttpAgent extends http.Agent {
  readonly #gate: TenantGate;
  readonly #apps: AppRouter | undefined;
  constructor(options: NodeHttpOptions = {}) {
    super(options.agentOptions);
    installClientRequestGuards();
    this.#gate = new TenantGate(options, 'http:');
    this.#apps = this.#gate.apps;
  }
  addRequest(req: ClientRequest, options: AgentRequestOptions): void {
    this.#gate.admit(this, req, options, agentAddRequest);
  }
  /** A socket to an app instance is handed over once connected (or its failure, for the request to go elsewhere). */
  override createConnection(
    options: http.ClientRequestArgs,
    oncreate?: (error: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const origin = (options as RoutedOptions)[APP_INSTANCE];
    if (origin === undefined || oncreate === undefined) return super.createConnection(options, oncreate);
    const socket = net.createConnection(options as net.NetConnectOpts);
    const onError = (error: Error) => {
      socket.off('connect', onConnect);
      oncreate(error, socket);
    };
    const onConnect = () => {
      socket.off('error', onError);
      this.#apps?.succeeded(origin);
      oncreate(null, socket);
    };
    socket.once('error', onError);
    socket.once('connect', onConnect);
    return undefined;
  }
}

/** An `https.Agent` whose requests carry the tenant and obey egress; for clients given their own agent. */
export class TenantHttpsAgent extends https.Agent {
  readonly #gate: TenantGate;
  constructor(options: NodeHttpOptions = {}) {
    super(options.agentOptions);
    installClientRequestGuards();
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
 * re-aims them to their mock) and routes `http://<app>/` with `registry`.
 * `agent: false` gets a fresh tenant agent with these options (Node makes it
 * from the global agent's class). A client given an agent of its own needs a
 * `TenantHttpAgent`/`TenantHttpsAgent`; until it has one, an isolated
 * tenant's request through it to an outside host is refused.
 * Returns a function that puts the previous global agents back.
 */
export function enableNodeHttp(options: NodeHttpOptions = {}): () => void {
  const previous = { http: http.globalAgent, https: https.globalAgent };
  const egress = options.egress ?? createEgressPolicy(options);
  const configured = { ...options, egress };
  // Node makes the agent of an `agent: false` request with `new globalAgent.constructor()`:
  // these classes give it the same policy, with Node's default agent options.
  class ConfiguredHttpAgent extends TenantHttpAgent {
    constructor(agentOptions?: https.AgentOptions) {
      super({ ...configured, agentOptions });
    }
  }
  class ConfiguredHttpsAgent extends TenantHttpsAgent {
    constructor(agentOptions?: https.AgentOptions) {
      super({ ...configured, agentOptions });
    }
  }
  // Node's global agents keep their construction options (keep-alive since Node 19) on `options`.
  const optionsOf = (agent: http.Agent) => (agent as http.Agent & { options?: https.AgentOptions }).options;
  const httpAgent = new ConfiguredHttpAgent(options.agentOptions ?? optionsOf(previous.http));
  const httpsAgent = new ConfiguredHttpsAgent(options.agentOptions ?? optionsOf(previous.https));
  http.globalAgent = httpAgent;
  https.globalAgent = httpsAgent;
  const stopRefusing = refuseUnadmittedIsolated(egress);
  return () => {
    stopRefusing();
    http.globalAgent = previous.http;
    https.globalAgent = previous.https;
    httpAgent.destroy();
    httpsAgent.destroy();
  };
}
