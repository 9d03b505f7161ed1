import { isolatedName } from '@dye/core';
import mysql, { type Connection, type Pool, type RowDataPacket } from 'mysql2/promise';
import { escapeGrantDatabase, literalGrantDatabase, parseGrantLine } from './grants.js';

/**
 * What an isolated tenant's data work needs on its own database: rows, table
 * DDL, temporary tables, locks, foreign keys, reading view definitions,
 * calling the routines the schema sync copied (they run with the caller's
 * rights), being the definer of the triggers it copied. No routines, events
 * or views of its own; the guard refuses creating triggers too (a trigger an
 * isolated account creates runs with its own, confined rights).
 */
export const SHADOW_PRIVILEGES: readonly string[] = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'ALTER',
  'INDEX',
  'REFERENCES',
  'CREATE TEMPORARY TABLES',
  'LOCK TABLES',
  'EXECUTE',
  'SHOW VIEW',
  // Triggers the schema sync copies run as the shadow account, and the server
  // fires a trigger only for a definer holding TRIGGER on its table.
  'TRIGGER',
];

export interface GrantShadowAccessOptions {
  /** The production database(s) (`shop`): the account gets `<db>_<tenant>` for each tenant. */
  database: string | readonly string[];
  /** Isolated tenants whose databases the account may use. Default `['shadow']`. */
  tenants?: readonly string[];
  /** The shadow account's user name (`dye_shadow`). */
  user: string;
  /** Its password: needed to create the account; for an existing one, set when it differs. */
  password?: string;
  /** The account's host pattern. Default `%`. */
  host?: string;
  /**
   * Connections the account may hold at once (`MAX_USER_CONNECTIONS`): the
   * server's max_connections is shared with production, and shadow load must
   * not take it all. Default 50; 0 lifts the limit.
   */
  maxUserConnections?: number;
  /** Run the statements. Default false: only say what would run. */
  apply?: boolean;
}

export interface GrantShadowAccessResult {
  /** `'dye_shadow'@'%'`. */
  readonly account: string;
  /** The isolated databases the account is confined to. */
  readonly databases: readonly string[];
  /** The statements run (or, without `apply`, that would run), passwords shown as `'***'`. */
  readonly statements: readonly string[];
  readonly applied: boolean;
}

const ER_NONEXISTING_GRANT = 1141;

/**
 * Creates or updates the account isolated tenants connect as, so that the
 * server itself confines them: privileges on `<db>_<tenant>` only (the
 * escaped name, so `_` matches only `_`), and nothing else — server-wide
 * privileges, other databases, tables and routines, roles, PROXY and GRANT
 * OPTION are revoked. Idempotent: a second run has no statements. Without
 * `apply` it changes nothing and returns what it would run.
 */
