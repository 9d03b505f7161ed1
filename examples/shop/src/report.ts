/** How `npm run demo` shows what happened: service log lines and the result tables. */
import Table from 'cli-table3';
import pc from 'picocolors';
import type { ShopConfig } from './config.js';
import type { Landing, Offsets, OrderReply, Place, ProductionCounts, Sent } from './scenario.js';
import type { ServiceSpec } from './stack.js';

/** One scenario request and what was measured about it. */
export interface StepResult {
  request: string;
  sent: Sent<OrderReply>;
  landing: Landing;
  /** Messages the request added to the production topic and to its shadow. */
  messages: Offsets;
  /** Whether the request's tenant is isolated (its data must stay out of production). */
  isolated: boolean;
}

export interface BurstResult {
  sent: number;
  created: number;
  seconds: number;
  shadowMessages: number;
  shadowNotifications: number;
  before: ProductionCounts;
  after: ProductionCounts;
}

// cli-table3 colours headers red and borders grey on its own, also without a
// terminal; colour is picocolors' job (it honours NO_COLOR and pipes).
const TABLE_STYLE = { head: [], border: [] };

const SERVICE_COLORS: Record<string, (text: string) => string> = {
  gateway: pc.magenta,
  orders: pc.blue,
  inventory: pc.green,
  notifier: pc.yellow,
};

export function linePrefix(spec: ServiceSpec): string {
  const color = SERVICE_COLORS[spec.service] ?? pc.white;
  return color(`[${`${spec.service}/${spec.lane}`.padEnd(18)}]`);
}

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: pc.yellow('warn'),
  50: pc.red('error'),
  60: pc.red('fatal'),
};

/** A pino line as `info tenant=red reserved sku=apple …`; anything else as printed. */
export function formatLine(entry: Record<string, unknown> | undefined, raw: string): string {
  if (!entry) return raw;
  const { level, time: _time, service: _service, lane: _lane, pid: _pid, hostname: _hostname, msg, tenant, ...fields } = entry;
  const extra = Object.entries(fields)
    .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join(' ');
  return `${LEVELS[level as number] ?? String(level)} ${pc.dim(`tenant=${String(tenant)}`)} ${String(msg)}${extra ? pc.dim(` ${extra}`) : ''}`;
}

/**
 * Isolated requests: every piece of data in shadow, one message on the shadow
 * topic, none on production. Production tenants: everything in production.
 */
export function placementHolds(step: StepResult): boolean {
  const expected: Place = step.isolated ? 'shadow' : 'production';
  const { order, orderKey, notification, notifiedKey } = step.landing;
  const placesOk = [order, orderKey, notification, notifiedKey].every((place) => place === expected);
  const messagesOk = step.isolated
    ? step.messages.production === 0 && step.messages.shadow === 1
    : step.messages.production === 1 && step.messages.shadow === 0;
  return placesOk && messagesOk;
}

/** Whether production holds none of an isolated request's data (measured). */
export function productionUntouched(step: StepResult): boolean {
  const { order, orderKey, notification, notifiedKey } = step.landing;
  const inProduction = (place: Place) => place === 'production' || place === 'both';
  return ![order, orderKey, notification, notifiedKey].some(inProduction) && step.messages.production === 0;
}

export function stepsTable(steps: readonly StepResult[], config: ShopConfig): string {
  const database = config.mysql.database;
  const table = new Table({
    style: TABLE_STYLE,
    head: [
      'request',
      'tenant',
      'gateway → orders → inventory',
      'order row',
      'cache key',
      'message on',
      'notification',
      'production untouched',
    ].map((title) => pc.bold(title)),
  });
  const db = (place: Place) => (place === 'production' ? database : place === 'shadow' ? `${database}_shadow` : pc.red(place));
  const key = (place: Place) => (place === 'production' ? 'order:<id>' : place === 'shadow' ? 'shadow:order:<id>' : pc.red(place));
  for (const step of steps) {
    const { route } = step.sent.body;
    const topics = [
      ...(step.messages.production > 0 ? [config.orderTopic] : []),
      ...(step.messages.shadow > 0 ? [`${config.orderTopic}_shadow`] : []),
    ];
    const untouched = step.isolated ? (productionUntouched(step) ? pc.green('yes') : pc.red('NO')) : pc.dim('n/a (production tenant)');
    table.push([
      step.request,
      step.sent.body.tenant,
      `${route.gateway} → ${route.orders} → ${route.inventory === 'baseline' ? route.inventory : pc.red(route.inventory)}`,
      db(step.landing.order),
      key(step.landing.orderKey),
      topics.length > 0 ? topics.join(', ') : pc.red('none'),
      db(step.landing.notification),
      placementHolds(step) ? untouched : `${untouched} ${pc.red('(unexpected placement)')}`,
    ]);
  }
  return table.toString();
}

