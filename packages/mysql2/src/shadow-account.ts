import { isolatedSuffix } from '@dye/core';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { type GrantProblem, type GrantReading, grantProblems, parseGrantLine } from './grants.js';

/** Names a database of an isolated tenant may have: `<db>_shadow`, `<db>_shadow_lt1`. */
const SHADOW_DATABASE = /_shadow(?:_[a-z0-9_]+)?$/i;

export interface ShadowAccountReport {
  /** The account the server authenticated, as `CURRENT_USER()` names it. */
  readonly account: string;
  readonly serverVersion: string;
  /** Every grant line read: the account's, its roles' (and PUBLIC's on MariaDB). */
  readonly grants: readonly string[];
  /** What lets the account act outside isolated databases; empty when it is confined. */
  readonly problems: readonly GrantProblem[];
}

/**
 * Whether `database` is one an isolated account may hold privileges on: the
 * tenant's own database, or any database named like an isolated one, but
 * never the production database itself.
 */
export function isolatedDatabasePredicate(production: string, tenantName: string): (database: string) => boolean {
  const suffix = isolatedSuffix(tenantName).toLowerCase();
  return (database) => {
    const name = database.toLowerCase();
    return name !== production.toLowerCase() && (SHADOW_DATABASE.test(name) || name.endsWith(suffix));
  };
}

async function lines(connection: Connection, sql: string): Promise<string[]> {
  const [rows] = await connection.query<RowDataPacket[]>(sql);
  return rows.map((row) => String(Object.values(row)[0]));
}

/**
 * Reads what the account of `connection` may do (its grants, its roles'
 * grants, PUBLIC's) and judges it: any privilege outside isolated databases,
 * any server-wide privilege, PROXY, GRANT OPTION or a line Dye cannot read is
 * a problem. `connection` should be one of its own: on MariaDB the roles are
 * read by enabling them with SET ROLE.
 */
export async function inspectShadowAccount(connection: Connection, isAllowed: (database: string) => boolean): Promise<ShadowAccountReport> {
  const [[identity]] = await connection.query<RowDataPacket[]>(
    'SELECT CURRENT_USER() AS account, VERSION() AS version, @@SESSION.sql_mode AS mode',
  );
  const reading = { ansiQuotes: /ANSI/.test(String(identity?.mode)) };
  const account = String(identity?.account);
  const serverVersion = String(identity?.version);
  const mariadb = /mariadb/i.test(serverVersion);
  const grants = await lines(connection, 'SHOW GRANTS FOR CURRENT_USER()');
  const problems: GrantProblem[] = [];
  const roles = [...new Set(grants.flatMap((line) => roleNames(line, reading)))];
  if (mariadb) {
    // A role's grants are readable to its grantee only while it is enabled;
    // enabling one shows the roles granted to it as well.
    for (const role of roles) {
      try {
        await connection.query(`SET ROLE ${role}`);
        grants.push(...(await lines(connection, 'SHOW GRANTS')));
      } catch (error) {
        problems.push({ line: `GRANT ${role}`, problem: `the grants of role ${role} cannot be read (${(error as Error).message})` });
      }
    }
    if (roles.length > 0) await connection.query('SET ROLE NONE');
    // MariaDB 10.11 grants to PUBLIC apply to every account.
    grants.push(...(await lines(connection, 'SHOW GRANTS FOR PUBLIC').catch(() => [])));
  } else {
    const [[mandatory]] = await connection
      .query<RowDataPacket[]>('SELECT @@GLOBAL.mandatory_roles AS roles')
      .catch(() => [[{ roles: '' }]] as unknown as [RowDataPacket[]]);
    const all = [
      ...roles,
      ...String(mandatory?.roles ?? '')
        .split(',')
        .map((role) => role.trim())
        .filter(Boolean),
    ];
    if (all.length > 0) {
      try {
        grants.push(...(await lines(connection, `SHOW GRANTS FOR CURRENT_USER() USING ${all.join(', ')}`)));
      } catch (error) {
        problems.push({ line: `roles ${all.join(', ')}`, problem: `the grants of its roles cannot be read (${(error as Error).message})` });
      }
    }
  }
  problems.push(...grantProblems([...new Set(grants)], isAllowed, reading));
  problems.push(...(await visibleDatabases(connection, isAllowed)));
  problems.push(...(await elevatedObjects(connection, account)));
  return { account, serverVersion, grants: [...new Set(grants)], problems };
}

/**
 * What the account can reach by any route, as the server answers it: the
 * databases it sees are those it holds some privilege on, whether from its
 * own grants or from elsewhere (a grant to the anonymous account ''@'%', which
 * SHOW GRANTS FOR CURRENT_USER() does not show; PUBLIC; a default role).
 */
async function visibleDatabases(connection: Connection, isAllowed: (database: string) => boolean): Promise<GrantProblem[]> {
  let names: string[];
  try {
    names = await lines(connection, 'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA');
  } catch (error) {
    return [{ line: 'information_schema.SCHEMATA', problem: `the databases it can reach cannot be listed (${(error as Error).message})` }];
  }
  const reached = names.filter((name) => name.toLowerCase() !== 'information_schema' && !isAllowed(name)).sort();
  if (reached.length === 0) return [];
  const shown = reached.slice(0, 5).map((name) => `\`${name}\``);
  const more = reached.length > shown.length ? ` and ${reached.length - shown.length} more` : '';
  return [
    {
      line: 'information_schema.SCHEMATA',
      problem: `the server lets it reach ${shown.join(', ')}${more}, which are not isolated databases (by its grants, or from outside them: the anonymous account, PUBLIC, a role)`,
    },
  ];
}

const SYSTEM_SCHEMAS = "('information_schema', 'performance_schema', 'mysql', 'sys')";

/**
 * Objects in any database the account can reach (its own isolated database,
 * and the other isolated databases it is granted, which views there may read)
 * that run with another account's rights: SQL SECURITY DEFINER views and
 * routines, triggers of another definer. A migration run there as an admin
 * makes them; whatever the account's grants, querying one runs as that admin.
 */
async function elevatedObjects(connection: Connection, account: string): Promise<GrantProblem[]> {
  const [rows] = await connection.query<RowDataPacket[]>(
    `SELECT 'view' AS kind, TABLE_SCHEMA AS db, TABLE_NAME AS name, DEFINER AS definer, SECURITY_TYPE AS security
       FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ${SYSTEM_SCHEMAS}
     UNION ALL
     SELECT LOWER(ROUTINE_TYPE), ROUTINE_SCHEMA, ROUTINE_NAME, DEFINER, SECURITY_TYPE
       FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ${SYSTEM_SCHEMAS}
     UNION ALL
     SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME, DEFINER, 'DEFINER' FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ${SYSTEM_SCHEMAS}`,
  );
  return rows
    .filter((row) => String(row.security).toUpperCase() === 'DEFINER' && String(row.definer) !== account)
    .map((row) => ({
      line: `${row.kind} ${row.db}.${row.name}`,
      problem: `${row.kind} ${row.name} in ${row.db} runs with the rights of ${row.definer}, not its own (recreate it SQL SECURITY INVOKER, or with the shadow account as definer)`,
    }));
}

function roleNames(line: string, reading: GrantReading): string[] {
  const grant = parseGrantLine(line, reading);
  return grant.kind === 'roles' ? [...grant.roles] : [];
}
