import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { amqpHeaders, messageTenant, shadowResourcePattern } from '@dye/amqplib';
import { BASELINE, createPolicy, setLogger, type Tenant } from '@dye/core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { stampedOptions } from '../src/message-headers.js';
import { isReservedName } from '../src/tenants.js';

// amqplib's own table codec (not in its exports map): a stamped message is judged as it crosses the wire.
const require = createRequire(import.meta.url);
const codec = require(join(dirname(require.resolve('amqplib')), 'lib', 'codec.js')) as {
  encodeTable(buffer: Buffer, table: unknown, offset: number): number;
  decodeFields(slice: Buffer): Record<string, unknown>;
};
const wire = (headers: Record<string, unknown>): Record<string, unknown> => {
  const buffer = Buffer.alloc(64 * 1024);
  const size = codec.encodeTable(buffer, headers, 0);
  return codec.decodeFields(buffer.subarray(4, size));
};

const RUNS = 5_000;
const policy = createPolicy();

beforeAll(() => setLogger({ warn: () => {} }));

const validTenantName = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/);
/** Header names that are, or look like, the tenant's. */
const tenantishKey = fc.constantFrom(
  'x-tenant',
  'X-Tenant',
  'X-TENANT',
  'baggage',
  'Baggage',
  'BAGGAGE',
  'x-tenant ',
  'xtenant',
  'tenant',
  'x_tenant',
);
/** Header values amqplib can encode: what a careless or hostile publisher may put there. */
const headerValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  validTenantName,
  validTenantName.map((name) => `tenant=${name}`),
  fc.array(validTenantName, { maxLength: 3 }).map((names) => names.map((name) => `tenant=${name}`).join(',')),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 16 }).map((bytes) => Buffer.from(bytes)),
  fc.array(fc.oneof(fc.string({ maxLength: 12 }), validTenantName), { maxLength: 3 }),
  // A nested table; a '!' key is amqplib's typed-value trapdoor, not a table.
  fc.dictionary(
    fc.string({ maxLength: 6 }).filter((key) => key !== '!'),
    fc.string({ maxLength: 6 }),
    { maxKeys: 2 },
  ),
);
const headers = fc.dictionary(fc.oneof(tenantishKey, fc.string({ minLength: 1, maxLength: 12 })), headerValue, { maxKeys: 6 });
const tenant: fc.Arbitrary<Tenant> = fc.oneof(
  fc.constant(BASELINE),
  validTenantName.filter((name) => name !== 'baseline').map((name) => policy.tenant(name)),
  fc.constantFrom('shadow', 'shadow-lt1').map((name) => policy.tenant(name)),
);

/**
 * Headers with own keys over inherited ones, as JSON.parse makes them: every
 * key, `__proto__` included, is a property of its own, never a prototype.
 */
function table(own: Record<string, unknown>, inherited: Record<string, unknown>): Record<string, unknown> {
  const define = (target: object, entries: Record<string, unknown>) => {
    for (const key of Object.keys(entries))
      Object.defineProperty(target, key, { value: entries[key], enumerable: true, writable: true, configurable: true });
    return target;
  };
  return define(Object.create(define(Object.create(null), inherited)), own) as Record<string, unknown>;
}

describe('message tenant (fuzzed)', () => {
  it('never throws, and says baseline, one tenant, or a conflict, whatever the headers', () => {
    fc.assert(
      fc.property(headers, (table) => {
        const decided = messageTenant(wire(table), policy);
        if (decided.ok) expect(typeof decided.tenant.name).toBe('string');
        else expect(decided.names.length).toBeGreaterThan(1);
      }),
      { numRuns: RUNS },
    );
  });

  it('a stamped message reads back as the publishing tenant, whatever tenant headers the caller supplied (own or inherited)', () => {
    fc.assert(
      fc.property(tenant, headers, headers, (publisher, own, inherited) => {
        const given = table(own, inherited);
        const stamped = stampedOptions({ headers: given }, publisher);
        const decided = messageTenant(wire(stamped.headers as Record<string, unknown>), policy);
        expect(decided).toEqual({ ok: true, tenant: publisher });
      }),
      { numRuns: RUNS },
    );
  });

  it('amqpHeaders.get finds every spelling of a key, own or inherited, and nothing else', () => {
    fc.assert(
      fc.property(headers, headers, fc.constantFrom('x-tenant', 'baggage'), (own, inherited, key) => {
        const headersTable = table(own, inherited);
        const expected: string[] = [];
        for (const name in headersTable) {
          if (name.toLowerCase() !== key) continue;
          const value = headersTable[name];
          const flat = Array.isArray(value) ? value : [value];
          for (const item of flat) {
            if (item === null || item === undefined) continue;
            expected.push(typeof item === 'string' ? item : item instanceof Uint8Array ? Buffer.from(item).toString() : '[not text]');
          }
        }
        const found = amqpHeaders.get(headersTable, key);
        const actual =
          found === undefined
            ? []
            : (Array.isArray(found) ? found : [found]).map((v) => (typeof v === 'string' ? v : Buffer.from(v).toString()));
        expect(actual).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('names (fuzzed)', () => {
  const name = fc.string({ unit: fc.constantFrom(...'abcXYZ019._-:*|()[]^$\\'.split('')), minLength: 1, maxLength: 24 });
  const tenants = fc.uniqueArray(fc.constantFrom('shadow', 'shadow-lt1', 'shadow-a-b', 'shadow-2'), { minLength: 1, maxLength: 3 });

  it("the permission pattern grantShadowAccess writes matches exactly the names ending in a tenant's suffix, never amq.default", () => {
    fc.assert(
      fc.property(tenants, name, (list, resource) => {
        const pattern = new RegExp(shadowResourcePattern(list));
        const suffixes = list.map((tenantName) => `_${tenantName.replaceAll('-', '_')}`);
        expect(pattern.test(resource)).toBe(suffixes.some((suffix) => resource.endsWith(suffix)));
        for (const suffix of suffixes) expect(pattern.test(`${resource}${suffix}`)).toBe(true);
        expect(pattern.test('amq.default')).toBe(false);
        expect(pattern.test('')).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('twins and dead letters are reserved; a production name is not, unless it ends like one', () => {
    fc.assert(
      fc.property(name, (resource) => {
        expect(isReservedName(`${resource}_shadow`)).toBe(true);
        expect(isReservedName(`${resource}_shadow_lt1`)).toBe(true);
        expect(isReservedName(`${resource}.dye-dlq`)).toBe(true);
        expect(isReservedName(`${resource}_red`, ['red'])).toBe(true);
        const endsLikeOne = /_shadow(?:_[a-z0-9_]+)?$/.test(resource) || resource.endsWith('.dye-dlq');
        expect(isReservedName(resource)).toBe(endsLikeOne);
      }),
      { numRuns: RUNS },
    );
  });
});
