/**
 * dye verify on real stores: a run's marker planted where a shadow load test
 * belongs is found there and reported clean; planted in production (a row, a
 * key name, a string or hash value, a Kafka message's value or header) it is
 * found there, each place named, exit 1.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KAFKA_BROKERS, MYSQL, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { dye } from './run-cli.js';

// A Redis database of this file's own: verify scans a whole database.
const REDIS_DB = 13;
const database = uniqueName('verify_shop');
const topic = uniqueName('verify_orders');
const mysqlUrl = `mysql://${encodeURIComponent(MYSQL.user)}:${encodeURIComponent(MYSQL.password)}@${MYSQL.host}:${MYSQL.port}`;
const redisUrl = `${REDIS_URL}/${REDIS_DB}`;
const kafka = new Kafka({ clientId: 'cli-verify-test', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const producer = kafka.producer();
let db: mysql.Connection;
let redis: Redis;
const stores = [
  '--mysql',
  mysqlUrl,
  '--db',
  database,
  '--redis',
  redisUrl,
  '--kafka',
  KAFKA_BROKERS.join(','),
  '--topic',
  topic,
  '--topic',
  `${topic}_shadow`,
];

const newRun = () => `dye-test-${randomBytes(5).toString('hex')}`;
const since = () => new Date(Date.now() - 60_000).toISOString();

/** Writes `run`'s marker where a shadow load test's writes belong. */
async function plantInShadow(run: string): Promise<void> {
  await db.query(`INSERT INTO \`${database}_shadow\`.orders (note, payload) VALUES (?, ?)`, [`order of ${run}`, JSON.stringify({ run })]);
  await redis.set(`shadow:order:${run}`, 'x');
  await redis.hset('shadow:carts', 'c1', `{"run":"${run}"}`);
  await producer.send({ topic: `${topic}_shadow`, messages: [{ value: JSON.stringify({ run }) }] });
}

beforeAll(async () => {
  db = await mysql.createConnection({ ...MYSQL });
  for (const name of [database, `${database}_shadow`]) {
    await db.query(`CREATE DATABASE \`${name}\``);
    await db.query(`CREATE TABLE \`${name}\`.orders (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(200), payload JSON, raw BLOB)`);
    await db.query(`CREATE TABLE \`${name}\`.audit (line TEXT)`);
    await db.query(`CREATE TABLE \`${name}\`.counters (id INT PRIMARY KEY, n INT)`);
  }
  redis = new Redis(redisUrl);
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 2 },
      { topic: `${topic}_shadow`, numPartitions: 2 },
    ],
  });
  await producer.connect();
}, 60_000);

beforeEach(async () => {
  await redis.flushdb();
});

afterAll(async () => {
  await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await db.query(`DROP DATABASE IF EXISTS \`${database}_shadow\``);
  await db.end();
  await redis.flushdb();
  redis.disconnect();
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic, `${topic}_shadow`] }).catch(() => {});
  await admin.disconnect();
});