export function burstReport(burst: BurstResult, config: ShopConfig): string {
  const database = config.mysql.database;
  const labels: Record<keyof ProductionCounts, string> = {
    orders: `${database}.orders rows`,
    notifications: `${database}.notifications rows`,
    stock: `${database}.stock total quantity`,
    orderKeys: 'Redis order:* keys',
    messages: `${config.orderTopic} messages`,
  };
  const table = new Table({
    style: TABLE_STYLE,
    head: ['production', 'before', 'after', 'changed'].map((title) => pc.bold(title)),
  });
  for (const [name, label] of Object.entries(labels) as [keyof ProductionCounts, string][]) {
    const changed = burst.before[name] !== burst.after[name];
    table.push([label, String(burst.before[name]), String(burst.after[name]), changed ? pc.red('yes') : pc.green('no')]);
  }
  const untouched = JSON.stringify(burst.before) === JSON.stringify(burst.after);
  return [
    `   ${burst.created}/${burst.sent} orders created in ${burst.seconds.toFixed(1)} s (${(burst.sent / burst.seconds).toFixed(0)} req/s); ` +
      `${burst.shadowMessages} messages on ${config.orderTopic}_shadow; ${burst.shadowNotifications} notifications in ${database}_shadow`,
    table.toString(),
    `   production untouched: ${untouched ? pc.green('yes (measured)') : pc.red('NO')}`,
  ].join('\n');
}

/**
 * What `--keep` prints: commands that work as printed against the running
 * shop (each answer's `tenant` says where it was served). Every command line
 * is shell; the e2e test runs them.
 */
export function keepInstructions(gatewayUrl: string, secret: string, config: ShopConfig): string {
  const order = (user: string) => `-H 'content-type: application/json' -d '{"sku":"apple","qty":1,"user":"${user}"}'`;
  const { host, port, user, password, database } = config.mysql;
  const mysqlUrl = `mysql://${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}@${host}:${port}/${database}`;
  const shadowTopic = `${config.orderTopic}_shadow`;
  return `
${pc.bold('The shop keeps running.')} Ctrl-C stops it. Each answer's "tenant" says where the order was served.

  # a baseline order
  curl -s -XPOST ${gatewayUrl}/orders ${order('me')}; echo

  # a red order: sign a token with this run's secret (from outside, a token is the only way in)
  export DYE_SECRET='${secret}'
  RED=$(npx dye token sign --tenant red --ttl 1h) && curl -s -XPOST ${gatewayUrl}/orders -H "x-tenant-token: $RED" ${order('me')}; echo

  # a bare x-tenant header from outside is stripped: this order is baseline
  curl -s -XPOST ${gatewayUrl}/orders -H 'x-tenant: red' ${order('me')}; echo

  # a shadow order: it lands in ${database}_shadow, shadow: keys and ${shadowTopic}, never in production
  SHADOW=$(npx dye token sign --tenant shadow --ttl 1h) && curl -s -XPOST ${gatewayUrl}/orders -H "x-tenant-token: $SHADOW" ${order('me')}; echo

  # a shadow load test, then proof that production holds none of it
  npx dye load ${gatewayUrl}/orders --method POST --body '{"sku":"apple","qty":1,"user":"{{run}}"}' --rate 50 --duration 5s --verify --mysql '${mysqlUrl}' --redis '${config.redisUrl}' --kafka ${config.kafkaBrokers.join(',')} --topic ${config.orderTopic} --topic ${shadowTopic}
`;
}
