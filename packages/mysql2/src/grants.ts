/**
 * Reads the lines of `SHOW GRANTS` (MariaDB and MySQL) into what they grant on
 * what, so that Dye can tell whether an account is confined to isolated
 * databases, and what to grant or revoke to make it so.
 */

import { lexSql, type SqlToken } from './sql-lexer.js';

/** What one `GRANT … ON … TO …` line gives. */
export type GrantLine =
  | {
      readonly kind: 'privileges';
      /** Upper case, one space between words, column lists kept: `SELECT`, `SELECT (\`id\`)`, `CREATE TEMPORARY TABLES`. */
      readonly privileges: readonly string[];
      /** `*.*`, a database (pattern) with `*`, a table or a routine. */
      readonly scope: 'global' | 'database' | 'table' | 'routine';
      /** The database as written in the grant (backslash escapes kept), absent for global grants. */
      readonly database?: string;
      /** `ON` … up to `TO`, exactly as the server printed it (for a matching REVOKE). */
      readonly objectText: string;
      readonly grantOption: boolean;
      /** `WITH MAX_USER_CONNECTIONS 50` and the like, as numbers (MariaDB prints them on the USAGE line). */
      readonly limits: Readonly<Record<string, number>>;
      readonly line: string;
    }
  | { readonly kind: 'roles'; readonly roles: readonly string[]; readonly line: string }
  | { readonly kind: 'proxy'; readonly objectText: string; readonly line: string }
  | { readonly kind: 'default-role'; readonly line: string }
  | { readonly kind: 'unreadable'; readonly line: string; readonly reason: string };

/** How a session prints its grants: with ANSI_QUOTES, names in double quotes. */
export interface GrantReading {
  readonly ansiQuotes?: boolean;
}

const wordIs = (token: SqlToken | undefined, word: string) => token?.kind === 'word' && token.text.toLowerCase() === word;

export function parseGrantLine(line: string, reading: GrantReading = {}): GrantLine {
  const lexed = lexSql(line, { flavor: 'mariadb', version: 999999, ansiQuotes: reading.ansiQuotes === true, noBackslashEscapes: false });
  const unreadable = (reason: string): GrantLine => ({ kind: 'unreadable', line, reason });
  if (!lexed.ok) return unreadable(lexed.reason);
  const tokens = lexed.tokens;
  if (wordIs(tokens[0], 'set') && wordIs(tokens[1], 'default') && wordIs(tokens[2], 'role')) return { kind: 'default-role', line };
  if (!wordIs(tokens[0], 'grant')) return unreadable('not a GRANT line (a partial REVOKE, for instance)');
  const to = findWord(tokens, 'to', 1);
  if (to === -1) return unreadable('no TO');
  const on = findWord(tokens, 'on', 1);
  if (on === -1 || on > to) {
    // GRANT role[, role] TO account: MySQL prints roles as `r`@`%`.
    const roles: string[] = [];
    let current = '';
    for (const token of tokens.slice(1, to)) {
      if (token.kind === 'punct' && token.text === ',') {
        roles.push(current);
        current = '';
      } else if (token.kind === 'string') current += token.text.slice(1, -1);
      else current += token.kind === 'identifier' ? `\`${token.text.replaceAll('`', '``')}\`` : token.text;
    }
    if (current) roles.push(current);
    return { kind: 'roles', roles, line };
  }
  const objectText = line.slice((tokens[on] as SqlToken).start, (tokens[to - 1] as SqlToken).end);
  if (wordIs(tokens[1], 'proxy')) return { kind: 'proxy', objectText, line };
  const privileges = splitPrivileges(line, tokens.slice(1, on));
  if (privileges.length === 0) return unreadable('no privileges');
  let at = on + 1;
  let routine = false;
  if (['table', 'function', 'procedure', 'package'].some((word) => wordIs(tokens[at], word))) {
    routine = !wordIs(tokens[at], 'table');
    at++;
    if (wordIs(tokens[at], 'body')) at++;
  }
  const object = tokens.slice(at, to);
  const grantOption = tokens.slice(to).some((token, i, rest) => wordIs(token, 'grant') && wordIs(rest[i + 1], 'option'));
  const limits: Record<string, number> = {};
  tokens.slice(to).forEach((token, i, rest) => {
    const next = rest[i + 1];
    if (token.kind === 'word' && /^max_/i.test(token.text) && next?.kind === 'word' && /^\d+(\.\d+)?$/.test(next.text)) {
      limits[token.text.toLowerCase()] = Number(next.text);
    }
  });
  const base = { kind: 'privileges' as const, privileges, objectText, grantOption, limits, line };
  const text = (token: SqlToken | undefined) => (token?.kind === 'identifier' || token?.kind === 'word' ? token.text : undefined);
  const isStar = (token: SqlToken | undefined) => token?.kind === 'punct' && token.text === '*';
  const isDot = (token: SqlToken | undefined) => token?.kind === 'punct' && token.text === '.';
  if (object.length === 3 && isStar(object[0]) && isDot(object[1]) && isStar(object[2])) return { ...base, scope: 'global' };
  if (object.length === 3 && isDot(object[1]) && text(object[0]) !== undefined) {
    const database = text(object[0]) as string;
    if (isStar(object[2])) return routine ? unreadable('a routine grant on *') : { ...base, scope: 'database', database };
    if (text(object[2]) !== undefined) return { ...base, scope: routine ? 'routine' : 'table', database };
  }
  return unreadable('an object Dye cannot read');
}

