import {
  currentTenant,
  type EnforcementMode,
  getDefaultPolicy,
  isolatedName,
  isolationRefusal,
  type Tenant,
  type TenantPolicy,
  warnGuardOnly,
} from '@dye/core';
import type { PoolConnection as CoreConnection } from 'mysql2';
import mysql, { type PoolOptions } from 'mysql2/promise';
import { connectionOptions, DatabaseList } from './database-list.js';
import { IsolatedPool, type QueryResult } from './isolated-pool.js';
import { bindConnection, type QueryArgument, type TenantCallbackConnection, type TenantPoolConnection } from './tenant-connection.js';

/** Isolated tenants one tenant pool serves (each has a pool of its own). */
export const MAX_ISOLATED_TENANTS = 16;
/** Connections an isolated tenant's pool opens at most, unless isolatedConfig says otherwise. */
export const ISOLATED_CONNECTION_LIMIT = 10;
/**
 * Prepared statements mysql2 keeps per isolated connection (its default is
 * 16,000): 16 tenants × 10 connections × 32 stay far below the server's
 * max_prepared_stmt_count (16,382 by default), which production shares.
 */
export const ISOLATED_PREPARED_STATEMENTS = 32;

export interface TenantPoolOptions {
  /** Which tenants isolate MySQL (isolated tenants always; colors with `isolate: ['mysql']`). Default: the default policy. */
  policy?: TenantPolicy;
  /**
   * Options of isolated tenants' pools, merged over `config`: the shadow
   * account's `user` and `password` (see grantShadowAccess), and `host`/`port`
   * when shadow data lives on another server.
   */
  isolatedConfig?: Partial<PoolOptions>;
  /**
   * `account` (default): isolated tenants connect as an account the server
   * confines to their databases, checked at first use. `guard-only`: Dye's SQL
   * guard alone, on whatever account isolatedConfig gives (logged at start-up).
   */
  enforcement?: EnforcementMode;
  /** How long the list of the server's databases (for the SQL guard) is reused, ms. Default 60 000. */
  databaseListTtl?: number;
  /**
   * How often the isolated account is checked again once it passed, ms (a grant
   * added later is noticed, and isolated traffic refused from then on).
   * Default 60 000.
   */
  accountRecheckInterval?: number;
  /**
   * How long the account check may take, ms. One that takes longer (isolated
   * work holding a lock its reads wait for) fails, closed. Default 30 000.
   */
  accountCheckTimeout?: number;
}

/**
 * A mysql2/promise-style pool whose isolated tenants use `<database>_<tenant>`.
 * It hands out nothing unguarded: no production pool, no raw connection. Code
 * that needs more of mysql2's API in baseline makes a mysql2 pool of its own.
 */
export interface TenantPool {
  query(sql: QueryArgument, values?: unknown): Promise<QueryResult>;
  execute(sql: QueryArgument, values?: unknown): Promise<QueryResult>;
  /** A connection of the caller's tenant, bound to it. */
  getConnection(): Promise<TenantPoolConnection>;
  /** mysql2's callback form (Kysely's MysqlDialect takes the pool this way). */
  getConnection(callback: (error: unknown, connection: TenantCallbackConnection) => void): void;
  /**
   * Runs the first-use check of `tenant` now (its account is confined, its
   * database exists), so a service can fail at start-up instead of on its first
   * isolated request. Throws IsolationError.
   */
  verifyIsolation(tenant?: string): Promise<void>;
  end(): Promise<void>;
  end(callback: (error: unknown) => void): void;
}

/**
 * A pool for `config.database` that runs baseline and color queries there as
 * usual, and isolated tenants' queries on a pool of their own on
 * `<db>_<tenant>`, as the shadow account: every statement's final text is
 * checked by the SQL guard, and the account is checked at first use to be
 * confined by the server to isolated databases.
 */
