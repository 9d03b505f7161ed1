import { fileURLToPath } from 'node:url';
import { currentTenant } from '@dye/core';
import type { Registration, Registry } from '@dye/discovery';
import { tenantServerInterceptor } from '@dye/grpc';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const definition = protoLoader.loadSync(fileURLToPath(new URL('./fixtures/inventory.proto', import.meta.url)), {
  keepCase: false,
  arrays: true,
  defaults: true,
});
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  shop: { Inventory: grpc.ServiceClientConstructor & { service: grpc.ServiceDefinition } };
};
export const InventoryClient = loaded.shop.Inventory;
// A dynamically loaded client: its methods take grpc-js overloaded arguments.
type Method = (...args: any[]) => any;
export type InventoryClientType = grpc.Client & { Check: Method; Watch: Method; Reserve: Method; Chat: Method };

export interface Stock {
  instance: string;
  lane: string;
  tenant: string;
  downstream: string[];
}

export interface InventoryInstance {
  name: string;
  port: number;
  server: grpc.Server;
  registration: Registration | undefined;
  /** Dies without deregistering, as a crash would. */
  kill(): void;
  stop(): Promise<void>;
}

/**
 * A real gRPC server for `shop.inventory` (or `app`) whose answers say which
 * instance and lane served the call and which tenant the handler ran in;
 * `next` makes it call another app first (a chain of hops).
 */
export async function startInventory(options: {
  name: string;
  lane: string;
  registry?: Registry;
  app?: string;
  next?: () => InventoryClientType;
}): Promise<InventoryInstance> {
  const server = new grpc.Server({ interceptors: [tenantServerInterceptor] });
  const answer = (downstream: string[] = []): Stock => ({
    instance: options.name,
    lane: options.lane,
    tenant: currentTenant().name,
    downstream,
  });
  server.addService(InventoryClient.service, {
    async Check(call: grpc.ServerUnaryCall<{ sku: string; delayMs: number }, Stock>, callback: grpc.sendUnaryData<Stock>) {
      const tenantAtStart = currentTenant().name;
      if (call.request.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, call.request.delayMs));
      if (options.next) {
        const client = options.next();
        client.Check({ sku: call.request.sku }, (error: grpc.ServiceError | null, stock: Stock) => {
          if (error) return callback(error);
          callback(null, { ...answer([stock.tenant, ...stock.downstream]), tenant: tenantAtStart });
        });
        return;
      }
      callback(null, {
        ...answer(),
        tenant: tenantAtStart === currentTenant().name ? tenantAtStart : `${tenantAtStart}->${currentTenant().name}`,
      });
    },
    Watch(call: grpc.ServerWritableStream<{ sku: string }, Stock>) {
      let sent = 0;
      const timer = setInterval(() => {
        call.write(answer());
        if (++sent === 3) {
          clearInterval(timer);
          call.end();
        }
      }, 5);
    },
    Reserve(call: grpc.ServerReadableStream<{ sku: string }, Stock>, callback: grpc.sendUnaryData<Stock>) {
      const seen: string[] = [];
      call.on('data', () => seen.push(currentTenant().name));
      call.on('end', () => callback(null, answer(seen)));
    },
    Chat(call: grpc.ServerDuplexStream<{ sku: string }, Stock>) {
      call.on('data', () => setTimeout(() => call.write(answer()), 2));
      call.on('end', () => setTimeout(() => call.end(), 10));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  const registration = options.registry
    ? await options.registry.register({
        app: options.app ?? 'shop.inventory',
        id: options.name,
        address: `127.0.0.1:${port}`,
        lane: options.lane,
      })
    : undefined;
  return {
    name: options.name,
    port,
    server,
    registration,
    kill: () => server.forceShutdown(),
    stop: async () => {
      await registration?.deregister();
      server.forceShutdown();
    },
  };
}

/** Promisified unary Check. */
export function check(client: InventoryClientType, sku = 'apple', delayMs = 0): Promise<Stock> {
  return new Promise((resolve, reject) => {
    client.Check({ sku, delayMs }, (error: grpc.ServiceError | null, stock: Stock) => (error ? reject(error) : resolve(stock)));
  });
}