export async function grantShadowAccess(admin: Connection | Pool, options: GrantShadowAccessOptions): Promise<GrantShadowAccessResult> {
  const host = options.host ?? '%';
  if (!options.user) throw new TypeError('grantShadowAccess needs a user name');
  const account = `${mysql.escape(options.user)}@${mysql.escape(host)}`;
  const productionDatabases = typeof options.database === 'string' ? [options.database] : [...options.database];
  if (productionDatabases.length === 0) throw new TypeError('grantShadowAccess needs at least one database');
  const tenants = options.tenants ?? ['shadow'];
  const databases = [
    ...new Set(productionDatabases.flatMap((database) => tenants.map((tenant) => isolatedName('mysql-database', database, tenant)))),
  ];

  const statements: Array<{ sql: string; shown: string }> = [];
  const run = (sql: string, shown = sql) => statements.push({ sql, shown });
  const masked = (password: string) => ({ sql: mysql.escape(password), shown: "'***'" });

  const [[session]] = await admin.query<RowDataPacket[]>('SELECT @@SESSION.sql_mode AS mode');
  const reading = { ansiQuotes: /ANSI/.test(String(session?.mode)) };
  const maxUserConnections = options.maxUserConnections ?? 50;
  if (!Number.isInteger(maxUserConnections) || maxUserConnections < 0) throw new TypeError('maxUserConnections must be a whole number ≥ 0');
  const existing = await showGrants(admin, account);
  if (existing === undefined) {
    if (options.password === undefined) throw new TypeError(`the account ${account} does not exist: give a password to create it`);
    const secret = masked(options.password);
    const limit = ` WITH MAX_USER_CONNECTIONS ${maxUserConnections}`;
    run(`CREATE USER ${account} IDENTIFIED BY ${secret.sql}${limit}`, `CREATE USER ${account} IDENTIFIED BY ${secret.shown}${limit}`);
  } else if (options.password !== undefined && !(await canLogIn(admin, options.user, options.password))) {
    const secret = masked(options.password);
    run(`ALTER USER ${account} IDENTIFIED BY ${secret.sql}`, `ALTER USER ${account} IDENTIFIED BY ${secret.shown}`);
  }

  const held = new Map<string, Set<string>>(); // isolated database → privileges it already has
  let revokedRoles = false;
  for (const line of existing ?? []) {
    const grant = parseGrantLine(line, reading);
    switch (grant.kind) {
      case 'default-role':
        break;
      case 'roles':
        for (const role of grant.roles) run(`REVOKE ${role} FROM ${account}`);
        revokedRoles ||= grant.roles.length > 0;
        break;
      case 'proxy':
        run(`REVOKE PROXY ${grant.objectText} FROM ${account}`);
        break;
      case 'unreadable':
        throw new Error(`cannot read the grant "${line}" of ${account} (${grant.reason}): revoke it by hand`);
      case 'privileges': {
        if (grant.grantOption) run(`REVOKE GRANT OPTION ${grant.objectText} FROM ${account}`);
        if (grant.scope === 'global') {
          const extra = grant.privileges.filter((privilege) => privilege !== 'USAGE');
          if (extra.length > 0) run(`REVOKE ${extra.join(', ')} ON *.* FROM ${account}`);
          if ((grant.limits.max_user_connections ?? 0) !== maxUserConnections) {
            run(`ALTER USER ${account} WITH MAX_USER_CONNECTIONS ${maxUserConnections}`);
          }
          break;
        }
        const database = grant.database as string;
        const literal = grant.scope === 'database' ? literalGrantDatabase(database) : undefined;
        const wanted = literal !== undefined && databases.includes(literal) && escapeGrantDatabase(literal) === database;
        if (!wanted) {
          run(`REVOKE ${grant.privileges.join(', ')} ${grant.objectText} FROM ${account}`);
          break;
        }
        const extra = grant.privileges.filter((privilege) => !SHADOW_PRIVILEGES.includes(privilege));
        const kept = grant.privileges.filter((privilege) => SHADOW_PRIVILEGES.includes(privilege));
        if (extra.length > 0) run(`REVOKE ${extra.join(', ')} ${grant.objectText} FROM ${account}`);
        // REVOKE ALL PRIVILEGES took the others with it.
        held.set(literal, new Set(extra.includes('ALL PRIVILEGES') || extra.includes('ALL') ? [] : kept));
        break;
      }
    }
  }
  if (revokedRoles) run(`SET DEFAULT ROLE NONE FOR ${account}`);
  for (const database of databases) {
    const has = held.get(database) ?? new Set<string>();
    const missing = SHADOW_PRIVILEGES.filter((privilege) => !has.has(privilege));
    if (missing.length > 0)
      run(`GRANT ${missing.join(', ')} ON \`${escapeGrantDatabase(database).replaceAll('`', '``')}\`.* TO ${account}`);
  }

  if (options.apply) for (const statement of statements) await admin.query(statement.sql);
  return { account, databases, statements: statements.map((statement) => statement.shown), applied: options.apply === true };
}

async function showGrants(admin: Connection | Pool, account: string): Promise<string[] | undefined> {
  try {
    const [rows] = await admin.query<RowDataPacket[]>(`SHOW GRANTS FOR ${account}`);
    return rows.map((row) => String(Object.values(row)[0]));
  } catch (error) {
    if ((error as { errno?: number }).errno === ER_NONEXISTING_GRANT) return undefined;
    throw error;
  }
}

/** Whether the account logs in with `password` at the admin connection's server (the password is already set). */
async function canLogIn(admin: Connection | Pool, user: string, password: string): Promise<boolean> {
  const config = serverOf(admin);
  if (!config) return false;
  try {
    const connection = await mysql.createConnection({ ...config, user, password, database: undefined, connectTimeout: 5_000 });
    connection.destroy();
    return true;
  } catch {
    return false;
  }
}

function serverOf(admin: Connection | Pool): { host?: string; port?: number; socketPath?: string } | undefined {
  const holder = admin as unknown as {
    config?: { host?: string; port?: number; socketPath?: string };
    pool?: { config?: { connectionConfig?: { host?: string; port?: number; socketPath?: string } } };
  };
  const config = holder.config ?? holder.pool?.config?.connectionConfig;
  if (!config) return undefined;
  return { host: config.host, port: config.port, ...(config.socketPath ? { socketPath: config.socketPath } : {}) };
}
