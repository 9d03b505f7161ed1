import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BASELINE,
  createPolicy,
  type DyeLogEvent,
  extractTenant,
  fetchHeaders,
  injectTenant,
  MAX_BAGGAGE_BYTES,
  MAX_BAGGAGE_MEMBERS,
  nodeHeaders,
  objectHeaders,
  readTenantInput,
  setLogger,
  TenantConflictError,
  withTenant,
} from '../src/index.js';

let logged: DyeLogEvent[] = [];
beforeEach(() => {
  logged = [];
  setLogger({ warn: (event) => logged.push(event) });
});
afterEach(() => {
  setLogger({ warn: () => {} });
});

const policy = createPolicy();
const shadow = policy.tenant('shadow');
const red = policy.tenant('red');

describe('extractTenant', () => {
  it('is baseline when the carrier names no tenant, without a log line', () => {
    expect(extractTenant({})).toBe(BASELINE);
    expect(extractTenant({ baggage: 'user=u1,region=eu' })).toBe(BASELINE);
    expect(extractTenant({ 'x-tenant': '' })).toBe(BASELINE);
    expect(logged).toEqual([]);
  });

  it('reads x-tenant and baggage, case-folded', () => {
    expect(extractTenant({ 'x-tenant': 'RED' })).toEqual(red);
    expect(extractTenant({ baggage: 'user=u1, tenant = shadow ;prop=1' })).toEqual(shadow);
    expect(extractTenant({ 'x-tenant': 'shadow', baggage: 'tenant=shadow' })).toEqual(shadow);
  });

  it('reads Node IncomingHttpHeaders with string[] values', () => {
    expect(extractTenant({ 'x-tenant': ['red', 'red'], baggage: ['a=1', 'tenant=red'] }, nodeHeaders)).toEqual(red);
  });

  it('reads plain objects whose keys are in any case, all spellings together', () => {
    expect(extractTenant({ 'X-Tenant': 'red' })).toEqual(red);
    expect(extractTenant({ BAGGAGE: 'tenant=red' }, objectHeaders)).toEqual(red);
    expect(() => extractTenant({ 'X-Tenant': 'red', 'x-tenant': 'shadow' })).toThrow(TenantConflictError);
  });

  it('reads Fetch Headers, where repeated values arrive joined', () => {
    const headers = new Headers();
    headers.append('x-tenant', 'red');
    headers.append('X-Tenant', 'red');
    expect(extractTenant(headers)).toEqual(red);
    headers.append('x-tenant', 'shadow');
    expect(() => extractTenant(headers, fetchHeaders)).toThrow(TenantConflictError);
  });

  it('reads Buffer values and arrays of Buffers (Kafka-style headers)', () => {
    expect(extractTenant({ 'x-tenant': Buffer.from('shadow') })).toEqual(shadow);
    expect(extractTenant({ 'x-tenant': [Buffer.from('red'), 'red'] })).toEqual(red);
  });

  it('percent-decodes baggage keys and values, and trims whitespace', () => {
    expect(extractTenant({ baggage: 'ten%61nt=%72ed' })).toEqual(red);
    expect(extractTenant({ baggage: '\t%54ENANT\t=\tshadow\t' })).toEqual(shadow);
  });

  it('throws TenantConflictError when two sources disagree', () => {
    expect(() => extractTenant({ 'x-tenant': 'red', baggage: 'tenant=shadow' })).toThrow(TenantConflictError);
    expect(() => extractTenant({ 'x-tenant': 'red, shadow' })).toThrow(TenantConflictError);
    expect(() => extractTenant({ baggage: 'tenant=red,tenant=shadow' })).toThrow(TenantConflictError);
    expect(() => extractTenant({ baggage: ['tenant=red', 'TENANT=shadow'] })).toThrow(TenantConflictError);
    expect(() => extractTenant({ 'x-tenant': 'baseline', baggage: 'tenant=red' })).toThrow(TenantConflictError);
    try {
      extractTenant({ 'x-tenant': 'red', baggage: 'tenant=shadow' });
    } catch (error) {
      expect((error as TenantConflictError).names).toEqual(['red', 'shadow']);
    }
  });

  it('makes malformed input baseline with one log line, never a throw', () => {
    const malformed: Record<string, unknown>[] = [
      { 'x-tenant': 'not a name' },
      { 'x-tenant': 'x'.repeat(33) },
      { 'x-tenant': 'red', baggage: 'tenant=%%%' },
      { baggage: 'tenant' },
      { baggage: 'tenant=' },
      { baggage: 'tenant;prop=red' },
      { 'x-tenant': Buffer.from([0xff, 0xfe]) },
      { 'x-tenant': [{}] },
      { 'x-tenant': 'red', baggage: `a=${'x'.repeat(MAX_BAGGAGE_BYTES)}` },
      { baggage: Array.from({ length: MAX_BAGGAGE_MEMBERS + 1 }, (_, i) => `k${i}=v`).join(',') },
      { 'x-tenant': 'red,'.repeat(3000) },
    ];
    for (const carrier of malformed) {
      logged = [];
      expect(extractTenant(carrier)).toBe(BASELINE);
      expect(logged).toHaveLength(1);
      expect(logged[0]?.code).toMatch(/^dye\.codec\./);
    }
  });

  it('accepts 64 members and 8192 bytes of baggage, as W3C asks', () => {
    const members = Array.from({ length: 63 }, (_, i) => `k${i}=v`);
    members.push('tenant=red');
    expect(extractTenant({ baggage: members.join(',') })).toEqual(red);
    const filler = 'x'.repeat(MAX_BAGGAGE_BYTES - 'tenant=red,f='.length);
    expect(extractTenant({ baggage: `tenant=red,f=${filler}` })).toEqual(red);
    expect(logged).toEqual([]);
  });

  it('applies the given policy', () => {
    const strict = createPolicy({ unknown: 'baseline', tenants: { red: { kind: 'color', fallback: 'reject' } } });
    expect(extractTenant({ 'x-tenant': 'green' }, undefined, strict)).toBe(BASELINE);
    expect(extractTenant({ 'x-tenant': 'red' }, undefined, strict)).toEqual(red);
  });

  it('readTenantInput reports what it found without deciding', () => {
    expect(readTenantInput({})).toEqual({ kind: 'none' });
    expect(readTenantInput({ 'x-tenant': 'Red' })).toEqual({ kind: 'named', name: 'red' });
    expect(readTenantInput({ 'x-tenant': 'red', baggage: 'tenant=blue' })).toEqual({ kind: 'conflict', names: ['red', 'blue'] });
    expect(readTenantInput({ 'x-tenant': '!' })).toMatchObject({ kind: 'malformed' });
  });
});

