import {
  BASELINE,
  decideMessageTenant,
  getDefaultPolicy,
  logWarning,
  type MessageTenant,
  type Tenant,
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

export type { MessageTenant } from '@dye/core';

/** The tenant a consumed message's headers carry (see decideMessageTenant in @dye/core). */
export function messageTenant(headers: IHeaders | undefined, policy: TenantPolicy = getDefaultPolicy()): MessageTenant {
  return decideMessageTenant(headers, kafkaHeaders, 'kafka', policy);
}
