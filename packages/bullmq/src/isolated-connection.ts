import { FirstUseCheck, isolationRefusal, type Tenant, type TenantPolicy } from '@dye/core';
import { duplicateForCheck, type IsolatedRedisUser, unwrapTenantRedis, verifyIsolatedConnection } from '@dye/ioredis';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** What BullMQ accepts as `connection` and Dye can open an isolated twin of: an ioredis client, or its options. */
export type BullConnection = Redis | Cluster | RedisOptions;

export interface IsolationSettings {
  /** The Redis ACL user isolated tenants' queues run as (`grantShadowAccess` of `@dye/ioredis`). */
  isolated?: IsolatedRedisUser;
  /** Which tenants isolate Redis. Default: the default policy. */
  policy?: TenantPolicy;
}

function isClient(connection: BullConnection): connection is Redis | Cluster {
  return typeof (connection as Redis).duplicate === 'function' && typeof (connection as Redis).defineCommand === 'function';
}

/** The production connection BullMQ gets: a `tenantRedis` wrapper is unwrapped, BullMQ names its own keys. */
export function productionConnection(connection: BullConnection): BullConnection {
  return isClient(connection) ? unwrapTenantRedis(connection) : connection;
}

/**
 * An isolated tenant's way to Redis for BullMQ: a connection as the isolated
 * ACL user (Redis confines it to `shadow:*`, so every key BullMQ's scripts
 * build stays there), checked before its first use and again every minute.
 */
export class IsolatedConnection {
  readonly connection: Redis | Cluster;
  readonly check: FirstUseCheck;
  readonly #checker: Redis | Cluster;
  readonly #ownsChecker: boolean;

  constructor(base: BullConnection, user: IsolatedRedisUser, tenant: Tenant, policy: TenantPolicy) {
    const credentials = { username: user.username, password: user.password };
    if (isClient(base)) {
      const client = unwrapTenantRedis(base);
      this.connection = (client as Cluster).isCluster
        ? (client as Cluster).duplicate([], { redisOptions: { ...(client as Cluster).options.redisOptions, ...credentials } })
        : (client as Redis).duplicate({ ...credentials, maxRetriesPerRequest: null });
      this.#checker = user.checkWith ?? duplicateForCheck(client);
    } else {
      this.connection = new Redis({ ...base, ...credentials, maxRetriesPerRequest: null });
      this.#checker = user.checkWith ?? new Redis({ ...base, lazyConnect: true });
    }
    this.#ownsChecker = this.#checker !== user.checkWith;
    this.connection.on('error', () => {}); // BullMQ reports its connections' errors itself
    this.check = new FirstUseCheck(() =>
      verifyIsolatedConnection({ connection: this.connection, checker: this.#checker, user, tenant, policy }),
    );
  }

  close(): void {
    this.connection.disconnect();
    if (this.#ownsChecker) this.#checker.disconnect();
  }
}

/** The refusal when isolated tenants have no ACL user to run as. */
export function noIsolatedUser(tenant: Tenant, what: string): Error {
  return isolationRefusal('redis', {
    tenant: tenant.name,
    refused: what,
    reason:
      "isolated tenants' jobs go to shadow queues as a Redis ACL user of their own, and none is configured: create it with `dye shadow grant --redis <url> --user <name> --apply` and pass `isolated: { username, password }`",
  });
}
