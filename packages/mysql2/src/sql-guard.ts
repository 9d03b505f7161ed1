/**
 * Reads SQL the way MySQL/MariaDB would, just far enough to find what an
 * isolated tenant must not run: a reference to a production schema, or a
 * statement that switches the session to another database. String literals and
 * comments are skipped (`'shop.orders'` in a string is data), except the
 * executable comments `/*! … *\/` and `/*M! … *\/`, whose content MySQL runs.
 */

export type GuardVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

interface Token {
  /** Identifier text (unquoted, backticks removed) or a single punctuation character. */
  readonly text: string;
  readonly kind: 'word' | 'quoted' | 'double-quoted' | 'punct';
}

function isWordChar(code: number): boolean {
  return (
    (code >= 48 && code <= 57) || // 0-9
    (code >= 65 && code <= 90) || // A-Z
    (code >= 97 && code <= 122) || // a-z
    code === 95 || // _
    code === 36 || // $
    code >= 0x80
  );
}

/** Splits SQL into identifiers and punctuation, dropping literals and comments. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i] as string;
    const code = sql.charCodeAt(i);
    if (c === "'") {
      i = skipQuoted(sql, i, "'");
    } else if (c === '"') {
      // A string in the default mode, an identifier under ANSI_QUOTES: kept as a
      // candidate identifier so a server in either mode is covered.
      const end = skipQuoted(sql, i, '"');
      tokens.push({ text: sql.slice(i + 1, end - 1).replaceAll('""', '"'), kind: 'double-quoted' });
      i = end;
    } else if (c === '`') {
      let j = i + 1;
      let text = '';
      while (j < n) {
        if (sql[j] === '`') {
          if (sql[j + 1] === '`') {
            text += '`';
            j += 2;
            continue;
          }
          break;
        }
        text += sql[j];
        j++;
      }
      tokens.push({ text, kind: 'quoted' });
      i = j + 1;
    } else if (c === '#') {
      i = skipLine(sql, i);
    } else if (c === '-' && sql[i + 1] === '-' && (i + 2 >= n || /\s/.test(sql[i + 2] as string))) {
      i = skipLine(sql, i);
    } else if (c === '/' && sql[i + 1] === '*') {
      const executable = sql[i + 2] === '!' || (sql[i + 2] === 'M' && sql[i + 3] === '!');
      if (executable) {
        // Its content runs: step over the marker (and version digits) and keep tokenizing.
        i += sql[i + 2] === '!' ? 3 : 4;
        while (i < n && /\d/.test(sql[i] as string)) i++;
      } else {
        const end = sql.indexOf('*/', i + 2);
        i = end === -1 ? n : end + 2;
      }
    } else if (c === '*' && sql[i + 1] === '/') {
      i += 2; // end of an executable comment
    } else if (isWordChar(code)) {
      let j = i + 1;
      while (j < n && isWordChar(sql.charCodeAt(j))) j++;
      tokens.push({ text: sql.slice(i, j), kind: 'word' });
      i = j;
    } else if (/\s/.test(c)) {
      i++;
    } else {
      tokens.push({ text: c, kind: 'punct' });
      i++;
    }
  }
  return tokens;
}

function skipQuoted(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return sql.length;
}

function skipLine(sql: string, start: number): number {
  const end = sql.indexOf('\n', start);
  return end === -1 ? sql.length : end + 1;
}

export interface SqlGuardOptions {
  /** The production database the isolated tenant replaces (`shop`). */
  productionDatabase: string;
  /** The isolated database it may use (`shop_shadow`). */
  isolatedDatabase: string;
  /** Other databases on the server, which the tenant must not reach either. */
  otherDatabases?: readonly string[];
}

const SESSION_SWITCH = new Set(['use']);
const DATABASE_WORDS = new Set(['database', 'schema']);
const DATABASE_VERBS = new Set(['create', 'drop', 'alter']);

/**
 * Whether an isolated tenant may send `sql` to its database. Refused:
 * - any mention of the production database name outside literals and comments
 *   (`shop.orders`, `` `SHOP`.`orders` ``, `SHOW TABLES FROM shop`, `DROP DATABASE shop`),
 *   including as a double-quoted word (ANSI_QUOTES servers read it as a name);
 * - another database used as a qualifier (`analytics.events`), or named by
 *   CREATE/DROP/ALTER DATABASE;
 * - `USE`, which would switch a shared connection to another database.
 * A table or column that has the production database's name is refused too:
 * the guard cannot tell them apart, and fails closed.
 */
export function checkIsolatedSql(sql: string, options: SqlGuardOptions): GuardVerdict {
  const production = options.productionDatabase.toLowerCase();
  const isolated = options.isolatedDatabase.toLowerCase();
  const others = new Set((options.otherDatabases ?? []).map((name) => name.toLowerCase()));
  others.delete(isolated);
  others.delete('information_schema');
  others.delete(production);
  const tokens = tokenize(sql);
  let statementStart = true;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    if (token.kind === 'punct') {
      statementStart = token.text === ';';
      continue;
    }
    const lower = token.text.toLowerCase();
    if (statementStart && token.kind === 'word' && SESSION_SWITCH.has(lower)) {
      return { ok: false, reason: 'USE would switch a shared connection to another database' };
    }
    statementStart = false;
    if (lower === production) {
      return { ok: false, reason: `the statement names the production database \`${options.productionDatabase}\`` };
    }
    const next = tokens[i + 1];
    if (others.has(lower) && next?.text === '.') {
      return { ok: false, reason: `the statement reaches another database \`${token.text}\`` };
    }
    if (token.kind === 'word' && DATABASE_WORDS.has(lower)) {
      const verb = tokens[i - 1]?.text.toLowerCase();
      const named = tokens
        .slice(i + 1)
        .find((candidate) => candidate.kind !== 'punct' && !['if', 'not', 'exists'].includes(candidate.text.toLowerCase()));
      if (verb && DATABASE_VERBS.has(verb) && named && named.text.toLowerCase() !== isolated) {
        return { ok: false, reason: `${verb.toUpperCase()} DATABASE may only name the isolated database \`${options.isolatedDatabase}\`` };
      }
    }
  }
  return { ok: true };
}
