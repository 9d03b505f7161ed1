// The same suite with the OpenTelemetry SDK as a service runs it: a context
// manager, W3C trace-context and baggage propagators, and OTel's HTTP
// instrumentation, which extracts client baggage before any middleware runs.
import { createRequire } from 'node:module';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { defineEdgeSuite } from './adversarial/suite.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
trace.setGlobalTracerProvider(new BasicTracerProvider());
registerInstrumentations({ instrumentations: [new HttpInstrumentation()] });
// The instrumentation patches node:http when it is required after registration.
createRequire(import.meta.url)('node:http');

defineEdgeSuite('with the OpenTelemetry SDK and its HTTP instrumentation');
