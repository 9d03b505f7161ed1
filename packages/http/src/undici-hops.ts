import { subscribe } from 'node:diagnostics_channel';
import { BAGGAGE_HEADER, getDefaultPolicy, isolationRefusal, parseBaggage, serializeBaggage, TENANT_HEADER } from '@dye/core';
import type { EgressPolicy } from './egress.js';

/**
 * The last check on every undici request about to be written, wherever it was
 * dispatched from: a redirect or retry interceptor composed *inside* the
 * dispatcher Dye wraps re-sends the headers Dye wrote without passing Dye's
 * interceptor again. A hop to a host no Dye egress policy calls internal loses
 * its tenant headers, and an isolated tenant's hop there fails before a byte is
 * written. It reads undici's `undici:request:create` diagnostics channel, which
 * undici publishes for every request of every dispatcher, Node's own fetch
 * included.
 */
const policies = new Set<EgressPolicy>();
let subscribed = false;

export function guardUndiciHops(egress: EgressPolicy): void {
  policies.add(egress);
  if (subscribed) return;
  subscribed = true;
  subscribe('undici:request:create', (message) => checkHop((message as { request: UndiciRequest }).request));
}

interface UndiciRequest {
  origin?: unknown;
  /** undici 6 and 7: a flat [name, value, name, value…] list. */
  headers?: unknown;
  /** Set before the request is written, undici fails it with this error instead of sending it. */
  error?: Error | null;
}

function checkHop(request: UndiciRequest): void {
  const headers = request.headers;
  if (!Array.isArray(headers)) return;
  // Names first: most requests carry neither header and end here.
  let named: string | undefined;
  let baggage = false;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = String(headers[i]).toLowerCase();
    if (name === TENANT_HEADER) named = String(headers[i + 1]);
    else if (name === BAGGAGE_HEADER) baggage = true;
  }
  if (named === undefined && !baggage) return;
  let host: string;
  try {
    host = new URL(String(request.origin)).hostname;
  } catch {
    return;
  }
  for (const policy of policies) if (policy.isInternal(host)) return;
  if (named === undefined && !baggageNamesTenant(headers)) return;
  const resolved = named === undefined ? undefined : getDefaultPolicy().resolve(named);
  if (resolved?.ok && resolved.tenant.kind === 'isolated') {
    request.error = isolationRefusal('http', {
      tenant: resolved.tenant.name,
      refused: `a request to ${String(request.origin)} (a redirect or retry inside the wrapped dispatcher)`,
      reason: 'the host is outside the system; a load test must not reach third parties',
    });
  }
  // Nothing about tenants leaves for an outside host.
  const kept: unknown[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = String(headers[i]).toLowerCase();
    if (name === TENANT_HEADER) continue;
    if (name === BAGGAGE_HEADER) {
      const parsed = parseBaggage([String(headers[i + 1])]);
      const header = parsed.ok ? serializeBaggage(parsed.members, undefined).header : '';
      if (header.length > 0) kept.push(headers[i], header);
      continue;
    }
    kept.push(headers[i], headers[i + 1]);
  }
  headers.length = 0;
  headers.push(...kept);
}

/** Whether a baggage header names a tenant (or cannot be parsed, so might). */
function baggageNamesTenant(headers: unknown[]): boolean {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (String(headers[i]).toLowerCase() !== BAGGAGE_HEADER) continue;
    const parsed = parseBaggage([String(headers[i + 1])]);
    if (!parsed.ok || parsed.members.some((member) => member.isTenant)) return true;
  }
  return false;
}
