import { currentTenant } from './context.js';

/** The fields {@link tenantLogMixin} adds to a log line. */
export interface TenantLogFields {
  /** The tenant of the work that logged: `baseline`, a color or an isolated tenant. */
  tenant: string;
}

/**
 * A pino `mixin`: adds `tenant` to every log line, read when the line is
 * written, so one logger serves every tenant.
 *
 * ```ts
 * const log = pino({ mixin: tenantLogMixin });
 * withTenant('red', () => log.info('reserved')); // {"tenant":"red","msg":"reserved",…}
 * ```
 *
 * It takes no arguments, so it also fits winston's `format((info) => ({ ...info, ...tenantLogMixin() }))`
 * and any logger that merges an object into each line.
 */
export function tenantLogMixin(): TenantLogFields {
  return { tenant: currentTenant().name };
}
