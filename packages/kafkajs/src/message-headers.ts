import {
  BASELINE,
  getDefaultPolicy,
  logWarning,
  readTenantInput,
  type Tenant,
  TenantConflictError,
  type TenantPolicy,
  type TenantSetter,
} from '@dye/core';
import type { IHeaders } from 'kafkajs';

/** Reads and writes Dye's tenant keys on Kafka headers (Buffers, strings or arrays of them). */
export const kafkaHeaders: TenantSetter<IHeaders> = {
  get(headers, key) {
    // Producers in other languages may send any case; read every spelling.
    let found: (string | Buffer)[] | undefined;
    for (const name of Object.keys(headers)) {
      if (name.length !== key.length || name.toLowerCase() !== key) continue;
      const value = headers[name];
      if (value === undefined) continue;
      found ??= [];
      if (Array.isArray(value)) found.push(...value);
      else found.push(value);
    }
    return found;
  },
  set(headers, key, value) {
    kafkaHeaders.remove(headers, key);
    headers[key] = value;
  },
  remove(headers, key) {
    for (const name of Object.keys(headers)) if (name.toLowerCase() === key) delete headers[name];
  },
};

export type MessageTenant =
  | { readonly ok: true; readonly tenant: Tenant }
  | { readonly ok: false; readonly reason: string; readonly names: readonly string[] };

/**
 * The tenant a consumed message carries. No headers → baseline; malformed →
 * baseline with a log line; two different tenants → not ok (dead-letter it,
 * never guess).
 */
export function messageTenant(headers: IHeaders | undefined, policy: TenantPolicy = getDefaultPolicy()): MessageTenant {
  if (!headers) return { ok: true, tenant: BASELINE };
  const input = readTenantInput(headers, kafkaHeaders);
  switch (input.kind) {
    case 'none':
      return { ok: true, tenant: BASELINE };
    case 'conflict':
      return { ok: false, reason: new TenantConflictError(input.names).message, names: input.names };
    case 'malformed':
      logWarning('dye.kafka.malformed', `message with malformed tenant headers processed as baseline: ${input.reason}`);
      return { ok: true, tenant: BASELINE };
    case 'named': {
      const resolved = policy.resolve(input.name);
      return { ok: true, tenant: resolved.ok ? resolved.tenant : BASELINE };
    }
  }
}
