import { type Context, context, propagation, trace } from '@opentelemetry/api';
import { TENANT_BAGGAGE_KEY } from './baggage.js';
import { getDefaultPolicy } from './policy.js';
import type { Tenant } from './tenant.js';

// Where every copy of @opentelemetry/api 1.x registers the global context
// manager (api/src/internal/global-utils.ts): the cross-copy contract of the
// API, read here so a process without an OTel context manager pays nothing for
// the bridge. Without a manager, OTel contexts cannot carry anything anyway.
const OTEL_API_GLOBAL = Symbol.for('opentelemetry.js.api.1');

/** True when an OpenTelemetry context manager is registered (the OTel SDK is running). */
export function otelContextActive(): boolean {
  // The API keeps its holder object once made (unregistering deletes fields of
  // it, not the holder), so after the first sighting one plain property read
  // answers; a symbol lookup on globalThis costs several times that.
  otelApiHolder ??= (globalThis as { [OTEL_API_GLOBAL]?: OtelApiHolder })[OTEL_API_GLOBAL];
  return otelApiHolder?.context !== undefined;
}

interface OtelApiHolder {
  context?: unknown;
}

let otelApiHolder: OtelApiHolder | undefined;

/**
 * Runs `fn` in an OpenTelemetry context whose baggage says `tenant=<name>` (or
 * has no tenant member, for baseline), so OTel-instrumented code and OTel's own
 * propagators agree with Dye. Callers skip it when {@link otelContextActive} is
 * false; when the active baggage already agrees, no new context is made.
 */
export function withOtelTenant<R>(tenant: Tenant, fn: () => R): R {
  const active = context.active();
  const baggage = propagation.getBaggage(active);
  const entry = baggage?.getEntry(TENANT_BAGGAGE_KEY);
  if (tenant.kind === 'baseline') {
    // A tenant extracted by OTel's own HTTP instrumentation from untrusted input
    // must not survive an explicit baseline decision.
    if (baggage === undefined || entry === undefined) return fn();
    return context.with(propagation.setBaggage(active, baggage.removeEntry(TENANT_BAGGAGE_KEY)), fn);
  }
  if (entry?.value === tenant.name) return fn();
  const next = (baggage ?? propagation.createBaggage()).setEntry(TENANT_BAGGAGE_KEY, { value: tenant.name });
  return context.with(propagation.setBaggage(active, next), fn);
}

/**
 * The tenant named by the active OTel baggage, for work entered through
 * OTel-instrumented code that Dye did not wrap. Undefined when there is none or
 * the name is invalid (then the caller falls back to baseline).
 */
export function tenantFromOtelBaggage(): Tenant | undefined {
  if (!otelContextActive()) return undefined;
  const value = propagation.getActiveBaggage()?.getEntry(TENANT_BAGGAGE_KEY)?.value;
  if (value === undefined) return undefined;
  const resolved = getDefaultPolicy().resolve(value);
  return resolved.ok ? resolved.tenant : undefined;
}

/** The active OTel context when a context manager is registered, to carry into a bound callback. */
export function captureOtelContext(): Context | undefined {
  return otelContextActive() ? context.active() : undefined;
}

export function runInOtelContext<R>(captured: Context | undefined, fn: () => R): R {
  return captured === undefined ? fn() : context.with(captured, fn);
}

/** The span attribute naming the tenant of the work a span measures. */
export const TENANT_SPAN_ATTRIBUTE = 'dye.tenant';

/** Sets `dye.tenant` on the active OTel span, when there is one. */
export function annotateActiveSpan(tenant: Tenant): void {
  if (!otelContextActive()) return;
  trace.getActiveSpan()?.setAttribute(TENANT_SPAN_ATTRIBUTE, tenant.name);
}