export function createTenantPool(config: PoolOptions, options: TenantPoolOptions = {}): TenantPool {
  if (!config.database) throw new TypeError('createTenantPool needs config.database: isolated tenants use <database>_<tenant>');
  const enforcement = options.enforcement ?? 'account';
  if (enforcement !== 'account' && enforcement !== 'guard-only') throw new TypeError(`unknown enforcement ${JSON.stringify(enforcement)}`);
  if (enforcement === 'guard-only') {
    warnGuardOnly('mysql', `database ${config.database}: dynamic SQL, and any form the guard does not know, could reach production`);
  }
  const production = config.database;
  const pool = mysql.createPool(config);
  const policy = () => options.policy ?? getDefaultPolicy();
  const databases = new DatabaseList(connectionOptions(config), options.databaseListTtl ?? 60_000);
  const isolatedPools = new Map<string, IsolatedPool>();

  function isolatedFor(tenant: Tenant): IsolatedPool | undefined {
    if (tenant.kind === 'baseline' || !policy().isolates(tenant, 'mysql')) return undefined;
    let isolated = isolatedPools.get(tenant.name);
    if (!isolated) {
      // Each isolated tenant has a pool of its own: a flood of made-up `shadow-*` names must not make thousands.
      if (isolatedPools.size >= MAX_ISOLATED_TENANTS) {
        throw isolationRefusal('mysql', {
          tenant: tenant.name,
          refused: 'another isolated tenant',
          reason: `one tenant pool serves at most ${MAX_ISOLATED_TENANTS} isolated tenants`,
        });
      }
      isolated = new IsolatedPool({
        tenant,
        database: isolatedName('mysql-database', production, tenant),
        production,
        // Server-side prepared statements and connections count against limits every
        // account shares (max_prepared_stmt_count, max_connections): shadow keeps few of
        // each, whatever production's pool size, so it cannot exhaust production's.
        config: {
          ...config,
          connectionLimit: Math.min(config.connectionLimit ?? ISOLATED_CONNECTION_LIMIT, ISOLATED_CONNECTION_LIMIT),
          maxPreparedStatements: ISOLATED_PREPARED_STATEMENTS,
          ...options.isolatedConfig,
        },
        enforcement,
        databases,
        recheckEveryMs: options.accountRecheckInterval ?? 60_000,
        checkTimeoutMs: options.accountCheckTimeout ?? 30_000,
      });
      isolatedPools.set(tenant.name, isolated);
    }
    return isolated;
  }

  function run(method: 'query' | 'execute', query: QueryArgument, values: unknown): Promise<QueryResult> {
    let isolated: IsolatedPool | undefined;
    try {
      isolated = isolatedFor(currentTenant());
    } catch (error) {
      return Promise.reject(error);
    }
    // Baseline and shared-data tenants: one context lookup, then mysql2's own promise.
    if (!isolated) return (pool[method] as (q: QueryArgument, v?: unknown) => Promise<QueryResult>)(query, values);
    return isolated.run(method, query, values);
  }

  async function connect(): Promise<TenantPoolConnection> {
    // The caller's tenant, read before any await: a queued request may be
    // resumed by whichever query releases a connection.
    const tenant = currentTenant();
    const isolated = isolatedFor(tenant);
    if (isolated) {
      const ready = await isolated.acquire();
      return bindConnection(ready.core, tenant, { pool: isolated, ready });
    }
    const core = await new Promise<CoreConnection>((resolve, reject) =>
      pool.pool.getConnection((error, connection) => (error ? reject(error) : resolve(connection))),
    );
    return bindConnection(core, tenant);
  }

  const endAll = async () => {
    await Promise.all([pool.end(), ...[...isolatedPools.values()].map((isolated) => isolated.end())]);
  };

  return {
    query: (sql, values) => run('query', sql, values),
    execute: (sql, values) => run('execute', sql, values),
    getConnection: ((callback?: (error: unknown, connection?: TenantCallbackConnection) => void) => {
      const connecting = connect();
      if (!callback) return connecting;
      connecting.then(
        (connection) => callback(null, connection.connection),
        (error: unknown) => callback(error),
      );
      return undefined;
    }) as TenantPool['getConnection'],
    async verifyIsolation(tenant = 'shadow') {
      const resolved = policy().tenant(tenant);
      const isolated = isolatedFor(resolved);
      if (!isolated) throw new TypeError(`tenant ${resolved.name} does not isolate MySQL under this policy`);
      await isolated.verify();
    },
    end: ((callback?: (error: unknown) => void) => {
      const tenant = currentTenant();
      // Ending the pool ends production's connections too: not something a shadow request may do.
      const ending = isolatedFor(tenant)
        ? Promise.reject(
            isolationRefusal('mysql', {
              tenant: tenant.name,
              refused: 'end()',
              reason: "ending the tenant pool would close production's connections",
            }),
          )
        : endAll();
      if (!callback) return ending;
      ending.then(
        () => callback(null),
        (error: unknown) => callback(error),
      );
      return undefined;
    }) as TenantPool['end'],
  };
}
