import { BASELINE, currentTenant, defaultAccessor, injectTenant, type Tenant } from '@dye/core';
import type { EgressPolicy } from './egress.js';

export interface InjectTenantHeadersOptions {
  /** Where the request goes; with `egress`, tenant headers are written only for internal hosts. */
  url?: string | URL;
  /** The egress policy (createEgressPolicy) deciding what is internal. */
  egress?: EgressPolicy;
  /** The tenant to write; default the current one. */
  tenant?: Tenant;
}

/**
 * Writes the current tenant onto outbound headers for clients Dye does not wrap
 * (axios, got, node:http `request`): `x-tenant` and the baggage member. For a
 * host outside the system (with `url` and `egress`) tenant headers are removed
 * instead, and an isolated tenant's request there throws IsolationError.
 * Returns the same headers object (a plain object or Fetch `Headers`).
 */
export function injectTenantHeaders<H extends object = Record<string, string>>(
  headers: H = {} as H,
  options: InjectTenantHeadersOptions = {},
): H {
  const tenant = options.tenant ?? currentTenant();
  let effective = tenant;
  if (options.egress && options.url !== undefined) {
    const route = options.egress.route(options.url, tenant);
    if (route.origin !== new URL(options.url).origin) {
      // A mock target needs the request itself re-aimed, which only the dispatcher does.
      throw new TypeError(`injectTenantHeaders: ${options.url} is mocked for ${tenant.name}; send it through tenantDispatcher`);
    }
    if (!route.internal) effective = BASELINE;
  }
  return injectTenant(headers, defaultAccessor(headers), effective);
}
