import { type EnforcementMode, FirstUseCheck, type IsolationError, isolationRefusal, logWarning, type Tenant } from '@dye/core';
import mysql, { type PoolConnection as CoreConnection, type Pool as CorePool, type PoolOptions, type RowDataPacket } from 'mysql2';
import mysqlPromise from 'mysql2/promise';
import { connectionOptions, type DatabaseList } from './database-list.js';
import { connectionEncoding, type FinalSql, finalSql, type SqlMethod, type TextEncoding, UnreadableSql, unencodable } from './final-sql.js';
import { inspectShadowAccount, isolatedDatabasePredicate } from './shadow-account.js';
import { createSqlGuard, type GuardVerdict } from './sql-guard.js';
import { dialectKey, type SqlDialect, sqlDialect } from './sql-lexer.js';

/** A shadow connection taken from the pool, with how its server reads SQL. */
export interface ReadyConnection {
  readonly core: CoreConnection;
  readonly dialect: SqlDialect;
  readonly dialectKey: string;
  /** How mysql2 writes text on it: a character it cannot write as itself is refused. */
  readonly encoding: TextEncoding;
}

export type QueryResult = [unknown, unknown];

const VERDICT_CACHE_LIMIT = 1000;
// Only statements up to this length are cached (repeated statements are short;
// a cache of large texts would hold their memory).
const CACHED_TEXT_LIMIT = 16 * 1024;
/** The longest final text an isolated tenant may send (characters): reading it blocks the event loop. */
export const MAX_ISOLATED_STATEMENT_LENGTH = 16 * 1024 * 1024;
// mysql2 error codes that mean "this isolated database cannot be used".
const MISSING_DATABASE = new Set(['ER_BAD_DB_ERROR', 'ER_NO_DB_ERROR']);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'PROTOCOL_CONNECTION_LOST', 'ECONNRESET']);
// The server refusing the shadow account: its grants doing their job.
const DENIED = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_TABLEACCESS_DENIED_ERROR',
  'ER_COLUMNACCESS_DENIED_ERROR',
  'ER_SPECIFIC_ACCESS_DENIED_ERROR',
  'ER_PROCACCESS_DENIED_ERROR',
  'ER_KILL_DENIED_ERROR',
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
]);

export interface IsolatedPoolSettings {
  readonly tenant: Tenant;
  /** `<db>_shadow`. */
  readonly database: string;
  /** The production database it stands in for. */
  readonly production: string;
  /** The pool options of the isolated pool (the shadow account's credentials in them). */
  readonly config: PoolOptions;
  readonly enforcement: EnforcementMode;
  readonly databases: DatabaseList;
  /** How often a passed first-use check is run again, ms. */
  readonly recheckEveryMs: number;
  /** How long the check may take before it counts as failed, ms. */
  readonly checkTimeoutMs: number;
}

/**
 * The pool of one isolated tenant on `<db>_<tenant>`, and everything that
 * stands between it and production: the first-use check of its account, the
 * dialect of each connection, the guard on the final text of every statement,
 * and the translation of the server's refusals into IsolationError.
 */
export class IsolatedPool {
  readonly tenant: Tenant;
  readonly database: string;
  readonly #settings: IsolatedPoolSettings;
  readonly #pool: CorePool;
  readonly #check: FirstUseCheck;
  readonly #sessions = new WeakMap<CoreConnection, Promise<ReadyConnection>>();
  // The same, once known: the hot path reads it without a promise.
  readonly #ready = new WeakMap<CoreConnection, ReadyConnection>();
  // Connections a statement left a transaction, snapshot or table locks on (or autocommit off).
  readonly #holding = new WeakSet<CoreConnection>();
  // dialect → final text → verdict; cleared when the list of databases changes.
  readonly #verdicts = new Map<string, Map<string, GuardVerdict>>();
  #verdictsGeneration = -1;
  #guard: ((sql: string, dialect: SqlDialect) => GuardVerdict) | undefined;

  constructor(settings: IsolatedPoolSettings) {
    this.#settings = settings;
    this.tenant = settings.tenant;
    this.database = settings.database;
    // Never created implicitly: a missing database is a refusal, not a CREATE.
    this.#pool = mysql.createPool({ ...settings.config, database: settings.database });
    this.#check = new FirstUseCheck(() => this.#firstUse(), 5_000, settings.recheckEveryMs, settings.checkTimeoutMs);
  }

  /** Runs the first-use check now (the account, the database): for a service that wants to fail at start-up. */
  async verify(): Promise<void> {
    await this.#ensure();
  }

