import { type Context, propagation, type Span } from '@opentelemetry/api';
import { TENANT_BAGGAGE_KEY } from './baggage.js';
import { tenantStorage } from './context.js';
import { TENANT_SPAN_ATTRIBUTE } from './otel-bridge.js';
import { getDefaultPolicy } from './policy.js';
import { BASELINE_NAME } from './tenant.js';

/**
 * An OpenTelemetry span processor that puts `dye.tenant` on every span when it
 * starts, so traces can be filtered by tenant. Typed against
 * `@opentelemetry/api` only; pass it to the SDK's `spanProcessors`:
 *
 * ```ts
 * new NodeSDK({ spanProcessors: [new TenantSpanProcessor(), new BatchSpanProcessor(exporter)] })
 * ```
 *
 * The tenant is the one the span's creator runs in (`withTenant`), else the
 * `tenant` member of the parent context's baggage (a server span of an
 * internal hop, which OTel's instrumentation starts before Dye's interceptor
 * runs), else baseline. At the public edge that baggage is untrusted input:
 * Dye's HTTP middleware overwrites the attribute on the active span with the
 * tenant it decided.
 */
export class TenantSpanProcessor {
  onStart(span: Span, parentContext: Context): void {
    span.setAttribute(TENANT_SPAN_ATTRIBUTE, tenantOfSpan(parentContext));
  }

  onEnd(): void {}

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

function tenantOfSpan(parentContext: Context): string {
  const running = tenantStorage().getStore();
  if (running !== undefined) return running.name;
  const value = propagation.getBaggage(parentContext)?.getEntry(TENANT_BAGGAGE_KEY)?.value;
  if (value === undefined) return BASELINE_NAME;
  const resolved = getDefaultPolicy().resolve(value);
  return resolved.ok ? resolved.tenant.name : BASELINE_NAME;
}
