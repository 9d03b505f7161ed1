/**
 * OpenTelemetry for a shop service, loaded before it with
 * `node --import ./dist/telemetry.js dist/<service>.js`. Spans carry
 * `dye.tenant` (TenantSpanProcessor); HTTP and gRPC spans come from OTel's own
 * instrumentation, which needs its module hook registered before the service's
 * imports run. Exporter: OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else
 * the console; OTEL_TRACES_EXPORTER=none turns spans off.
 */
import { register } from 'node:module';
import { TenantSpanProcessor } from '@dye/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, ConsoleSpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);

function spanProcessors(): SpanProcessor[] {
  if (process.env.OTEL_TRACES_EXPORTER === 'none') return [new TenantSpanProcessor()];
  const exporter = process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? new OTLPTraceExporter() : new ConsoleSpanExporter();
  return [new TenantSpanProcessor(), new BatchSpanProcessor(exporter)];
}

const sdk = new NodeSDK({
  serviceName: process.env.OTEL_SERVICE_NAME ?? 'shop',
  spanProcessors: spanProcessors(),
  instrumentations: [new HttpInstrumentation(), new GrpcInstrumentation()],
});
sdk.start();

// Services flush spans before they exit (runtime.ts, onShutdown) through this hook.
(globalThis as Record<symbol, unknown>)[Symbol.for('shop.telemetry.shutdown')] = () => sdk.shutdown();
