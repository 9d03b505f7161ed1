/**
 * Splits SQL into tokens the way the MySQL and MariaDB servers do
 * (sql/sql_lex.cc), so that what the guard judges is what the server runs.
 * Wherever the server's reading depends on something the guard cannot know for
 * sure, or the two servers differ, the text is refused rather than guessed:
 * a guess that differs from the server by one comment or quote hides a whole
 * statement from the guard.
 */

/** How the server at the other end reads SQL. */
export interface SqlDialect {
  readonly flavor: 'mariadb' | 'mysql';
  /** The server's MYSQL_VERSION_ID: 10.11.19 → 101119, 8.0.36 → 80036. */
  readonly version: number;
  /** sql_mode has ANSI_QUOTES: `"…"` is an identifier, not a string. */
  readonly ansiQuotes: boolean;
  /** sql_mode has NO_BACKSLASH_ESCAPES: `\` is an ordinary character in strings. */
  readonly noBackslashEscapes: boolean;
}

export type SqlTokenKind = 'word' | 'identifier' | 'string' | 'punct';

export interface SqlToken {
  readonly kind: SqlTokenKind;
  /**
   * `word`: as written (keywords, unquoted names, numbers); `identifier`: the
   * name inside backticks (or ANSI double quotes), unescaped; `string`: the
   * literal as written, quotes included; `punct`: one character.
   */
  readonly text: string;
  /** Offsets in the SQL text, for messages and rewriting. */
  readonly start: number;
  readonly end: number;
}

export type LexResult =
  | { readonly ok: true; readonly tokens: readonly SqlToken[] }
  | { readonly ok: false; readonly reason: string; readonly at: number };

/** The sql_mode flags whose effect on reading SQL the lexer knows (all others are refused). */
const UNDERSTOOD_SQL_MODES = new Set([
  '',
  'ALLOW_INVALID_DATES',
  'ANSI',
  'ANSI_QUOTES',
  'ERROR_FOR_DIVISION_BY_ZERO',
  'HIGH_NOT_PRECEDENCE',
  'IGNORE_BAD_TABLE_OPTIONS',
  'IGNORE_SPACE',
  'NO_AUTO_CREATE_USER',
  'NO_AUTO_VALUE_ON_ZERO',
  'NO_BACKSLASH_ESCAPES',
  'NO_DIR_IN_CREATE',
  'NO_ENGINE_SUBSTITUTION',
  'NO_FIELD_OPTIONS',
  'NO_KEY_OPTIONS',
  'NO_TABLE_OPTIONS',
  'NO_UNSIGNED_SUBTRACTION',
  'NO_ZERO_DATE',
  'NO_ZERO_IN_DATE',
  'ONLY_FULL_GROUP_BY',
  'PAD_CHAR_TO_FULL_LENGTH',
  'PIPES_AS_CONCAT',
  'REAL_AS_FLOAT',
  'SIMULTANEOUS_ASSIGNMENT',
  'STRICT_ALL_TABLES',
  'STRICT_TRANS_TABLES',
  'TIME_ROUND_FRACTIONAL',
  'TIME_TRUNCATE_FRACTIONAL',
  'EMPTY_STRING_IS_NULL',
  'TRADITIONAL',
]);

/**
 * The dialect of a server, from `VERSION()` and `@@SESSION.sql_mode`. Throws
 * when the sql_mode holds a flag that changes how SQL is read in ways the
 * lexer does not follow (MariaDB's ORACLE and MSSQL modes, for instance).
 */
export function sqlDialect(version: string, sqlMode: string): SqlDialect {
  const flags = sqlMode
    .toUpperCase()
    .split(',')
    .map((flag) => flag.trim());
  const unknown = flags.filter((flag) => !UNDERSTOOD_SQL_MODES.has(flag));
  if (unknown.length > 0) throw new Error(`sql_mode ${unknown.join(', ')} changes how the server reads SQL in ways Dye does not follow`);
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!match) throw new Error(`cannot read the server version ${JSON.stringify(version)}`);
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return {
    flavor: /mariadb/i.test(version) ? 'mariadb' : 'mysql',
    version: major * 10000 + minor * 100 + patch,
    ansiQuotes: flags.includes('ANSI_QUOTES') || flags.includes('ANSI'),
    noBackslashEscapes: flags.includes('NO_BACKSLASH_ESCAPES'),
  };
}

