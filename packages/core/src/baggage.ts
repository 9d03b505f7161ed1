/**
 * The parts of W3C Baggage (https://www.w3.org/TR/baggage/) that tenant
 * propagation needs: split a header into members, find the members that carry a
 * tenant however they are spelled, and write a header back within the limits.
 * Members Dye does not own are kept as the sender wrote them.
 */

/** W3C Baggage: a header of at most 8192 bytes must be accepted. */
export const MAX_BAGGAGE_BYTES = 8192;
/** W3C Baggage asks for at least 64 members; OpenTelemetry JS accepts 180. */
export const MAX_BAGGAGE_MEMBERS = 180;
/** The baggage key Dye writes and reads. */
export const TENANT_BAGGAGE_KEY = 'tenant';

export interface BaggageMember {
  /** The member as sent, trimmed of surrounding whitespace. */
  readonly raw: string;
  /** True when the key, percent-decoded, trimmed and case-folded, is `tenant`. */
  readonly isTenant: boolean;
  /** For tenant members: the percent-decoded, trimmed value; undefined when missing or undecodable. */
  readonly value: string | undefined;
}

export type ParsedBaggage =
  | { readonly ok: true; readonly members: readonly BaggageMember[] }
  | { readonly ok: false; readonly reason: string };

/** Trims the optional whitespace (spaces and tabs) that W3C allows around members, keys and values. */
function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isOws(text.charCodeAt(start))) start++;
  while (end > start && isOws(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

const PERCENT_TRIPLET = /%[0-9a-fA-F]{2}/g;

/**
 * Percent-decodes what is validly encoded and leaves the rest literal, so that a
 * stray `%` cannot hide a key from the check (`ten%61nt` is `tenant`, `%ZZ` stays).
 * Multi-byte sequences that are not UTF-8 decode byte by byte to Latin-1, which
 * never equals `tenant`, so nothing is lost for the check.
 */
export function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text.replace(/%(?![0-9a-fA-F]{2})/g, '%25'));
  } catch {
    return text.replace(PERCENT_TRIPLET, (triplet) => String.fromCharCode(Number.parseInt(triplet.slice(1), 16)));
  }
}

// Besides what String.prototype.trim removes: what Python's str.strip removes
// too (U+001C–U+001F, U+0085), and `+`, which form-style decoders
// (`unquote_plus`) read as a space.
const EXTRA_EDGE = /^[\s\x1c-\x1f\x85+]+|[\s\x1c-\x1f\x85+]+$/g;
const NEEDS_NORMALIZING = /[%+\x1c-\x1f\x85]/;

/**
 * Whether a raw baggage key names the tenant, in any spelling a parser might
 * accept: trimmed as OpenTelemetry's W3C propagator trims
 * (`String.prototype.trim`, so every Unicode space and line terminator, not
 * just the spaces and tabs W3C allows) and as other languages' propagators do
 * (Python's `unquote_plus(key).strip()`: `+` as a space, U+001C–U+001F and
 * U+0085 as spaces), percent-decoded, case-folded.
 */
export function isTenantBaggageKey(rawKey: string): boolean {
  const key = rawKey.trim();
  // Fast exit for the common case: a plain key that is not six letters long.
  if (key.length !== TENANT_BAGGAGE_KEY.length && !NEEDS_NORMALIZING.test(key)) return false;
  return percentDecode(key).replace(EXTRA_EDGE, '').trim().toLowerCase() === TENANT_BAGGAGE_KEY;
}

/**
 * Splits baggage header values (several headers count as one list) into members.
 * Fails on more than {@link MAX_BAGGAGE_BYTES} bytes or {@link MAX_BAGGAGE_MEMBERS}
 * members: a tenant must not be read from a header the next hop would drop.
 */
export function parseBaggage(values: readonly string[]): ParsedBaggage {
  let bytes = 0;
  for (const value of values) bytes += Buffer.byteLength(value, 'utf8');
  bytes += Math.max(0, values.length - 1); // the commas that join repeated headers
  if (bytes > MAX_BAGGAGE_BYTES) return { ok: false, reason: `baggage of ${bytes} bytes exceeds ${MAX_BAGGAGE_BYTES}` };

  const members: BaggageMember[] = [];
  for (const value of values) {
    for (const part of value.split(',')) {
      const raw = trimOws(part);
      if (raw.length === 0) continue;
      if (members.length === MAX_BAGGAGE_MEMBERS) {
        return { ok: false, reason: `baggage has more than ${MAX_BAGGAGE_MEMBERS} members` };
      }
      members.push(parseMember(raw));
    }
  }
  return { ok: true, members };
}

