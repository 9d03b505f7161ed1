/**
 * What users would pick instead: the same HTTP hop and gRPC call carrying
 * `tenant=red` from client to handler, bare (no tenant), through Dye, and
 * through the OpenTelemetry SDK (its http/grpc instrumentation propagating W3C
 * baggage, a tracer provider recording spans), in one run.
 *
 * OTel's instrumentation patches node:http and grpc-js globally, so it is
 * switched on only for its own rounds (with the OTel context manager,
 * propagator and tracer provider), and off for the bare and Dye rounds.
 *
 *   npm run bench -- otel
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { currentTenant, setLogger, withTenant } from '@dye/core';
import { tenantClientInterceptor, tenantServerInterceptor } from '@dye/grpc';
import { injectTenantHeaders, tenantMiddleware } from '@dye/http';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { compareThroughput, printThroughput, type ThroughputResult } from './harness.js';
import { jsonInventoryService } from './json-service.js';

setLogger({ warn: () => {} });

// The instrumentations hook require(): registered first, then node:http and
// grpc-js loaded through require, they patch the very objects this suite uses.
const httpInstrumentation = new HttpInstrumentation();
const grpcInstrumentation = new GrpcInstrumentation();
registerInstrumentations({ instrumentations: [httpInstrumentation, grpcInstrumentation] });
const require = createRequire(import.meta.url);
const http = require('node:http') as typeof import('node:http');
const grpc = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');

/** Spans are recorded and handed to an exporter, as in a service; the exporter drops them. */
class DroppingExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (result: { code: 0 }) => void): void {
    done({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
const contextManager = new AsyncLocalStorageContextManager().enable();
const propagator = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new DroppingExporter())] });

function otelOn(): void {
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(propagator);
  trace.setGlobalTracerProvider(tracerProvider);
  httpInstrumentation.setTracerProvider(tracerProvider);
  grpcInstrumentation.setTracerProvider(tracerProvider);
  httpInstrumentation.enable();
  grpcInstrumentation.enable();
}

function otelOff(): void {
  httpInstrumentation.disable();
  grpcInstrumentation.disable();
  context.disable();
  propagation.disable();
  trace.disable();
}
otelOff();

const otelRed = <T>(fn: () => Promise<T>): Promise<T> =>
  context.with(propagation.setBaggage(context.active(), propagation.createBaggage({ tenant: { value: 'red' } })), fn);
const otelTenant = () => propagation.getActiveBaggage()?.getEntry('tenant')?.value ?? 'baseline';

// --- HTTP ---------------------------------------------------------------------

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = http.createServer({ keepAlive: true }, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
const get = (url: string, headers: Record<string, string> = {}) =>
  new Promise<string>((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });

async function httpHop(): Promise<ThroughputResult[]> {
  const bare = await serve((_req, res) => res.end('baseline'));
  const middleware = tenantMiddleware({ mode: 'internal' });
  const dye = await serve((req, res) => middleware(req, res, () => res.end(currentTenant().name)));
  const otel = await serve((_req, res) => res.end(otelTenant()));
  // Each handler answers with the tenant it saw: check before measuring.
  if ((await withTenant('red', () => get(dye.url, injectTenantHeaders({})))) !== 'red') throw new Error('Dye did not carry red');
  otelOn();
  const seen = await otelRed(() => get(otel.url));
  otelOff();
  if (seen !== 'red') throw new Error(`OTel did not carry red (got ${seen})`);

  const results = await compareThroughput('otel-http', [
    { name: 'bare: node:http, no tenant', run: () => get(bare.url) },
    {
      name: 'dye red: injectTenantHeaders + internal middleware',
      run: () => withTenant('red', () => get(dye.url, injectTenantHeaders({}))),
    },
    {
      name: 'OpenTelemetry SDK red: http instrumentation, baggage, spans',
      run: () => otelRed(() => get(otel.url)),
      before: otelOn,
      after: otelOff,
    },
    { name: 'bare: node:http again (noise control)', run: () => get(bare.url) },
  ]);
  printThroughput('One HTTP hop carrying tenant=red: requests/s with 16 in flight (higher is better)', results);
  agent.destroy();
  for (const { server } of [bare, dye, otel]) {
    server.closeAllConnections();
    server.close();
  }
  return results;
}

// --- gRPC ---------------------------------------------------------------------

const definition = jsonInventoryService;
type BenchClient = import('@grpc/grpc-js').Client & {
  check(request: object, callback: (error: Error | null, reply: { tenant: string }) => void): void;
};
const Client = grpc.makeGenericClientConstructor(definition, 'Inventory');

async function grpcServer(tenantOf: () => string, dye: boolean) {
  const server = new grpc.Server(dye ? { interceptors: [tenantServerInterceptor] } : {});
  server.addService(definition, {
    check: (_call: unknown, done: (error: null, reply: { tenant: string }) => void) => done(null, { tenant: tenantOf() }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { server, address: `127.0.0.1:${port}` };
}

const check = (client: BenchClient) =>
  new Promise<string>((resolve, reject) =>
    client.check({ sku: 'apple' }, (error, reply) => (error ? reject(error) : resolve(reply.tenant))),
  );

async function grpcCall(): Promise<ThroughputResult[]> {
  const bare = await grpcServer(() => 'baseline', false);
  const dye = await grpcServer(() => currentTenant().name, true);
  // The grpc instrumentation wraps a server's handlers when the service is
  // registered, and a client's methods when its constructor is made: the OTel
  // server and client are made with OTel on.
  otelOn();
  const otel = await grpcServer(otelTenant, false);
  const OtelClient = grpc.makeGenericClientConstructor(definition, 'Inventory');
  otelOff();
  const insecure = grpc.credentials.createInsecure();
  const bareClient = new Client(bare.address, insecure) as unknown as BenchClient;
  const dyeClient = new Client(dye.address, insecure, { interceptors: [tenantClientInterceptor] }) as unknown as BenchClient;
  const otelClient = new OtelClient(otel.address, insecure) as unknown as BenchClient;
  if ((await withTenant('red', () => check(dyeClient))) !== 'red') throw new Error('Dye did not carry red');
  otelOn();
  const seen = await otelRed(() => check(otelClient));
  otelOff();
  if (seen !== 'red') throw new Error(`OTel did not carry red (got ${seen})`);

  const results = await compareThroughput('otel-grpc', [
    { name: 'bare: grpc-js unary, no tenant', run: () => check(bareClient) },
    { name: 'dye red: client + server interceptors', run: () => withTenant('red', () => check(dyeClient)) },
    {
      name: 'OpenTelemetry SDK red: grpc instrumentation, baggage, spans',
      run: () => otelRed(() => check(otelClient)),
      before: otelOn,
      after: otelOff,
    },
    { name: 'bare: grpc-js unary again (noise control)', run: () => check(bareClient) },
  ]);
  printThroughput('One gRPC unary call carrying tenant=red: calls/s with 16 in flight (higher is better)', results);
  for (const client of [bareClient, dyeClient, otelClient]) client.close();
  for (const { server } of [bare, dye, otel]) server.forceShutdown();
  return results;
}

export async function run(): Promise<ThroughputResult[]> {
  return [...(await httpHop()), ...(await grpcCall())];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
  await tracerProvider.shutdown();
}
