import { propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stripTenantInput } from '../src/index.js';

// OpenTelemetry's W3C baggage parser as a second oracle: whatever header the
// edge has cleaned, OpenTelemetry must not find a `tenant` entry in it either.
const w3c = new W3CBaggagePropagator();
const getter = {
  get: (carrier: Record<string, string>, key: string) => carrier[key],
  keys: (carrier: Record<string, string>) => Object.keys(carrier),
};

function otelTenant(baggage: string): string | undefined {
  const context = w3c.extract(ROOT_CONTEXT, { baggage }, getter);
  return propagation.getBaggage(context)?.getEntry('tenant')?.value;
}

// Every character String.prototype.trim removes, and a few it does not.
const UNICODE_SPACES = [
  ' ',
  '\t',
  '\n',
  '\v',
  '\f',
  '\r',
  '\u00a0',
  '\u1680',
  '\u2000',
  '\u2001',
  '\u2002',
  '\u2003',
  '\u2004',
  '\u2005',
  '\u2006',
  '\u2007',
  '\u2008',
  '\u2009',
  '\u200a',
  '\u2028',
  '\u2029',
  '\u202f',
  '\u205f',
  '\u3000',
  '\ufeff',
  '\u200b',
];
const padding = fc.array(fc.constantFrom(...UNICODE_SPACES), { maxLength: 3 }).map((chars) => chars.join(''));
const keySpelling = fc.constantFrom(
  'tenant',
  'TENANT',
  'Tenant',
  'ten%61nt',
  '%74enant',
  'tenan%74',
  'tenant%20',
  'tenan',
  'tenants',
  'x-tenant',
);
const member = fc
  .tuple(padding, keySpelling, padding, padding, fc.constantFrom('shadow', 'red', '%20shadow', 'shadow;p=1'), padding)
  .map(([before, key, after, beforeValue, value, end]) => `${before}${key}${after}=${beforeValue}${value}${end}`);
const other = fc.constantFrom('userId=alice', 'k=v;prop', 'a=b');
const header = fc.array(fc.oneof(member, other), { minLength: 1, maxLength: 4 }).map((members) => members.join(','));

describe('baggage: parity with OpenTelemetry’s W3C parser', () => {
  it('a member with a no-break space before `=` is stripped (OpenTelemetry reads it as tenant)', () => {
    const headers: Record<string, unknown> = { baggage: 'tenant\u00a0=shadow,userId=alice' };
    expect(otelTenant('tenant\u00a0=shadow')).toBe('shadow');
    stripTenantInput(headers);
    expect(headers.baggage).toBe('userId=alice');
  });

  it('after the edge strips a header, neither Dye nor OpenTelemetry reads a tenant from it (10⁵ headers)', () => {
    fc.assert(
      fc.property(header, (value) => {
        const headers: Record<string, unknown> = { baggage: value };
        stripTenantInput(headers);
        const left = headers.baggage;
        if (typeof left === 'string') expect(otelTenant(left)).toBeUndefined();
      }),
      { numRuns: Number(process.env.DYE_PROPERTY_RUNS ?? 100_000) },
    );
  }, 120_000);
});