/** A stable key of a dialect, for caches. */
export function dialectKey(dialect: SqlDialect): string {
  return `${dialect.flavor}/${dialect.version}/${dialect.ansiQuotes ? 'A' : '-'}${dialect.noBackslashEscapes ? 'N' : '-'}`;
}

// Character codes the lexer branches on.
const TAB = 0x09;
const CR = 0x0d;
const SPACE = 0x20;
const DOLLAR = 0x24;
const QUOTE = 0x27;
const DOUBLE_QUOTE = 0x22;
const BACKTICK = 0x60;
const HASH = 0x23;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;

const isSpace = (code: number) => code === SPACE || (code >= TAB && code <= CR);

function isWordChar(code: number): boolean {
  return (
    (code >= 48 && code <= 57) || // 0-9
    (code >= 65 && code <= 90) || // A-Z
    (code >= 97 && code <= 122) || // a-z
    code === 95 || // _
    code === DOLLAR ||
    code >= 0x80
  );
}

const isDigit = (code: number) => code >= 48 && code <= 57;

/** Tokenizes `sql` for `dialect`; refuses what the server might read otherwise. */
export function lexSql(sql: string, dialect: SqlDialect): LexResult {
  const tokens: SqlToken[] = [];
  const n = sql.length;
  let i = 0;
  // Inside an executed versioned comment (`/*!50000 … */`): its `*/` ends it.
  let inVersionedComment = false;
  const refuse = (reason: string, at: number): LexResult => ({ ok: false, reason, at });

  while (i < n) {
    const code = sql.charCodeAt(i);
    if (isSpace(code)) {
      i++;
      continue;
    }
    if (isWordChar(code)) {
      let j = i + 1;
      while (j < n && isWordChar(sql.charCodeAt(j))) j++;
      // MySQL 9 reads `$tag$ … $tag$` as a string; a `$` name is never needed.
      if (code === DOLLAR) return refuse('a word starting with $', i);
      if (j === i + 1 && sql.charCodeAt(j) === QUOTE && (code === 0x78 || code === 0x58 || code === 0x62 || code === 0x42)) {
        // X'4142' and B'0101': the server reads up to the next quote, no escapes.
        const end = sql.indexOf("'", j + 1);
        if (end === -1) return refuse('an unterminated hex or bit literal', i);
        const digits = sql.slice(j + 1, end);
        if (!(code === 0x78 || code === 0x58 ? /^[0-9a-fA-F]*$/ : /^[01]*$/).test(digits))
          return refuse('a malformed hex or bit literal', i);
        tokens.push({ kind: 'string', text: sql.slice(i, end + 1), start: i, end: end + 1 });
        i = end + 1;
        continue;
      }
      tokens.push({ kind: 'word', text: sql.slice(i, j), start: i, end: j });
      i = j;
      continue;
    }
    if (code === QUOTE || (code === DOUBLE_QUOTE && !dialect.ansiQuotes)) {
      const end = stringEnd(sql, i, code, !dialect.noBackslashEscapes);
      if (end < 0) return refuse('an unterminated string', i);
      tokens.push({ kind: 'string', text: sql.slice(i, end), start: i, end });
      i = end;
      continue;
    }
    if (code === BACKTICK || code === DOUBLE_QUOTE) {
      const end = stringEnd(sql, i, code, false);
      if (end < 0) return refuse('an unterminated quoted identifier', i);
      const quote = code === BACKTICK ? '`' : '"';
      const name = sql.slice(i + 1, end - 1).replaceAll(quote + quote, quote);
      // The server stops reading a quoted name at a NUL byte.
      if (name.includes('\u0000')) return refuse('a NUL character in a quoted identifier', i);
      tokens.push({ kind: 'identifier', text: name, start: i, end });
      i = end;
      continue;
    }
    if (code === HASH || (code === DASH && sql.charCodeAt(i + 1) === DASH && isDashCommentEnd(sql, i + 2))) {
      // A line comment inside an executed versioned comment swallows its `*/`.
      if (inVersionedComment) return refuse('a line comment inside a versioned comment', i);
      const end = sql.indexOf('\n', i);
      i = end === -1 ? n : end + 1;
      continue;
    }
    if (code === SLASH && sql.charCodeAt(i + 1) === STAR) {
      if (inVersionedComment) return refuse('a comment nested in a versioned comment', i);
      const versioned = readVersionedComment(sql, i, dialect);
      if (versioned.kind === 'refuse') return refuse(versioned.reason, i);
      if (versioned.kind === 'execute') {
        inVersionedComment = true;
        i = versioned.contentStart;
        continue;
      }
      // A comment the server skips: `/* … */`, or a versioned one for another version.
      const end = sql.indexOf('*/', i + 2);
      if (end === -1) return refuse('an unterminated comment', i);
      const nested = sql.indexOf('/*', i + 2);
      if (nested !== -1 && nested < end) return refuse('a nested comment', i);
      i = end + 2;
      continue;
    }
    if (code === STAR && sql.charCodeAt(i + 1) === SLASH && inVersionedComment) {
      inVersionedComment = false;
      i += 2;
      continue;
    }
    // `\N` is NULL to the server, and `\` swallows the character after it.
    if (code === BACKSLASH) return refuse('a backslash outside a string', i);
    if (code < 0x20 || code === 0x7f) return refuse(`the control character U+${code.toString(16).padStart(4, '0')}`, i);
    if (code === SEMICOLON && inVersionedComment) return refuse('a statement end inside a versioned comment', i);
    tokens.push({ kind: 'punct', text: sql[i] as string, start: i, end: i + 1 });
    i++;
  }
  if (inVersionedComment) return refuse('an unterminated versioned comment', n);
  return { ok: true, tokens };
}

