/**
 * inventory (gRPC): stock in MySQL table `stock`, cached in Redis `stock:<sku>`.
 * Run once per lane: baseline, and `DYE_TENANT=red` for the staging change.
 */
import { currentTenant } from '@dye/core';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import type { ResultSetHeader, RowDataPacket } from 'mysql2';
import { readConfig } from './config.js';
import { createLogger } from './logger.js';
import { INVENTORY_APP, InventoryService, type StockReply } from './proto.js';
import { connectRegistry, grpcError, serveGrpc, shopDatabase, shopRedis } from './runtime.js';

const CACHE_TTL_SECONDS = 60;

const config = readConfig();
const log = createLogger('inventory', config.lane);
const db = shopDatabase(config, 10);
const redis = shopRedis(config);
const registry = connectRegistry(config);

const reply = (sku: string, stock: number): StockReply => ({ sku, stock, lane: config.lane, tenant: currentTenant().name });

async function stockOf(sku: string): Promise<number | undefined> {
  const cached = await redis.get(`stock:${sku}`);
  if (cached !== null) return Number(cached);
  const [rows] = await db.query('SELECT qty FROM stock WHERE sku = ?', [sku]);
  const row = (rows as RowDataPacket[])[0];
  if (row === undefined) return undefined;
  await redis.set(`stock:${sku}`, String(row.qty), 'EX', CACHE_TTL_SECONDS);
  return Number(row.qty);
}

const notFound = (sku: string) => Object.assign(new Error(`no such sku: ${sku}`), { code: grpc.status.NOT_FOUND });

const implementation: grpc.UntypedServiceImplementation = {
  async GetStock(call: grpc.ServerUnaryCall<{ sku: string }, StockReply>, done: grpc.sendUnaryData<StockReply>) {
    try {
      const stock = await stockOf(call.request.sku);
      if (stock === undefined) throw notFound(call.request.sku);
      done(null, reply(call.request.sku, stock));
    } catch (error) {
      done(grpcError(error));
    }
  },

  async Reserve(call: grpc.ServerUnaryCall<{ sku: string; qty: number }, StockReply>, done: grpc.sendUnaryData<StockReply>) {
    const { sku, qty } = call.request;
    try {
      const [result] = await db.execute('UPDATE stock SET qty = qty - ? WHERE sku = ? AND qty >= ?', [qty, sku, qty]);
      if ((result as ResultSetHeader).affectedRows === 0) {
        if ((await stockOf(sku)) === undefined) throw notFound(sku);
        throw Object.assign(new Error(`not enough ${sku} in stock`), { code: grpc.status.RESOURCE_EXHAUSTED });
      }
      const [rows] = await db.query('SELECT qty FROM stock WHERE sku = ?', [sku]);
      const stock = Number((rows as RowDataPacket[])[0]?.qty);
      await redis.set(`stock:${sku}`, String(stock), 'EX', CACHE_TTL_SECONDS);
      log.info({ sku, qty, stock }, 'reserved');
      done(null, reply(sku, stock));
    } catch (error) {
      log.warn({ err: error, sku }, 'reserve failed');
      done(grpcError(error));
    }
  },
};

const { port } = await serveGrpc({
  app: INVENTORY_APP,
  config,
  registry,
  log,
  services: [[InventoryService.service, implementation]],
  onStop: async () => {
    await db.end();
    redis.disconnect();
  },
});
log.info({ port }, 'ready');
