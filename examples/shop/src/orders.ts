/**
 * orders (gRPC): reserves stock through inventory (routed by tenant), stores
 * the order in MySQL `orders`, caches `order:<id>` in Redis and announces it on
 * Kafka. Isolated tenants land in `shop_shadow`, `shadow:` keys and
 * `order-created_shadow`, or are refused: never in production.
 */
import { randomUUID } from 'node:crypto';
import { currentTenant } from '@dye/core';
import { createTenantClient } from '@dye/grpc';
import { tenantKafka } from '@dye/kafkajs';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { readConfig } from './config.js';
import { createLogger, kafkaLogs } from './logger.js';
import {
  type CreateOrderReply,
  type CreateOrderRequest,
  INVENTORY_APP,
  InventoryService,
  ORDERS_APP,
  OrdersService,
  type StockReply,
  unary,
} from './proto.js';
import { connectRegistry, grpcError, serveGrpc, shopDatabase, shopRedis } from './runtime.js';

const ORDER_CACHE_TTL_SECONDS = 24 * 60 * 60;

const config = readConfig();
const log = createLogger('orders', config.lane);
const db = shopDatabase(config, 10);
const redis = shopRedis(config);
const registry = connectRegistry(config);
const inventory = createTenantClient(InventoryService, INVENTORY_APP);
const kafka = tenantKafka(
  new Kafka({ clientId: 'shop.orders', brokers: config.kafkaBrokers, logLevel: logLevel.WARN, logCreator: kafkaLogs(log) }),
);
const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();

const implementation: grpc.UntypedServiceImplementation = {
  async CreateOrder(call: grpc.ServerUnaryCall<CreateOrderRequest, CreateOrderReply>, done: grpc.sendUnaryData<CreateOrderReply>) {
    const { sku, qty, user } = call.request;
    const orderId = randomUUID();
    try {
      const stock = await unary<object, StockReply>(inventory, 'Reserve', { sku, qty });
      await db.execute('INSERT INTO orders (id, sku, qty, user) VALUES (?, ?, ?, ?)', [orderId, sku, qty, user]);
      await redis.set(`order:${orderId}`, JSON.stringify({ sku, qty, user }), 'EX', ORDER_CACHE_TTL_SECONDS);
      await producer.send({
        topic: config.orderTopic,
        messages: [{ key: orderId, value: JSON.stringify({ orderId, sku, qty, user }) }],
      });
      log.info({ orderId, sku, qty, inventoryLane: stock.lane }, 'order created');
      done(null, { orderId, lane: config.lane, tenant: currentTenant().name, inventory: stock });
    } catch (error) {
      log.warn({ err: error, orderId }, 'order failed');
      done(grpcError(error));
    }
  },
};

const { port } = await serveGrpc({
  app: ORDERS_APP,
  config,
  registry,
  log,
  services: [[OrdersService.service, implementation]],
  onStop: async () => {
    inventory.close();
    await producer.disconnect();
    await kafka.close();
    await db.end();
    redis.disconnect();
  },
});
log.info({ port }, 'ready');
