/**
 * `npm run demo` is how a newcomer meets Dye: it must keep working. This runs
 * the built demo as a user would (a smaller burst, its own database, topic and
 * Redis database) and checks that it exits 0 and prints its measurements.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import { afterAll, expect, it } from 'vitest';
import { KAFKA_BROKERS, MYSQL, REDIS_URL, uniqueName } from '../test/support/services.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const REDIS_DB = 8;
const database = uniqueName('shop_demo');
const topic = uniqueName('demo_orders');
const redisUrl = (() => {
  const url = new URL(REDIS_URL);
  url.pathname = `/${REDIS_DB}`;
  return url.toString();
})();

afterAll(async () => {
  const admin = await mysql.createConnection({ ...MYSQL });
  await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await admin.query(`DROP DATABASE IF EXISTS \`${database}_shadow\``);
  await admin.query(`DROP USER IF EXISTS '${database}_shadow'@'%'`);
  await admin.end();
  const kafka = new Kafka({ clientId: 'demo-cleanup', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await kafka.connect();
  const topics = (await kafka.listTopics()).filter((name) => name.startsWith(topic));
  if (topics.length > 0) await kafka.deleteTopics({ topics });
  await kafka.disconnect();
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  redis.disconnect();
});

it('npm run demo exits 0 after printing where every request went and that production is untouched', async () => {
  const child = spawn(process.execPath, [`${ROOT}examples/shop/dist/demo.js`, '--burst', '40'], {
    cwd: ROOT,
    env: {
      ...process.env,
      NO_COLOR: '1',
      PORT: '0',
      MYSQL_URL: `mysql://${encodeURIComponent(MYSQL.user)}:${encodeURIComponent(MYSQL.password)}@${MYSQL.host}:${MYSQL.port}/${database}`,
      REDIS_URL: redisUrl,
      KAFKA_BROKERS: KAFKA_BROKERS.join(','),
      SHOP_ORDER_TOPIC: topic,
      DYE_REGISTRY_PREFIX: `${topic}-registry`,
      REDIS_SHADOW_USER: `${topic}-shadow`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code, output).toBe(0);
  const plain = stripVTControlCharacters(output);
  const row = (label: string) => plain.split('\n').find((line) => line.includes(label)) ?? '';
  expect(row('1. baseline order')).toMatch(/baseline → baseline → baseline/);
  expect(row('2. red order')).toMatch(/baseline → baseline → red/);
  expect(row('3. x-tenant: red, no token')).toMatch(/│ baseline .*baseline → baseline → baseline/);
  expect(row('4. shadow order')).toMatch(new RegExp(`${database}_shadow .*shadow:order:<id> .*${topic}_shadow .*${database}_shadow .*yes`));
  expect(plain).toContain('40/40 orders created');
  expect(plain).toContain('production untouched: yes (measured)');
}, 180_000);
