import { defaultTextMapGetter, propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASELINE, createEdgeGuard, extractTenant, isTenantHeaderName, readTenantInput, setLogger, signTenantToken } from '../src/index.js';

const RUNS = 10_000;
const secret = 'p'.repeat(32);
const otherSecret = 'q'.repeat(32);

beforeAll(() => setLogger({ warn: () => {} }));
afterAll(() => setLogger({ warn: () => {} }));

const tenantName = fc.constantFrom('red', 'shadow', 'canary', 'shadow-lt1', 'RED', 'Shadow', 'baseline', '');
const headerName = fc.constantFrom(
  'x-tenant',
  'X-Tenant',
  'X-TENANT',
  'x_tenant',
  'baggage',
  'Baggage',
  'BAGGAGE',
  'x-tenant-token',
  'x-forwarded-for',
  'x-other',
);
const baggageKey = fc.constantFrom('tenant', 'TENANT', ' tenant ', 'ten%61nt', '%74enant', 'tenant;p', 'user', 'x');
const headerValue = fc.oneof(
  tenantName,
  fc.tuple(baggageKey, tenantName).map(([key, value]) => `${key}=${value}`),
  fc
    .array(
      fc.tuple(baggageKey, tenantName).map(([key, value]) => `${key}=${value}`),
      { maxLength: 4 },
    )
    .map((members) => members.join(', ')),
  fc.constantFrom('10.0.0.1', '10.0.0.1, 203.0.113.9', '127.0.0.1', 'unknown'),
  // Tokens a spoofer can make: signed with another key, for a tenant not allowed, expired, or garbage.
  fc.constantFrom(
    signTenantToken({ tenant: 'shadow', ttl: '1h' }, otherSecret),
    signTenantToken({ tenant: 'canary', ttl: '1h' }, secret),
    signTenantToken({ tenant: 'shadow', ttl: 60, now: new Date(Date.now() - 3_600_000) }, secret),
    'dye1.e30.AAAA',
  ),
  fc.string({ unit: 'binary', maxLength: 30 }),
);
const headerSet = fc.array(fc.tuple(headerName, fc.oneof(headerValue, fc.array(headerValue, { minLength: 1, maxLength: 3 }))), {
  maxLength: 8,
});
const untrustedPeer = fc.constantFrom('203.0.113.7', '192.168.1.10', '172.16.5.5', '::1', '127.0.0.1', 'fe80::1', undefined);

function toCarriers(pairs: [string, string | string[]][]) {
  const headers: Record<string, unknown> = {};
  const rawHeaders: string[] = [];
  for (const [name, value] of pairs) {
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) rawHeaders.push(name, item);
    const existing = headers[name];
    headers[name] = existing === undefined ? value : ([] as string[]).concat(existing as string | string[], values);
  }
  return { headers, rawHeaders };
}

