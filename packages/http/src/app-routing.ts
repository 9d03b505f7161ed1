import { getDefaultPolicy, logWarning, recordRoutingFallback, type Tenant, type TenantPolicy } from '@dye/core';
import { chooseLane, groupByLane, type Instance, LaneRotation, type Registry } from '@dye/discovery';

/** Hostnames checked against the registry and found empty are not asked again for this long, ms. */
const NOT_AN_APP_MS = 5_000;
const APP_HOST = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;

interface AppState {
  lanes: Map<string, RoutedInstance[]>;
  /** Kept across registry changes: round robin from a random start, weighted by `Instance.weight`. */
  readonly rotation: LaneRotation;
}

interface RoutedInstance {
  readonly key: string;
  readonly weight: number | undefined;
  readonly instance: Instance;
}

function lanesOf(instances: readonly Instance[]): Map<string, RoutedInstance[]> {
  const lanes = new Map<string, RoutedInstance[]>();
  for (const [lane, members] of groupByLane(instances))
    lanes.set(
      lane,
      members.map((instance) => ({ key: instance.id, weight: instance.weight, instance })),
    );
  return lanes;
}

export type AppRoute = { readonly ok: true; readonly origin: string } | { readonly ok: false; readonly error: Error };

/**
 * Routes `http://<app>/…` (a dotted app name, no port) to an instance of the
 * app's lane for the tenant, through a Registry: the same tenant pool rule as
 * gRPC (own lane, else baseline or refusal per policy), round robin within the
 * lane from a random start, weighted by `Instance.weight`. Apps are watched once seen, so later requests route without waiting.
 */
export class AppRouter {
  readonly #registry: Registry;
  readonly #policy: TenantPolicy | undefined;
  readonly #apps = new Map<string, AppState>();
  readonly #notApps = new Map<string, number>();
  readonly #loading = new Map<string, Promise<AppState | undefined>>();

  constructor(registry: Registry, policy?: TenantPolicy) {
    this.#registry = registry;
    this.#policy = policy;
  }

  /** Whether a URL may name an app: a dotted lowercase hostname and no explicit port. */
  static candidate(url: URL): boolean {
    return url.port === '' && url.protocol === 'http:' && APP_HOST.test(url.hostname);
  }

  /** A route now when the app is known (or known not to be one); undefined when it must be loaded first. */
  routeNow(url: URL, tenant: Tenant): AppRoute | 'not-an-app' | undefined {
    const app = url.hostname;
    const state = this.#apps.get(app);
    if (state) return this.#route(app, state, tenant);
    const notUntil = this.#notApps.get(app);
    if (notUntil !== undefined && notUntil > Date.now()) return 'not-an-app';
    return undefined;
  }

  /** Loads an app from the registry, then routes. */
  async route(url: URL, tenant: Tenant): Promise<AppRoute | 'not-an-app'> {
    const app = url.hostname;
    let loading = this.#loading.get(app);
    if (!loading) {
      loading = this.#load(app).finally(() => this.#loading.delete(app));
      this.#loading.set(app, loading);
    }
    const state = await loading;
    return state ? this.#route(app, state, tenant) : 'not-an-app';
  }

  async #load(app: string): Promise<AppState | undefined> {
    const snapshot = await this.#registry.snapshot(app).catch((error: Error) => {
      logWarning('dye.http.registry-failed', `cannot look up ${app} in the registry: ${error.message}`);
      return undefined;
    });
    if (!snapshot || snapshot.instances.length === 0) {
      this.#notApps.set(app, Date.now() + NOT_AN_APP_MS);
      return undefined;
    }
    const state: AppState = { lanes: lanesOf(snapshot.instances), rotation: new LaneRotation() };
    this.#apps.set(app, state);
    this.#registry.watch(app, (update) => {
      state.lanes = lanesOf(update.instances);
      state.rotation.retain(state.lanes.keys());
    });
    return state;
  }

  #route(app: string, state: AppState, tenant: Tenant): AppRoute {
    const choice = chooseLane(app, tenant, (lane) => (state.lanes.get(lane)?.length ?? 0) > 0, this.#policy ?? getDefaultPolicy());
    if (!choice.ok) return { ok: false, error: new Error(`dye: ${choice.message}`) };
    if (choice.fellBack) recordRoutingFallback({ app, tenant, via: 'http' });
    const chosen = state.rotation.pick(choice.lane, state.lanes.get(choice.lane) ?? []) as RoutedInstance;
    return { ok: true, origin: `http://${chosen.instance.address}` };
  }
}
