import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBaggage, scanTenantMembers } from '../src/baggage.js';
import {
  BASELINE,
  extractTenant,
  injectTenant,
  objectHeaders,
  percentDecode,
  setLogger,
  type Tenant,
  TenantConflictError,
  withTenant,
} from '../src/index.js';

const RUNS = 10_000;

beforeAll(() => setLogger({ warn: () => {} }));
afterAll(() => setLogger({ warn: () => {} }));

const validTenantName = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/);

/** Keys a parser might take for the tenant, and keys that only look close. */
const tenantishKey = fc.constantFrom(
  'tenant',
  'TENANT',
  'Tenant',
  ' tenant',
  'tenant\t',
  'ten%61nt',
  '%74%65%6e%61%6e%74',
  'tenant%',
  'tenants',
  'x-tenant',
  'ten ant',
  '%ZZtenant',
);

const anyText = fc.string({ unit: 'binary', maxLength: 40 });

/** A value a tenant header might hold: valid names in any case, encodings, junk. */
const tenantishValue = fc.oneof(
  validTenantName,
  validTenantName.map((name) => name.toUpperCase()),
  validTenantName.map((name) => encodeURIComponent(name).replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`)),
  fc.constantFrom('baseline', 'shadow', 'shadow-lt1', 'red', '', ' ', '%', '-', 'a'.repeat(33)),
  anyText,
);

const baggageMember = fc.oneof(
  fc.tuple(tenantishKey, tenantishValue).map(([key, value]) => `${key}=${value}`),
  fc.tuple(tenantishKey, tenantishValue, anyText).map(([key, value, prop]) => `${key}=${value};${prop}`),
  fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/), anyText).map(([key, value]) => `${key}=${value}`),
  anyText,
);

const baggageHeader = fc
  .tuple(fc.array(baggageMember, { maxLength: 8 }), fc.constantFrom(',', ', ', ' ,', ',\t'))
  .map(([members, separator]) => members.join(separator));

const headerValue = fc.oneof(
  tenantishValue,
  fc.array(tenantishValue, { maxLength: 4 }).map((values) => values.join(',')),
  fc.array(tenantishValue, { minLength: 1, maxLength: 3 }),
  tenantishValue.map((value) => Buffer.from(value)),
  fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
);

const carrier = fc.record(
  {
    'x-tenant': headerValue,
    'X-Tenant': headerValue,
    baggage: fc.oneof(baggageHeader, fc.array(baggageHeader, { minLength: 1, maxLength: 3 })),
    Baggage: baggageHeader,
    other: anyText,
  },
  { requiredKeys: [] },
);

function textOf(value: unknown): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map(textOf).join(',');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return String(value);
}

describe('codec properties', () => {
  it('never throws anything but TenantConflictError, and never yields a tenant the input did not name', () => {
    fc.assert(
      fc.property(carrier, (headers) => {
        let tenant: Tenant;
        try {
          tenant = extractTenant(headers as Record<string, unknown>);
        } catch (error) {
          expect(error).toBeInstanceOf(TenantConflictError);
          return;
        }
        if (tenant === BASELINE) return;
        // The tenant's name must be written somewhere in what was sent, after
        // the decoding the codec itself applies (percent-decoding, case-folding).
        const sent = percentDecode(
          [headers['x-tenant'], headers['X-Tenant'], headers.baggage, headers.Baggage].map(textOf).join('\n'),
        ).toLowerCase();
        expect(sent).toContain(tenant.name);
        expect(tenant.kind).toBe(tenant.name === 'shadow' || tenant.name.startsWith('shadow-') ? 'isolated' : 'color');
      }),
      { numRuns: RUNS },
    );
  });

  it('inject then extract round-trips every valid tenant with arbitrary other baggage', () => {
    const otherMember = fc
      .tuple(fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_.-]{0,15}$/), fc.string({ maxLength: 20 }))
      .filter(([key]) => key.toLowerCase() !== 'tenant')
      .map(([key, value]) => `${key}=${encodeURIComponent(value)}`);
    fc.assert(
      fc.property(validTenantName, fc.array(otherMember, { maxLength: 20 }), (name, others) => {
        const outbound: Record<string, unknown> = others.length > 0 ? { baggage: others.join(',') } : {};
        withTenant(name, () => injectTenant(outbound, objectHeaders));
        const tenant = extractTenant(outbound);
        expect(tenant.name).toBe(name);
        const members = String(outbound.baggage).split(',');
        expect(members[0]).toBe(`tenant=${name}`);
        expect(members.slice(1)).toEqual(others);
      }),
      { numRuns: RUNS },
    );
  });

  it('the fast scan of inbound baggage and the full parse agree on every tenant member', () => {
    fc.assert(
      fc.property(fc.array(baggageHeader, { minLength: 1, maxLength: 3 }), (values) => {
        const scanned = scanTenantMembers(values);
        const parsed = parseBaggage(values);
        expect(scanned.ok).toBe(parsed.ok);
        if (scanned.ok && parsed.ok) {
          expect(scanned.values).toEqual(parsed.members.filter((member) => member.isTenant).map((member) => member.value));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('inject for baseline leaves nothing that extracts to a tenant', () => {
    fc.assert(
      fc.property(carrier, (headers) => {
        const copy: Record<string, unknown> = { ...headers };
        injectTenant(copy, objectHeaders, BASELINE);
        expect(extractTenant(copy)).toBe(BASELINE);
      }),
      { numRuns: RUNS },
    );
  });
});
