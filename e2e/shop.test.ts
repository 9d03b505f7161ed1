/**
 * The whole chain on real services: examples/shop's five processes (gateway,
 * orders, inventory baseline + red, notifier) on Redis, MariaDB and Kafka, with
 * spans exported over OTLP to a receiver of the test's own. Every assertion is
 * a measurement in the stores or on the wire; failures name the request and
 * the hop.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TENANT_HEADER } from '@dye/core';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanShop } from '../examples/shop/src/clean.js';
import { readConfig, type ShopConfig } from '../examples/shop/src/config.js';
import { keepInstructions } from '../examples/shop/src/report.js';
import {
  inBatches,
  type Landing,
  type OrderReply,
  placeOrder,
  type Sent,
  ShopStores,
  tenantHeaders,
} from '../examples/shop/src/scenario.js';
import { setupShop } from '../examples/shop/src/setup.js';
import { type RunningShop, SHOP_SERVICES, startShop } from '../examples/shop/src/stack.js';
import { KAFKA_BROKERS, MYSQL, REDIS_URL, uniqueName } from '../test/support/services.js';
import { OtlpReceiver } from './support/otlp-receiver.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ORDER = { sku: 'apple', qty: 1, user: 'e2e' };
// Redis database of the e2e run: the shop's cache keys (`stock:apple`) have
// fixed names, and must not meet a demo's running on database 0.
const REDIS_DB = 7;

type Tenant = 'baseline' | 'red' | 'shadow';

describe('examples/shop end to end', () => {
  const id = randomBytes(4).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const database = uniqueName('shop_e2e');
  const redisUrl = (() => {
    const url = new URL(REDIS_URL);
    url.pathname = `/${REDIS_DB}`;
    return url.toString();
  })();
  const env: Record<string, string> = {
    MYSQL_URL: `mysql://${encodeURIComponent(MYSQL.user)}:${encodeURIComponent(MYSQL.password)}@${MYSQL.host}:${MYSQL.port}/${database}`,
    REDIS_URL: redisUrl,
    KAFKA_BROKERS: KAFKA_BROKERS.join(','),
    SHOP_ORDER_TOPIC: `e2e-orders-${id}`,
    DYE_REGISTRY_PREFIX: `dye-e2e-${id}`,
    DYE_SECRET: secret,
    MYSQL_SHADOW_PASSWORD: randomBytes(12).toString('hex'),
    REDIS_SHADOW_USER: `shop_shadow_${id}`,
    REDIS_SHADOW_PASSWORD: randomBytes(12).toString('hex'),
    OTEL_BSP_SCHEDULE_DELAY: '200',
    OTEL_METRIC_EXPORT_INTERVAL: '500',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  };
  let config: ShopConfig;
  let shop: RunningShop;
  let stores: ShopStores;
  let otlp: OtlpReceiver;
  // The last test stops the shop itself, to clean up after it.
  let stopped = false;

  const token = (tenant: Tenant) => (tenant === 'baseline' ? {} : tenantHeaders({ token: { tenant, secret } }));

  beforeAll(async () => {
    otlp = await OtlpReceiver.start();
    config = readConfig({ ...env });
    await setupShop(config);
    stores = await ShopStores.open(config);
    shop = await startShop({
      env: { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url },
      // The gateway on any free port; the others pick theirs and register it.
      services: SHOP_SERVICES.map((spec) => (spec.service === 'gateway' ? { ...spec, env: { PORT: '0' } } : spec)),
      distDir: `${ROOT}examples/shop/dist`,
    });
  }, 180_000);

  afterAll(async () => {
    if (!stopped) {
      await shop?.stop();
      await stores?.close();
    }
    await otlp?.close();
    const admin = await mysql.createConnection({ ...MYSQL });
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.query(`DROP DATABASE IF EXISTS \`${database}_shadow\``);
    await admin.query(`DROP USER IF EXISTS '${database}_shadow'@'%'`);
    await admin.end();
    const kafka = new Kafka({ clientId: 'e2e-cleanup', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await kafka.connect();
    const topics = (await kafka.listTopics()).filter((topic) => topic.startsWith(env.SHOP_ORDER_TOPIC as string));
    if (topics.length > 0) await kafka.deleteTopics({ topics });
    await kafka.disconnect();
    const redis = new Redis(redisUrl);
    for (const pattern of ['order:*', 'notified:*', 'shadow:*', 'stock:*', `${env.DYE_REGISTRY_PREFIX}*`]) {
      const keys = await redis.keys(pattern);
      if (keys.length > 0) await redis.del(...keys);
    }
    redis.disconnect();
  }, 60_000);

  /** Sends one order and measures where everything went. */
  async function orderAndMeasure(headers: Record<string, string>) {
    const before = await stores.offsets();
    const sent = await placeOrder(shop.gatewayUrl, ORDER, headers);
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    const landing = await stores.landing(sent.body.orderId);
    const after = await stores.offsets();
    return { sent, landing, messages: { production: after.production - before.production, shadow: after.shadow - before.shadow } };
  }

  const everywhere = (place: string): Landing => ({ order: place, orderKey: place, notification: place, notifiedKey: place }) as Landing;

  it('1. a baseline order is served by baseline lanes and lands in production only', async () => {
    const { sent, landing, messages } = await orderAndMeasure({});
    expect(sent.decided).toBe('baseline');
    expect(sent.body).toMatchObject({
      tenant: 'baseline',
      route: { gateway: 'baseline', orders: 'baseline', inventory: 'baseline' },
      hopTenants: { orders: 'baseline', inventory: 'baseline' },
    });
    expect(landing).toEqual(everywhere('production'));
    expect(messages).toEqual({ production: 1, shadow: 0 });
  });

  it('2. a red order with a signed token reaches the red inventory; its data is production data (red is a color)', async () => {
    const { sent, landing, messages } = await orderAndMeasure(token('red'));
    expect(sent.decided).toBe('red');
    expect(sent.body).toMatchObject({
      tenant: 'red',
      // orders has no red instance: the call falls back to baseline, still carrying red.
      route: { gateway: 'baseline', orders: 'baseline', inventory: 'red' },
      hopTenants: { orders: 'red', inventory: 'red' },
    });
    expect(landing).toEqual(everywhere('production'));
    expect(messages).toEqual({ production: 1, shadow: 0 });
  });

  it('3. a spoofed x-tenant (or baggage) without a token is served as baseline', async () => {
    const spoofs: Record<string, string>[] = [
      { [TENANT_HEADER]: 'red' },
      { baggage: 'tenant=shadow' },
      { 'X-Tenant': 'shadow', baggage: 'tenant=shadow' },
    ];
    for (const headers of spoofs) {
      const { sent, landing, messages } = await orderAndMeasure(headers);
      expect(sent.decided, JSON.stringify(headers)).toBe('baseline');
      expect(sent.body, JSON.stringify(headers)).toMatchObject({
        tenant: 'baseline',
        route: { gateway: 'baseline', orders: 'baseline', inventory: 'baseline' },
        hopTenants: { orders: 'baseline', inventory: 'baseline' },
      });
      expect(landing).toEqual(everywhere('production'));
      expect(messages).toEqual({ production: 1, shadow: 0 });
    }
  });

  it('4. a shadow order with a signed token lands in shop_shadow, shadow: keys and the shadow topic, and nowhere in production', async () => {
    const before = await stores.productionCounts();
    const { sent, landing, messages } = await orderAndMeasure(token('shadow'));
    expect(sent.decided).toBe('shadow');
    expect(sent.body).toMatchObject({
      tenant: 'shadow',
      route: { gateway: 'baseline', orders: 'baseline', inventory: 'baseline' },
      hopTenants: { orders: 'shadow', inventory: 'shadow' },
    });
    expect(landing).toEqual(everywhere('shadow'));
    expect(messages).toEqual({ production: 0, shadow: 1 });
    expect(await stores.productionCounts()).toEqual(before);
  });

  it('4b. the services reach MySQL in shadow as the shadow account, which the server confines to the shadow database', async () => {
    const admin = await mysql.createConnection({ ...MYSQL });
    try {
      // Every shop connection the shadow account holds is on the shadow database.
      const [sessions] = (await admin.query('SELECT DB AS db FROM information_schema.PROCESSLIST WHERE USER = ?', [
        `${database}_shadow`,
      ])) as unknown as [Array<{ db: string }>];
      expect(sessions.length).toBeGreaterThan(0);
      expect(new Set(sessions.map((session) => session.db))).toEqual(new Set([`${database}_shadow`]));
      const [grants] = (await admin.query(`SHOW GRANTS FOR '${database}_shadow'@'%'`)) as unknown as [Array<Record<string, string>>];
      const lines = grants.map((row) => Object.values(row)[0] as string);
      expect(lines.filter((line) => !line.startsWith('GRANT USAGE ON *.*')).every((line) => line.includes(`\\_shadow\`.*`))).toBe(true);
    } finally {
      await admin.end();
    }
  });

  it('5. a shadow burst of 200 orders leaves every production count unchanged', async () => {
    const before = await stores.productionCounts();
    const shadowBefore = await stores.shadowCounts();
    const burst = await inBatches(200, 16, () => placeOrder(shop.gatewayUrl, { ...ORDER, user: 'load' }, token('shadow')));
    expect(burst.filter((sent) => sent.status !== 201).map((sent) => sent.body)).toEqual([]);
    const landings = await stores.landings(burst.map((sent) => sent.body.orderId));
    expect([...landings.values()].filter((landing) => JSON.stringify(landing) !== JSON.stringify(everywhere('shadow')))).toEqual([]);
    expect(await stores.shadowCounts()).toEqual({ orders: shadowBefore.orders + 200, notifications: shadowBefore.notifications + 200 });
    expect(await stores.productionCounts()).toEqual(before);
  });

  it('300 interleaved baseline, red and shadow orders: 0 misrouted hops, 0 shadow data in production, every notification in its tenant', async () => {
    const tenants: Tenant[] = Array.from({ length: 300 }, (_, i) => (['baseline', 'red', 'shadow'] as const)[i % 3] as Tenant);
    const offsetsBefore = await stores.offsets();
    const countsBefore = await stores.productionCounts();
    const sent = await inBatches(tenants.length, 12, (i) =>
      placeOrder(shop.gatewayUrl, { ...ORDER, user: `mixed-${i}` }, token(tenants[i] as Tenant)),
    );

    const problems: string[] = [];
    const orderIds: string[] = [];
    sent.forEach((reply: Sent<OrderReply>, i) => {
      const tenant = tenants[i] as Tenant;
      const name = `request #${i} (${tenant})`;
      if (reply.status !== 201) {
        problems.push(`${name}: HTTP ${reply.status} ${JSON.stringify(reply.body)}`);
        return;
      }
      orderIds.push(reply.body.orderId);
      const { route, hopTenants } = reply.body;
      const lanes = { gateway: 'baseline', orders: 'baseline', inventory: tenant === 'red' ? 'red' : 'baseline' };
      for (const hop of ['gateway', 'orders', 'inventory'] as const) {
        if (route[hop] !== lanes[hop]) problems.push(`${name}: hop ${hop} served by lane ${route[hop]}, expected ${lanes[hop]}`);
      }
      if (reply.body.tenant !== tenant) problems.push(`${name}: gateway decided ${reply.body.tenant}`);
      for (const hop of ['orders', 'inventory'] as const) {
        if (hopTenants[hop] !== tenant) problems.push(`${name}: hop ${hop} ran in tenant ${hopTenants[hop]}`);
      }
    });
    const landings = await stores.landings(orderIds);
    sent.forEach((reply, i) => {
      const landing = landings.get(reply.body.orderId);
      if (!landing) return;
      const expected = tenants[i] === 'shadow' ? 'shadow' : 'production';
      for (const [what, place] of Object.entries(landing)) {
        if (place !== expected) problems.push(`request #${i} (${tenants[i]}): ${what} found in ${place}, expected ${expected}`);
      }
    });
    expect(problems).toEqual([]);

    const offsetsAfter = await stores.offsets();
    const countsAfter = await stores.productionCounts();
    expect({ production: offsetsAfter.production - offsetsBefore.production, shadow: offsetsAfter.shadow - offsetsBefore.shadow }).toEqual({
      production: 200,
      shadow: 100,
    });
    expect(countsAfter.orders - countsBefore.orders).toBe(200);
    expect(countsAfter.notifications - countsBefore.notifications).toBe(200);
    expect(countsAfter.orderKeys - countsBefore.orderKeys).toBe(200);
    expect(countsBefore.stock - countsAfter.stock).toBe(200);
  }, 120_000);

  it('spans of every service carry dye.tenant, and one trace keeps one tenant across gateway, orders and inventory', async () => {
    const sent = await placeOrder(shop.gatewayUrl, ORDER, token('red'));
    expect(sent.status).toBe(201);
    const traceOf = () => {
      const gateway = otlp.spans.filter((span) => span.service === 'shop.gateway' && span.attributes['dye.tenant'] === 'red');
      const traceIds = new Set(gateway.map((span) => span.traceId));
      return otlp.spans.filter((span) => traceIds.has(span.traceId));
    };
    const deadline = Date.now() + 10_000;
    while (new Set(traceOf().map((span) => span.service)).size < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const spans = traceOf();
    expect(new Set(spans.map((span) => span.service))).toEqual(new Set(['shop.gateway', 'shop.orders', 'shop.inventory']));
    expect(spans.filter((span) => span.attributes['dye.tenant'] !== 'red').map((span) => `${span.service}: ${span.name}`)).toEqual([]);
    // No span anywhere names a tenant the gateway never decided.
    expect(otlp.spans.filter((span) => !['baseline', 'red', 'shadow'].includes(String(span.attributes['dye.tenant'])))).toEqual([]);
  });

  it("counts red calls that fell back to baseline orders in the gateway's dye.routing.fallbacks, exported over OTLP", async () => {
    const fallbacks = () =>
      otlp.points
        .filter(
          (point) =>
            point.service === 'shop.gateway' &&
            point.metric === 'dye.routing.fallbacks' &&
            point.attributes['dye.app'] === 'shop.orders' &&
            point.attributes['dye.via'] === 'grpc',
        )
        .map((point) => ({ tenant: point.attributes['dye.tenant'], value: point.value }));
    const latest = () =>
      fallbacks()
        .filter((point) => point.tenant === 'red')
        .at(-1)?.value ?? 0;
    const before = latest();
    const sent = await placeOrder(shop.gatewayUrl, ORDER, token('red'));
    expect(sent.status).toBe(201);
    const deadline = Date.now() + 10_000;
    while (latest() < before + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(latest()).toBeGreaterThanOrEqual(before + 1);
    // Shadow runs on baseline instances by design; baseline never falls back.
    expect(fallbacks().filter((point) => point.tenant !== 'red')).toEqual([]);
  });

  it('dye load in shadow against the gateway for a few seconds: report files parse, production row counts unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dye-shop-load-'));
    // The run id in what each order stores (MySQL row, Redis value, Kafka event), for --verify to look for.
    writeFileSync(join(dir, 'order.json'), JSON.stringify({ ...ORDER, user: '{{run}}' }));
    const before = await stores.productionCounts();
    const shadowBefore = await stores.shadowCounts();
    const run = spawnSync(
      process.execPath,
      [
        `${ROOT}packages/cli/dist/cli.js`,
        'load',
        `${shop.gatewayUrl}/orders`,
        '--tenant',
        'shadow',
        '--rate',
        '40',
        '--duration',
        '3s',
        '--connections',
        '4',
        '--method',
        'POST',
        '--body',
        `@${join(dir, 'order.json')}`,
        '--report',
        join(dir, 'load.html'),
        '--json',
        join(dir, 'load.json'),
        '--verify',
        '--mysql',
        env.MYSQL_URL as string,
        '--redis',
        redisUrl,
        '--kafka',
        env.KAFKA_BROKERS as string,
        '--topic',
        env.SHOP_ORDER_TOPIC as string,
        '--topic',
        `${env.SHOP_ORDER_TOPIC}_shadow`,
      ],
      { env: { ...process.env, DYE_SECRET: secret, NO_COLOR: '1' }, encoding: 'utf8' },
    );
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'load.json'), 'utf8'));
    expect(report.preflight).toMatchObject({ ok: true, served: 'shadow' });
    expect(report.summary.statusCodes).toEqual({ '201': report.summary.answered });
    expect(report.summary.servedTenants).toEqual({ shadow: report.summary.answered });
    expect(report.summary.answered).toBeGreaterThan(80);
    // dye verify: the run id is nowhere in production, and found in each shadow store (so the search could see it).
    expect(report.verify.leaks).toBe(0);
    expect(
      new Set(report.verify.findings.map((finding: { store: string; isolated: boolean }) => `${finding.store} ${finding.isolated}`)),
    ).toEqual(new Set(['mysql true', 'redis true', 'kafka true']));
    expect(readFileSync(join(dir, 'load.html'), 'utf8')).toContain('<div id="latency" class="chart"></div>');
    // Every order the load created is in shadow, with its notification; production did not move.
    const deadline = Date.now() + 30_000;
    for (
      let counts = await stores.shadowCounts();
      counts.notifications < counts.orders - shadowBefore.orders + shadowBefore.notifications && Date.now() < deadline;
      counts = await stores.shadowCounts()
    ) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // The preflight is one order too; every request sent was answered.
    const shadowAfter = await stores.shadowCounts();
    expect(report.summary.inFlightAtEnd).toBe(0);
    expect(shadowAfter.orders - shadowBefore.orders).toBe(report.summary.answered + 1);
    expect(shadowAfter.notifications - shadowBefore.notifications).toBe(shadowAfter.orders - shadowBefore.orders);
    expect(await stores.productionCounts()).toEqual(before);
  }, 60_000);
  it('--keep: the printed commands work as printed (baseline, red, spoof, shadow answers; the load verifies clean)', async () => {
    const printed = keepInstructions(shop.gatewayUrl, secret, config);
    const commands = printed
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#') && !line.includes('Ctrl-C'));
    const run = spawnSync('bash', ['-euo', 'pipefail', '-c', commands.join('\n')], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      encoding: 'utf8',
      timeout: 90_000,
    });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const answers = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { tenant: string });
    expect(answers.map((answer) => answer.tenant)).toEqual(['baseline', 'red', 'baseline', 'shadow']);
    expect(run.stdout).toMatch(/production is clean/);
  }, 120_000);

  it('--clean removes what the demo created: databases, the shadow account, topics, groups, keys, the Redis user, registry entries', async () => {
    stopped = true;
    await shop.stop();
    await stores.close();
    const report = await cleanShop(config);
    expect(report.databases.sort()).toEqual([database, `${database}_shadow`].sort());
    expect(report.mysqlAccount).toBe(`'${database}_shadow'@'%'`);
    expect(report.topics).toEqual(expect.arrayContaining([env.SHOP_ORDER_TOPIC, `${env.SHOP_ORDER_TOPIC}_shadow`]));
    expect(report.groupsLeft).toEqual([]);
    expect(report.keys).toBeGreaterThan(0);
    expect(report.redisUser).toBe(env.REDIS_SHADOW_USER);
    // Judged in the stores: nothing of the shop is left.
    const admin = await mysql.createConnection({ ...MYSQL });
    const [schemas] = (await admin.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?, ?)', [
      database,
      `${database}_shadow`,
    ])) as unknown as [unknown[]];
    const [users] = (await admin.query('SELECT User FROM mysql.user WHERE User = ?', [`${database}_shadow`])) as unknown as [unknown[]];
    await admin.end();
    expect(schemas).toEqual([]);
    expect(users).toEqual([]);
    const kafka = new Kafka({ clientId: 'e2e-clean-check', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await kafka.connect();
    const topics = (await kafka.listTopics()).filter((topic) => topic.startsWith(env.SHOP_ORDER_TOPIC as string));
    const groups = (await kafka.listGroups()).groups.filter((group) => group.groupId.startsWith('shop.notifier'));
    await kafka.disconnect();
    expect(topics).toEqual([]);
    expect(groups).toEqual([]);
    const redis = new Redis(redisUrl);
    const left = await redis.keys('*');
    const aclUsers = (await redis.call('ACL', 'USERS')) as string[];
    redis.disconnect();
    expect(
      left.filter((key) => /^(shadow:)?(order|notified|stock):/.test(key) || key.startsWith(env.DYE_REGISTRY_PREFIX as string)),
    ).toEqual([]);
    expect(aclUsers).not.toContain(env.REDIS_SHADOW_USER);
  }, 60_000);
});
