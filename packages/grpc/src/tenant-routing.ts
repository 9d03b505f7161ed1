/**
 * Everything that uses grpc-js's experimental resolver and load-balancer API
 * lives in this file: that API changed in 1.10, 1.12, 1.13 and 1.14, so the
 * package pins `@grpc/grpc-js` to ~1.14 and a port to a new minor is a change
 * to this file alone.
 *
 * - Resolver `dye:///<app>`: the instances of `app` from a Registry, with each
 *   endpoint's lane passed to the balancer as a resolver attribute.
 * - Load balancer `dye_tenant`: one leaf (pick_first) balancer per endpoint,
 *   grouped into one pool per lane; its picker reads the tenant from the call's
 *   metadata and round-robins over the READY leaves of the lane chosen by the
 *   tenant pool rule (own lane, else baseline or refusal, per policy).
 */
import {
  BASELINE,
  extractTenant,
  getDefaultPolicy,
  logWarning,
  recordRoutingFallback,
  type Tenant,
  TenantConflictError,
  type TenantPolicy,
} from '@dye/core';
import { BASELINE_LANE, chooseLane, type Instance, type InstancesUpdate, LaneRotation, type Registry } from '@dye/discovery';
import { connectivityState as ConnectivityState, experimental, Metadata, status } from '@grpc/grpc-js';
// Not in grpc-js's public API (pinned ~1.14, like the experimental one): a
// resolver must hand over a validated service config (durations parsed).
import { validateServiceConfig } from '@grpc/grpc-js/build/src/service-config.js';
import { metadataCarrier } from './metadata-carrier.js';

type ChannelControlHelper = experimental.ChannelControlHelper;
type Endpoint = experimental.Endpoint;
type Picker = experimental.Picker;
type PickArgs = experimental.PickArgs;
type PickResult = experimental.PickResult;
type ChannelOptions = Record<string, unknown>;

export const RESOLVER_SCHEME = 'dye';
export const LOAD_BALANCER_NAME = 'dye_tenant';
/** Resolver attribute: Map of endpoint address (`host:port`) → its instance's lane and weight. */
const LANES_ATTRIBUTE = 'dye.lanes';

interface EndpointLabel {
  readonly lane: string;
  readonly weight: number;
}

export interface TenantRoutingOptions {
  /** Where instances of apps are found. */
  registry: Registry;
  /** Tenant policy for fallbacks. Default: the default policy at pick time. */
  policy?: TenantPolicy;
}

let routing: TenantRoutingOptions | undefined;

/**
 * Registers the `dye:///<app>` resolver and the `dye_tenant` load balancer with
 * grpc-js, fed by `registry`. One registry per process: a later call replaces
 * it for channels created afterwards.
 */
export function registerTenantRouting(options: TenantRoutingOptions): void {
  if (!options?.registry) throw new TypeError('registerTenantRouting needs a registry');
  const first = routing === undefined;
  routing = options;
  if (!first) return;
  experimental.registerResolver(RESOLVER_SCHEME, TenantResolver);
  experimental.registerLoadBalancerType(LOAD_BALANCER_NAME, TenantLoadBalancer, TenantLoadBalancingConfig);
}

function currentRouting(): TenantRoutingOptions {
  if (!routing) throw new Error('dye:/// targets need registerTenantRouting({ registry }) first');
  return routing;
}

// --- resolver ---------------------------------------------------------------------

function endpointOf(address: string): Endpoint {
  const { host, port } = splitAddress(address);
  return { addresses: [{ host, port }] };
}

function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  return { host, port: Number(address.slice(colon + 1)) };
}

function addressKey(endpoint: Endpoint): string {
  return endpoint.addresses.map((address) => experimental.subchannelAddressToString(address)).join(',');
}

class TenantResolver implements experimental.Resolver {
  readonly #app: string;
  readonly #listener: experimental.ResolverListener;
  readonly #serviceConfig: Record<string, unknown>;
  #unwatch: (() => void) | undefined;

