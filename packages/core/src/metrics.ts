import { type Counter, type MeterProvider, metrics } from '@opentelemetry/api';
import { IsolationError } from './errors.js';
import type { Tenant } from './tenant.js';

/** Counter of calls, requests and messages served by the baseline lane because their own lane had no instance. */
export const ROUTING_FALLBACKS_METRIC = 'dye.routing.fallbacks';
/** Counter of operations refused for an isolated tenant (every {@link IsolationError} an adapter raises). */
export const ISOLATION_REFUSALS_METRIC = 'dye.isolation.refusals';

/** Attribute names on Dye's metrics. */
export const METRIC_ATTRIBUTES = {
  tenant: 'dye.tenant',
  app: 'dye.app',
  /** What routed (`grpc`, `http`, `kafka`) or what refused (`redis`, `mysql`, `kafka`, `http`). */
  via: 'dye.via',
} as const;

/** Where a store that refused an isolated tenant's work lives. */
export type RefusingResource = 'redis' | 'mysql' | 'kafka' | 'amqp' | 'http';

/** How a fallback was routed. */
export type FallbackRoute = 'grpc' | 'http' | 'kafka';

const METER_NAME = '@dye/core';

interface Counters {
  readonly provider: MeterProvider;
  readonly fallbacks: Counter;
  readonly refusals: Counter;
}

let counters: Counters | undefined;

// @opentelemetry/api has no proxy meter provider: a meter taken before the SDK
// registers its provider stays a no-op forever. The counters are therefore
// re-made whenever the global provider changes, which costs one global read per
// recording, and recordings only happen off the baseline path.
function currentCounters(): Counters {
  const provider = metrics.getMeterProvider();
  if (counters?.provider === provider) return counters;
  const meter = provider.getMeter(METER_NAME);
  counters = {
    provider,
    fallbacks: meter.createCounter(ROUTING_FALLBACKS_METRIC, {
      description: "Work served by baseline instances because its tenant's lane had none",
      unit: '{request}',
    }),
    refusals: meter.createCounter(ISOLATION_REFUSALS_METRIC, {
      description: 'Operations refused because an isolated tenant could not be kept away from production data',
      unit: '{operation}',
    }),
  };
  return counters;
}

let localApp: string | undefined;

/**
 * The app name put on isolation refusals: the service that refused. Default
 * `DYE_APP`, else `OTEL_SERVICE_NAME`, else `unknown`.
 */
export function setMetricsApp(app: string): void {
  if (typeof app !== 'string' || app.length === 0) throw new TypeError('setMetricsApp expects a non-empty app name');
  localApp = app;
}

function serviceApp(): string {
  localApp ??= process.env.DYE_APP || process.env.OTEL_SERVICE_NAME || 'unknown';
  return localApp;
}

/**
 * Counts one unit of work (call, request, message) of a color whose lane of
 * `app` had no instance, and that went to baseline instead. Isolated tenants
 * run on baseline instances by design (their isolation lives in the data
 * adapters), so they are not counted. For routers; never throws.
 */
export function recordRoutingFallback(details: { app: string; tenant: Tenant; via: FallbackRoute }): void {
  if (details.tenant.kind !== 'color') return;
  try {
    currentCounters().fallbacks.add(1, {
      [METRIC_ATTRIBUTES.tenant]: details.tenant.name,
      [METRIC_ATTRIBUTES.app]: details.app,
      [METRIC_ATTRIBUTES.via]: details.via,
    });
  } catch {
    // A broken metrics pipeline must not fail the call it measures.
  }
}

/**
 * Makes the {@link IsolationError} an adapter is about to throw and counts it
 * in `dye.isolation.refusals` (labelled with the tenant, this service's app and
 * the resource), so every refusal is both an error and a data point.
 */
export function isolationRefusal(
  resource: RefusingResource,
  details: { tenant: string; refused: string; reason: string },
  options?: ErrorOptions,
): IsolationError {
  try {
    currentCounters().refusals.add(1, {
      [METRIC_ATTRIBUTES.tenant]: details.tenant,
      [METRIC_ATTRIBUTES.app]: serviceApp(),
      [METRIC_ATTRIBUTES.via]: resource,
    });
  } catch {
    // The refusal itself matters more than its count.
  }
  return new IsolationError(details, options);
}