export type ScannedTenantMembers =
  | { readonly ok: true; readonly values: readonly (string | undefined)[] }
  | { readonly ok: false; readonly reason: string };

/**
 * The tenant members of baggage header values, without building the others:
 * the hot path of every inbound request. Same limits and same key rules as
 * {@link parseBaggage}; each value is undefined when missing or malformed.
 */
export function scanTenantMembers(values: readonly string[]): ScannedTenantMembers {
  let units = values.length - 1;
  for (const value of values) units += value.length;
  // A UTF-16 unit is at most 3 UTF-8 bytes: count bytes only when it can matter.
  if (units * 3 > MAX_BAGGAGE_BYTES) {
    let bytes = values.length - 1;
    for (const value of values) bytes += Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_BAGGAGE_BYTES) return { ok: false, reason: `baggage of ${bytes} bytes exceeds ${MAX_BAGGAGE_BYTES}` };
  }
  let found: (string | undefined)[] | undefined;
  let members = 0;
  for (const value of values) {
    const length = value.length;
    let start = 0;
    while (start <= length) {
      const comma = value.indexOf(',', start);
      const end = comma === -1 ? length : comma;
      let first = start;
      let last = end;
      while (first < last && isOws(value.charCodeAt(first))) first++;
      while (last > first && isOws(value.charCodeAt(last - 1))) last--;
      start = end + 1;
      if (first === last) continue;
      if (++members > MAX_BAGGAGE_MEMBERS) return { ok: false, reason: `baggage has more than ${MAX_BAGGAGE_MEMBERS} members` };
      const equals = value.indexOf('=', first);
      let keyEnd = equals === -1 || equals > last ? last : equals;
      const semicolon = value.indexOf(';', first);
      if (semicolon !== -1 && semicolon < keyEnd) keyEnd = semicolon;
      let keyLast = keyEnd;
      while (keyLast > first && isOws(value.charCodeAt(keyLast - 1))) keyLast--;
      // Most keys are not six characters and hold no `%`: no allocation for them.
      if (keyLast - first !== TENANT_BAGGAGE_KEY.length) {
        const percent = value.indexOf('%', first);
        if (percent === -1 || percent >= keyLast) continue;
      }
      const member = parseMember(value.slice(first, last));
      if (member.isTenant) (found ??= []).push(member.value);
    }
  }
  return { ok: true, values: found ?? NO_VALUES };
}

const NO_VALUES: readonly (string | undefined)[] = Object.freeze([]);

function parseMember(raw: string): BaggageMember {
  const equals = raw.indexOf('=');
  const rawKey = equals === -1 ? raw : raw.slice(0, equals);
  // A key with properties but no value (`tenant;p`) is still the tenant key, malformed.
  const semicolon = rawKey.indexOf(';');
  const keyOnly = semicolon === -1 ? rawKey : rawKey.slice(0, semicolon);
  if (!isTenantBaggageKey(keyOnly)) return { raw, isTenant: false, value: undefined };
  if (equals === -1 || semicolon !== -1) return { raw, isTenant: true, value: undefined };
  const valueEnd = raw.indexOf(';', equals + 1);
  const rawValue = valueEnd === -1 ? raw.slice(equals + 1) : raw.slice(equals + 1, valueEnd);
  return { raw, isTenant: true, value: trimOws(percentDecode(trimOws(rawValue))) };
}

/**
 * Writes a baggage header: `tenant=<name>` first (when given), then the other
 * members in their original order, dropping from the end what would exceed the
 * limits so the tenant always survives. Returns the header and how many members
 * were dropped; an empty string means "no baggage header".
 */
export function serializeBaggage(others: readonly BaggageMember[], tenantName: string | undefined): { header: string; dropped: number } {
  const parts: string[] = [];
  let bytes = 0;
  if (tenantName !== undefined) {
    const member = `${TENANT_BAGGAGE_KEY}=${tenantName}`;
    parts.push(member);
    bytes = member.length;
  }
  let dropped = 0;
  for (const member of others) {
    if (member.isTenant) continue;
    const cost = Buffer.byteLength(member.raw, 'utf8') + (parts.length > 0 ? 1 : 0);
    if (parts.length >= MAX_BAGGAGE_MEMBERS || bytes + cost > MAX_BAGGAGE_BYTES) {
      dropped++;
      continue;
    }
    parts.push(member.raw);
    bytes += cost;
  }
  return { header: parts.join(','), dropped };
}