  constructor(target: experimental.GrpcUri, listener: experimental.ResolverListener, options: ChannelOptions) {
    this.#app = target.path.replace(/^\/+/, '');
    this.#listener = listener;
    this.#serviceConfig = userServiceConfig(this.#app, options);
  }

  updateResolution(): void {
    // The watch pushes every change as it happens, so a channel asking again
    // (it does on every lost connection) gets nothing new by a re-report; a
    // re-report would only make the balancer churn. Ask the registry for a
    // fresh read instead: a change found there arrives through the watch.
    if (!this.#unwatch) {
      this.#unwatch = currentRouting().registry.watch(this.#app, (update) => this.#report(update));
    } else {
      currentRouting()
        .registry.snapshot(this.#app)
        .catch(() => {});
    }
  }

  destroy(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return target.path.replace(/^\/+/, '');
  }

  #report(update: InstancesUpdate): void {
    const lanes = new Map<string, EndpointLabel>();
    const endpoints: Endpoint[] = [];
    for (const instance of update.instances as Instance[]) {
      const endpoint = endpointOf(instance.address);
      lanes.set(addressKey(endpoint), { lane: instance.lane, weight: instance.weight ?? 1 });
      endpoints.push(endpoint);
    }
    const serviceConfig = validateServiceConfig({
      methodConfig: [],
      ...this.#serviceConfig,
      loadBalancingConfig: [{ [LOAD_BALANCER_NAME]: { app: this.#app } }],
    });
    const note = update.stale ? `registry unreachable, instances of ${this.#app} from cache` : '';
    this.#listener(
      experimental.statusOrFromValue(endpoints),
      { [LANES_ATTRIBUTE]: lanes },
      experimental.statusOrFromValue(serviceConfig),
      note,
    );
  }
}

/**
 * The service config the channel was given (`grpc.service_config`: retry
 * policies, timeouts, `waitForReady`, retry throttling), which a resolver's
 * config would otherwise replace: it is kept, with Dye's balancer as the only
 * load-balancing choice (a policy of the user's would route around tenants,
 * so it is dropped, with a log line).
 */
function userServiceConfig(app: string, options: ChannelOptions): Record<string, unknown> {
  const raw = options['grpc.service_config'];
  if (typeof raw !== 'string' || raw.trim() === '') return {};
  // grpc-js validated it when it made the channel.
  const { loadBalancingConfig, loadBalancingPolicy, ...rest } = JSON.parse(raw) as Record<string, unknown>;
  if (loadBalancingConfig !== undefined || loadBalancingPolicy !== undefined) {
    logWarning(
      'dye.grpc.lb-policy-ignored',
      `dye:///${app}: the load-balancing policy in grpc.service_config is ignored; dye_tenant chooses instances by tenant`,
    );
  }
  return rest;
}

// --- load balancer ------------------------------------------------------------------

class TenantLoadBalancingConfig implements experimental.TypedLoadBalancingConfig {
  constructor(readonly app: string) {}
  getLoadBalancerName(): string {
    return LOAD_BALANCER_NAME;
  }
  toJsonObject(): object {
    return { [LOAD_BALANCER_NAME]: { app: this.app } };
  }
  static createFromJson(json: { app?: unknown }): TenantLoadBalancingConfig {
    return new TenantLoadBalancingConfig(typeof json?.app === 'string' ? json.app : 'unknown');
  }
}

interface Child {
  readonly key: string;
  lane: string;
  weight: number;
  readonly leaf: experimental.LeafLoadBalancer;
  state: ConnectivityState;
  /** Failed since it was last READY: its lane falls back instead of waiting for it. */
  failed: boolean;
}

/** A leaf of a lane as the picker sees it: its address is its rotation key. */
export interface PickTarget {
  readonly key: string;
  readonly weight: number;
  readonly picker: Picker;
}

class TenantLoadBalancer implements experimental.LoadBalancer {
  readonly #helper: ChannelControlHelper;
  readonly #children = new Map<string, Child>();
  // Outlives the pickers: each rebuilt picker goes on with this channel's rotation.
  readonly #rotation = new LaneRotation();
  #app = 'unknown';
  #updatesPaused = false;

  constructor(helper: ChannelControlHelper) {
    this.#helper = helper;
  }

  updateAddressList(
    endpointList: experimental.StatusOr<Endpoint[]>,
    config: experimental.TypedLoadBalancingConfig,
    options: ChannelOptions,
    resolutionNote: string,
  ): boolean {
    if (!(config instanceof TenantLoadBalancingConfig)) return false;
    this.#app = config.app;
    if (!endpointList.ok) {
      if (this.#children.size === 0) {
        this.#publish(
          ConnectivityState.TRANSIENT_FAILURE,
          new experimental.UnavailablePicker(endpointList.error),
          endpointList.error.details,
        );
      }
      return true;
    }
    const lanes = (options[LANES_ATTRIBUTE] as Map<string, EndpointLabel> | undefined) ?? new Map<string, EndpointLabel>();
    const wanted = new Map(endpointList.value.map((endpoint) => [addressKey(endpoint), endpoint]));
    this.#updatesPaused = true;
    for (const [key, child] of this.#children) {
      if (!wanted.has(key)) {
        child.leaf.destroy();
        this.#children.delete(key);
      }
    }
    for (const [key, endpoint] of wanted) {
      const label = lanes.get(key);
      const lane = label?.lane ?? BASELINE_LANE;
      const weight = label?.weight ?? 1;
      const existing = this.#children.get(key);
      if (existing) {
        existing.lane = lane;
        existing.weight = weight;
        existing.leaf.updateEndpoint(endpoint, options);
        continue;
      }
      const child: Child = {
        key,
        lane,
        weight,
        state: ConnectivityState.IDLE,
        failed: false,
        leaf: undefined as unknown as experimental.LeafLoadBalancer,
      };
      const childHelper = experimental.createChildChannelControlHelper(this.#helper, {
        updateState: (state) => this.#onChildState(child, state),
      });
      (child as { leaf: experimental.LeafLoadBalancer }).leaf = new experimental.LeafLoadBalancer(
        endpoint,
        childHelper,
        options,
        resolutionNote,
      );
      this.#children.set(key, child);
      child.leaf.startConnecting();
    }
    this.#updatesPaused = false;
    this.#recompute();
    return true;
  }

