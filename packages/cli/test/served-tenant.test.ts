import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseServedTenant } from '../src/served-tenant.js';
import { UsageError } from '../src/usage-error.js';

describe('--served-tenant', () => {
  it('reads a header, a JSON field (dotted) or nothing', () => {
    expect(parseServedTenant('header:X-Tenant').read({ 'x-tenant': ' shadow ' }, '')).toBe('shadow');
    // Two values say nothing certain.
    expect(parseServedTenant('header:x-tenant').read({ 'x-tenant': ['shadow', 'baseline'] }, '')).toBeUndefined();
    const json = parseServedTenant('json:meta.tenant');
    expect(json.needsBody).toBe(true);
    expect(json.read({}, '{"meta":{"tenant":"shadow"}}')).toBe('shadow');
    expect(json.read({}, '{"meta":{"tenant":7}}')).toBeUndefined();
    expect(json.read({}, '{"meta":null}')).toBeUndefined();
    // Only own fields: a prototype's name is not a tenant.
    expect(parseServedTenant('json:constructor.name').read({}, '{}')).toBeUndefined();
    const none = parseServedTenant('none');
    expect(none.checks).toBe(false);
  });

  it('a body that names a key twice in one object, however spelled, says nothing; other bodies read as JSON.parse reads them', () => {
    const json = parseServedTenant('json:meta.tenant');
    for (const body of [
      '{"meta":{"tenant":"baseline","tenant":"shadow"}}',
      '{"meta":{"t\\u0065nant":"baseline","tenant":"shadow"}}',
      '{"meta":{"tenant":"shadow"},"meta":{"tenant":"shadow"}}',
      '{"m\\u0065ta":{"tenant":"baseline"},"meta":{"tenant":"shadow"}}',
      '{"meta":{"tenant":"shadow","x":{"a":1,"\\u0061":2}}}',
    ])
      expect(json.read({}, body), body).toBeUndefined();
    // The same name in different objects is no duplicate: business data may name a tenant too.
    expect(json.read({}, '{"meta":{"tenant":"shadow"},"order":{"tenant":"acme","lines":[{"tenant":"x"}]}}')).toBe('shadow');
    // Any JSON without duplicate keys (objects as JSON.stringify writes them) reads as JSON.parse reads it.
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom('shadow', 'red', 'baseline'), (value, tenant) => {
        const body = JSON.stringify({ meta: { tenant }, value });
        expect(json.read({}, body)).toBe(tenant);
      }),
      { numRuns: 500 },
    );
  });

  it('any text is a reader or a usage error; readers never throw on any body or header', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.array(fc.string()))),
        (spec, body, headers) => {
          let reader: ReturnType<typeof parseServedTenant>;
          try {
            reader = parseServedTenant(spec);
          } catch (error) {
            expect(error).toBeInstanceOf(UsageError);
            return;
          }
          const served = reader.read(headers, body);
          expect(served === undefined || typeof served === 'string').toBe(true);
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
