/**
 * gateway (HTTP): the public edge. Decides each request's tenant once, from
 * trusted input only (a signed token, or a trusted proxy's header), and calls
 * orders and inventory over gRPC, routed by tenant.
 */
import type { Server } from 'node:http';
import { currentTenant } from '@dye/core';
import { createTenantClient } from '@dye/grpc';
import { tenantMiddleware } from '@dye/http';
import * as grpc from '@grpc/grpc-js';
import express, { type NextFunction, type Request, type Response } from 'express';
import { readConfig } from './config.js';
import { createLogger } from './logger.js';
import { type CreateOrderReply, INVENTORY_APP, InventoryService, ORDERS_APP, OrdersService, type StockReply, unary } from './proto.js';
import { connectRegistry, onShutdown } from './runtime.js';

const config = readConfig();
const log = createLogger('gateway', config.lane);
const secrets = (process.env.DYE_SECRET ?? '')
  .split(',')
  .map((secret) => secret.trim())
  .filter(Boolean);
if (secrets.length === 0) log.warn('DYE_SECRET is not set: no token is valid, every request is baseline');
const trustedProxies = (process.env.DYE_TRUSTED_PROXIES ?? '')
  .split(',')
  .map((cidr) => cidr.trim())
  .filter(Boolean);

const registry = connectRegistry(config);
const orders = createTenantClient(OrdersService, ORDERS_APP);
const inventory = createTenantClient(InventoryService, INVENTORY_APP);

const app = express();
app.disable('x-powered-by');
app.get('/healthz', (_req, res) => {
  res.json({ ok: true });
});
app.use(tenantMiddleware({ mode: 'edge', secrets, trustedProxies }));
app.use(express.json({ limit: '16kb' }));

app.post('/orders', async (req: Request, res: Response, next: NextFunction) => {
  const invalid = checkOrder(req.body);
  if (invalid) {
    res.status(400).json({ error: invalid });
    return;
  }
  try {
    const reply = await unary<object, CreateOrderReply>(orders, 'CreateOrder', req.body);
    res.status(201).json({
      orderId: reply.orderId,
      tenant: currentTenant().name,
      route: { gateway: config.lane, orders: reply.lane, inventory: reply.inventory.lane },
      // What each hop's handler ran in, for anyone checking propagation.
      hopTenants: { orders: reply.tenant, inventory: reply.inventory.tenant },
    });
  } catch (error) {
    next(error);
  }
});

app.get('/stock/:sku', async (req: Request, res: Response, next: NextFunction) => {
  try {
    const reply = await unary<object, StockReply>(inventory, 'GetStock', { sku: req.params.sku });
    res.json({
      sku: reply.sku,
      stock: reply.stock,
      tenant: currentTenant().name,
      route: { gateway: config.lane, inventory: reply.lane },
      hopTenants: { inventory: reply.tenant },
    });
  } catch (error) {
    next(error);
  }
});

// gRPC statuses from the services, as HTTP answers.
const HTTP_STATUS: Partial<Record<grpc.status, number>> = {
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.RESOURCE_EXHAUSTED]: 409,
  [grpc.status.FAILED_PRECONDITION]: 503,
  [grpc.status.UNAVAILABLE]: 503,
  [grpc.status.DEADLINE_EXCEEDED]: 504,
};

app.use((error: Error & { code?: number; details?: string }, _req: Request, res: Response, _next: NextFunction) => {
  const status = (error.code !== undefined && HTTP_STATUS[error.code as grpc.status]) || 502;
  log.warn({ err: error, status }, 'request failed');
  res.status(status).json({ error: error.details ?? error.message, tenant: currentTenant().name });
});

const SKU = /^[a-z0-9-]{1,64}$/;

function checkOrder(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return 'expected a JSON object { sku, qty, user }';
  const { sku, qty, user } = body as Record<string, unknown>;
  if (typeof sku !== 'string' || !SKU.test(sku)) return 'sku: 1 to 64 of a-z, 0-9 and -';
  if (typeof qty !== 'number' || !Number.isInteger(qty) || qty < 1 || qty > 100) return 'qty: an integer from 1 to 100';
  if (typeof user !== 'string' || user.length < 1 || user.length > 64) return 'user: 1 to 64 characters';
  return undefined;
}

const server: Server = app.listen(config.port ?? 8080, config.host);
await new Promise<void>((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
});
const address = server.address();
log.info({ port: typeof address === 'object' && address ? address.port : config.port }, 'ready');

onShutdown(log, async () => {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections without a request in flight would hold close() open.
  server.closeIdleConnections();
  await closed;
  orders.close();
  inventory.close();
  await registry.close();
});
