/**
 * What a unit of work belongs to. `baseline` is production with no tenant given;
 * a color (`red`, `canary`) is routed to its own instances but shares data with
 * production; an isolated tenant (`shadow`, `shadow-*`) always keeps its data in
 * separate resources.
 */
export type TenantKind = 'baseline' | 'color' | 'isolated';

export interface Tenant {
  /** Lowercase name; `baseline` for production. */
  readonly name: string;
  readonly kind: TenantKind;
}

export const BASELINE_NAME = 'baseline';

export const BASELINE: Tenant = Object.freeze({ name: BASELINE_NAME, kind: 'baseline' });

// `shadow` is the full-link load-test tenant. Its data must never reach
// production, so nothing (no policy, no hand-made Tenant object) can make it
// or a `shadow-*` variant anything but isolated.
const ALWAYS_ISOLATED = /^shadow(?:-|$)/;

/** Whether a (valid, lowercase) name is always isolated: `shadow` and `shadow-*`. */
export function isAlwaysIsolated(name: string): boolean {
  return ALWAYS_ISOLATED.test(name);
}

/** Longest tenant name accepted, in characters. */
export const MAX_TENANT_NAME_LENGTH = 32;

// Lowercase letters, digits and inner dashes: safe inside header values, baggage
// values, Redis key prefixes, MySQL identifiers (after `-` → `_`) and Kafka topic
// names without any escaping.
const TENANT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

export type TenantNameCheck = { readonly ok: true; readonly name: string } | { readonly ok: false; readonly reason: string };

/**
 * Case-folds and checks a tenant name. `baseline` (in any case) is accepted and
 * means production; everything else must be 1–32 characters of `[a-z0-9-]`
 * without a leading or trailing dash.
 */
export function checkTenantName(input: string): TenantNameCheck {
  if (input.length === 0) return { ok: false, reason: 'empty tenant name' };
  if (input.length > MAX_TENANT_NAME_LENGTH) {
    return { ok: false, reason: `tenant name longer than ${MAX_TENANT_NAME_LENGTH} characters` };
  }
  const name = input.toLowerCase();
  if (!TENANT_NAME.test(name)) {
    return {
      ok: false,
      reason: `tenant name ${JSON.stringify(input)} is not 1-${MAX_TENANT_NAME_LENGTH} characters of [a-z0-9-] without a leading or trailing dash`,
    };
  }
  return { ok: true, name };
}

export function isBaseline(tenant: Tenant): boolean {
  return tenant.kind === 'baseline';
}

export function isIsolated(tenant: Tenant): boolean {
  return tenant.kind === 'isolated';
}

const verified = new WeakSet<object>([BASELINE]);

/**
 * Checks a Tenant object that code passes in (rather than a name resolved by a
 * policy): a valid lowercase name, a known kind, `baseline` only as baseline,
 * and `shadow`/`shadow-*` only as isolated. Throws a TypeError otherwise.
 * Objects made by a policy are remembered, so the check costs one lookup.
 */
export function assertTenant(value: Tenant): Tenant {
  if (typeof value === 'object' && value !== null && verified.has(value)) return value;
  if (typeof value !== 'object' || value === null || typeof value.name !== 'string') {
    throw new TypeError('expected a tenant name or a Tenant object { name, kind }');
  }
  const { name, kind } = value;
  if (kind !== 'baseline' && kind !== 'color' && kind !== 'isolated') {
    throw new TypeError(`tenant "${name}" has kind ${JSON.stringify(kind)}; expected baseline, color or isolated`);
  }
  if ((name === BASELINE_NAME) !== (kind === 'baseline')) {
    throw new TypeError(`tenant "${name}" of kind ${kind}: only "baseline" is of kind baseline`);
  }
  if (kind !== 'baseline') {
    const checked = checkTenantName(name);
    if (!checked.ok || checked.name !== name) throw new TypeError(checked.ok ? `tenant name "${name}" must be lowercase` : checked.reason);
    if (kind !== 'isolated' && ALWAYS_ISOLATED.test(name)) {
      throw new TypeError(`tenant "${name}" must be isolated (shadow and shadow-* never share production data)`);
    }
  }
  verified.add(value);
  return value;
}

/** @internal Marks a Tenant object a policy built from checked input. */
export function markVerified(tenant: Tenant): Tenant {
  verified.add(tenant);
  return tenant;
}