  exitIdle(): void {
    for (const child of this.#children.values()) if (child.leaf.getConnectivityState() === ConnectivityState.IDLE) child.leaf.exitIdle();
  }

  resetBackoff(): void {}

  destroy(): void {
    for (const child of this.#children.values()) child.leaf.destroy();
    this.#children.clear();
  }

  getTypeName(): string {
    return LOAD_BALANCER_NAME;
  }

  #onChildState(child: Child, state: ConnectivityState): void {
    const wasReady = child.state === ConnectivityState.READY;
    child.state = state;
    if (state === ConnectivityState.READY) child.failed = false;
    if (state === ConnectivityState.TRANSIENT_FAILURE || (wasReady && state !== ConnectivityState.READY)) child.failed = true;
    // A connection lost: ask the registry for news (the instance may be gone).
    if (wasReady && state !== ConnectivityState.READY) this.#helper.requestReresolution();
    this.#recompute();
  }

  #recompute(): void {
    if (this.#updatesPaused) return;
    const ready = new Map<string, PickTarget[]>();
    const pending = new Set<string>();
    let connecting = false;
    let failing = false;
    for (const child of this.#children.values()) {
      const state = child.leaf.getConnectivityState();
      child.state = state;
      if (state === ConnectivityState.READY) {
        const list = ready.get(child.lane);
        const target = { key: child.key, weight: child.weight, picker: child.leaf.getPicker() };
        if (list) list.push(target);
        else ready.set(child.lane, [target]);
      } else if (state === ConnectivityState.CONNECTING || state === ConnectivityState.IDLE) {
        connecting = true;
        // First connection attempt of this lane's instance: calls wait for it
        // rather than fall back and land on the wrong lane at startup.
        if (!child.failed) pending.add(child.lane);
      } else if (state === ConnectivityState.TRANSIENT_FAILURE) {
        failing = true;
      }
      if (state === ConnectivityState.IDLE) child.leaf.exitIdle();
    }
    const policy = routing?.policy;
    this.#rotation.retain(new Set([...this.#children.values()].map((child) => child.lane)));
    if (ready.size > 0) {
      this.#publish(ConnectivityState.READY, new TenantPicker(this.#app, ready, pending, policy, this.#rotation), null);
    } else if (connecting) {
      this.#publish(ConnectivityState.CONNECTING, new experimental.QueuePicker(this), null);
    } else {
      const details = this.#children.size === 0 ? `no instance of ${this.#app} is registered` : `no instance of ${this.#app} is reachable`;
      if (failing || this.#children.size === 0) {
        this.#publish(
          ConnectivityState.TRANSIENT_FAILURE,
          new experimental.UnavailablePicker({ code: status.UNAVAILABLE, details }),
          details,
        );
      }
    }
  }

