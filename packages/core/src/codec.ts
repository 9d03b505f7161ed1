import { MAX_BAGGAGE_BYTES, parseBaggage, scanTenantMembers, serializeBaggage } from './baggage.js';
import { type CarrierValue, defaultAccessor, type TenantGetter, type TenantSetter } from './carriers.js';
import { currentTenant } from './context.js';
import { TenantConflictError } from './errors.js';
import { logWarning } from './log.js';
import { getDefaultPolicy, type TenantPolicy } from './policy.js';
import { BASELINE, checkTenantName, type Tenant } from './tenant.js';

/** The dedicated tenant header, on every hop. */
export const TENANT_HEADER = 'x-tenant';
/** The W3C baggage header; Dye's member is `tenant=<name>`. */
export const BAGGAGE_HEADER = 'baggage';

/** Largest `x-tenant` value read, in bytes (repeated headers counted together). */
export const MAX_TENANT_HEADER_BYTES = MAX_BAGGAGE_BYTES;

/**
 * What a carrier says about the tenant, before any policy is applied:
 * - `none`: no tenant input at all;
 * - `named`: one valid, case-folded tenant name (possibly repeated identically);
 * - `malformed`: input that cannot be trusted to mean anything (oversized, undecodable, invalid name);
 * - `conflict`: two or more different names.
 */
export type TenantInput =
  | { readonly kind: 'none' }
  | { readonly kind: 'named'; readonly name: string }
  | { readonly kind: 'malformed'; readonly reason: string }
  | { readonly kind: 'conflict'; readonly names: readonly string[] };

const NONE: TenantInput = Object.freeze({ kind: 'none' });

/** Reads both tenant sources of a carrier without deciding anything. Never throws. */
export function readTenantInput<C>(carrier: C, getter: TenantGetter<C> = defaultAccessor(carrier)): TenantInput {
  const headerValues = toStrings(getter.get(carrier, TENANT_HEADER));
  const baggageValues = toStrings(getter.get(carrier, BAGGAGE_HEADER));
  if (headerValues === undefined && baggageValues === undefined) return NONE;
  if (headerValues === null || baggageValues === null) return { kind: 'malformed', reason: 'header value is not text' };

  const names: string[] = [];
  if (headerValues !== undefined) {
    let units = 0;
    for (const value of headerValues) units += value.length;
    // A UTF-16 unit is at most 3 UTF-8 bytes: count bytes only when it can matter.
    if (units * 3 > MAX_TENANT_HEADER_BYTES) {
      let bytes = 0;
      for (const value of headerValues) bytes += Buffer.byteLength(value, 'utf8');
      if (bytes > MAX_TENANT_HEADER_BYTES) {
        return { kind: 'malformed', reason: `${TENANT_HEADER} of ${bytes} bytes exceeds ${MAX_TENANT_HEADER_BYTES}` };
      }
    }
    for (const value of headerValues) {
      if (!value.includes(',')) {
        const name = value.trim();
        if (name.length > 0) names.push(name);
        continue;
      }
      for (const item of value.split(',')) {
        const name = item.trim();
        if (name.length > 0) names.push(name);
      }
    }
  }
  if (baggageValues !== undefined) {
    const scanned = scanTenantMembers(baggageValues);
    if (!scanned.ok) return { kind: 'malformed', reason: scanned.reason };
    for (const value of scanned.values) {
      if (value === undefined || value.length === 0) {
        return { kind: 'malformed', reason: 'a baggage tenant member has no value' };
      }
      names.push(value);
    }
  }
  if (names.length === 0) return NONE;

  const distinct: string[] = [];
  for (const name of names) {
    // Validity first: one unreadable name makes the whole input malformed, not a conflict.
    const checked = checkTenantName(name);
    if (!checked.ok) return { kind: 'malformed', reason: checked.reason };
    if (!distinct.includes(checked.name)) distinct.push(checked.name);
  }
  if (distinct.length > 1) return { kind: 'conflict', names: distinct };
  return { kind: 'named', name: distinct[0] as string };
}

/**
 * Reads the tenant a carrier names, from `x-tenant` and the `baggage` member
 * `tenant=`. No input is baseline. Oversized or malformed input is baseline plus
 * one log line. Two different names throw {@link TenantConflictError}: answer 400
 * (HTTP) or INVALID_ARGUMENT (gRPC), never guess.
 *
 * This trusts the carrier: use it behind the edge. At a public entry point the
 * edge guard decides instead.
 */
export function extractTenant<C>(
  carrier: C,
  getter: TenantGetter<C> = defaultAccessor(carrier),
  policy: TenantPolicy = getDefaultPolicy(),
): Tenant {
  const input = readTenantInput(carrier, getter);
  switch (input.kind) {
    case 'none':
      return BASELINE;
    case 'conflict':
      throw new TenantConflictError(input.names);
    case 'malformed':
      logWarning('dye.codec.malformed', `ignored malformed tenant input, using baseline: ${input.reason}`);
      return BASELINE;
    case 'named': {
      const resolved = policy.resolve(input.name);
      // readTenantInput only yields valid names; a custom policy may still refuse one.
      if (resolved.ok) return resolved.tenant;
      logWarning('dye.codec.invalid-name', `ignored tenant name refused by the policy, using baseline: ${resolved.reason}`);
      return BASELINE;
    }
  }
}

/**
 * Writes `tenant` (default: the current one) onto an outbound carrier: sets
 * `x-tenant` and puts `tenant=<name>` first in `baggage`, keeping the other
 * baggage members. For baseline it removes both, so a copied inbound header can
 * never ride along. Members that would push baggage past the W3C limits are
 * dropped (with a log line) rather than the tenant.
 */
export function injectTenant<C>(carrier: C, setter: TenantSetter<C> = defaultAccessor(carrier), tenant: Tenant = currentTenant()): C {
  const baseline = tenant.kind === 'baseline';
  if (baseline) setter.remove(carrier, TENANT_HEADER);
  else setter.set(carrier, TENANT_HEADER, tenant.name);

  const existing = toStrings(setter.get(carrier, BAGGAGE_HEADER));
  if (existing === undefined || existing === null) {
    if (existing === null) setter.remove(carrier, BAGGAGE_HEADER);
    if (!baseline) setter.set(carrier, BAGGAGE_HEADER, `tenant=${tenant.name}`);
    return carrier;
  }
  const parsed = parseBaggage(existing);
  if (!parsed.ok) {
    logWarning('dye.codec.baggage-dropped', `dropped outbound baggage that cannot be forwarded: ${parsed.reason}`);
  }
  const { header, dropped } = serializeBaggage(parsed.ok ? parsed.members : [], baseline ? undefined : tenant.name);
  if (dropped > 0) {
    logWarning('dye.codec.baggage-truncated', `dropped ${dropped} baggage members to keep the tenant within W3C limits`);
  }
  if (header.length === 0) setter.remove(carrier, BAGGAGE_HEADER);
  else setter.set(carrier, BAGGAGE_HEADER, header);
  return carrier;
}

/**
 * Normalizes a carrier value to strings: undefined when absent, null when a value
 * is not text (then the whole input is malformed).
 */
function toStrings(value: CarrierValue | unknown): string[] | undefined | null {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return [value];
  if (value instanceof Uint8Array) return [Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')];
  if (!Array.isArray(value)) return null;
  if (value.length === 0) return undefined;
  const strings: string[] = [];
  for (const item of value) {
    if (typeof item === 'string') strings.push(item);
    else if (item instanceof Uint8Array) strings.push(Buffer.from(item.buffer, item.byteOffset, item.byteLength).toString('utf8'));
    else return null;
  }
  return strings;
}
