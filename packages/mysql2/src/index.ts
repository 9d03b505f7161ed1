export type { GrantShadowAccessOptions, GrantShadowAccessResult } from './grant-shadow-access.js';
export { grantShadowAccess, SHADOW_PRIVILEGES } from './grant-shadow-access.js';
export type { GrantLine, GrantProblem } from './grants.js';
export { escapeGrantDatabase, grantProblems, literalGrantDatabase, parseGrantLine } from './grants.js';
export type { ShadowAccountReport } from './shadow-account.js';
export { inspectShadowAccount, isolatedDatabasePredicate } from './shadow-account.js';
export type {
  Drift,
  DriftKind,
  ElevatedObject,
  ForeignReference,
  ShadowSchemaOptions,
  ShadowSchemaReport,
  SyncShadowSchemaOptions,
  SyncShadowSchemaResult,
} from './shadow-schema.js';
export { checkShadowSchema, syncShadowSchema } from './shadow-schema.js';
export type { GuardVerdict, SqlGuardOptions } from './sql-guard.js';
export { ALLOWED_SESSION_VARIABLES, checkIsolatedSql, createSqlGuard, DEFAULT_DIALECT, refusedCalls } from './sql-guard.js';
export type { LexResult, SqlDialect, SqlToken, SqlTokenKind } from './sql-lexer.js';
export { lexSql, splitStatements, sqlDialect } from './sql-lexer.js';
export type { QueryArgument, TenantCallbackConnection, TenantPoolConnection, TenantQuery } from './tenant-connection.js';
export type { TenantPool, TenantPoolOptions } from './tenant-pool.js';
export { createTenantPool, ISOLATED_CONNECTION_LIMIT, ISOLATED_PREPARED_STATEMENTS, MAX_ISOLATED_TENANTS } from './tenant-pool.js';
