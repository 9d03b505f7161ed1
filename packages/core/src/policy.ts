import { assertTenant, BASELINE, BASELINE_NAME, checkTenantName, isAlwaysIsolated, markVerified, type Tenant } from './tenant.js';

/**
 * What routing does when a tenant's own instances are missing: `baseline` (a weak
 * tag: fall back to production instances) or `reject` (a strict tag: fail the call).
 */
export type RoutingFallback = 'baseline' | 'reject';

/** A data store whose resources an isolated tenant renames. */
export type IsolatedStore = 'redis' | 'mysql' | 'kafka' | 'amqp';

export const ISOLATED_STORES: readonly IsolatedStore[] = Object.freeze(['redis', 'mysql', 'kafka', 'amqp']);

/** The rule for one configured tenant. */
export interface TenantRule {
  /** `color`: routed to its own instances, data shared. `isolated`: data always in separate resources. */
  kind: 'color' | 'isolated';
  /** Routing when no instance of this lane exists. Default `baseline`. */
  fallback?: RoutingFallback;
  /**
   * For colors: stores whose data this color keeps apart as an isolated tenant
   * would (for example a `red` lane with its own Redis keyspace). Isolated
   * tenants always isolate every store; this field is ignored for them.
   */
  isolate?: readonly IsolatedStore[];
}

export interface PolicyOptions {
  /** Rules by tenant name. `baseline` is reserved; `shadow` and `shadow-*` are always isolated. */
  tenants?: Record<string, TenantRule>;
  /**
   * What a valid but unconfigured name becomes: `color` (default: a color with
   * fallback to baseline) or `baseline` (only configured tenants exist).
   */
  unknown?: 'color' | 'baseline';
}

export type TenantResolution = { readonly ok: true; readonly tenant: Tenant } | { readonly ok: false; readonly reason: string };

/** Per-tenant rules: kind, routing fallback and which stores isolate. */
export interface TenantPolicy {
  /** Resolves a name from the wire or from code. Never throws. */
  resolve(name: string): TenantResolution;
  /** Resolves a name from code, or passes a Tenant through; throws a TypeError on an invalid name. */
  tenant(nameOrTenant: string | Tenant): Tenant;
  /** Routing fallback for a tenant (always `baseline` for baseline itself). */
  fallback(tenant: Tenant): RoutingFallback;
  /** Whether this tenant's data in `store` lives in separate, renamed resources. */
  isolates(tenant: Tenant, store: IsolatedStore): boolean;
}

// Unknown-but-valid names come from the wire; keep the cache of their Tenant
// objects bounded so a stream of made-up names cannot grow memory.
const UNKNOWN_CACHE_LIMIT = 256;

interface CompiledRule {
  readonly tenant: Tenant;
  readonly fallback: RoutingFallback;
  readonly isolate: ReadonlySet<IsolatedStore>;
}

class Policy implements TenantPolicy {
  readonly #rules = new Map<string, CompiledRule>();
  readonly #byTenant = new WeakMap<Tenant, CompiledRule>();
  readonly #unknownCache = new Map<string, CompiledRule>();
  readonly #unknown: 'color' | 'baseline';

