import type { TenantGetter } from './carriers.js';
import { readTenantInput } from './codec.js';
import { TenantConflictError } from './errors.js';
import { logWarning } from './log.js';
import { getDefaultPolicy, type TenantPolicy } from './policy.js';
import { BASELINE, type Tenant } from './tenant.js';

/** The tenant a consumed message carries, or why it has none Dye may act on. */
export type MessageTenant =
  | { readonly ok: true; readonly tenant: Tenant }
  | { readonly ok: false; readonly reason: string; readonly names: readonly string[] };

/**
 * The tenant a consumed message's headers carry, for every message broker
 * adapter alike. No headers → baseline; malformed → baseline with a log line
 * (`dye.<source>.malformed`); two different tenants → not ok (dead-letter it,
 * never guess). Where a message was read (an isolated topic or queue) decides
 * first; that is the adapter's to apply.
 */
export function decideMessageTenant<C>(
  headers: C | undefined | null,
  getter: TenantGetter<C>,
  source: string,
  policy: TenantPolicy = getDefaultPolicy(),
): MessageTenant {
  if (headers === undefined || headers === null) return { ok: true, tenant: BASELINE };
  const input = readTenantInput(headers, getter);
  switch (input.kind) {
    case 'none':
      return { ok: true, tenant: BASELINE };
    case 'conflict':
      return { ok: false, reason: new TenantConflictError(input.names).message, names: input.names };
    case 'malformed':
      logWarning(`dye.${source}.malformed`, `message with malformed tenant headers processed as baseline: ${input.reason}`);
      return { ok: true, tenant: BASELINE };
    case 'named': {
      const resolved = policy.resolve(input.name);
      return { ok: true, tenant: resolved.ok ? resolved.tenant : BASELINE };
    }
  }
}