  #publish(state: ConnectivityState, picker: Picker, error: string | null): void {
    this.#helper.updateState(state, picker, error);
  }
}

// --- picker -----------------------------------------------------------------------

const queue: PickResult = {
  pickResultType: experimental.PickResultType.QUEUE,
  subchannel: null,
  status: null,
  onCallStarted: null,
  onCallEnded: null,
};

/**
 * Chooses a lane per call from the call's metadata (never from
 * AsyncLocalStorage: grpc-js re-runs queued picks from the channel's context),
 * then picks among that lane's READY leaves by the channel's rotation
 * (round robin from a random start, weighted by `Instance.weight`).
 */
export class TenantPicker implements Picker {
  readonly #app: string;
  readonly #ready: ReadonlyMap<string, readonly PickTarget[]>;
  readonly #pending: ReadonlySet<string>;
  readonly #policy: TenantPolicy | undefined;
  readonly #rotation: LaneRotation;

  constructor(
    app: string,
    ready: ReadonlyMap<string, readonly PickTarget[]>,
    pending: ReadonlySet<string>,
    policy?: TenantPolicy,
    rotation: LaneRotation = new LaneRotation(),
  ) {
    this.#app = app;
    this.#ready = ready;
    this.#pending = pending;
    this.#policy = policy;
    this.#rotation = rotation;
  }

  pick(args: PickArgs): PickResult {
    const policy = this.#policy ?? getDefaultPolicy();
    let tenant: Tenant;
    try {
      tenant = tenantOf(args.metadata, policy);
    } catch (error) {
      return drop(status.INVALID_ARGUMENT, (error as Error).message);
    }
    const choice = chooseLane(this.#app, tenant, (lane) => this.#ready.has(lane) || this.#pending.has(lane), policy);
    if (!choice.ok) {
      return {
        pickResultType: experimental.PickResultType.TRANSIENT_FAILURE,
        subchannel: null,
        status: { code: status.UNAVAILABLE, details: choice.message, metadata: new Metadata() },
        onCallStarted: null,
        onCallEnded: null,
      };
    }
    const target = this.#rotation.pick(choice.lane, this.#ready.get(choice.lane) ?? []);
    if (target === undefined) return queue;
    if (choice.fellBack) recordRoutingFallback({ app: this.#app, tenant, via: 'grpc' });
    return target.picker.pick(args);
  }
}

function tenantOf(metadata: Metadata, policy: TenantPolicy): Tenant {
  if (metadata.get('x-tenant').length === 0 && metadata.get('baggage').length === 0) return BASELINE;
  try {
    return extractTenant(metadata, metadataCarrier, policy);
  } catch (error) {
    if (error instanceof TenantConflictError) logWarning('dye.grpc.conflict', error.message);
    throw error;
  }
}

function drop(code: status, details: string): PickResult {
  return {
    pickResultType: experimental.PickResultType.DROP,
    subchannel: null,
    status: { code, details, metadata: new Metadata() },
    onCallStarted: null,
    onCallEnded: null,
  };
}
