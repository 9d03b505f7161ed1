import { BASELINE_NAME, checkTenantName } from '@dye/core';

/**
 * The shop's configuration, from the environment only (twelve-factor), read
 * once per process. Every service reads the same names; each uses what it needs.
 */
export interface ShopConfig {
  /** The lane this instance serves (`DYE_TENANT`, default baseline). */
  readonly lane: string;
  /** `MYSQL_URL`, database included: `mysql://root@127.0.0.1:3306/shop`. */
  readonly mysql: MysqlConfig;
  /**
   * The account isolated tenants use MySQL as, confined by the server to
   * `<db>_shadow` (setup creates it): `MYSQL_SHADOW_USER` (default
   * `<db>_shadow`) and `MYSQL_SHADOW_PASSWORD`.
   */
  readonly mysqlShadow: { readonly user: string; readonly password: string | undefined };
  /**
   * The Redis ACL user isolated tenants run as, confined by Redis to
   * `shadow:*` keys and channels (setup creates it): `REDIS_SHADOW_USER`
   * (default `shop_shadow`) and `REDIS_SHADOW_PASSWORD`.
   */
  readonly redisShadow: { readonly user: string; readonly password: string | undefined };
  /** `REDIS_URL`: data, and the service registry. */
  readonly redisUrl: string;
  /** `KAFKA_BROKERS`, comma-separated. */
  readonly kafkaBrokers: string[];
  /** `SHOP_ORDER_TOPIC`: where orders are announced. Default `order-created`. */
  readonly orderTopic: string;
  /** `DYE_REGISTRY_PREFIX`: the registry's key prefix. Default `dye:registry`. */
  readonly registryPrefix: string;
  /** `PORT`: 8080 for the gateway; gRPC services default to any free port (they register the one they got). */
  readonly port: number | undefined;
  /** `HOST` to listen on. Default 127.0.0.1. */
  readonly host: string;
}

export interface MysqlConfig {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): ShopConfig {
  const lane = env.DYE_TENANT?.trim() || BASELINE_NAME;
  const checked = checkTenantName(lane);
  if (!checked.ok) throw new Error(`DYE_TENANT: ${checked.reason}`);
  const mysql = parseMysqlUrl(env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/shop');
  return {
    lane: checked.name,
    mysql,
    mysqlShadow: { user: env.MYSQL_SHADOW_USER || `${mysql.database}_shadow`, password: env.MYSQL_SHADOW_PASSWORD || undefined },
    redisShadow: { user: env.REDIS_SHADOW_USER || 'shop_shadow', password: env.REDIS_SHADOW_PASSWORD || undefined },
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    kafkaBrokers: (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((broker) => broker.trim()),
    orderTopic: env.SHOP_ORDER_TOPIC ?? 'order-created',
    registryPrefix: env.DYE_REGISTRY_PREFIX ?? 'dye:registry',
    port: env.PORT === undefined || env.PORT === '' ? undefined : parsePort(env.PORT),
    host: env.HOST ?? '127.0.0.1',
  };
}

export function parseMysqlUrl(url: string): MysqlConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`MYSQL_URL is not a URL: ${url}`);
  }
  if (parsed.protocol !== 'mysql:') throw new Error(`MYSQL_URL must start with mysql://, got ${parsed.protocol}`);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database) throw new Error('MYSQL_URL must name the database, as in mysql://root@127.0.0.1:3306/shop');
  return {
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username || 'root'),
    password: decodeURIComponent(parsed.password),
    database,
  };
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be 0..65535, got ${value}`);
  return port;
}
