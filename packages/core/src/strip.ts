import { parseBaggage, serializeBaggage } from './baggage.js';
import { BAGGAGE_HEADER, TENANT_HEADER } from './codec.js';

/**
 * Headers that carry a tenant: Dye's own, and the tenant member of other
 * propagation formats a downstream library may honour (Jaeger's `uberctx-`,
 * OpenTracing's `ot-baggage-`, grpc-gateway's `grpc-metadata-` prefix, which
 * becomes gRPC metadata), and Jaeger's `jaeger-baggage` (`k=v, k=v` that
 * Jaeger clients turn into baggage), dropped whole: a debug header, not worth
 * a parser of its own. Compared with `_` read as `-`: some proxies and
 * CGI-style frameworks turn one into the other.
 */
const TENANT_HEADER_NAMES = new Set([
  TENANT_HEADER,
  'uberctx-tenant',
  'ot-baggage-tenant',
  'grpc-metadata-x-tenant',
  'grpc-metadata-tenant',
  'jaeger-baggage',
]);

/**
 * Whether a header name carries a tenant in any propagation format the edge
 * strips (`x-tenant`, `uberctx-tenant`, `ot-baggage-tenant`,
 * `grpc-metadata-x-tenant`, `grpc-metadata-tenant`; `_` read as `-`), in any
 * case. `baggage` is not one: its tenant is a member, not the whole header.
 */
export function isTenantHeaderName(name: string): boolean {
  const lower = name.toLowerCase();
  return TENANT_HEADER_NAMES.has(lower.includes('_') ? lower.replaceAll('_', '-') : lower);
}

export interface StripReport {
  /** Tenant header values removed (`x-tenant`, `uberctx-tenant`, `ot-baggage-tenant`, `grpc-metadata-x-tenant`, with `_` for `-`, any case). */
  headers: number;
  /** Baggage members removed because their key decodes to `tenant`. */
  baggageMembers: number;
  /** Baggage headers dropped whole because they could not be parsed safely. */
  baggageDropped: number;
}

function isTenantCarrierName(lower: string): boolean {
  return isTenantHeaderName(lower) || lower === BAGGAGE_HEADER;
}

function emptyReport(): StripReport {
  return { headers: 0, baggageMembers: 0, baggageDropped: 0 };
}

/**
 * Removes every form of tenant input from parsed headers (any key case) and,
 * when given, from Node's `rawHeaders` list, so whatever reads either later sees
 * no tenant. Other baggage members survive as they were sent; a baggage header
 * that cannot be parsed (oversized, too many members) is dropped whole, since a
 * tenant inside it could not be removed with certainty.
 */
export function stripTenantInput(headers: Record<string, unknown>, rawHeaders?: string[]): StripReport {
  const report = emptyReport();
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (isTenantHeaderName(lower)) {
      const value = headers[name];
      report.headers += Array.isArray(value) ? value.length : 1;
      delete headers[name];
    } else if (lower === BAGGAGE_HEADER) {
      const cleaned = cleanBaggage(headers[name], report);
      if (cleaned === undefined) delete headers[name];
      else headers[name] = cleaned;
    }
  }
  if (rawHeaders && rawHeaders.some((entry, index) => index % 2 === 0 && isTenantCarrierName(entry.toLowerCase()))) {
    const kept: string[] = [];
    const scratch = emptyReport();
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string;
      const lower = name.toLowerCase();
      if (isTenantHeaderName(lower)) continue;
      if (lower === BAGGAGE_HEADER) {
        const cleaned = cleanBaggage(rawHeaders[i + 1], scratch);
        if (cleaned !== undefined) kept.push(name, cleaned);
        continue;
      }
      kept.push(name, rawHeaders[i + 1] as string);
    }
    rawHeaders.length = 0;
    rawHeaders.push(...kept);
  }
  return report;
}

function cleanBaggage(value: unknown, report: StripReport): string | undefined {
  const values = Array.isArray(value) ? value : [value];
  if (!values.every((item): item is string => typeof item === 'string')) {
    report.baggageDropped++;
    return undefined;
  }
  const parsed = parseBaggage(values);
  if (!parsed.ok) {
    report.baggageDropped++;
    return undefined;
  }
  const tenantMembers = parsed.members.filter((member) => member.isTenant).length;
  if (tenantMembers === 0) return values.join(',');
  report.baggageMembers += tenantMembers;
  const { header } = serializeBaggage(parsed.members, undefined);
  return header.length > 0 ? header : undefined;
}

/**
 * Makes Node's `rawHeaders` agree with parsed headers for the given names:
 * removes every raw entry of those names and appends the parsed values.
 */
export function syncRawHeaders(rawHeaders: string[], headers: Record<string, unknown>, names: readonly string[]): void {
  const wanted = new Set(names);
  let present = names.some((name) => headers[name] !== undefined);
  for (let i = 0; !present && i < rawHeaders.length; i += 2) present = wanted.has((rawHeaders[i] as string).toLowerCase());
  // Nothing of these names on either side: the common baseline case, no rebuild.
  if (!present) return;
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (!wanted.has((rawHeaders[i] as string).toLowerCase())) kept.push(rawHeaders[i] as string, rawHeaders[i + 1] as string);
  }
  for (const name of names) {
    const value = headers[name];
    if (typeof value === 'string') kept.push(name, value);
  }
  rawHeaders.length = 0;
  rawHeaders.push(...kept);
}
