import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASELINE, createEdgeGuard, extractTenant, readTenantInput, setLogger, signTenantToken } from '../src/index.js';

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
