/**
 * What a `dye:///` channel keeps of the user's gRPC settings: the service
 * config (retry policy, timeouts) beside Dye's balancer, and keepalive, which
 * drops a hung instance (a stopped process) from the pool within seconds.
 * Real servers on loopback; a hung one is a child process under SIGSTOP.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { currentTenant, type DyeLogEvent, setLogger, withTenant } from '@dye/core';
import { RedisRegistry, StaticRegistry } from '@dye/discovery';
import { createTenantClient, registerTenantRouting, TENANT_CLIENT_KEEPALIVE, tenantServerInterceptor } from '@dye/grpc';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisKeys, eventually, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { check, InventoryClient, type InventoryClientType, type Stock } from './support.js';

const warnings: DyeLogEvent[] = [];
const servers: grpc.Server[] = [];
const clients: InventoryClientType[] = [];
const children = new Set<ChildProcess>();
// One registry for the process (registerTenantRouting): a Redis one, so child-process instances can join it.
const prefix = uniqueName('dye_grpc_config');
const timings = { heartbeatInterval: 1_000, ttl: 30_000, resyncInterval: 1_000 };
let registry: RedisRegistry;
const attempts = new Map<string, number>();

/** An instance whose Check fails with UNAVAILABLE the first `failures` times per sku, then answers. */
async function flakyInstance(name: string, lane: string, failures: number): Promise<void> {
  const server = new grpc.Server({ interceptors: [tenantServerInterceptor] });
  server.addService(InventoryClient.service, {
    async Check(call: grpc.ServerUnaryCall<{ sku: string; delayMs: number }, Stock>, callback: grpc.sendUnaryData<Stock>) {
      const seen = (attempts.get(call.request.sku) ?? 0) + 1;
      attempts.set(call.request.sku, seen);
      if (call.request.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, call.request.delayMs));
      if (seen <= failures) return callback({ code: grpc.status.UNAVAILABLE, details: `attempt ${seen} refused` });
      callback(null, { instance: name, lane, tenant: currentTenant().name, downstream: [] });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  servers.push(server);
  await registry.register({ app: 'shop.flaky', id: name, address: `127.0.0.1:${port}`, lane });
}

function client(app: string, channelOptions: grpc.ChannelOptions = {}): InventoryClientType {
  const created = createTenantClient(InventoryClient as never, app, { channelOptions }) as unknown as InventoryClientType;
  clients.push(created);
  return created;
}

const retryConfig = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    methodConfig: [
      {
        name: [{ service: 'shop.Inventory' }],
        retryPolicy: {
          maxAttempts: 3,
          initialBackoff: '0.01s',
          maxBackoff: '0.1s',
          backoffMultiplier: 2,
          retryableStatusCodes: ['UNAVAILABLE'],
        },
      },
    ],
    ...extra,
  });

beforeAll(async () => {
  setLogger({ warn: (event) => void warnings.push(event) });
  registry = new RedisRegistry({ redis: REDIS_URL, prefix, ...timings });
  registerTenantRouting({ registry });
  await flakyInstance('flaky-base', 'baseline', 2);
  await flakyInstance('flaky-red', 'red', 2);
});

afterAll(async () => {
  for (const created of clients) created.close();
  for (const child of children) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  for (const server of servers) server.forceShutdown();
  await registry.close();
  await deleteRedisKeys(`${prefix}:`);
});

describe('grpc.service_config on dye:/// targets', () => {
  it('a retry policy applies: a call refused twice succeeds on its third attempt, on its lane', async () => {
    const flaky = client('shop.flaky', { 'grpc.service_config': retryConfig() });
    const stock = await withTenant('red', () => check(flaky, 'retried-red'));
    expect([stock.instance, stock.tenant, attempts.get('retried-red')]).toEqual(['flaky-red', 'red', 3]);
    // Without a retry policy the first refusal is the answer.
    const plain = client('shop.flaky');
    await expect(check(plain, 'not-retried')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(attempts.get('not-retried')).toBe(1);
  });

  it('a method timeout applies', async () => {
    // grpc-js reads the digits after the point as nanoseconds: 0.2 s is written with nine of them.
    const config = JSON.stringify({ methodConfig: [{ name: [{ service: 'shop.Inventory' }], timeout: '0.200000000s' }] });
    const timed = client('shop.flaky', { 'grpc.service_config': config });
    attempts.set('slow', 5); // past its failures: it answers, but after 1 s
    await expect(check(timed, 'slow', 1_000)).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
  });

  it('a load-balancing policy of the user is ignored with a log line: calls still go by tenant', async () => {
    const config = retryConfig({ loadBalancingConfig: [{ round_robin: {} }] });
    const balanced = client('shop.flaky', { 'grpc.service_config': config });
    const red = await withTenant('red', () => check(balanced, 'lb-red'));
    const baseline = await check(balanced, 'lb-base');
    expect([red.instance, baseline.instance]).toEqual(['flaky-red', 'flaky-base']);
    expect(warnings.map((event) => event.code)).toContain('dye.grpc.lb-policy-ignored');
  });
});

describe('keepalive', () => {
  it('is on by default: pings every 10 s, 5 s to answer, also without calls', () => {
    expect(TENANT_CLIENT_KEEPALIVE).toEqual({
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
    });
  });

  it('drops a hung instance (SIGSTOP) from the pool within keepalive time + timeout; calls then go to the live one', async () => {
    const script = fileURLToPath(new URL('./fixtures/inventory-server.mjs', import.meta.url));
    const start = async (name: string) => {
      const child = fork(script, [], {
        env: {
          ...process.env,
          INSTANCE: name,
          LANE: 'baseline',
          APP: 'shop.hung',
          REDIS_URL,
          PREFIX: prefix,
          TIMINGS: JSON.stringify(timings),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.add(child);
      await once(child, 'message');
      return child;
    };
    const hung = await start('hung-1');
    await start('live-1');
    // Keepalive scaled down for the test (the defaults are 10 s + 5 s): a ping every 500 ms, 500 ms to answer.
    const caller = client('shop.hung', { 'grpc.keepalive_time_ms': 500, 'grpc.keepalive_timeout_ms': 500 });
    await eventually(
      async () => new Set(await Promise.all(Array.from({ length: 6 }, () => check(caller).then((stock) => stock.instance)))),
      (seen) => seen.size === 2,
      10_000,
    );
    hung.kill('SIGSTOP');
    const stoppedAt = Date.now();
    // Calls with a deadline: until the hung connection is dropped some land there and time out.
    const deadlineCall = () =>
      new Promise<string>((resolve) => {
        caller.Check({ sku: 'apple', delayMs: 0 }, { deadline: Date.now() + 300 }, (error: grpc.ServiceError | null, stock: Stock) =>
          resolve(error ? `error:${error.code}` : stock.instance),
        );
      });
    const healthy = await eventually(
      async () => Promise.all(Array.from({ length: 20 }, deadlineCall)),
      (answers) => answers.every((answer) => answer === 'live-1'),
      10_000,
    );
    expect(healthy).toHaveLength(20);
    expect(Date.now() - stoppedAt).toBeLessThan(4_000);
  }, 30_000);
});