describe('dye verify', () => {
  it('a run whose writes all landed in shadow: production is clean, exit 0, and the shadow places are named', async () => {
    const run = newRun();
    await plantInShadow(run);
    // Production holds other work, and text that differs only where a LIKE wildcard would match.
    await db.query(`INSERT INTO \`${database}\`.orders (note) VALUES ('a real order'), (?)`, [run.replace('-test-', '_test_')]);
    await producer.send({ topic, messages: [{ value: 'a real order' }] });
    const out = join(mkdtempSync(join(tmpdir(), 'dye-verify-')), 'v.json');
    const result = await dye(['verify', '--run', run, '--since', since(), ...stores, '--json', out]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/production is clean/);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.leaks).toBe(0);
    const places: string[] = report.findings.map((finding: { place: string }) => finding.place);
    expect(places.filter((place) => !place.startsWith(`${topic}_shadow[`)).sort()).toEqual(
      [`${database}_shadow.orders.note`, `${database}_shadow.orders.payload`, `shadow:order:${run} (name)`, 'shadow:carts (value)'].sort(),
    );
    expect(places.filter((place) => place.startsWith(`${topic}_shadow[`))).toHaveLength(1);
    expect(report.findings.every((finding: { isolated: boolean }) => finding.isolated)).toBe(true);
    // What was searched, production and shadow: every table, both Redis namespaces, both topics.
    expect(report.searched.map((place: { place: string }) => place.place)).toEqual(
      expect.arrayContaining([
        `${database}.orders`,
        `${database}.audit`,
        `${database}.counters`,
        `${database}_shadow.orders`,
        topic,
        `${topic}_shadow`,
      ]),
    );
  }, 90_000);

  it('a marker planted in production is found in every store and each place is named, exit 1', async () => {
    const run = newRun();
    await plantInShadow(run);
    await db.query(`INSERT INTO \`${database}\`.orders (note, raw) VALUES ('ok', ?)`, [Buffer.from(`bytes ${run} bytes`)]);
    await db.query(`INSERT INTO \`${database}\`.audit (line) VALUES (?)`, [`created by ${run}`]);
    await redis.set(`order:${run}`, '1');
    await redis.set('last-order', `{"run":"${run}"}`);
    await redis.hset('carts', `cart-of-${run}`, 'empty');
    await producer.send({ topic, messages: [{ key: 'k', value: 'v', headers: { 'x-dye-run': run } }, { value: `{"run":"${run}"}` }] });
    const result = await dye(['verify', '--run', run, '--since', since(), ...stores]);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    const leaks = result.stdout.split('\n').filter((line) => line.includes('production: a leak'));
    expect(leaks.map((line) => line.replace(/^\s*✗ /, '').replace(/: \d+ \(production: a leak\)$/, '')).sort()).toEqual(
      [
        `${database}.orders.raw`,
        `${database}.audit.line`,
        `order:${run} (name)`,
        'last-order (value)',
        'carts (value)',
        `${topic}[0]`,
        `${topic}[1]`,
      ]
        .filter((place) => !place.startsWith(`${topic}[`) || result.stdout.includes(place))
        .sort(),
    );
    // Both Kafka messages were found, wherever the partitioner put them.
    const kafkaCount = leaks
      .filter((line) => line.includes(`${topic}[`))
      .reduce((total, line) => total + Number(/: (\d+) \(/.exec(line)?.[1]), 0);
    expect(kafkaCount).toBe(2);
    expect(result.stdout).toMatch(/LEAK: run .* is in production at \d+ place\(s\)/);
  }, 90_000);

  it('reads the run, its start and tenant from a dye load --json report; Kafka messages before the start are not read', async () => {
    const run = newRun();
    await producer.send({ topic, messages: [{ value: `before the run: ${run}` }] });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const dir = mkdtempSync(join(tmpdir(), 'dye-verify-report-'));
    const reportFile = join(dir, 'load.json');
    writeFileSync(reportFile, JSON.stringify({ settings: { run, tenant: 'shadow', startedAt: new Date().toISOString() } }));
    // --report takes a minute's margin for clocks: the message above is inside it, so the start is moved for this test.
    const result = await dye([
      'verify',
      '--report',
      reportFile,
      '--since',
      new Date(Date.now() - 500).toISOString(),
      '--kafka',
      KAFKA_BROKERS.join(','),
      '--topic',
      topic,
    ]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/found nowhere, not even in shadow/);
    const fromReport = await dye(['verify', '--report', reportFile, '--kafka', KAFKA_BROKERS.join(','), '--topic', topic]);
    expect(fromReport.code, fromReport.stdout).toBe(1);
    expect(fromReport.stderr).toContain(`run ${run} · tenant shadow`);
  }, 90_000);

  it('a message stamped with an older time after the run began: found from the offsets dye load took, not lost by its timestamp', async () => {
    const run = newRun();
    const ends = await admin.fetchTopicOffsets(topic);
    const kafkaStartOffsets = { [topic]: Object.fromEntries(ends.map((end) => [String(end.partition), end.high])) };
    // A processor forwarding an event keeps the event's own time: an hour ago.
    await producer.send({ topic, messages: [{ value: `{"run":"${run}"}`, timestamp: String(Date.now() - 3_600_000) }] });
    const dir = mkdtempSync(join(tmpdir(), 'dye-verify-offsets-'));
    const reportFile = join(dir, 'load.json');
    writeFileSync(
      reportFile,
      JSON.stringify({ settings: { run, tenant: 'shadow', startedAt: new Date().toISOString(), kafkaStartOffsets } }),
    );
    const result = await dye(['verify', '--report', reportFile, '--kafka', KAFKA_BROKERS.join(','), '--topic', topic]);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`✗ ${topic}\\[\\d\\]: 1 \\(production: a leak\\)`));
  }, 90_000);

  it('bad usage: one line, exit 2', async () => {
    for (const [args, message] of [
      [['verify', '--since', '1h', '--redis', redisUrl], /name the run/],
      [['verify', '--run', 'x y', '--since', '1h', '--redis', redisUrl], /is not a run id/],
      [['verify', '--run', 'dye-abcdef'], /say when the run started/],
      [['verify', '--run', 'dye-abcdef', '--since', 'yesterday', '--redis', redisUrl], /--since takes/],
      [['verify', '--run', 'dye-abcdef', '--since', '1h'], /name where to search/],
      [['verify', '--run', 'dye-abcdef', '--since', '1h', '--tenant', 'red', '--redis', redisUrl], /not isolated/],
      [['verify', '--run', 'dye-abcdef', '--since', '1h', '--mysql', mysqlUrl, '--db', 'no_such_db_here'], /no such database/],
      [['verify', '--report', '/does/not/exist.json', '--redis', redisUrl], /--report \/does\/not\/exist.json/],
      [['verify', '--run', 'dye-abcdef', '--since', '2999-01-01T00:00:00Z', '--redis', redisUrl], /is in the future/],
      [['verify', '--run', 'dye-abcdef', '--since', '1h', '--mysql', mysqlUrl, '--db', `${database}_shadow`], /shadow's own database/],
    ] as const) {
      const result = await dye(args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr.trim().split('\n').at(-1), args.join(' ')).toMatch(message);
    }
  }, 60_000);
});
