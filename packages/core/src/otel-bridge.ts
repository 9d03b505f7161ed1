import { type Context, context, propagation, trace } from '@opentelemetry/api';
import { isTenantBaggageKey, TENANT_BAGGAGE_KEY } from './baggage.js';
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
  propagation?: OtelPropagator;
}

interface OtelPropagator {
  inject(context: Context, carrier: unknown, setter?: unknown): void;
  extract(context: Context, carrier: unknown, getter?: unknown): Context;
  fields(): string[];
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
  if (baggage === undefined) {
    if (tenant.kind === 'baseline') return fn();
    return context.with(propagation.setBaggage(active, propagation.createBaggage({ [TENANT_BAGGAGE_KEY]: { value: tenant.name } })), fn);
  }
  // Other spellings a downstream reader folds to `tenant` (`Tenant`, `TENANT`)
  // go too: OTel forwards them as they are, and Dye behind the next hop reads them.
  let stray: string[] | undefined;
  for (const [key] of baggage.getAllEntries()) {
    if (key !== TENANT_BAGGAGE_KEY && isTenantBaggageKey(key)) (stray ??= []).push(key);
  }
  const entry = baggage.getEntry(TENANT_BAGGAGE_KEY);
  if (tenant.kind === 'baseline') {
    // A tenant extracted by OTel's own HTTP instrumentation from untrusted input
    // must not survive an explicit baseline decision.
    if (entry === undefined && stray === undefined) return fn();
    return context.with(propagation.setBaggage(active, baggage.removeEntries(TENANT_BAGGAGE_KEY, ...(stray ?? []))), fn);
  }
  if (entry?.value === tenant.name && stray === undefined) return fn();
  const next = (stray ? baggage.removeEntries(...stray) : baggage).setEntry(TENANT_BAGGAGE_KEY, { value: tenant.name });
  return context.with(propagation.setBaggage(active, next), fn);
}

/**
 * Runs `fn` (an outbound send) with the OTel baggage saying `tenant` and
 * nothing else about tenants, so an OTel instrumentation that injects baggage
 * while `fn` runs (undici's, node:http's) writes what Dye decided for this
 * destination: the tenant for an internal host, none for an outside one.
 * Free when no OTel context manager is registered.
 */
export function withOtelBaggageFor<A extends unknown[], R>(tenant: Tenant, fn: (...args: A) => R, ...args: A): R {
  // Without OTel this is a plain call: no closure on the send path.
  return otelContextActive() ? withOtelTenant(tenant, () => fn(...args)) : fn(...args);
}

// Whether OTel baggage may name the tenant when Dye's own context has none.
// Behind an edge it is what a trusted upstream said; in an edge process it is
// whatever a public client sent, so an edge guard turns it off.
let otelBaggageTrusted = true;

/**
 * @internal Called by an edge guard: from now on this process never takes the
 * tenant from OTel baggage (only from Dye's own context), and every context
 * OTel's propagator extracts from a carrier has its tenant member removed, so
 * code running before the guard decided (auth hooks, rate limiters, body
 * callbacks bound by OTel's HTTP instrumentation) neither sees nor forwards a
 * tenant a client chose.
 */
export function distrustOtelBaggage(): void {
  otelBaggageTrusted = false;
  guardOtelExtraction();
}

const GUARDED = Symbol.for('dye.otel.extraction-guarded');

/**
 * Replaces the registered global OTel propagator with one that extracts as it
 * did, minus every baggage member Dye reads as `tenant`. Idempotent and cheap
 * once done; a propagator registered later is wrapped the next time this runs
 * (an edge guard runs it on every decision).
 */
export function guardOtelExtraction(): void {
  otelApiHolder ??= (globalThis as { [OTEL_API_GLOBAL]?: OtelApiHolder })[OTEL_API_GLOBAL];
  const registered = otelApiHolder?.propagation;
  if (registered === undefined || (registered as { [GUARDED]?: true })[GUARDED]) return;
  const guarded: OtelPropagator & { [GUARDED]: true } = {
    [GUARDED]: true,
    inject: (ctx, carrier, setter) => registered.inject(ctx, carrier, setter),
    extract: (ctx, carrier, getter) => withoutTenantBaggage(registered.extract(ctx, carrier, getter)),
    fields: () => registered.fields(),
  };
  (otelApiHolder as OtelApiHolder).propagation = guarded;
}

function withoutTenantBaggage(extracted: Context): Context {
  const baggage = propagation.getBaggage(extracted);
  if (baggage === undefined) return extracted;
  const tenantKeys = baggage
    .getAllEntries()
    .map(([key]) => key)
    .filter((key) => isTenantBaggageKey(key));
  if (tenantKeys.length === 0) return extracted;
  return propagation.setBaggage(extracted, baggage.removeEntries(...tenantKeys));
}

/**
 * The tenant named by the active OTel baggage, for work entered through
 * OTel-instrumented code that Dye did not wrap. Undefined when there is none,
 * the name is invalid (then the caller falls back to baseline), or this
 * process is an edge (see {@link distrustOtelBaggage}).
 */
export function tenantFromOtelBaggage(): Tenant | undefined {
  if (!otelBaggageTrusted || !otelContextActive()) return undefined;
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
