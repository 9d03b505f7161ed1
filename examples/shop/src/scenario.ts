/**
 * Requests against the shop's gateway, and where their data landed, measured in
 * the stores themselves (MySQL rows, Redis keys, Kafka offsets): shared by
 * `npm run demo` and the e2e tests.
 */
import { isolatedKeyPrefix, isolatedName, signTenantToken, TENANT_HEADER, TENANT_TOKEN_HEADER } from '@dye/core';
import { Redis } from 'ioredis';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import type { ShopConfig } from './config.js';

export interface OrderBody {
  sku: string;
  qty: number;
  user: string;
}

export interface OrderReply {
  orderId: string;
  tenant: string;
  route: { gateway: string; orders: string; inventory: string };
  hopTenants: { orders: string; inventory: string };
}

export interface Sent<T> {
  status: number;
  body: T;
  /** The `x-tenant` the edge answered with: the tenant it decided. */
  decided: string | null;
}

/** Headers a tester sends: a signed token for `tenant`, or a bare `x-tenant` (a spoof at the public edge). */
export function tenantHeaders(how: { token?: { tenant: string; secret: string }; spoof?: string }): Record<string, string> {
  const headers: Record<string, string> = {};
  if (how.token)
    headers[TENANT_TOKEN_HEADER] = signTenantToken({ tenant: how.token.tenant, ttl: '10m', subject: 'shop-scenario' }, how.token.secret);
  if (how.spoof) headers[TENANT_HEADER] = how.spoof;
  return headers;
}

