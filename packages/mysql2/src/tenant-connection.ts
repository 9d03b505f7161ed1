import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { currentTenant, isolationRefusal, logWarning, type Tenant } from '@dye/core';
import type { PoolConnection as CoreConnection } from 'mysql2';
import { type IsolatedPool, type QueryResult, type ReadyConnection, send } from './isolated-pool.js';

export type QueryArgument = string | { sql: string; values?: unknown; [option: string]: unknown };
type Callback = (error: unknown, rows?: unknown, fields?: unknown) => void;

/** The methods of a mysql2/promise pool connection Dye binds to a tenant. */
export interface TenantPoolConnection {
  /** The tenant this connection belongs to. */
  readonly tenant: Tenant;
  query(sql: QueryArgument, values?: unknown): Promise<QueryResult>;
  execute(sql: QueryArgument, values?: unknown): Promise<QueryResult>;
  beginTransaction(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  release(): void;
  /** The same connection with mysql2's callback API (Drizzle streams rows through it). */
  readonly connection: TenantCallbackConnection;
}

/**
 * What a callback-style query returns: its rows as a stream, and its events
 * (`result`, `fields`, `error`, `end`). Never mysql2's own Query, which holds
 * the raw connection (`_connection`) that would run anything, unguarded.
 */
export interface TenantQuery {
  stream(options?: { objectMode?: boolean; highWaterMark?: number }): Readable;
  on(event: string, listener: (...args: unknown[]) => void): TenantQuery;
  once(event: string, listener: (...args: unknown[]) => void): TenantQuery;
}

interface Mysql2Query {
  stream(options?: { objectMode?: boolean; highWaterMark?: number }): Readable;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** A TenantQuery over mysql2's Query: listeners are called on the handle, so `this` is never the Query. */
function queryHandle(query: Mysql2Query): TenantQuery {
  const handle: TenantQuery = {
    stream: (options) => query.stream(options),
    on(event, listener) {
      query.on(event, (...args) => listener.apply(handle, args));
      return handle;
    },
    once(event, listener) {
      query.once(event, (...args) => listener.apply(handle, args));
      return handle;
    },
  };
  return handle;
}

/** A connection with mysql2's callback API, as Kysely's MysqlDialect and Drizzle's iterator use it. */
export interface TenantCallbackConnection {
  readonly tenant: Tenant;
  query(sql: QueryArgument, values?: unknown, callback?: Callback): TenantQuery;
  query(sql: QueryArgument, callback: Callback): TenantQuery;
  execute(sql: QueryArgument, values?: unknown, callback?: Callback): TenantQuery;
  execute(sql: QueryArgument, callback: Callback): TenantQuery;
  release(): void;
  /** Releases the connection to the pool (Drizzle calls end() on pool connections). */
  end(): void;
}

/** What sits between a bound connection and mysql2: nothing for baseline, the guard for isolated tenants. */
interface Channel {
  readonly tenant: Tenant;
  /** Waits until the isolated account's check is fresh (baseline: nothing to wait for). */
  fresh?(): Promise<void>;
  /** The same without waiting, for the callback API. */
  assertFresh?(): void;
  /** The arguments for mysql2, checked; throws IsolationError. */
  prepare(method: 'query' | 'execute', query: unknown, values: unknown): { query: unknown; values: unknown };
  translate(error: unknown): Promise<unknown>;
}

function baselineChannel(tenant: Tenant): Channel {
  return { tenant, prepare: (_method, query, values) => ({ query, values }), translate: async (error) => error };
}

function isolatedChannel(isolated: IsolatedPool, ready: ReadyConnection): Channel {
  return {
    tenant: isolated.tenant,
    fresh: () => isolated.fresh(),
    assertFresh: () => isolated.assertFresh(),
    prepare: (method, query, values) => ({ query: isolated.prepare(ready, method, query, values).options, values: undefined }),
    translate: (error) => isolated.translate(error),
  };
}

/** A shadow connection (the guard on it) or a baseline/color one (passed through), bound to its tenant. */
export function bindConnection(
  core: CoreConnection,
  tenant: Tenant,
  isolated?: { pool: IsolatedPool; ready: ReadyConnection },
): TenantPoolConnection {
  const channel = isolated ? isolatedChannel(isolated.pool, isolated.ready) : baselineChannel(tenant);
  const isolatedTenant = isolated !== undefined;

  let released = false;
  /** A connection serves only the tenant that took it: anything else would write another tenant's data. */
  const checkTenant = (what: string) => {
    // After release it may already serve another request: a statement now would run inside that request's transaction.
    if (released) throw new Error(`${what} on a connection already released to the pool`);
    const now = currentTenant();
    if (now.name === tenant.name) return;
    logWarning('dye.mysql.connection-tenant', `a ${tenant.name} connection was used from ${now.name}`);
    throw isolationRefusal('mysql', {
      tenant: isolatedTenant ? tenant.name : now.name,
      refused: `${what} on a connection of tenant "${tenant.name}" from tenant "${now.name}"`,
      reason: 'connections and transactions are bound to the tenant that took them',
    });
  };

  // Statements sent and not yet finished: a connection released with one still running is closed, not reused.
  let inFlight = 0;
  const sendChecked = async (method: 'query' | 'execute', query: unknown, values: unknown): Promise<QueryResult> => {
    checkTenant(method);
    // Baseline has no check to wait for: no await, so its path stays a pass-through.
    if (channel.fresh) {
      await channel.fresh();
      checkTenant(method);
    }
    const prepared = channel.prepare(method, query, values);
    inFlight++;
    try {
      return await send(core, method, prepared.query, prepared.values);
    } catch (error) {
      throw await channel.translate(error);
    } finally {
      inFlight--;
    }
  };
  const control = (what: 'beginTransaction' | 'commit' | 'rollback') => async () => {
    checkTenant(what);
    if (channel.fresh) await channel.fresh();
    if (what === 'beginTransaction') isolated?.pool.holdsSession(core);
    await new Promise<void>((resolve, reject) => core[what]((error: unknown) => (error ? reject(error) : resolve())));
  };

  const streaming = (method: 'query' | 'execute') =>
    function (query: QueryArgument, values?: unknown, callback?: Callback): TenantQuery {
      let given = values;
      let done = callback;
      if (typeof given === 'function') {
        done = given as Callback;
        given = undefined;
      }
      let prepared: { query: unknown; values: unknown };
      try {
        checkTenant(method);
        channel.assertFresh?.();
        prepared = channel.prepare(method, query, given);
      } catch (error) {
        return refusedQuery(error, done);
      }
      const translated: Callback | undefined =
        done &&
        ((error, rows, fields) => {
          if (!error) return done(null, rows, fields);
          void channel.translate(error).then((mapped) => done(mapped));
        });
      const call = core[method] as (...args: unknown[]) => Mysql2Query;
      const args: unknown[] = prepared.values === undefined ? [prepared.query] : [prepared.query, prepared.values];
      if (translated) args.push(translated);
      inFlight++;
      const running = call.apply(core, args);
      running.once('end', () => inFlight--);
      return queryHandle(running);
    };

  let callbackView: TenantCallbackConnection | undefined;
  // Released from whatever context, a connection goes back to its own tenant's pool.
  const release = () => {
    if (released) return;
    released = true;
    if (isolated) isolated.pool.release(core, inFlight);
    else core.release();
  };
  return {
    tenant,
    query: (sql, values) => sendChecked('query', sql, values),
    execute: (sql, values) => sendChecked('execute', sql, values),
    beginTransaction: control('beginTransaction'),
    commit: control('commit'),
    rollback: control('rollback'),
    release,
    get connection() {
      callbackView ??= {
        tenant,
        query: streaming('query'),
        execute: streaming('execute'),
        release,
        end: release,
      } as TenantCallbackConnection;
      return callbackView;
    },
  };
}

/** A query Dye refused: the callback gets the IsolationError, and so does a stream. Nothing was sent. */
function refusedQuery(error: unknown, callback?: Callback): TenantQuery {
  const emitter = new EventEmitter();
  const handle = queryHandle({
    stream: () =>
      new Readable({
        objectMode: true,
        read() {
          this.destroy(error as Error);
        },
      }),
    on: (event, listener) => emitter.on(event, listener),
    once: (event, listener) => emitter.once(event, listener),
  });
  process.nextTick(() => {
    callback?.(error);
    if (emitter.listenerCount('error') > 0) emitter.emit('error', error);
    emitter.emit('end');
  });
  return handle;
}
