import { getDefaultPolicy, logWarning, recordRoutingFallback, type Tenant, type TenantPolicy } from '@dye/core';
import { chooseLane, groupByLane, type Instance, LaneRotation, type Registry } from '@dye/discovery';

/** Hostnames checked against the registry and found empty are not asked again for this long, ms. */
const NOT_AN_APP_MS = 5_000;
/** An instance whose connection failed is left out for this long, doubling with each failure in a row up to EJECT_MAX_MS. */
const EJECT_BASE_MS = 1_000;
const EJECT_MAX_MS = 30_000;

interface Ejection {
  until: number;
  failures: number;
}
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
 *
 * Outlier ejection: an instance whose connection failed (`eject`) is left out
 * of this caller's pools at once, for 1 s doubling with each failure in a
 * row (30 s at most), until a response from it (`succeeded`); a lane left
 * with ejected instances only is empty to the tenant pool rule (so a red
 * request falls back to baseline, still red). When every instance a request
 * could use is ejected, ejection is ignored rather than fail it.
 */
export class AppRouter {
  readonly #registry: Registry;
  readonly #policy: TenantPolicy | undefined;
  readonly #apps = new Map<string, AppState>();
  readonly #notApps = new Map<string, number>();
  readonly #loading = new Map<string, Promise<AppState | undefined>>();
  /** By origin (`http://host:port`). */
  readonly #ejected = new Map<string, Ejection>();

  constructor(registry: Registry, policy?: TenantPolicy) {
    this.#registry = registry;
    this.#policy = policy;
  }

  /** Whether a URL may name an app: a dotted lowercase hostname and no explicit port. */
  static candidate(url: URL): boolean {
    return url.port === '' && url.protocol === 'http:' && APP_HOST.test(url.hostname);
  }

  /** A route now when the app is known (or known not to be one); undefined when it must be loaded first. `avoid`: an origin that just failed this request. */
  routeNow(url: URL, tenant: Tenant, avoid?: string): AppRoute | 'not-an-app' | undefined {
    const app = url.hostname;
    const state = this.#apps.get(app);
    if (state) return this.#route(app, state, tenant, avoid);
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

  /** Leaves `origin` out of this caller's pools for a while: its connection failed. */
  eject(origin: string): void {
    const now = Date.now();
    const previous = this.#ejected.get(origin);
    const failures = (previous?.failures ?? 0) + 1;
    const until = now + Math.min(EJECT_BASE_MS * 2 ** (failures - 1), EJECT_MAX_MS);
    this.#ejected.set(origin, { until, failures });
    if (failures === 1) logWarning('dye.http.ejected', `${origin} ejected from routing after a connection failure`, { origin });
  }

  /** A response came from `origin`: it is healthy again. */
  succeeded(origin: string): void {
    if (this.#ejected.size > 0) this.#ejected.delete(origin);
  }

  #route(app: string, state: AppState, tenant: Tenant, avoid?: string): AppRoute {
    const policy = this.#policy ?? getDefaultPolicy();
    let lanes = state.lanes;
    if (this.#ejected.size > 0 || avoid !== undefined) lanes = this.#usable(state.lanes, avoid, true);
    let choice = chooseLane(app, tenant, (lane) => (lanes.get(lane)?.length ?? 0) > 0, policy);
    if (!choice.ok && this.#ejected.size > 0) {
      // Every instance this request could use is ejected: trying one beats failing it.
      lanes = this.#usable(state.lanes, avoid, false);
      choice = chooseLane(app, tenant, (lane) => (lanes.get(lane)?.length ?? 0) > 0, policy);
    }
    if (!choice.ok) return { ok: false, error: new Error(`dye: ${choice.message}`) };
    if (choice.fellBack) recordRoutingFallback({ app, tenant, via: 'http' });
    const chosen = state.rotation.pick(choice.lane, lanes.get(choice.lane) ?? []) as RoutedInstance;
    return { ok: true, origin: `http://${chosen.instance.address}` };
  }

  /** The lanes without `avoid` and (with `ejecting`) without instances ejected now; lanes left empty are dropped. */
  #usable(lanes: Map<string, RoutedInstance[]>, avoid: string | undefined, ejecting: boolean): Map<string, RoutedInstance[]> {
    const now = Date.now();
    const usable = new Map<string, RoutedInstance[]>();
    for (const [lane, members] of lanes) {
      const kept = members.filter((member) => {
        const origin = `http://${member.instance.address}`;
        if (origin === avoid) return false;
        if (!ejecting) return true;
        const ejection = this.#ejected.get(origin);
        return ejection === undefined || ejection.until <= now;
      });
      if (kept.length > 0) usable.set(lane, kept);
    }
    return usable;
  }
}