export async function placeOrder(gatewayUrl: string, body: OrderBody, headers: Record<string, string> = {}): Promise<Sent<OrderReply>> {
  const response = await fetch(`${gatewayUrl}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as OrderReply, decided: response.headers.get(TENANT_HEADER) };
}

/** Where a piece of data was found: production, the isolated copy, both (a leak), or nowhere. */
export type Place = 'production' | 'shadow' | 'both' | 'none';

export interface Landing {
  /** The `orders` row with this id. */
  order: Place;
  /** The Redis key `order:<id>`. */
  orderKey: Place;
  /** The `notifications` row the notifier wrote (waited for). */
  notification: Place;
  /** The Redis key `notified:<id>`. */
  notifiedKey: Place;
}

export interface Offsets {
  production: number;
  shadow: number;
}

export interface ProductionCounts {
  orders: number;
  notifications: number;
  stock: number;
  orderKeys: number;
  messages: number;
}

/** Read-only views of the shop's stores, opened as an operator would, outside Dye. */
export class ShopStores {
  readonly #config: ShopConfig;
  readonly #mysql: mysql.Pool;
  readonly #redis: Redis;
  readonly #kafka: Admin;
  readonly #shadowDatabase: string;
  readonly #shadowTopic: string;
  readonly #shadowKeyPrefix: string;

  private constructor(config: ShopConfig, admin: Admin) {
    const { database: _database, ...server } = config.mysql;
    this.#config = config;
    this.#mysql = mysql.createPool({ ...server, connectionLimit: 4 });
    this.#redis = new Redis(config.redisUrl);
    this.#kafka = admin;
    this.#shadowDatabase = isolatedName('mysql-database', config.mysql.database, 'shadow');
    this.#shadowTopic = isolatedName('kafka-topic', config.orderTopic, 'shadow');
    this.#shadowKeyPrefix = isolatedKeyPrefix('shadow');
  }

  static async open(config: ShopConfig): Promise<ShopStores> {
    const admin = new Kafka({ clientId: 'shop.scenario', brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    return new ShopStores(config, admin);
  }

  async close(): Promise<void> {
    await this.#mysql.end();
    this.#redis.disconnect();
    await this.#kafka.disconnect();
  }

  async #rowPlace(table: 'orders' | 'notifications', column: string, id: string): Promise<Place> {
    const inDb = async (database: string) => {
      const [rows] = await this.#mysql.query(`SELECT 1 FROM \`${database}\`.\`${table}\` WHERE \`${column}\` = ?`, [id]);
      return (rows as RowDataPacket[]).length > 0;
    };
    return place(await inDb(this.#config.mysql.database), await inDb(this.#shadowDatabase));
  }

  async #keyPlace(key: string): Promise<Place> {
    const [production, shadow] = await Promise.all([this.#redis.exists(key), this.#redis.exists(`${this.#shadowKeyPrefix}${key}`)]);
    return place(production === 1, shadow === 1);
  }

  /** Where an order's data is now; waits up to `notificationTimeoutMs` for the notifier. */
  async landing(orderId: string, notificationTimeoutMs = 20_000): Promise<Landing> {
    const deadline = Date.now() + notificationTimeoutMs;
    let notification = await this.#rowPlace('notifications', 'order_id', orderId);
    while (notification === 'none' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      notification = await this.#rowPlace('notifications', 'order_id', orderId);
    }
    return {
      order: await this.#rowPlace('orders', 'id', orderId),
      orderKey: await this.#keyPlace(`order:${orderId}`),
      notification,
      notifiedKey: await this.#keyPlace(`notified:${orderId}`),
    };
  }

  /**
   * {@link landing} for many orders at once (a few queries in all); waits up
   * to `notificationTimeoutMs` until every order has its notification somewhere.
   */
  async landings(orderIds: readonly string[], notificationTimeoutMs = 30_000): Promise<Map<string, Landing>> {
    if (orderIds.length === 0) return new Map();
    const ids = (database: string, table: string, column: string) =>
      this.#mysql
        .query(`SELECT \`${column}\` AS id FROM \`${database}\`.\`${table}\` WHERE \`${column}\` IN (?)`, [orderIds])
        .then(([rows]) => new Set((rows as RowDataPacket[]).map((row) => String(row.id))));
    const notifications = async () => [
      await ids(this.#config.mysql.database, 'notifications', 'order_id'),
      await ids(this.#shadowDatabase, 'notifications', 'order_id'),
    ];
    const deadline = Date.now() + notificationTimeoutMs;
    let [productionNotes, shadowNotes] = await notifications();
    while (orderIds.some((id) => !productionNotes?.has(id) && !shadowNotes?.has(id)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      [productionNotes, shadowNotes] = await notifications();
    }
    const productionOrders = await ids(this.#config.mysql.database, 'orders', 'id');
    const shadowOrders = await ids(this.#shadowDatabase, 'orders', 'id');
    const pipeline = this.#redis.pipeline();
    for (const id of orderIds) {
      for (const key of [`order:${id}`, `notified:${id}`]) pipeline.exists(key).exists(`${this.#shadowKeyPrefix}${key}`);
    }
    const exists = ((await pipeline.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return value === 1;
    });
    return new Map(
      orderIds.map((id, index) => {
        const at = index * 4;
        return [
          id,
          {
            order: place(productionOrders.has(id), shadowOrders.has(id)),
            orderKey: place(exists[at] === true, exists[at + 1] === true),
            notification: place(productionNotes?.has(id) === true, shadowNotes?.has(id) === true),
            notifiedKey: place(exists[at + 2] === true, exists[at + 3] === true),
          },
        ];
      }),
    );
  }

  /** Messages ever written to the order topic and to its shadow (sums of high watermarks). */
  async offsets(): Promise<Offsets> {
    const sum = async (topic: string) =>
      (await this.#kafka.fetchTopicOffsets(topic)).reduce((total, partition) => total + Number(partition.high), 0);
    return { production: await sum(this.#config.orderTopic), shadow: await sum(this.#shadowTopic) };
  }

  /** What production holds, to compare before and after a load test. */
  async productionCounts(): Promise<ProductionCounts> {
    const database = this.#config.mysql.database;
    const one = async (sql: string) => Number(((await this.#mysql.query(sql))[0] as RowDataPacket[])[0]?.n ?? 0);
    return {
      orders: await one(`SELECT COUNT(*) AS n FROM \`${database}\`.orders`),
      notifications: await one(`SELECT COUNT(*) AS n FROM \`${database}\`.notifications`),
      stock: await one(`SELECT COALESCE(SUM(qty), 0) AS n FROM \`${database}\`.stock`),
      orderKeys: await this.#countKeys('order:*'),
      messages: (await this.offsets()).production,
    };
  }

  /** Rows the isolated tenant wrote: `orders` and `notifications` in the shadow database. */
  async shadowCounts(): Promise<{ orders: number; notifications: number }> {
    const count = async (table: string) =>
      Number(
        ((await this.#mysql.query(`SELECT COUNT(*) AS n FROM \`${this.#shadowDatabase}\`.${table}`))[0] as RowDataPacket[])[0]?.n ?? 0,
      );
    return { orders: await count('orders'), notifications: await count('notifications') };
  }

  async #countKeys(pattern: string): Promise<number> {
    let count = 0;
    for await (const keys of this.#redis.scanStream({ match: pattern, count: 1000 })) count += (keys as string[]).length;
    return count;
  }
}

function place(production: boolean, shadow: boolean): Place {
  if (production && shadow) return 'both';
  if (production) return 'production';
  return shadow ? 'shadow' : 'none';
}

/** Runs `tasks` with at most `concurrency` in flight; results in task order. */
export async function inBatches<T>(count: number, concurrency: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}
