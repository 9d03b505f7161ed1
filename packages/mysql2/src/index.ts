export type {
  Drift,
  DriftKind,
  ShadowSchemaOptions,
  ShadowSchemaReport,
  SyncShadowSchemaOptions,
  SyncShadowSchemaResult,
} from './shadow-schema.js';
export { checkShadowSchema, syncShadowSchema } from './shadow-schema.js';
export type { GuardVerdict, SqlGuardOptions } from './sql-guard.js';
export { checkIsolatedSql, tokenize } from './sql-guard.js';
export type { TenantPool, TenantPoolConnection, TenantPoolOptions } from './tenant-pool.js';
export { createTenantPool } from './tenant-pool.js';