function findWord(tokens: readonly SqlToken[], word: string, from: number): number {
  let depth = 0;
  for (let i = from; i < tokens.length; i++) {
    const token = tokens[i] as SqlToken;
    if (token.kind === 'punct' && token.text === '(') depth++;
    else if (token.kind === 'punct' && token.text === ')') depth--;
    else if (depth === 0 && wordIs(token, word)) return i;
  }
  return -1;
}

function splitPrivileges(line: string, tokens: readonly SqlToken[]): string[] {
  const privileges: string[] = [];
  let start: SqlToken | undefined;
  let end: SqlToken | undefined;
  let depth = 0;
  const flush = () => {
    if (start && end) {
      // Keywords in upper case, one space apart; a column list as printed (column names keep their case).
      const text = line.slice(start.start, end.end);
      const list = text.indexOf('(');
      const keywords = (list === -1 ? text : text.slice(0, list)).trim().replace(/\s+/g, ' ').toUpperCase();
      privileges.push(list === -1 ? keywords : `${keywords} ${text.slice(list).trim()}`);
    }
    start = undefined;
    end = undefined;
  };
  for (const token of tokens) {
    if (token.kind === 'punct' && token.text === '(') depth++;
    if (token.kind === 'punct' && token.text === ')') depth--;
    if (depth === 0 && token.kind === 'punct' && token.text === ',') {
      flush();
      continue;
    }
    start ??= token;
    end = token;
  }
  flush();
  return privileges;
}

/**
 * A database name in a database-level grant is a LIKE pattern: `_` and `%` are
 * wildcards unless escaped with a backslash. The literal name it stands for,
 * or undefined when it matches more than one name.
 */
export function literalGrantDatabase(pattern: string): string | undefined {
  let name = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\' && i + 1 < pattern.length) {
      name += pattern[i + 1];
      i++;
      continue;
    }
    if (c === '_' || c === '%') return undefined;
    name += c;
  }
  return name;
}

/** `shop_shadow` → `shop\_shadow`: the grant pattern that matches exactly that database. */
export function escapeGrantDatabase(name: string): string {
  return name.replace(/[\\_%]/g, (c) => `\\${c}`);
}

export interface GrantProblem {
  readonly line: string;
  readonly problem: string;
}

/**
 * What in `lines` lets an account act outside the databases `isAllowed` accepts:
 * any global privilege but USAGE, any privilege on another database, table or
 * routine, a database pattern with wildcards, PROXY, GRANT OPTION, and any
 * line Dye cannot read. Role lines are not problems by themselves: the roles'
 * own grants must be read and judged too.
 */
export function grantProblems(
  lines: readonly string[],
  isAllowed: (database: string) => boolean,
  reading: GrantReading = {},
): GrantProblem[] {
  const problems: GrantProblem[] = [];
  for (const line of lines) {
    const grant = parseGrantLine(line, reading);
    const add = (problem: string) => problems.push({ line, problem });
    switch (grant.kind) {
      case 'roles':
      case 'default-role':
        break;
      case 'proxy':
        add(`PROXY ${grant.objectText} lets it act as other accounts`);
        break;
      case 'unreadable':
        add(`a grant Dye cannot read (${grant.reason})`);
        break;
      case 'privileges': {
        if (grant.grantOption) add('WITH GRANT OPTION lets it hand its privileges to other accounts');
        if (grant.scope === 'global') {
          const extra = grant.privileges.filter((privilege) => privilege !== 'USAGE');
          if (extra.length > 0) add(`server-wide privileges ${extra.join(', ')} reach every database (or the server itself)`);
          break;
        }
        const database = grant.database as string;
        const literal = grant.scope === 'database' ? literalGrantDatabase(database) : database;
        if (literal === undefined) {
          add(`\`${database}\` is a pattern (\`_\` and \`%\` are wildcards in grants) that matches other databases too`);
        } else if (!isAllowed(literal)) {
          add(`${grant.privileges.join(', ')} on \`${literal}\`, which is not an isolated database`);
        }
        break;
      }
    }
  }
  return problems;
}
