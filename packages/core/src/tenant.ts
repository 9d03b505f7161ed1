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
