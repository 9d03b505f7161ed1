import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const definition = protoLoader.loadSync(fileURLToPath(new URL('../proto/shop.proto', import.meta.url)), {
  keepCase: false,
  defaults: true,
});
const shop = (grpc.loadPackageDefinition(definition) as unknown as { shop: Record<string, grpc.ServiceClientConstructor> }).shop;

export const OrdersService = shop.Orders as grpc.ServiceClientConstructor;
export const InventoryService = shop.Inventory as grpc.ServiceClientConstructor;

export interface StockReply {
  sku: string;
  stock: number;
  lane: string;
  tenant: string;
}

export interface CreateOrderRequest {
  sku: string;
  qty: number;
  user: string;
}

export interface CreateOrderReply {
  orderId: string;
  lane: string;
  tenant: string;
  inventory: StockReply;
}

/** Apps in the registry. */
export const ORDERS_APP = 'shop.orders';
export const INVENTORY_APP = 'shop.inventory';

/** Calls a unary method of a dynamically loaded client as a promise. */
export function unary<Req, Res>(client: grpc.Client, method: string, request: Req, deadlineMs = 5000): Promise<Res> {
  type UnaryMethod = (request: Req, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, reply: Res) => void) => void;
  const call = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
  if (typeof call !== 'function') throw new TypeError(`no method ${method}`);
  return new Promise((resolve, reject) => {
    call.call(client, request, { deadline: Date.now() + deadlineMs }, (error: grpc.ServiceError | null, reply: Res) =>
      error ? reject(error) : resolve(reply),
    );
  });
}