  /** The first-use check; whatever makes it fail (a timeout, a lost connection) is an IsolationError. */
  #ensure(): Promise<void> {
    return this.#check.ensure().catch((error: unknown) => {
      if ((error as { code?: string })?.code === 'DYE_ISOLATION') throw error;
      throw this.refusal('isolated traffic', `the isolated account could not be checked (${(error as Error)?.message ?? error})`, error);
    });
  }

  /** A connection ready for guarded use; the caller releases it. */
  async acquire(): Promise<ReadyConnection> {
    if (!this.#check.passed) await this.#ensure();
    let core: CoreConnection;
    try {
      core = await new Promise<CoreConnection>((resolve, reject) => {
        this.#pool.getConnection((error, connection) => (error ? reject(error) : resolve(connection)));
      });
    } catch (error) {
      throw await this.translate(error);
    }
    try {
      return this.#ready.get(core) ?? (await this.#session(core));
    } catch (error) {
      core.release();
      throw await this.translate(error);
    }
  }

  #session(core: CoreConnection): Promise<ReadyConnection> {
    let session = this.#sessions.get(core);
    if (!session) {
      session = this.#readSession(core).then((ready) => {
        this.#ready.set(core, ready);
        return ready;
      });
      this.#sessions.set(core, session);
      session.catch(() => this.#sessions.delete(core));
    }
    return session;
  }

  /**
   * The final text of a statement, checked: throws IsolationError when it may
   * not be sent. A statement that leaves a transaction or locks on the
   * connection marks it, so that releasing it cleans up.
   */
  prepare(ready: ReadyConnection, method: SqlMethod, query: unknown, values: unknown): FinalSql {
    let statement: FinalSql;
    try {
      statement = finalSql(ready.core, method, query, values);
    } catch (error) {
      if (error instanceof UnreadableSql) throw this.refusal('a query', error.message);
      throw error;
    }
    const text = statement.text;
    const refused = `SQL ${JSON.stringify(excerpt(text))}`;
    if (text.length > MAX_ISOLATED_STATEMENT_LENGTH) {
      throw this.refusal(
        `a statement of ${text.length} characters`,
        `isolated statements are read before they are sent, up to ${MAX_ISOLATED_STATEMENT_LENGTH} characters`,
      );
    }
    const at = unencodable(text, ready.encoding);
    if (at !== -1) {
      const encoding = ready.encoding as { name: string };
      throw this.refusal(
        refused,
        `the character U+${text.charCodeAt(at).toString(16).padStart(4, '0')} at offset ${at} would reach the server as another one (the connection writes ${encoding.name})`,
      );
    }
    const verdict = this.#verdict(ready, text);
    if (!verdict.ok) throw this.refusal(refused, verdict.reason);
    if (verdict.holdsSession) this.holdsSession(ready.core);
    return statement;
  }

  /** Marks a connection as keeping session state (a transaction begun through the connection API, say). */
  holdsSession(core: CoreConnection): void {
    this.#holding.add(core);
  }

  /**
   * Returns a connection to the pool, without what a shadow request left on
   * it: an open transaction or snapshot would hold back purge for the whole
   * server, table locks would stall a production backup, user variables and
   * temporary tables hold server memory and disk, for as long as the
   * connection sits idle. Such a connection is reset (COM_RESET_CONNECTION)
   * before it is free again; one with a statement still running (a stream
   * nobody reads) is closed instead, which the server rolls back.
   */
  release(core: CoreConnection, inFlight = 0): void {
    if (inFlight > 0) {
      this.#forget(core);
      core.destroy();
      return;
    }
    if (!this.#holding.has(core)) {
      core.release();
      return;
    }
    const reset = (core as unknown as { reset?: (callback: (error: unknown) => void) => void }).reset;
    if (typeof reset !== 'function') {
      this.#forget(core);
      core.destroy();
      return;
    }
    reset.call(core, (error: unknown) => {
      // The session is the server's defaults again: read it anew on next use.
      this.#forget(core);
      if (error) core.destroy();
      else core.release();
    });
  }

  #forget(core: CoreConnection): void {
    this.#holding.delete(core);
    this.#ready.delete(core);
    this.#sessions.delete(core);
  }

  /** Before a statement on a held connection: the account check must be fresh (waits for a re-check when due). */
  fresh(): Promise<void> {
    return this.#check.passed ? Promise.resolve() : this.#ensure();
  }

  /** The same for a caller that cannot wait (the callback API): refuses on a known failure, re-checks in the background when due. */
  assertFresh(): void {
    if (this.#check.passed) return;
    const failure = this.#check.failure;
    if (failure !== undefined) {
      if ((failure as { code?: string })?.code === 'DYE_ISOLATION') throw failure;
      throw this.refusal(
        'isolated traffic',
        `the isolated account could not be checked (${(failure as Error)?.message ?? failure})`,
        failure,
      );
    }
    this.#check.refresh();
  }

  /** `pool.query` / `pool.execute` for this tenant: take a connection, check, send, release. */
  run(method: SqlMethod, query: unknown, values: unknown): Promise<QueryResult> {
    if (!this.#check.passed) return this.#ensure().then(() => this.run(method, query, values));
    // Callbacks, not awaits: this is the hot path of every isolated statement.
    return new Promise((resolve, reject) => {
      const fail = (error: unknown) => void this.translate(error).then(reject, reject);
      this.#pool.getConnection((error, core) => {
        if (error) return fail(error);
        const ready = this.#ready.get(core);
        if (!ready) {
          this.#session(core).then(
            () => {
              this.release(core);
              this.run(method, query, values).then(resolve, reject);
            },
            (sessionError: unknown) => {
              this.release(core);
              fail(sessionError);
            },
          );
          return;
        }
        try {
          const statement = this.prepare(ready, method, query, values);
          (core[method] as (options: unknown, callback: (error: Error | null, rows?: unknown, fields?: unknown) => void) => unknown).call(
            core,
            statement.options,
            (queryError, rows, fields) => {
              this.release(core);
              if (queryError) fail(queryError);
              else resolve([rows, fields]);
            },
          );
        } catch (thrown) {
          this.release(core);
          fail(thrown);
        }
      });
    });
  }

  /** Maps failures that mean "cannot isolate" (or "the server refused the shadow account") to IsolationError. */
  async translate(error: unknown): Promise<unknown> {
    if ((error as { code?: string })?.code === 'DYE_ISOLATION') return error;
    const code = (error as { code?: string })?.code ?? '';
    const message = (error as Error)?.message ?? String(error);
    if (MISSING_DATABASE.has(code)) {
      return this.refusal('a query', `the isolated database \`${this.database}\` does not exist (create it with syncShadowSchema)`, error);
    }
    if (code === 'ER_NO_SUCH_TABLE') {
      const exists = await this.#settings.databases.exists(this.database).catch(() => true);
      if (!exists) return this.refusal('a query', `the isolated database \`${this.database}\` was dropped`, error);
      return error;
    }
    if (DENIED.has(code)) return this.refusal('a query', `the server refused it to the isolated account: ${message}`, error);
    if (UNREACHABLE.has(code)) {
      return this.refusal('a query', `the server of \`${this.database}\` cannot be reached (${code})`, error);
    }
    return error;
  }

  refusal(refused: string, reason: string, cause?: unknown): IsolationError {
    return isolationRefusal('mysql', { tenant: this.tenant.name, refused, reason }, cause === undefined ? undefined : { cause });
  }

  end(): Promise<void> {
    return new Promise((resolve, reject) => this.#pool.end((error) => (error ? reject(error) : resolve())));
  }

  #verdict(ready: ReadyConnection, text: string): GuardVerdict {
    const databases = this.#settings.databases;
    const names = databases.current();
    if (this.#guard === undefined || this.#verdictsGeneration !== databases.generation) {
      // The list of databases changed (or is read for the first time): verdicts made with the old one are void.
      this.#verdicts.clear();
      this.#verdictsGeneration = databases.generation;
      this.#guard = createSqlGuard({
        productionDatabase: this.#settings.production,
        isolatedDatabase: this.database,
        otherDatabases: names ?? [],
        serverConfines: this.#settings.enforcement === 'account',
      });
    }
    let cache = this.#verdicts.get(ready.dialectKey);
    if (!cache) {
      cache = new Map();
      this.#verdicts.set(ready.dialectKey, cache);
    }
    let verdict = cache.get(text);
    if (!verdict) {
      verdict = this.#guard(text, ready.dialect);
      if (text.length <= CACHED_TEXT_LIMIT) {
        if (cache.size >= VERDICT_CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
        cache.set(text, verdict);
      }
    }
    return verdict;
  }

  /** How this connection's server reads SQL: asked once per connection (the guard refuses statements that change it). */
  async #readSession(core: CoreConnection): Promise<ReadyConnection> {
    const [rows] = await send(core, 'query', {
      sql: 'SELECT @@SESSION.sql_mode AS mode, @@SESSION.character_set_client AS charset, VERSION() AS version',
      values: [],
    });
    const row = ((rows as RowDataPacket[])[0] ?? {}) as Record<string, unknown>;
    const encoding = connectionEncoding(core, String(row.charset));
    if (typeof encoding === 'string') throw this.refusal('a connection', `${encoding}: the guard could misread string boundaries`);
    let dialect: SqlDialect;
    try {
      dialect = sqlDialect(String(row.version), String(row.mode));
    } catch (error) {
      throw this.refusal('a connection', (error as Error).message);
    }
    return { core, dialect, dialectKey: dialectKey(dialect), encoding };
  }

  /** The isolated account is confined to isolated databases, and `<db>_<tenant>` exists. */
  async #firstUse(): Promise<void> {
    const settings = this.#settings;
    let connection: mysqlPromise.Connection;
    try {
      connection = await mysqlPromise.createConnection({
        ...connectionOptions(settings.config),
        database: this.database,
        connectTimeout: 10_000,
      });
    } catch (error) {
      throw await this.translate(error);
    }
    try {
      // Shadow statements may hold metadata locks the check's reads wait for; information_schema
      // waits them out whatever lock_wait_timeout says, so the check's own timeout bounds it.
      await connection.query('SET SESSION lock_wait_timeout = 5');
      if (settings.enforcement === 'account') {
        const report = await inspectShadowAccount(connection, isolatedDatabasePredicate(settings.production, this.tenant.name));
        const [[limit]] = await connection.query<RowDataPacket[]>('SELECT @@SESSION.max_user_connections AS n');
        if (Number(limit?.n ?? 0) === 0) {
          logWarning(
            'dye.mysql.unlimited-connections',
            `the isolated account ${report.account} may hold any number of connections: production shares max_connections (grantShadowAccess sets MAX_USER_CONNECTIONS)`,
          );
        }
        const problems = [...report.problems.map((problem) => problem.problem), ...(await remoteEngines(connection))].join('; ');
        if (problems) {
          throw this.refusal(
            `isolated traffic as ${report.account}`,
            `the account can reach more than isolated databases (${problems}). Give isolated tenants an account of their own, ` +
              `confined to \`${this.database}\`: \`dye shadow grant --mysql <admin-url> --db ${settings.production} --user <name> --apply\` ` +
              "(or grantShadowAccess), then pass its user and password as isolatedConfig; enforcement: 'guard-only' runs without one",
          );
        }
      }
    } finally {
      connection.destroy();
    }
    await settings.databases.ready();
  }
}

