/**
 * How the codec reads and writes headers on the things that carry them. Adapters
 * bring their own (gRPC metadata, Kafka headers); core ships the HTTP ones.
 */

/** A raw header value as carriers hold it; Buffers are read as UTF-8. */
export type CarrierValue = string | Uint8Array | readonly (string | Uint8Array)[] | undefined;

export interface TenantGetter<C> {
  /** All values of header `key` (lowercase), in any case the carrier holds it. */
  get(carrier: C, key: string): CarrierValue;
}

export interface TenantSetter<C> extends TenantGetter<C> {
  /** Replaces every value of header `key`, in any case, by `value`. */
  set(carrier: C, key: string, value: string): void;
  /** Removes every value of header `key`, in any case. */
  remove(carrier: C, key: string): void;
}

/** A Fetch-API `Headers`, or anything with its get/set/delete. */
export interface HeadersLike {
  get(name: string): string | null;
  set(name: string, value: string): void;
  delete(name: string): void;
}

/**
 * Node's `IncomingHttpHeaders` / `OutgoingHttpHeaders` as Node builds them: keys
 * already lowercase, values a string or an array of strings.
 */
export const nodeHeaders: TenantSetter<Record<string, unknown>> = {
  get(carrier, key) {
    return asCarrierValue(carrier[key]);
  },
  set(carrier, key, value) {
    carrier[key] = value;
  },
  remove(carrier, key) {
    // `delete` of a missing key still takes V8's slow path: check first.
    if (carrier[key] !== undefined) delete carrier[key];
  },
};

/** Fetch `Headers` (undici, browsers): case-insensitive, repeated values joined by `, `. */
export const fetchHeaders: TenantSetter<HeadersLike> = {
  get(carrier, key) {
    return carrier.get(key) ?? undefined;
  },
  set(carrier, key, value) {
    carrier.set(key, value);
  },
  remove(carrier, key) {
    carrier.delete(key);
  },
};

/**
 * A plain object whose keys may be in any case (`{ 'X-Tenant': 'red' }`). Every
 * spelling of a key counts, so `X-Tenant` and `x-tenant` in one object are read
 * together (and conflict if they differ).
 */
export const objectHeaders: TenantSetter<Record<string, unknown>> = {
  get(carrier, key) {
    let found: (string | Uint8Array)[] | undefined;
    for (const name of Object.keys(carrier)) {
      if (name.length !== key.length || name.toLowerCase() !== key) continue;
      const value = asCarrierValue(carrier[name]);
      if (value === undefined) continue;
      found ??= [];
      if (typeof value === 'string' || value instanceof Uint8Array) found.push(value);
      else found.push(...value);
    }
    return found;
  },
  set(carrier, key, value) {
    objectHeaders.remove(carrier, key);
    carrier[key] = value;
  },
  remove(carrier, key) {
    for (const name of Object.keys(carrier)) {
      if (name.length === key.length && name.toLowerCase() === key) delete carrier[name];
    }
  },
};

/** Picks the accessor for a carrier: Fetch `Headers` or a plain object. */
export function defaultAccessor<C>(carrier: C): TenantSetter<C> {
  if (isHeadersLike(carrier)) return fetchHeaders as unknown as TenantSetter<C>;
  return objectHeaders as unknown as TenantSetter<C>;
}

function isHeadersLike(carrier: unknown): carrier is HeadersLike {
  return (
    typeof carrier === 'object' &&
    carrier !== null &&
    typeof (carrier as HeadersLike).get === 'function' &&
    typeof (carrier as HeadersLike).set === 'function' &&
    typeof (carrier as HeadersLike).delete === 'function'
  );
}

function asCarrierValue(value: unknown): CarrierValue {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value as (string | Uint8Array)[];
  // Numbers and other oddities of OutgoingHttpHeaders: a tenant is never one of them.
  return String(value);
}
