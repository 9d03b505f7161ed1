/**
 * `npm run demo`: brings up Redis, MySQL and Kafka (the infra script), sets
 * the shop up, starts every service, sends baseline, red, spoofed and shadow
 * traffic through the gateway and prints where each request went and where its
 * data landed, measured in the stores. `--keep` leaves the shop running;
 * `--verbose` streams every service log line.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pc from 'picocolors';
import { cleanShop } from './clean.js';
import { readConfig, type ShopConfig } from './config.js';
import { burstReport, formatLine, keepInstructions, linePrefix, placementHolds, type StepResult, stepsTable } from './report.js';
import { inBatches, type OrderReply, placeOrder, type Sent, ShopStores, tenantHeaders } from './scenario.js';
import { setupShop } from './setup.js';
import { parseLine, type RunningShop, type ServiceSpec, SHOP_SERVICES, startShop } from './stack.js';

const USAGE = `npm run demo [-- --keep] [-- --verbose] [-- --burst N] [-- --clean]

  --keep      leave the shop running afterwards and print how to send colored requests with curl
  --clean     remove what the demo created (databases, shadow account, topics, groups, keys, Redis user, registry entries) and exit
  --verbose   stream every service's log lines (default: start-up, warnings and errors)
  --burst N   shadow orders in the load step (default 300)

Environment: MYSQL_URL (database shop), MYSQL_SHADOW_USER/MYSQL_SHADOW_PASSWORD (the shadow account; a fresh password by default), REDIS_URL, REDIS_SHADOW_USER/REDIS_SHADOW_PASSWORD (the Redis user isolated tenants run as; a fresh password by default), KAFKA_BROKERS, SHOP_ORDER_TOPIC,
PORT (the gateway's, default 8080), DYE_SECRET (default: a random one per run).`;

interface Infra {
  SERVICES: Record<string, { port: number }>;
  isPortOpen(port: number): Promise<boolean>;
  up(): Promise<unknown>;
  down(names?: string[]): Promise<unknown>;
}

const ROOT = new URL('../../../', import.meta.url);
const LOG_DIR = new URL('.cache/demo/', ROOT);
const BURST_CONCURRENCY = 16;
const ORDER = { sku: 'apple', qty: 1, user: 'demo' };

const say = (line: string) => console.log(`${pc.bold(pc.cyan('demo'))} ${line}`);

async function main(): Promise<number> {
  let flags: { keep: boolean; verbose: boolean; burst: string; help: boolean; clean: boolean };
  try {
    flags = parseArgs({
      options: {
        keep: { type: 'boolean', default: false },
        clean: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        burst: { type: 'string', default: '300' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values as typeof flags;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const burstSize = Number(flags.burst);
  if (!Number.isInteger(burstSize) || burstSize < 1) {
    console.error(`--burst must be a positive whole number, got ${flags.burst}`);
    return 2;
  }

  // 1. Infrastructure: what answers already is used; the rest is started here and stopped at the end.
  const infra = (await import(new URL('scripts/infra.mjs', ROOT).href)) as Infra;
  const startedHere: string[] = [];
  for (const [name, { port }] of Object.entries(infra.SERVICES)) if (!(await infra.isPortOpen(port))) startedHere.push(name);
  say(startedHere.length > 0 ? `starting ${startedHere.join(', ')} (the rest already answers)` : 'Redis, MySQL and Kafka already answer');
  await infra.up();

  if (flags.clean) {
    try {
      await cleanShop(readConfig(process.env), say);
      say('clean: nothing the demo created is left');
      return 0;
    } catch (error) {
      console.error(pc.red(`clean failed: ${(error as Error).message}`));
      return 1;
    } finally {
      if (startedHere.length > 0) say(`stopping ${startedHere.join(', ')}`);
      await infra.down(startedHere);
    }
  }

  const secret = process.env.DYE_SECRET ?? randomBytes(32).toString('base64url');
  const env: Record<string, string> = {
    MYSQL_URL: process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/shop',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    DYE_SECRET: secret,
    MYSQL_SHADOW_PASSWORD: process.env.MYSQL_SHADOW_PASSWORD ?? randomBytes(18).toString('base64url'),
    REDIS_SHADOW_PASSWORD: process.env.REDIS_SHADOW_PASSWORD ?? randomBytes(18).toString('base64url'),
    ...(process.env.REDIS_SHADOW_USER ? { REDIS_SHADOW_USER: process.env.REDIS_SHADOW_USER } : {}),
    // Spans go to an OTLP collector when one is configured; on a terminal they would drown the tables.
    OTEL_TRACES_EXPORTER: process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? 'otlp' : 'none',
  };
  const config = readConfig({ ...process.env, ...env });

  // 2. Data: the production database and topic, and their shadow copies.
  await setupShop(config, say);

  // 3. Services, each its own process, logs prefixed by service and lane.
  const logs = new Map<string, string[]>();
  let quiet = false;
  const onLine = (spec: ServiceSpec, line: string) => {
    const name = `${spec.service}-${spec.lane}`;
    logs.set(name, [...(logs.get(name) ?? []), line]);
    const entry = parseLine(line);
    const level = typeof entry?.level === 'number' ? entry.level : 30;
    if (!quiet || flags.verbose || level >= 40) console.log(`${linePrefix(spec)} ${formatLine(entry, line)}`);
  };
  say('starting gateway, orders, inventory (baseline and red) and notifier');
  let shop: RunningShop | undefined;
  let failed = true;
  try {
    const gatewayPort = process.env.PORT ?? '8080';
    const services = SHOP_SERVICES.map((spec) => (spec.service === 'gateway' ? { ...spec, env: { PORT: gatewayPort } } : spec));
    shop = await startShop({ env, onLine, services });
    quiet = true;
    say(`ready: gateway on ${shop.gatewayUrl}${flags.verbose ? '' : ' (info lines from now on: .cache/demo/*.log)'}\n`);
    failed = !(await scenario(shop, config, secret, burstSize));
    if (flags.keep) {
      console.log(keepInstructions(shop.gatewayUrl, secret, config));
      quiet = !flags.verbose;
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
  } catch (error) {
    console.error(pc.red(`demo failed: ${(error as Error).message}`));
  } finally {
    say('stopping the shop');
    await shop?.stop();
    mkdirSync(LOG_DIR, { recursive: true });
    for (const [name, lines] of logs) writeFileSync(new URL(`${name}.log`, LOG_DIR), `${lines.join('\n')}\n`);
    say(`service logs: ${fileURLToPath(LOG_DIR)}`);
    if (startedHere.length > 0) say(`stopping ${startedHere.join(', ')}`);
    await infra.down(startedHere);
  }
  return failed ? 1 : 0;
}

/** Steps 1–5; true when every measurement came out as Dye promises. */
async function scenario(shop: RunningShop, config: ShopConfig, secret: string, burstSize: number): Promise<boolean> {
  const stores = await ShopStores.open(config);
  try {
    const steps: StepResult[] = [];
    const step = async (request: string, headers: Record<string, string>, isolated: boolean) => {
      const before = await stores.offsets();
      const sent = await placeOrder(shop.gatewayUrl, ORDER, headers);
      if (sent.status !== 201) throw new Error(`${request}: HTTP ${sent.status} ${JSON.stringify(sent.body)}`);
      const landing = await stores.landing(sent.body.orderId);
      const after = await stores.offsets();
      const messages = { production: after.production - before.production, shadow: after.shadow - before.shadow };
      steps.push({ request, sent, landing, messages, isolated });
    };
    await step('1. baseline order', {}, false);
    await step('2. red order, signed token', tenantHeaders({ token: { tenant: 'red', secret } }), false);
    await step('3. x-tenant: red, no token (spoof)', tenantHeaders({ spoof: 'red' }), false);
    await step('4. shadow order, signed token', tenantHeaders({ token: { tenant: 'shadow', secret } }), true);
    console.log(stepsTable(steps, config));
    const routesOk =
      steps[1]?.sent.body.route.inventory === 'red' && steps.every((s, i) => i === 1 || s.sent.body.route.inventory === 'baseline');
    const decidedOk = steps.map((s) => s.sent.body.tenant).join() === 'baseline,red,baseline,shadow';

    say(`5. shadow burst: ${burstSize} orders, ${BURST_CONCURRENCY} in flight`);
    const before = await stores.productionCounts();
    const offsetsBefore = await stores.offsets();
    const shadowBefore = await stores.shadowCounts();
    const token = tenantHeaders({ token: { tenant: 'shadow', secret } });
    const startedAt = performance.now();
    const burst = await inBatches(burstSize, BURST_CONCURRENCY, () => placeOrder(shop.gatewayUrl, { ...ORDER, user: 'load' }, token));
    const seconds = (performance.now() - startedAt) / 1000;
    const created = burst.filter((sent) => sent.status === 201) as Sent<OrderReply>[];
    // The notifier works asynchronously: wait for its shadow writes, then count.
    const deadline = Date.now() + 60_000;
    let shadowAfter = await stores.shadowCounts();
    while (shadowAfter.notifications - shadowBefore.notifications < created.length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      shadowAfter = await stores.shadowCounts();
    }
    const after = await stores.productionCounts();
    const offsetsAfter = await stores.offsets();
    console.log(
      burstReport(
        {
          sent: burst.length,
          created: created.length,
          seconds,
          shadowMessages: offsetsAfter.shadow - offsetsBefore.shadow,
          shadowNotifications: shadowAfter.notifications - shadowBefore.notifications,
          before,
          after,
        },
        config,
      ),
    );
    console.log();
    const burstOk = created.length === burst.length && JSON.stringify(before) === JSON.stringify(after);
    return steps.every(placementHolds) && routesOk && decidedOk && burstOk;
  } finally {
    await stores.close();
  }
}

process.exitCode = await main();
// Open handles of clients (ioredis, kafkajs) must not keep the demo alive.
process.exit();