  constructor(options: PolicyOptions) {
    this.#unknown = options.unknown ?? 'color';
    if (this.#unknown !== 'color' && this.#unknown !== 'baseline') {
      throw new TypeError(`policy option "unknown" must be 'color' or 'baseline', got ${JSON.stringify(this.#unknown)}`);
    }
    for (const [rawName, rule] of Object.entries(options.tenants ?? {})) {
      const checked = checkTenantName(rawName);
      if (!checked.ok) throw new TypeError(`policy: ${checked.reason}`);
      const name = checked.name;
      if (name === BASELINE_NAME) throw new TypeError('policy: "baseline" is reserved for production and cannot be configured');
      if (rule.kind !== 'color' && rule.kind !== 'isolated') {
        throw new TypeError(`policy: tenant "${name}" has kind ${JSON.stringify(rule.kind)}; expected 'color' or 'isolated'`);
      }
      if (isAlwaysIsolated(name) && rule.kind !== 'isolated') {
        throw new TypeError(`policy: tenant "${name}" is always isolated (shadow and shadow-* never share production data)`);
      }
      if (rule.fallback !== undefined && rule.fallback !== 'baseline' && rule.fallback !== 'reject') {
        throw new TypeError(`policy: tenant "${name}" has fallback ${JSON.stringify(rule.fallback)}; expected 'baseline' or 'reject'`);
      }
      for (const store of rule.isolate ?? []) {
        if (!ISOLATED_STORES.includes(store)) {
          throw new TypeError(
            `policy: tenant "${name}" isolates unknown store ${JSON.stringify(store)}; expected one of ${ISOLATED_STORES.join(', ')}`,
          );
        }
      }
      if (this.#rules.has(name)) throw new TypeError(`policy: tenant "${name}" is configured twice (names are case-insensitive)`);
      this.#add(name, rule.kind, rule.fallback ?? 'baseline', rule.kind === 'isolated' ? ISOLATED_STORES : (rule.isolate ?? []));
    }
    this.#byTenant.set(BASELINE, { tenant: BASELINE, fallback: 'baseline', isolate: new Set() });
  }

  resolve(input: string): TenantResolution {
    const configured = this.#rules.get(input);
    if (configured) return { ok: true, tenant: configured.tenant };
    const checked = checkTenantName(input);
    if (!checked.ok) return checked;
    const name = checked.name;
    if (name === BASELINE_NAME) return { ok: true, tenant: BASELINE };
    const rule = this.#rules.get(name) ?? this.#unknownRule(name);
    return { ok: true, tenant: rule ? rule.tenant : BASELINE };
  }

  tenant(nameOrTenant: string | Tenant): Tenant {
    if (typeof nameOrTenant !== 'string') return assertTenant(nameOrTenant);
    const resolved = this.resolve(nameOrTenant);
    if (!resolved.ok) throw new TypeError(resolved.reason);
    return resolved.tenant;
  }

  fallback(tenant: Tenant): RoutingFallback {
    return this.#ruleOf(tenant)?.fallback ?? 'baseline';
  }

  isolates(tenant: Tenant, store: IsolatedStore): boolean {
    if (tenant.kind === 'isolated') return true;
    if (tenant.kind === 'baseline') return false;
    return this.#ruleOf(tenant)?.isolate.has(store) ?? false;
  }

  #ruleOf(tenant: Tenant): CompiledRule | undefined {
    return this.#byTenant.get(tenant) ?? this.#rules.get(tenant.name) ?? this.#unknownCache.get(tenant.name);
  }

  #unknownRule(name: string): CompiledRule | undefined {
    const cached = this.#unknownCache.get(name);
    if (cached) return cached;
    let rule: CompiledRule;
    if (isAlwaysIsolated(name)) {
      rule = this.#compile(name, 'isolated', 'baseline', ISOLATED_STORES);
    } else if (this.#unknown === 'baseline') {
      return undefined;
    } else {
      rule = this.#compile(name, 'color', 'baseline', []);
    }
    if (this.#unknownCache.size >= UNKNOWN_CACHE_LIMIT) {
      const oldest = this.#unknownCache.keys().next().value;
      if (oldest !== undefined) this.#unknownCache.delete(oldest);
    }
    this.#unknownCache.set(name, rule);
    return rule;
  }

  #add(name: string, kind: 'color' | 'isolated', fallback: RoutingFallback, isolate: readonly IsolatedStore[]): void {
    this.#rules.set(name, this.#compile(name, kind, fallback, isolate));
  }

  #compile(name: string, kind: 'color' | 'isolated', fallback: RoutingFallback, isolate: readonly IsolatedStore[]): CompiledRule {
    const rule: CompiledRule = { tenant: markVerified(Object.freeze({ name, kind })), fallback, isolate: new Set(isolate) };
    this.#byTenant.set(rule.tenant, rule);
    return rule;
  }
}

/**
 * Builds a tenant policy. Without options it is the default policy: `shadow` and
 * `shadow-*` are isolated, every other valid name is a color that falls back to
 * baseline instances.
 *
 * ```ts
 * createPolicy({ tenants: { red: { kind: 'color' }, pay: { kind: 'color', fallback: 'reject' } }, unknown: 'baseline' })
 * ```
 */
export function createPolicy(options: PolicyOptions = {}): TenantPolicy {
  return new Policy(options);
}

let defaultPolicy: TenantPolicy = createPolicy();

/** Replaces the policy used wherever none is passed explicitly. */
export function setDefaultPolicy(policy: TenantPolicy): void {
  if (!policy || typeof policy.resolve !== 'function') throw new TypeError('setDefaultPolicy expects a policy from createPolicy()');
  defaultPolicy = policy;
}

export function getDefaultPolicy(): TenantPolicy {
  return defaultPolicy;
}
