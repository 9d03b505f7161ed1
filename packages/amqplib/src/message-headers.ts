import {
  BAGGAGE_HEADER,
  BASELINE,
  decideMessageTenant,
  getDefaultPolicy,
  injectTenant,
  logWarning,
  type MessageTenant,
  TENANT_HEADER,
  type Tenant,
  type TenantPolicy,
  type TenantSetter,
} from '@dye/core';
import type { Options } from 'amqplib';

/** An AMQP header table as amqplib encodes and decodes it. */
export type AmqpHeaders = Record<string, unknown>;

// What a tenant header holding a number, a table or a timestamp reads as: a
// name no tenant can have, so the input counts as malformed (baseline, logged).
const NOT_TEXT = '[not text]';

function collect(found: (string | Uint8Array)[], value: unknown): void {
  if (typeof value === 'string' || value instanceof Uint8Array) found.push(value);
  else if (Array.isArray(value)) for (const item of value) collect(found, item);
  else if (value !== undefined && value !== null) found.push(NOT_TEXT);
}

/**
 * Reads and writes Dye's tenant keys on AMQP header tables. Keys are read in
 * any case (producers in other languages may send `X-Tenant`), and inherited
 * keys count: amqplib encodes a table with `for…in`.
 */
export const amqpHeaders: TenantSetter<AmqpHeaders> = {
  get(headers, key) {
    let found: (string | Uint8Array)[] | undefined;
    for (const name in headers) {
      if (name.length !== key.length || name.toLowerCase() !== key) continue;
      found ??= [];
      collect(found, headers[name]);
    }
    return found !== undefined && found.length === 0 ? undefined : found;
  },
  set(headers, key, value) {
    amqpHeaders.remove(headers, key);
    headers[key] = value;
  },
  remove(headers, key) {
    for (const name in headers) {
      if (name.length !== key.length || name.toLowerCase() !== key) continue;
      // An inherited key cannot be deleted from a copy: shadow it with undefined, which amqplib skips.
      if (Object.hasOwn(headers, name)) delete headers[name];
      if (name in headers) headers[name] = undefined;
    }
  },
};

/** Whether publish options carry tenant headers of their own (which Dye replaces). */
export function hasTenantHeaders(options: Options.Publish | undefined): boolean {
  const headers = options?.headers as AmqpHeaders | undefined;
  if (headers === undefined || headers === null) return false;
  return amqpHeaders.get(headers, TENANT_HEADER) !== undefined || amqpHeaders.get(headers, BAGGAGE_HEADER) !== undefined;
}

// Publish options of a message given without headers, per tenant: made once.
// amqplib only reads them (its own headers object inherits from ours), and a
// fresh object per message would cost more than the rest of the shadow path.
const BARE_STAMPED = new Map<string, Options.Publish>();
const MAX_BARE_STAMPED = 256;

/**
 * A copy of publish options whose headers carry `tenant` (`x-tenant` and the
 * baggage member `tenant=`), whatever tenant headers the caller put there;
 * for baseline, without any. The caller's objects are never changed.
 */
export function stampedOptions(options: Options.Publish | undefined, tenant: Tenant): Options.Publish {
  if (options === undefined || (options.headers === undefined && Object.keys(options).length === 0)) {
    let stamped = BARE_STAMPED.get(tenant.name);
    if (stamped === undefined) {
      stamped = Object.freeze({ headers: Object.freeze(stampHeaders(undefined, tenant)) });
      if (BARE_STAMPED.size >= MAX_BARE_STAMPED) BARE_STAMPED.clear();
      BARE_STAMPED.set(tenant.name, stamped);
    }
    return stamped;
  }
  return { ...options, headers: stampHeaders(options.headers as AmqpHeaders | undefined, tenant) };
}

function stampHeaders(given: AmqpHeaders | undefined, tenant: Tenant): AmqpHeaders {
  // No prototype: a header named `__proto__` (JSON-parsed input) stays a header, never the copy's prototype.
  const headers: AmqpHeaders = Object.create(null);
  // for…in, as amqplib encodes: inherited headers travel too.
  if (given !== undefined && given !== null) for (const name in given) headers[name] = given[name];
  injectTenant(headers, amqpHeaders, tenant);
  return headers;
}

export type { MessageTenant } from '@dye/core';

/** The tenant a consumed message's headers carry (see decideMessageTenant in @dye/core). */
export function messageTenant(headers: AmqpHeaders | undefined, policy: TenantPolicy = getDefaultPolicy()): MessageTenant {
  return decideMessageTenant(headers, amqpHeaders, 'amqp', policy);
}
