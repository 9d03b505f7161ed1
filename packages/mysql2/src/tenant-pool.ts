import {
  currentTenant,
  getDefaultPolicy,
  type IsolationError,
  isolatedName,
  isolationRefusal,
  logWarning,
  type Tenant,
  type TenantPolicy,
} from '@dye/core';
import mysql, { type Pool, type PoolConnection, type PoolOptions } from 'mysql2/promise';
import { checkIsolatedSql, type GuardVerdict } from './sql-guard.js';

export interface TenantPoolOptions {
  /** Which tenants isolate MySQL (isolated tenants always; colors with `isolate: ['mysql']`). Default: the default policy. */
  policy?: TenantPolicy;
  /** Options that differ for isolated pools (another server for shadow data); merged over the base config. */
  isolatedConfig?: Partial<PoolOptions>;
  /** How long the list of the server's databases (for the SQL guard) is reused, ms. Default 60 000. */
  databaseListTtl?: number;
}

type QueryArgument = string | { sql: string; values?: unknown; [option: string]: unknown };
type Result = Awaited<ReturnType<Pool['query']>>;

/** The methods of a mysql2/promise pool connection Dye binds to a tenant. */
export interface TenantPoolConnection {
  /** The tenant this connection belongs to. */
  readonly tenant: Tenant;
  query(sql: QueryArgument, values?: unknown): Promise<Result>;
  execute(sql: QueryArgument, values?: unknown): Promise<Result>;
  beginTransaction(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  release(): void;
}

/** A mysql2/promise-style pool whose isolated tenants use `<database>_<tenant>`. */
export interface TenantPool {
  query(sql: QueryArgument, values?: unknown): Promise<Result>;
  execute(sql: QueryArgument, values?: unknown): Promise<Result>;
  getConnection(): Promise<TenantPoolConnection>;
  /** The production pool, for code that needs mysql2's full API in baseline. */
  readonly baselinePool: Pool;
  end(): Promise<void>;
}

interface IsolatedPool {
  readonly tenant: Tenant;
  readonly database: string;
  readonly pool: Pool;
}

const GUARD_CACHE_LIMIT = 1000;
// mysql2 error codes meaning "the isolated database cannot be used at all".
const MISSING_DATABASE = new Set(['ER_BAD_DB_ERROR']);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'PROTOCOL_CONNECTION_LOST', 'ECONNRESET']);

/**
 * A pool for `config.database` that runs baseline and color queries there as
 * usual, and isolated tenants' queries on a separate pool on `<db>_shadow`
 * (created lazily with the same options). An isolated query is refused with
 * IsolationError, and nothing is sent to production, when the shadow database
 * does not exist, the SQL names a production schema or switches database, or
 * the shadow server cannot be reached.
 */
