/**
 * gRPC unary on loopback: grpc-js's own `round_robin` over three endpoints vs
 * Dye's `dye_tenant` over the same endpoints (baseline and `red`), in one run;
 * then the cost of one pick with 1,000 lanes × 10 instances.
 *
 *   npm run bench -- grpc
 */
import { setLogger, withTenant } from '@dye/core';
import { StaticRegistry } from '@dye/discovery';
import { createTenantClient, type PickTarget, registerTenantRouting, TenantPicker, tenantServerInterceptor } from '@dye/grpc';
import * as grpc from '@grpc/grpc-js';
import { type Case, compare, compareThroughput, printResults, printThroughput } from './harness.js';
import { jsonInventoryService } from './json-service.js';

setLogger({ warn: () => {} });

const definition = jsonInventoryService;
const Client = grpc.makeGenericClientConstructor(definition, 'Inventory');
type BenchClient = grpc.Client & { check(request: object, callback: (error: grpc.ServiceError | null, response: unknown) => void): void };

async function serve(lane: string, dye: boolean): Promise<{ server: grpc.Server; address: string; lane: string }> {
  const server = new grpc.Server(dye ? { interceptors: [tenantServerInterceptor] } : {});
  server.addService(definition, {
    check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, { ok: true }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { server, address: `127.0.0.1:${port}`, lane };
}

const call = (client: BenchClient) =>
  new Promise<void>((resolve, reject) => client.check({ sku: 'apple' }, (error) => (error ? reject(error) : resolve())));

async function unary() {
  const bare = await Promise.all([serve('baseline', false), serve('baseline', false), serve('baseline', false)]);
  const dye = await Promise.all([serve('baseline', true), serve('baseline', true), serve('baseline', true), serve('red', true)]);
  const registry = new StaticRegistry(
    dye.map((instance, i) => ({ app: 'bench.inventory', id: `i${i}`, address: instance.address, lane: instance.lane })),
  );
  registerTenantRouting({ registry });

  const bareClient = new Client(`ipv4:${bare.map((instance) => instance.address).join(',')}`, grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
  }) as unknown as BenchClient;
  const dyeClient = createTenantClient(Client as never, 'bench.inventory') as unknown as BenchClient;
  await call(bareClient);
  await call(dyeClient);
  await withTenant('red', () => call(dyeClient));

  const results = await compareThroughput('grpc', [
    { name: 'bare: grpc-js round_robin', run: () => call(bareClient) },
    { name: 'dye_tenant, baseline', run: () => call(dyeClient) },
    { name: 'dye_tenant, red', run: () => withTenant('red', () => call(dyeClient)) },
    { name: 'bare: grpc-js round_robin again (noise control)', run: () => call(bareClient) },
  ]);
  printThroughput('gRPC unary on loopback: calls/s with 16 in flight (higher is better)', results);
  bareClient.close();
  dyeClient.close();
  for (const { server } of [...bare, ...dye]) server.forceShutdown();
  return results;
}

async function pickCost() {
  // 1,000 lanes × 10 READY instances; each leaf picker answers at once, so the
  // figure is the cost of Dye's choice (tenant from metadata, lane, round-robin).
  const completed = { pickResultType: 1, subchannel: null, status: null, onCallStarted: null, onCallEnded: null };
  const picker0 = { pick: () => completed as never };
  const leaves = (lane: string): PickTarget[] =>
    Array.from({ length: 10 }, (_, i) => ({ key: `10.0.${lane.length}.${i}:50051`, weight: 1, picker: picker0 }));
  const ready = new Map<string, PickTarget[]>();
  ready.set('baseline', leaves('baseline'));
  for (let lane = 0; lane < 1000; lane++) ready.set(`lane-${lane}`, leaves(`lane-${lane}`));
  const picker = new TenantPicker('bench.inventory', ready, new Set());
  const plainRoundRobin = (() => {
    let next = 0;
    const all = [...ready.values()].flat();
    return () => all[next++ % all.length]?.picker.pick({ metadata: new grpc.Metadata(), extraPickInfo: {} });
  })();
  const baseline = { metadata: new grpc.Metadata(), extraPickInfo: {} };
  const colored = { metadata: new grpc.Metadata(), extraPickInfo: {} };
  colored.metadata.set('x-tenant', 'lane-742');
  colored.metadata.set('baggage', 'tenant=lane-742');
  const cases: Case[] = [
    { name: 'pick: baseline call', bare: plainRoundRobin, dye: () => picker.pick(baseline) },
    { name: 'pick: call of lane 742 of 1,000', bare: plainRoundRobin, dye: () => picker.pick(colored) },
  ];
  const results = await compare('grpc-pick', cases, { batch: 200 });
  printResults('Picker cost, 1,000 lanes × 10 instances (bare: a plain round-robin over the same 10,010 leaves)', results);
  return results;
}

export async function run() {
  return [...(await unary()), ...(await pickCost())];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
  process.exit(0);
}
