import { Writable } from 'node:stream';
import {
  ISOLATION_REFUSALS_METRIC,
  IsolationError,
  ROUTING_FALLBACKS_METRIC,
  setMetricsApp,
  TenantSpanProcessor,
  tenantLogMixin,
  withTenant,
} from '@dye/core';
import { StaticRegistry } from '@dye/discovery';
import { createTenantClient, registerTenantRouting } from '@dye/grpc';
import { tenantRedis } from '@dye/ioredis';
import { context, metrics, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InventoryClient, type InventoryClientType, startInventory } from '../packages/grpc/test/support.js';
import { deleteRedisKeys, REDIS_URL, uniqueName } from './support/services.js';

/** A reader the test collects from when it wants, as an exporter would on its interval. */
class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const reader = new CollectingReader();

/** Every data point of `metric` as `{ attributes, value }`. */
async function points(metric: string): Promise<{ attributes: Record<string, unknown>; value: number }[]> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics
    .flatMap((scope) => scope.metrics)
    .filter((m) => m.descriptor.name === metric)
    .flatMap((m) => m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value as number })));
}

async function count(metric: string, attributes: Record<string, string>): Promise<number> {
  const matching = (await points(metric)).filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
  return matching.reduce((sum, p) => sum + p.value, 0);
}

describe('metrics through @opentelemetry/api (an SDK meter provider registered by the service)', () => {
  const prefix = uniqueName('dye-obs');
  let redis: Redis;

  beforeAll(() => {
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    setMetricsApp('shop.orders');
    redis = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    redis.disconnect();
    await deleteRedisKeys(prefix);
    await deleteRedisKeys(`shadow:${prefix}`);
    metrics.disable();
  });

  it('counts every isolation refusal by tenant, app and resource, and the refused write is not in production', async () => {
    const client = tenantRedis(redis);
    const key = `${prefix}:refused`;
    const before = await count(ISOLATION_REFUSALS_METRIC, { 'dye.tenant': 'shadow', 'dye.via': 'redis', 'dye.app': 'shop.orders' });
    // FLUSHDB names no key: the adapter cannot isolate it and refuses.
    await expect(withTenant('shadow', () => client.flushdb())).rejects.toBeInstanceOf(IsolationError);
    await expect(withTenant('shadow', () => client.eval(`redis.call('SET', '${key}', 1)`, 0))).rejects.toBeInstanceOf(IsolationError);
    expect(await count(ISOLATION_REFUSALS_METRIC, { 'dye.tenant': 'shadow', 'dye.via': 'redis', 'dye.app': 'shop.orders' })).toBe(
      before + 2,
    );
    expect(await redis.exists(key, `shadow:${key}`)).toBe(0);
  });

  it('counts gRPC calls of a color that fell back to baseline, and not isolated tenants on baseline by design', async () => {
    const app = `obs.inventory${Date.now()}`;
    const baseline = await startInventory({ name: 'inv-base', lane: 'baseline' });
    registerTenantRouting({ registry: new StaticRegistry([{ app, id: 'b', address: `127.0.0.1:${baseline.port}`, lane: 'baseline' }]) });
    const client = createTenantClient(InventoryClient, app) as unknown as InventoryClientType;
    const check = () =>
      new Promise<{ lane: string; tenant: string }>((resolve, reject) =>
        client.Check({ sku: 'apple' }, (error: Error | null, stock: { lane: string; tenant: string }) =>
          error ? reject(error) : resolve(stock),
        ),
      );
    try {
      expect(await withTenant('red', check)).toMatchObject({ lane: 'baseline', tenant: 'red' });
      expect(await withTenant('red', check)).toMatchObject({ lane: 'baseline', tenant: 'red' });
      await withTenant('shadow', check);
      await check();
      expect(await count(ROUTING_FALLBACKS_METRIC, { 'dye.app': app, 'dye.tenant': 'red', 'dye.via': 'grpc' })).toBe(2);
      expect(await count(ROUTING_FALLBACKS_METRIC, { 'dye.app': app, 'dye.tenant': 'shadow' })).toBe(0);
      expect(await count(ROUTING_FALLBACKS_METRIC, { 'dye.app': app, 'dye.tenant': 'baseline' })).toBe(0);
    } finally {
      client.close();
      await baseline.stop();
    }
  });

  it('starts counting when the meter provider is registered after the first recording', async () => {
    metrics.disable();
    await expect(withTenant('shadow', () => tenantRedis(redis).flushall())).rejects.toBeInstanceOf(IsolationError);
    const late = new CollectingReader();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [late] }));
    await expect(withTenant('shadow', () => tenantRedis(redis).flushall())).rejects.toBeInstanceOf(IsolationError);
    const { resourceMetrics } = await late.collect();
    const refusals = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === ISOLATION_REFUSALS_METRIC);
    expect(refusals?.dataPoints.map((p) => p.value)).toEqual([1]);
  });
});

describe('tenant on logs and spans', () => {
  it('tenantLogMixin puts the tenant of the logging work on every pino line', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const log = pino({ mixin: tenantLogMixin }, sink);
    log.info('outside');
    await withTenant('red', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      log.info('inside');
    });
    withTenant('shadow-lt1', () => log.child({ part: 'x' }).warn('child'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((line) => [line.msg, line.tenant])).toEqual([
      ['outside', 'baseline'],
      ['inside', 'red'],
      ['child', 'shadow-lt1'],
    ]);
  });

  it('TenantSpanProcessor names the tenant on every span: the running tenant, else the parent baggage', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new TenantSpanProcessor(), new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer('test');
    tracer.startSpan('no-tenant').end();
    withTenant('red', () => tracer.startSpan('in-red').end());
    // An internal server span: OTel's instrumentation starts it from the
    // context it extracted from the caller's headers.
    const extracted = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ tenant: { value: 'canary' } }));
    tracer.startSpan('server', {}, extracted).end();
    const invalid = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ tenant: { value: 'Not Valid!' } }));
    tracer.startSpan('invalid-baggage', {}, invalid).end();
    const child = trace.setSpan(context.active(), tracer.startSpan('parent'));
    withTenant('shadow', () => tracer.startSpan('child', {}, child).end());
    expect(Object.fromEntries(exporter.getFinishedSpans().map((span) => [span.name, span.attributes['dye.tenant']]))).toEqual({
      'no-tenant': 'baseline',
      'in-red': 'red',
      server: 'canary',
      'invalid-baggage': 'baseline',
      child: 'shadow',
    });
  });
});