export function createTenantPool(config: PoolOptions, options: TenantPoolOptions = {}): TenantPool {
  if (!config.database) throw new TypeError('createTenantPool needs config.database: isolated tenants use <database>_<tenant>');
  const production = config.database;
  const baselinePool = mysql.createPool(config);
  const policy = () => options.policy ?? getDefaultPolicy();
  const isolatedPools = new Map<string, IsolatedPool>();
  const verdicts = new Map<string, GuardVerdict>();
  let databases: { names: string[]; at: number } | undefined;
  const databaseListTtl = options.databaseListTtl ?? 60_000;

  function isolatedFor(tenant: Tenant): IsolatedPool | undefined {
    if (tenant.kind === 'baseline' || !policy().isolates(tenant, 'mysql')) return undefined;
    let isolated = isolatedPools.get(tenant.name);
    if (!isolated) {
      const database = isolatedName('mysql-database', production, tenant);
      // Never created implicitly: a missing database is a refusal, not a CREATE.
      const pool = mysql.createPool({ ...config, ...options.isolatedConfig, database });
      isolated = { tenant, database, pool };
      isolatedPools.set(tenant.name, isolated);
    }
    return isolated;
  }

  function refusal(tenant: Tenant, refused: string, reason: string, cause?: unknown): IsolationError {
    return isolationRefusal('mysql', { tenant: tenant.name, refused, reason }, cause === undefined ? undefined : { cause });
  }

  /** Maps failures of the isolated pool to IsolationError where they mean "cannot isolate". */
  function translate(isolated: IsolatedPool, error: unknown): unknown {
    const code = (error as { code?: string })?.code ?? '';
    if (MISSING_DATABASE.has(code)) {
      return refusal(
        isolated.tenant,
        'a query',
        `the isolated database \`${isolated.database}\` does not exist (create it with syncShadowSchema)`,
        error,
      );
    }
    if (UNREACHABLE.has(code)) {
      return refusal(isolated.tenant, 'a query', `the server of \`${isolated.database}\` cannot be reached (${code})`, error);
    }
    return error;
  }

  async function otherDatabases(isolated: IsolatedPool): Promise<string[]> {
    if (databases && Date.now() - databases.at < databaseListTtl) return databases.names;
    try {
      const [rows] = await isolated.pool.query('SHOW DATABASES');
      databases = { names: (rows as Array<Record<string, string>>).map((row) => String(Object.values(row)[0])), at: Date.now() };
    } catch (error) {
      throw translate(isolated, error);
    }
    return databases.names;
  }

  async function guard(isolated: IsolatedPool, query: QueryArgument): Promise<void> {
    const sql = typeof query === 'string' ? query : query?.sql;
    if (typeof sql !== 'string') throw refusal(isolated.tenant, 'a query', 'the SQL text could not be read');
    let verdict = verdicts.get(sql);
    if (!verdict) {
      verdict = checkIsolatedSql(sql, {
        productionDatabase: production,
        isolatedDatabase: isolated.database,
        otherDatabases: await otherDatabases(isolated),
      });
      if (verdicts.size >= GUARD_CACHE_LIMIT) verdicts.delete(verdicts.keys().next().value as string);
      verdicts.set(sql, verdict);
    }
    if (!verdict.ok)
      throw refusal(isolated.tenant, `SQL ${JSON.stringify(sql.length > 80 ? `${sql.slice(0, 80)}…` : sql)}`, verdict.reason);
  }

  function run(method: 'query' | 'execute', query: QueryArgument, values: unknown[] | undefined): Promise<Result> {
    const isolated = isolatedFor(currentTenant());
    // Baseline and shared-data tenants: one context lookup, then mysql2's own
    // promise, not wrapped in another.
    if (!isolated) return (baselinePool[method] as (q: QueryArgument, v?: unknown) => Promise<Result>)(query, values);
    return runIsolated(isolated, method, query, values);
  }

  async function runIsolated(
    isolated: IsolatedPool,
    method: 'query' | 'execute',
    query: QueryArgument,
    values: unknown[] | undefined,
  ): Promise<Result> {
    await guard(isolated, query);
    try {
      return await (isolated.pool[method] as (q: QueryArgument, v?: unknown) => Promise<Result>)(query, values);
    } catch (error) {
      throw translate(isolated, error);
    }
  }

  return {
    baselinePool,
    query: (sql, values) => run('query', sql, values as unknown[] | undefined),
    execute: (sql, values) => run('execute', sql, values as unknown[] | undefined),
    async getConnection() {
      // The tenant of the caller, read before any await: a queued request may be
      // resumed by whichever query releases a connection.
      const tenant = currentTenant();
      const isolated = isolatedFor(tenant);
      let connection: PoolConnection;
      try {
        connection = await (isolated?.pool ?? baselinePool).getConnection();
      } catch (error) {
        throw isolated ? translate(isolated, error) : error;
      }
      return bindConnection(connection, tenant, isolated, guard, translate);
    },
    async end() {
      await Promise.all([baselinePool.end(), ...[...isolatedPools.values()].map((isolated) => isolated.pool.end())]);
    },
  };
}

function bindConnection(
  connection: PoolConnection,
  tenant: Tenant,
  isolated: IsolatedPool | undefined,
  guard: (isolated: IsolatedPool, query: QueryArgument) => Promise<void>,
  translate: (isolated: IsolatedPool, error: unknown) => unknown,
): TenantPoolConnection {
  /** A connection serves only the tenant that took it: anything else would write another tenant's data. */
  function checkTenant(what: string): void {
    const now = currentTenant();
    if (now.name === tenant.name) return;
    logWarning('dye.mysql.connection-tenant', `a ${tenant.name} connection was used from ${now.name}`);
    throw isolationRefusal('mysql', {
      tenant: isolated ? tenant.name : now.name,
      refused: `${what} on a connection of tenant "${tenant.name}" from tenant "${now.name}"`,
      reason: 'connections and transactions are bound to the tenant that took them',
    });
  }
  const send = async (method: 'query' | 'execute', sql: QueryArgument, values: unknown) => {
    checkTenant(method);
    if (isolated) await guard(isolated, sql);
    try {
      return await (connection[method] as (q: QueryArgument, v?: unknown) => Promise<Result>)(sql, values);
    } catch (error) {
      throw isolated ? translate(isolated, error) : error;
    }
  };
  const control = async (what: 'beginTransaction' | 'commit' | 'rollback') => {
    checkTenant(what);
    await connection[what]();
  };
  return {
    tenant,
    query: (sql, values) => send('query', sql, values),
    execute: (sql, values) => send('execute', sql, values),
    beginTransaction: () => control('beginTransaction'),
    commit: () => control('commit'),
    rollback: () => control('rollback'),
    release: () => connection.release(),
  };
}