/**
 * `--` starts a comment only when followed by whitespace or a control
 * character (or the end of the text): the server's my_isspace/my_iscntrl, which
 * are ASCII-only. A non-breaking space after `--` is not a comment to it.
 */
function isDashCommentEnd(sql: string, at: number): boolean {
  if (at >= sql.length) return true;
  const code = sql.charCodeAt(at);
  return code <= 0x20 || code === 0x7f;
}

/** Index after the closing quote, or -1. Doubled quotes, and backslash escapes when `escapes`. */
function stringEnd(sql: string, start: number, quote: number, escapes: boolean): number {
  let i = start + 1;
  const n = sql.length;
  while (i < n) {
    const code = sql.charCodeAt(i);
    if (escapes && code === BACKSLASH) {
      i += 2;
      continue;
    }
    if (code === quote) {
      if (sql.charCodeAt(i + 1) === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return -1;
}

type VersionedComment =
  | { readonly kind: 'execute'; readonly contentStart: number }
  | { readonly kind: 'skip' }
  | { readonly kind: 'refuse'; readonly reason: string };

/** What the server does with the comment at `start` (`/*` seen). */
function readVersionedComment(sql: string, start: number, dialect: SqlDialect): VersionedComment {
  const mariaMarker = dialect.flavor === 'mariadb' && sql[start + 2] === 'M' && sql[start + 3] === '!';
  if (sql[start + 2] !== '!' && !mariaMarker) return { kind: 'skip' };
  let at = start + (mariaMarker ? 4 : 3);
  const digits = (count: number) => {
    for (let k = 0; k < count; k++) if (!isDigit(sql.charCodeAt(at + k))) return false;
    return true;
  };
  // Without a version number the content always runs.
  if (!digits(5)) return { kind: 'execute', contentStart: at };
  let length = 5;
  if (isDigit(sql.charCodeAt(at + 5))) {
    // MariaDB reads six digits; MySQL reads six only before whitespace, and
    // only since 8.0.34: which one a given server does is not worth guessing.
    if (dialect.flavor === 'mysql') return { kind: 'refuse', reason: 'a six-digit versioned comment' };
    length = 6;
  }
  const version = Number(sql.slice(at, at + length));
  at += length;
  const runs =
    dialect.flavor === 'mariadb'
      ? version <= dialect.version && (version < 50700 || version > 99999 || mariaMarker)
      : version <= dialect.version;
  if (runs) return { kind: 'execute', contentStart: at };
  // Skipped versioned comments may hold one nested comment on the server: refused by the caller.
  return { kind: 'skip' };
}

/** The tokens of each statement of a multi-statement text, split at top-level `;`. */
export function splitStatements(tokens: readonly SqlToken[]): SqlToken[][] {
  const statements: SqlToken[][] = [];
  let current: SqlToken[] = [];
  for (const token of tokens) {
    if (token.kind === 'punct' && token.text === ';') {
      if (current.length > 0) statements.push(current);
      current = [];
      continue;
    }
    current.push(token);
  }
  if (current.length > 0) statements.push(current);
  return statements;
}
