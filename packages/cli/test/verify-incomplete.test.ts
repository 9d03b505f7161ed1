/**
 * dye verify never says "clean" about what it did not read. Each way a search
 * falls short is staged on a real store (a lock, a missing privilege, values
 * past the bound, a batch codec the reader lacks, a server that never
 * answers): the place is named, and the verdict is "not proven" (exit 5), in
 * seconds, never a hang. What it can read, it reads: every Redis type.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KAFKA_BROKERS, MYSQL, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { dye } from './run-cli.js';

// A Redis database of this file's own: verify scans a whole database.
const REDIS_DB = 12;
const redisUrl = `${REDIS_URL}/${REDIS_DB}`;
const database = uniqueName('verify_partial');
const auditUser = uniqueName('verify_audit');
const mysqlUrl = (user: string, password: string) =>
  `mysql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${MYSQL.host}:${MYSQL.port}`;
const rootUrl = mysqlUrl(MYSQL.user, MYSQL.password);
const newRun = () => `dye-test-${randomBytes(5).toString('hex')}`;
let admin: mysql.Connection;
let redis: Redis;
let silent: Server;
let silentPort: number;

beforeAll(async () => {
  admin = await mysql.createConnection({ ...MYSQL });
  await admin.query(`CREATE DATABASE \`${database}\``);
  await admin.query(`CREATE TABLE \`${database}\`.orders (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT)`);
  await admin.query(`CREATE TABLE \`${database}\`.secrets (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT)`);
  await admin.query(`CREATE USER '${auditUser}'@'%' IDENTIFIED BY 'audit-pw'`);
  // Only one table: the other one is invisible to the account.
  await admin.query(`GRANT SELECT ON \`${database}\`.orders TO '${auditUser}'@'%'`);
  redis = new Redis(redisUrl);
  await redis.flushdb();
  // A listener that takes connections and never answers.
  silent = createServer((socket) => socket.on('error', () => {}));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as { port: number }).port;
}, 60_000);

afterAll(async () => {
  await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await admin.query(`DROP USER IF EXISTS '${auditUser}'@'%'`);
  await admin.end();
  await redis.flushdb();
  redis.disconnect();
  silent.close();
});

describe('dye verify: what it cannot read is not called clean', () => {
  it('a table another session locks: named as not read, exit 5, in seconds; the marker in it is no "clean"', async () => {
    const run = newRun();
    await admin.query(`INSERT INTO \`${database}\`.orders (note) VALUES (?)`, [`order of ${run}`]);
    const locker = await mysql.createConnection({ ...MYSQL });
    await locker.query(`LOCK TABLES \`${database}\`.orders WRITE`);
    try {
      const started = Date.now();
      const result = await dye(['verify', '--run', run, '--since', '1h', '--mysql', rootUrl, '--db', database]);
      expect(result.code, result.stdout + result.stderr).toBe(5);
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(result.stdout).toMatch(new RegExp(`! ${database}\\.orders: not read \\(.*[Ll]ock wait timeout`));
      expect(result.stdout).toMatch(/NOT PROVEN/);
      expect(result.stdout).not.toMatch(/production is clean/);
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
    }
    // Unlocked, the same search finds it.
    const found = await dye(['verify', '--run', run, '--since', '1h', '--mysql', rootUrl, '--db', database]);
    expect(found.code, found.stdout).toBe(1);
  }, 60_000);

  it('an account that may not read every table: the database is named as not read, exit 5', async () => {
    const run = newRun();
    await admin.query(`INSERT INTO \`${database}\`.secrets (note) VALUES (?)`, [`kept by ${run}`]);
    const result = await dye(['verify', '--run', run, '--since', '1h', '--mysql', mysqlUrl(auditUser, 'audit-pw'), '--db', database]);
    expect(result.code, result.stdout + result.stderr).toBe(5);
    expect(result.stdout).toMatch(new RegExp(`! ${database}\\.\\*: not read \\(the account may not read every table`));
    // As root, it is found.
    expect((await dye(['verify', '--run', run, '--since', '1h', '--mysql', rootUrl, '--db', database])).code).toBe(1);
  }, 60_000);

  it('every Redis type is read (list, set, sorted set, stream, hash, string); a value past the bound is named, exit 5', async () => {
    const run = newRun();
    await redis.flushdb();
    await redis.rpush('jobs', 'a', `job of ${run}`);
    await redis.sadd('members', `member ${run}`);
    await redis.zadd('board', 1, `player ${run}`);
    await redis.xadd('events', '*', 'order', `{"run":"${run}"}`);
    await redis.hset('carts', 'c1', `cart ${run}`);
    await redis.set('last', run);
    // Another database holds keys: not searched, but said.
    const elsewhere = new Redis(`${REDIS_URL}/11`);
    await elsewhere.set(`elsewhere:${run}`, 'x');
    const found = await dye(['verify', '--run', run, '--since', '1h', '--redis', redisUrl]).finally(async () => {
      await elsewhere.del(`elsewhere:${run}`);
      elsewhere.disconnect();
    });
    expect(found.code, found.stdout + found.stderr).toBe(1);
    expect(found.stdout).toMatch(/note: other Redis databases hold keys and were not searched: .*db 11 \(\d+ keys\)/);
    const leaks = found.stdout
      .split('\n')
      .filter((line) => line.includes('production: a leak'))
      .map((line) => line.replace(/^\s*✗ /, '').replace(/: \d+ \(production: a leak\)$/, ''));
    expect(leaks.sort()).toEqual(['board (value)', 'carts (value)', 'events (value)', 'jobs (value)', 'last (value)', 'members (value)']);

    await redis.flushdb();
    const other = newRun();
    // The marker past the first MiB of a string, and past the first 10,000 items of a list.
    await redis.set('big', Buffer.concat([Buffer.alloc(1 << 20, 'x'), Buffer.from(other)]));
    await redis.rpush('long', ...Array.from({ length: 10_000 }, (_, index) => `item ${index}`), `item of ${other}`);
    const partial = await dye(['verify', '--run', other, '--since', '1h', '--redis', redisUrl]);
    expect(partial.code, partial.stdout + partial.stderr).toBe(5);
    expect(partial.stdout).toMatch(/not read \(values past the first 10000 items or 1048576 bytes: (big, long|long, big)\)/);
  }, 60_000);

  it('a Kafka topic the broker compresses with snappy: named as not read, exit 5, not a wait', async () => {
    const topic = uniqueName('verify_snappy');
    const kafka = new Kafka({ clientId: 'verify-incomplete', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    const kafkaAdmin = kafka.admin();
    const producer = kafka.producer();
    await kafkaAdmin.connect();
    await producer.connect();
    try {
      await kafkaAdmin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'compression.type', value: 'snappy' }] }],
      });
      const run = newRun();
      await producer.send({ topic, messages: [{ value: `order of ${run}` }] });
      const started = Date.now();
      const result = await dye(['verify', '--run', run, '--since', '1h', '--kafka', KAFKA_BROKERS.join(','), '--topic', topic]);
      expect(result.code, result.stdout + result.stderr).toBe(5);
      expect(result.stdout).toMatch(new RegExp(`! ${topic}: not read \\(the consumer failed: .*[Ss]nappy`));
      expect(Date.now() - started).toBeLessThan(45_000);
    } finally {
      await producer.disconnect();
      await kafkaAdmin.deleteTopics({ topics: [topic] }).catch(() => {});
      await kafkaAdmin.disconnect();
    }
  }, 90_000);

  it('a MariaDB system-versioned table is searched, its history too: a marker updated away is still found', async () => {
    const run = newRun();
    const versioned = `${database}_versioned`;
    await admin.query(`CREATE DATABASE \`${versioned}\``);
    try {
      await admin.query(`CREATE TABLE \`${versioned}\`.orders (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT) WITH SYSTEM VERSIONING`);
      await admin.query(`INSERT INTO \`${versioned}\`.orders (note) VALUES (?)`, [`order of ${run}`]);
      await admin.query(`UPDATE \`${versioned}\`.orders SET note = 'tidied'`);
      const result = await dye(['verify', '--run', run, '--since', '1h', '--mysql', rootUrl, '--db', versioned]);
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stdout).toMatch(new RegExp(`✗ ${versioned}\\.orders\\.note: 1 \\(production: a leak\\)`));
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS \`${versioned}\``);
    }
  }, 60_000);

  it('a Kafka transaction left open does not hide what others wrote after it', async () => {
    const topic = uniqueName('verify_open_tx');
    const kafka = new Kafka({ clientId: 'verify-open-tx', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    const kafkaAdmin = kafka.admin();
    const transactional = kafka.producer({ transactionalId: uniqueName('verify-tx'), idempotent: true, maxInFlightRequests: 1 });
    const producer = kafka.producer();
    await Promise.all([kafkaAdmin.connect(), transactional.connect(), producer.connect()]);
    try {
      await kafkaAdmin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
      const transaction = await transactional.transaction();
      await transaction.send({ topic, messages: [{ value: 'not committed yet' }] });
      const run = newRun();
      await producer.send({ topic, messages: [{ value: `order of ${run}` }] });
      const result = await dye(['verify', '--run', run, '--since', '1h', '--kafka', KAFKA_BROKERS.join(','), '--topic', topic]);
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stdout).toMatch(new RegExp(`✗ ${topic}\\[0\\]: 1 \\(production: a leak\\)`));
      await transaction.abort();
    } finally {
      await Promise.all([transactional.disconnect(), producer.disconnect()]);
      await kafkaAdmin.deleteTopics({ topics: [topic] }).catch(() => {});
      await kafkaAdmin.disconnect();
    }
  }, 90_000);

  it('a Redis whose SCAN cursor never comes back to 0 ends the search, cut short (exit 5), not a hang', async () => {
    const fake = fakeRedis();
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const result = await dye([
        'verify',
        '--run',
        newRun(),
        '--since',
        '1h',
        '--redis',
        `redis://127.0.0.1:${(fake.address() as { port: number }).port}`,
      ]);
      expect(result.code, result.stdout + result.stderr).toBe(5);
      expect(Date.now() - started).toBeLessThan(40_000);
    } finally {
      fake.close();
    }
  }, 60_000);

  it('a store that takes the connection and never answers fails the search within seconds (Redis, RabbitMQ, its management API)', async () => {
    const started = Date.now();
    const runs = await Promise.all(
      [
        ['--redis', `redis://127.0.0.1:${silentPort}`],
        ['--amqp', `amqp://guest:guest@127.0.0.1:${silentPort}`, '--amqp-management', 'http://127.0.0.1:15672'],
        ['--amqp', 'amqp://guest:guest@127.0.0.1:5672', '--amqp-management', `http://127.0.0.1:${silentPort}`],
      ].map(async (stores) => ({ stores, result: await dye(['verify', '--run', newRun(), '--since', '1h', ...stores]) })),
    );
    for (const { stores, result } of runs) {
      // Not a leak (1), not clean (0): not proven.
      expect(result.code, `${stores.join(' ')}: ${result.stderr}`).toBe(5);
      expect(result.stderr, stores.join(' ')).toMatch(/not proven: the search failed/);
      // One line, no stack trace.
      expect(result.stderr, stores.join(' ')).not.toMatch(/\n\s+at /);
    }
    expect(Date.now() - started).toBeLessThan(40_000);
  }, 60_000);

  it('a Redis URL whose database is not a number, or out of range, is refused, never searched as db 0', async () => {
    const abc = await dye(['verify', '--run', newRun(), '--since', '1h', '--redis', 'redis://127.0.0.1:6379/abc']);
    expect([abc.code, abc.stderr.trim().split('\n').at(-1)]).toEqual([2, expect.stringMatching(/the path is a database number/)]);
    const far = await dye(['verify', '--run', newRun(), '--since', '1h', '--redis', 'redis://127.0.0.1:6379/99']);
    expect(far.code).toBe(5);
    expect(far.stdout).not.toMatch(/production is clean/);
    expect(far.stderr).toMatch(/DB index is out of range/);
    expect(far.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});

/**
 * A server that speaks just enough RESP for ioredis (HELLO refused, INFO,
 * SELECT) and answers every SCAN with cursor 1 and no keys: a cursor that
 * never ends.
 */
function fakeRedis(): Server {
  return createServer((socket) => {
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      // Requests are arrays of bulk strings: *n, then $len and the bytes, n times.
      for (;;) {
        const match = /^\*(\d+)\r\n/.exec(pending);
        if (!match) return;
        let at = match[0].length;
        const words: string[] = [];
        for (let i = 0; i < Number(match[1]); i++) {
          const head = /^\$(\d+)\r\n/.exec(pending.slice(at));
          if (!head || pending.length < at + head[0].length + Number(head[1]) + 2) return;
          words.push(pending.slice(at + head[0].length, at + head[0].length + Number(head[1])));
          at += head[0].length + Number(head[1]) + 2;
        }
        pending = pending.slice(at);
        const name = words[0]?.toLowerCase();
        if (name === 'scan') socket.write('*2\r\n$1\r\n1\r\n*0\r\n');
        else if (name === 'info') {
          const info = '# Server\r\nredis_version:7.2.0\r\nloading:0\r\n';
          socket.write(`$${info.length}\r\n${info}\r\n`);
        } else if (name === 'hello') socket.write('-ERR unknown command\r\n');
        else socket.write('+OK\r\n');
      }
    });
  });
}
