/**
 * `npm run demo -- --clean`: removes what the demo created, in production and
 * shadow alike. That is the databases and the shadow account, the topics
 * (twins and dead-letter topics included) and the consumer groups, the shop's
 * Redis keys, the Redis user, and the registry's entries. What does not exist
 * is skipped.
 */
import { isolatedKeyPrefix, isolatedName } from '@dye/core';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import type { ShopConfig } from './config.js';

/** The shop's own key families (inventory cache, order cache, notifier's dedupe). */
const KEY_FAMILIES = ['stock:', 'order:', 'notified:'];
const NOTIFIER_GROUP = 'shop.notifier';

export interface CleanReport {
  databases: string[];
  mysqlAccount: string | undefined;
  topics: string[];
  groups: string[];
  /** Groups that could not be deleted, with why (members still consuming: another shop running). */
  groupsLeft: string[];
  keys: number;
  redisUser: string | undefined;
}

export async function cleanShop(config: ShopConfig, say: (line: string) => void = () => {}): Promise<CleanReport> {
  const report: CleanReport = {
    databases: [],
    mysqlAccount: undefined,
    topics: [],
    groups: [],
    groupsLeft: [],
    keys: 0,
    redisUser: undefined,
  };
  const { database, ...server } = config.mysql;
  const admin = await mysql.createConnection(server);
  try {
    for (const name of [database, isolatedName('mysql-database', database, 'shadow')]) {
      const [rows] = (await admin.query('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [name])) as unknown as [
        unknown[],
      ];
      if (rows.length === 0) continue;
      await admin.query(`DROP DATABASE \`${name.replaceAll('`', '``')}\``);
      report.databases.push(name);
    }
    const { user } = config.mysqlShadow;
    const [accounts] = (await admin.query('SELECT Host AS host FROM mysql.user WHERE User = ?', [user])) as unknown as [
      Array<{ host: string }>,
    ];
    for (const { host } of accounts) {
      await admin.query('DROP USER ?@?', [user, host]);
      report.mysqlAccount = `'${user}'@'${host}'`;
    }
  } finally {
    await admin.end();
  }
  say(
    `MySQL: ${report.databases.length > 0 ? `dropped ${report.databases.join(', ')}` : 'no shop database'}${report.mysqlAccount ? `, account ${report.mysqlAccount}` : ''}`,
  );

  const kafkaAdmin = new Kafka({ clientId: 'shop.clean', brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
  await kafkaAdmin.connect();
  try {
    const groups = new Set([NOTIFIER_GROUP, isolatedName('kafka-group', NOTIFIER_GROUP, 'shadow')]);
    const present = (await kafkaAdmin.listGroups()).groups.map((group) => group.groupId).filter((group) => groups.has(group));
    for (const group of present) {
      // A consumer that has just stopped may still count as a member for a moment.
      const deadline = Date.now() + 15_000;
      for (;;) {
        try {
          await kafkaAdmin.deleteGroups([group]);
          report.groups.push(group);
          break;
        } catch (error) {
          const code = (error as { groups?: Array<{ error?: { type?: string } }> }).groups?.[0]?.error?.type;
          if (code === 'GROUP_ID_NOT_FOUND') break;
          if (code !== 'NON_EMPTY_GROUP' || Date.now() > deadline) {
            report.groupsLeft.push(`${group} (${code ?? (error as Error).message})`);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
    }
    // Topics after groups: a group whose topics are gone may vanish before it can be deleted (and be reported).
    const shadowTopic = isolatedName('kafka-topic', config.orderTopic, 'shadow');
    const ours = new Set([config.orderTopic, shadowTopic, `${config.orderTopic}.dye-dlq`, `${shadowTopic}.dye-dlq`]);
    report.topics = (await kafkaAdmin.listTopics()).filter((topic) => ours.has(topic));
    if (report.topics.length > 0) await kafkaAdmin.deleteTopics({ topics: report.topics });
  } finally {
    await kafkaAdmin.disconnect();
  }
  say(
    `Kafka: ${report.topics.length} topic(s) and ${report.groups.length} group(s) deleted${
      report.groupsLeft.length > 0 ? `; left: ${report.groupsLeft.join(', ')}` : ''
    }`,
  );

  const redis = new Redis(config.redisUrl);
  try {
    const patterns = [
      ...KEY_FAMILIES.flatMap((family) => [`${family}*`, `${isolatedKeyPrefix('shadow')}${family}*`]),
      `${config.registryPrefix}:*`,
    ];
    for (const match of patterns) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) report.keys += await redis.unlink(...keys);
      } while (cursor !== '0');
    }
    const { user } = config.redisShadow;
    const users = (await redis.call('ACL', 'USERS')) as string[];
    if (users.includes(user)) {
      await redis.call('ACL', 'DELUSER', user);
      report.redisUser = user;
    }
  } finally {
    redis.disconnect();
  }
  say(`Redis: ${report.keys} key(s) removed${report.redisUser ? `, user ${report.redisUser} deleted` : ''}`);
  return report;
}