describe('edge guard properties', () => {
  // Trusts only 10.0.0.0/8 peers; tokens signed with `secret` for red only.
  const guard = createEdgeGuard({ mode: 'edge', trustedProxies: ['10.0.0.0/8'], secrets: [secret], tokens: { allow: ['red'] } });

  it('from untrusted peers: never throws, always baseline, and leaves no tenant input behind', () => {
    fc.assert(
      fc.property(headerSet, untrustedPeer, (pairs, peer) => {
        const { headers, rawHeaders } = toCarriers(pairs);
        const decision = guard.decide({ remoteAddress: peer, headers, rawHeaders });
        expect(decision).toMatchObject({ ok: true, tenant: BASELINE });
        expect(readTenantInput(headers)).toEqual({ kind: 'none' });
        const rawAsObject = toCarriers(
          rawHeaders.flatMap((entry, index) => (index % 2 === 0 ? [[entry, rawHeaders[index + 1] as string] as [string, string]] : [])),
        ).headers;
        expect(readTenantInput(rawAsObject)).toEqual({ kind: 'none' });
        expect(Object.keys(headers).some((name) => /^x[-_]tenant$/i.test(name))).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('from trusted peers: never throws; answers 400 or a tenant the headers named', () => {
    fc.assert(
      fc.property(headerSet, (pairs) => {
        const { headers, rawHeaders } = toCarriers(pairs);
        delete headers['x-forwarded-for'];
        const before = readTenantInput(headers);
        const decision = guard.decide({ remoteAddress: '10.1.1.1', headers, rawHeaders });
        if (!decision.ok) {
          expect(decision.status).toBe(400);
          expect(before.kind).toBe('conflict');
          return;
        }
        if (decision.tenant !== BASELINE) {
          expect(before).toEqual({ kind: 'named', name: decision.tenant.name });
        }
        expect(extractTenant(headers)).toEqual(decision.tenant);
      }),
      { numRuns: RUNS },
    );
  });
});

// Header sets as Node, HTTP/2 and API gateways hand them over: any key case,
// `_` for `-`, values as strings, Buffers or lists of either, baggage padded
// with every Unicode space. OpenTelemetry's W3C parser is the second reader.
const SPACES = [
  ' ',
  '\t',
  '\u00a0',
  '\u1680',
  '\u2000',
  '\u2007',
  '\u200a',
  '\u2028',
  '\u2029',
  '\u202f',
  '\u205f',
  '\u3000',
  '\ufeff',
  '\v',
  '\f',
];
const pad = fc.array(fc.constantFrom(...SPACES), { maxLength: 2 }).map((chars) => chars.join(''));
const carrierName = fc
  .tuple(
    fc.constantFrom(
      'x-tenant',
      'uberctx-tenant',
      'ot-baggage-tenant',
      'grpc-metadata-x-tenant',
      'grpc-metadata-tenant',
      'baggage',
      'x-tenant-token',
      'x-forwarded-for',
      'x-user',
    ),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([name, upper, underscore]) => {
    const cased = upper ? name.replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase()) : name;
    return underscore ? cased.replaceAll('-', '_') : cased;
  });
const spacedMember = fc
  .tuple(pad, fc.constantFrom('tenant', 'Tenant', 'TENANT', 'ten%61nt', 'user'), pad, pad, tenantName, pad)
  .map(([a, key, b, c, value, d]) => `${a}${key}${b}=${c}${value}${d}`);
const textValue = fc.oneof(
  tenantName,
  fc.array(fc.oneof(spacedMember, fc.constant('k=v')), { minLength: 1, maxLength: 3 }).map((members) => members.join(',')),
  fc.constantFrom('203.0.113.9', '10.0.0.2', '10.0.0.2, 203.0.113.9'),
);
const typedValue = fc.oneof(
  textValue,
  textValue.map((text) => Buffer.from(text, 'latin1')),
  fc.array(
    fc.oneof(
      textValue,
      textValue.map((text) => Buffer.from(text, 'latin1')),
    ),
    { minLength: 1, maxLength: 3 },
  ),
);
const typedSet = fc.array(fc.tuple(carrierName, typedValue), { maxLength: 6 });

const w3c = new W3CBaggagePropagator();
function otelTenantEntries(headers: Record<string, unknown>): string[] {
  const text: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const list = ([] as unknown[]).concat(value).map((item) => (Buffer.isBuffer(item) ? item.toString('latin1') : String(item)));
    // OpenTelemetry's getter reads lower-case keys; a gateway's Baggage key counts too.
    text[name.toLowerCase()] = list.length === 1 ? (list[0] as string) : list;
  }
  const baggage = propagation.getBaggage(w3c.extract(ROOT_CONTEXT, text, defaultTextMapGetter));
  return (baggage?.getAllEntries() ?? []).filter(([key]) => key.trim().toLowerCase() === 'tenant').map(([, entry]) => entry.value);
}

describe('edge guard properties: value types, Unicode spaces, OpenTelemetry as second reader', () => {
  const guard = createEdgeGuard({ mode: 'edge', trustedProxies: ['10.0.0.0/8'], secrets: [secret], tokens: { allow: ['red'] } });

  it('no header set leaves a tenant readable by Dye or OpenTelemetry (10^5 sets; public peers and public clients behind the proxy)', () => {
    fc.assert(
      fc.property(typedSet, fc.constantFrom('203.0.113.7', '10.0.0.1'), (pairs, peer) => {
        const headers: Record<string, unknown> = {};
        for (const [name, value] of pairs) headers[name] = value;
        const publicClient = ([] as unknown[])
          .concat(headers['x-forwarded-for'] ?? [], headers['X-Forwarded-For'] ?? [])
          .some((value) => String(value).includes('203.0.113.9'));
        const decision = guard.decide({ remoteAddress: peer, headers });
        // Nothing but the proxy itself (and internal hops) may choose.
        if (peer === '203.0.113.7' || publicClient) expect(decision).toMatchObject({ ok: true, tenant: BASELINE });
        if (!decision.ok) return;
        const decided = decision.tenant.name;
        const read = readTenantInput(headers);
        expect(read.kind === 'none' || (read.kind === 'named' && read.name === decided)).toBe(true);
        for (const value of otelTenantEntries(headers)) expect(value).toBe(decided);
        for (const name of Object.keys(headers).filter((key) => isTenantHeaderName(key))) {
          expect([name, headers[name]]).toEqual(['x-tenant', decided]);
        }
      }),
      { numRuns: Number(process.env.DYE_PROPERTY_RUNS ?? 100_000) },
    );
  }, 180_000);
});
