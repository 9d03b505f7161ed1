/**
 * Creates the shop's production data (database `shop` with seed stock, topic
 * `order-created`), then its shadow copies through Dye's sync: `shop_shadow`
 * (schema, and the `stock` rows copied) and `order-created_shadow`. Idempotent:
 * run it again to reset stock.
 */

import { pathToFileURL } from 'node:url';
import { isolatedKeyPrefix } from '@dye/core';
import { grantShadowAccess as grantRedisShadowAccess } from '@dye/ioredis';
import { syncShadowTopics } from '@dye/kafkajs';
import { grantShadowAccess, syncShadowSchema } from '@dye/mysql2';
import { Redis } from 'ioredis';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import { readConfig, type ShopConfig } from './config.js';

export const SEED_STOCK: Readonly<Record<string, number>> = { apple: 1_000_000, pear: 1_000_000, plum: 1_000_000 };

const TABLES = [
  `CREATE TABLE IF NOT EXISTS stock (
     sku VARCHAR(64) NOT NULL PRIMARY KEY,
     qty INT NOT NULL
   ) ENGINE=InnoDB`,
  `CREATE TABLE IF NOT EXISTS orders (
     id CHAR(36) NOT NULL PRIMARY KEY,
     sku VARCHAR(64) NOT NULL,
     qty INT NOT NULL,
     user VARCHAR(64) NOT NULL,
     created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
   ) ENGINE=InnoDB`,
  `CREATE TABLE IF NOT EXISTS notifications (
     order_id CHAR(36) NOT NULL PRIMARY KEY,
     user VARCHAR(64) NOT NULL,
     created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
   ) ENGINE=InnoDB`,
];

async function waitForLeaders(admin: Admin, topics: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const led = await admin
      .fetchTopicMetadata({ topics })
      .then((metadata) => metadata.topics.every((topic) => topic.partitions.length > 0 && topic.partitions.every((p) => p.leader >= 0)))
      .catch(() => false);
    if (led) return;
    if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no partition leaders after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface SetupReport {
  database: string;
  shadowDatabase: string;
  topic: string;
  shadowTopic: string;
  copiedRows: number;
}

export async function setupShop(config: ShopConfig = readConfig(), say: (line: string) => void = () => {}): Promise<SetupReport> {
  const { database, ...server } = config.mysql;
  let copiedRows = 0;
  const admin = await mysql.createConnection(server);
  try {
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
    await admin.changeUser({ database });
    for (const statement of TABLES) await admin.query(statement);
    for (const [sku, qty] of Object.entries(SEED_STOCK)) {
      await admin.execute('INSERT INTO stock (sku, qty) VALUES (?, ?) ON DUPLICATE KEY UPDATE qty = VALUES(qty)', [sku, qty]);
    }
    say(`database ${database}: tables stock, orders, notifications; stock seeded`);
    const synced = await syncShadowSchema({ connection: admin, database, apply: true, copyTables: ['stock'] });
    copiedRows = synced.copied.reduce((sum, copy) => sum + copy.rows, 0);
    say(`database ${database}_shadow: schema synced, stock copied (${copiedRows} rows)`);
    // Isolated tenants reach MySQL only as this account, which the server confines to shop_shadow.
    const { user, password } = config.mysqlShadow;
    if (password === undefined) throw new Error('MYSQL_SHADOW_PASSWORD is not set: the password to give the shadow account');
    const granted = await grantShadowAccess(admin, { database, user, password, apply: true });
    say(
      `account ${granted.account}: ${granted.statements.length === 0 ? 'confined to' : 'created or fixed, confined to'} ${granted.databases.join(', ')}`,
    );
  } finally {
    await admin.end();
  }

  const kafka = new Kafka({ clientId: 'shop.setup', brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING });
  const kafkaAdmin = kafka.admin();
  await kafkaAdmin.connect();
  try {
    const existing = new Set(await kafkaAdmin.listTopics());
    const missing = [config.orderTopic, `${config.orderTopic}.dye-dlq`].filter((topic) => !existing.has(topic));
    if (missing.length > 0) {
      // kafkajs's own waitForLeaders gives up when a broker that has just
      // started answers UNKNOWN_TOPIC_OR_PARTITION for a new topic: poll instead.
      await kafkaAdmin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions: 3 })), waitForLeaders: false });
      await waitForLeaders(kafkaAdmin, missing);
    }
    say(`topic ${config.orderTopic}: ${missing.includes(config.orderTopic) ? 'created' : 'exists'}`);
    await syncShadowTopics({ admin: kafkaAdmin, topics: [config.orderTopic] });
    say(`topic ${config.orderTopic}_shadow: synced`);
  } finally {
    await kafkaAdmin.disconnect();
  }

  // Stock was just reset: drop what the caches remember of it, in every tenant.
  const redis = new Redis(config.redisUrl);
  try {
    // Isolated tenants reach Redis only as this user, which Redis confines to shadow:* keys and channels.
    const { user, password } = config.redisShadow;
    if (password === undefined) throw new Error('REDIS_SHADOW_PASSWORD is not set: the password to give the Redis user');
    const redisGrant = await grantRedisShadowAccess(redis, { user, password, apply: true });
    say(
      `Redis user ${user}: ${redisGrant.commands.length === 0 ? 'confined to' : 'created or fixed, confined to'} ${redisGrant.keys.join(' ')}`,
    );
    const shadowPrefix = isolatedKeyPrefix('shadow');
    await redis.del(...Object.keys(SEED_STOCK).flatMap((sku) => [`stock:${sku}`, `${shadowPrefix}stock:${sku}`]));
  } finally {
    redis.disconnect();
  }
  return {
    database,
    shadowDatabase: `${database}_shadow`,
    topic: config.orderTopic,
    shadowTopic: `${config.orderTopic}_shadow`,
    copiedRows,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await setupShop(readConfig(), (line) => console.log(`[setup] ${line}`));
}
