/**
 * OpenTelemetry for a shop service, loaded before it with
 * `node --import ./dist/telemetry.js dist/<service>.js`. Spans carry
 * `dye.tenant` (TenantSpanProcessor); HTTP and gRPC spans come from OTel's own
 * instrumentation, which needs its module hook registered before the service's
 * imports run. Spans: OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else
 * the console; OTEL_TRACES_EXPORTER=none turns them off. Metrics (Dye's
 * routing-fallback and isolation-refusal counters): OTLP when the endpoint is
 * set, else off unless OTEL_METRICS_EXPORTER says otherwise.
 */
import { register } from 'node:module';
import { TenantSpanProcessor } from '@dye/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, ConsoleSpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);

const otlp = Boolean(process.env.OTEL_EXPORTER_OTLP_ENDPOINT);

function spanProcessors(): SpanProcessor[] {
  if (process.env.OTEL_TRACES_EXPORTER === 'none') return [new TenantSpanProcessor()];
  const exporter = otlp ? new OTLPTraceExporter() : new ConsoleSpanExporter();
  return [new TenantSpanProcessor(), new BatchSpanProcessor(exporter)];
}

// The SDK's own defaults would export metrics and logs over OTLP to
// localhost:4318 even with no collector there (and stall every shutdown on
// retries). Logs go through pino.
process.env.OTEL_METRICS_EXPORTER ??= otlp ? 'otlp' : 'none';
process.env.OTEL_LOGS_EXPORTER ??= 'none';

const sdk = new NodeSDK({
  serviceName: process.env.OTEL_SERVICE_NAME ?? 'shop',
  spanProcessors: spanProcessors(),
  instrumentations: [new HttpInstrumentation(), new GrpcInstrumentation()],
});
sdk.start();

// Services flush spans before they exit (runtime.ts, onShutdown) through this hook.
(globalThis as Record<symbol, unknown>)[Symbol.for('shop.telemetry.shutdown')] = () => sdk.shutdown();