describe('injectTenant', () => {
  it('writes x-tenant and baggage for the current tenant', () => {
    const headers = withTenant('red', () => injectTenant({}));
    expect(headers).toEqual({ 'x-tenant': 'red', baggage: 'tenant=red' });
  });

  it('puts the tenant first and keeps the other baggage members as they were written', () => {
    const headers = injectTenant({ baggage: 'user=u%201;p=1, region=eu' }, objectHeaders, shadow);
    expect(headers).toEqual({ 'x-tenant': 'shadow', baggage: 'tenant=shadow,user=u%201;p=1,region=eu' });
  });

  it('replaces any tenant the carrier already had, in every spelling', () => {
    const headers = injectTenant({ 'X-Tenant': 'shadow', Baggage: 'TENANT=shadow,a=1,ten%61nt=shadow' }, objectHeaders, red);
    expect(headers).toEqual({ 'x-tenant': 'red', baggage: 'tenant=red,a=1' });
  });

  it('for baseline, removes tenant headers and members so copied inbound headers never ride along', () => {
    expect(injectTenant({ 'x-tenant': 'shadow', baggage: 'tenant=shadow' }, nodeHeaders, BASELINE)).toEqual({});
    expect(injectTenant({ 'x-tenant': 'shadow', baggage: 'tenant=shadow,a=1' }, nodeHeaders, BASELINE)).toEqual({ baggage: 'a=1' });
    expect(injectTenant({ other: 'kept' })).toEqual({ other: 'kept' });
  });

  it('writes Fetch Headers', () => {
    const headers = new Headers({ baggage: 'a=1' });
    injectTenant(headers, fetchHeaders, shadow);
    expect(headers.get('x-tenant')).toBe('shadow');
    expect(headers.get('baggage')).toBe('tenant=shadow,a=1');
  });

  it('drops other members rather than the tenant when baggage would exceed the limits, with a log line', () => {
    const members = Array.from({ length: MAX_BAGGAGE_MEMBERS }, (_, i) => `k${i}=v`).join(',');
    const headers = injectTenant({ baggage: members }, objectHeaders, red);
    const written = String(headers.baggage).split(',');
    expect(written).toHaveLength(MAX_BAGGAGE_MEMBERS);
    expect(written[0]).toBe('tenant=red');
    expect(logged.map((event) => event.code)).toEqual(['dye.codec.baggage-truncated']);
    expect(extractTenant(headers)).toEqual(red);
  });

  it('drops baggage that could not be forwarded at all, keeping the tenant', () => {
    const headers = injectTenant({ baggage: `big=${'x'.repeat(MAX_BAGGAGE_BYTES)}` }, objectHeaders, shadow);
    expect(headers).toEqual({ 'x-tenant': 'shadow', baggage: 'tenant=shadow' });
    expect(logged.map((event) => event.code)).toEqual(['dye.codec.baggage-dropped']);
  });
});
