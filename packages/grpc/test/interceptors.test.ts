import { setLogger, withTenant } from '@dye/core';
import { tenantClientInterceptor } from '@dye/grpc';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, InventoryClient, type InventoryClientType, type InventoryInstance, type Stock, startInventory } from './support.js';

// One real server with tenantServerInterceptor; clients by direct address.
let instance: InventoryInstance;
let client: InventoryClientType;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  instance = await startInventory({ name: 'solo', lane: 'baseline' });
  client = new InventoryClient(`127.0.0.1:${instance.port}`, grpc.credentials.createInsecure(), {
    interceptors: [tenantClientInterceptor],
  }) as unknown as InventoryClientType;
});
afterAll(async () => {
  client.close();
  await instance.stop();
});

function collect(stream: grpc.ClientReadableStream<Stock> | grpc.ClientDuplexStream<unknown, Stock>): Promise<Stock[]> {
  return new Promise((resolve, reject) => {
    const items: Stock[] = [];
    stream.on('data', (item: Stock) => items.push(item));
    stream.on('error', reject);
    stream.on('end', () => resolve(items));
  });
}

describe('tenant over gRPC, all four call kinds', () => {
  it('unary', async () => {
    expect((await withTenant('red', () => check(client))).tenant).toBe('red');
    expect((await check(client)).tenant).toBe('baseline');
  });

  it('server streaming', async () => {
    const items = await withTenant('shadow', () => collect(client.Watch({ sku: 'apple' }) as grpc.ClientReadableStream<Stock>));
    expect(items.map((item) => item.tenant)).toEqual(['shadow', 'shadow', 'shadow']);
  });

  it('client streaming', async () => {
    const stock = await withTenant(
      'canary',
      () =>
        new Promise<Stock>((resolve, reject) => {
          const call = client.Reserve((error: grpc.ServiceError | null, result: Stock) =>
            error ? reject(error) : resolve(result),
          ) as grpc.ClientWritableStream<unknown>;
          call.write({ sku: 'a' });
          setTimeout(() => {
            call.write({ sku: 'b' });
            call.end();
          }, 10);
        }),
    );
    expect(stock.tenant).toBe('canary');
    expect(stock.downstream).toEqual(['canary', 'canary']);
  });

  it('bidi streaming', async () => {
    const items = await withTenant('red', () => {
      const call = client.Chat() as grpc.ClientDuplexStream<unknown, Stock>;
      const done = collect(call);
      call.write({ sku: 'a' });
      call.write({ sku: 'b' });
      call.end();
      return done;
    });
    expect(items.map((item) => item.tenant)).toEqual(['red', 'red']);
  });

  it('interleaved calls of three tenants each run in their own', async () => {
    const tenants = ['baseline', 'red', 'shadow'];
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        withTenant(tenants[i % 3] as string, async () => ({ sent: tenants[i % 3], got: (await check(client)).tenant })),
      ),
    );
    expect(results.filter((result) => result.sent !== result.got)).toEqual([]);
  });
});

describe('tenantServerInterceptor refusals', () => {
  it('answers INVALID_ARGUMENT when metadata names two tenants, without running the handler', async () => {
    const raw = new InventoryClient(`127.0.0.1:${instance.port}`, grpc.credentials.createInsecure()) as unknown as InventoryClientType;
    const metadata = new grpc.Metadata();
    metadata.set('x-tenant', 'red');
    metadata.set('baggage', 'tenant=shadow');
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      raw.Check({ sku: 'apple' }, metadata, (failure: grpc.ServiceError | null) => resolve(failure as grpc.ServiceError));
    });
    raw.close();
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain('red');
    expect(error.details).toContain('shadow');
  });

  it('makes malformed metadata baseline', async () => {
    const raw = new InventoryClient(`127.0.0.1:${instance.port}`, grpc.credentials.createInsecure()) as unknown as InventoryClientType;
    const metadata = new grpc.Metadata();
    metadata.set('x-tenant', 'not a tenant!');
    const stock = await new Promise<Stock>((resolve, reject) => {
      raw.Check({ sku: 'apple' }, metadata, (failure: grpc.ServiceError | null, result: Stock) =>
        failure ? reject(failure) : resolve(result),
      );
    });
    raw.close();
    expect(stock.tenant).toBe('baseline');
  });
});