/**
 * Storage engines whose tables keep rows on the server itself. Another engine
 * loaded (FEDERATED, CONNECT, SPIDER…) lets any account allowed CREATE make a
 * table that connects elsewhere with credentials in its CONNECTION string:
 * grants do not stop that, so the server cannot be said to confine the account.
 */
const LOCAL_ENGINES = new Set([
  'innodb',
  'myisam',
  'aria',
  'memory',
  'heap',
  'csv',
  'archive',
  'sequence',
  'blackhole',
  'performance_schema',
  'mrg_myisam',
  'rocksdb',
  'columnstore',
]);

async function remoteEngines(connection: mysqlPromise.Connection): Promise<string[]> {
  const [rows] = await connection.query<RowDataPacket[]>(
    "SELECT ENGINE AS engine FROM information_schema.ENGINES WHERE SUPPORT IN ('YES', 'DEFAULT')",
  );
  return rows
    .map((row) => String(row.engine))
    .filter((engine) => !LOCAL_ENGINES.has(engine.toLowerCase()))
    .map(
      (engine) =>
        `the server has the ${engine} engine loaded, whose tables reach other servers with any credentials the account writes into them (unload it)`,
    );
}

/** mysql2's callback API as a promise of `[rows, fields]`; a synchronous throw (bad values) rejects. */
export function send(core: CoreConnection, method: SqlMethod, options: unknown, values?: unknown): Promise<QueryResult> {
  return new Promise((resolve, reject) => {
    const callback = (error: Error | null, rows?: unknown, fields?: unknown) => (error ? reject(error) : resolve([rows, fields]));
    try {
      const call = core[method] as (...args: unknown[]) => unknown;
      if (values === undefined) call.call(core, options, callback);
      else call.call(core, options, values, callback);
    } catch (error) {
      reject(error);
    }
  });
}

function excerpt(sql: string): string {
  return sql.length > 80 ? `${sql.slice(0, 80)}…` : sql;
}
