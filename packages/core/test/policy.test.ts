import { describe, expect, it } from 'vitest';
import { BASELINE, checkTenantName, createPolicy, getDefaultPolicy, setDefaultPolicy } from '../src/index.js';

describe('tenant names', () => {
  it.each([
    ['red', 'red'],
    ['RED', 'red'],
    ['Shadow-LT1', 'shadow-lt1'],
    ['a', 'a'],
    ['x'.repeat(32), 'x'.repeat(32)],
    ['feature-42', 'feature-42'],
  ])('accepts %j as %j', (input, name) => {
    expect(checkTenantName(input)).toEqual({ ok: true, name });
  });

  it.each(['', '-red', 'red-', 'r ed', 'red_1', 'rød', 'x'.repeat(33), 'red\n', 'a/b', 'tenant=red'])('rejects %j', (input) => {
    expect(checkTenantName(input).ok).toBe(false);
  });
});

describe('default policy', () => {
  const policy = createPolicy();

  it('makes shadow and shadow-* isolated', () => {
    expect(policy.tenant('shadow')).toEqual({ name: 'shadow', kind: 'isolated' });
    expect(policy.tenant('shadow-lt1')).toEqual({ name: 'shadow-lt1', kind: 'isolated' });
    expect(policy.tenant('SHADOW')).toEqual({ name: 'shadow', kind: 'isolated' });
  });

  it('does not take names that merely start with "shadow" for isolated ones', () => {
    expect(policy.tenant('shadowy').kind).toBe('color');
  });

  it('makes every other valid name a color falling back to baseline', () => {
    const red = policy.tenant('red');
    expect(red).toEqual({ name: 'red', kind: 'color' });
    expect(policy.fallback(red)).toBe('baseline');
    expect(policy.isolates(red, 'redis')).toBe(false);
  });

  it('treats "baseline" as production', () => {
    expect(policy.tenant('baseline')).toBe(BASELINE);
    expect(policy.tenant('Baseline')).toBe(BASELINE);
  });

  it('isolates every store for isolated tenants and none for baseline', () => {
    for (const store of ['redis', 'mysql', 'kafka', 'amqp'] as const) {
      expect(policy.isolates(policy.tenant('shadow'), store)).toBe(true);
      expect(policy.isolates(BASELINE, store)).toBe(false);
    }
  });

  it('returns the same Tenant object for the same name', () => {
    expect(policy.tenant('red')).toBe(policy.tenant('RED'));
  });

  it('resolves invalid names to a reason instead of throwing, and tenant() throws a TypeError', () => {
    expect(policy.resolve('no spaces')).toMatchObject({ ok: false, reason: expect.stringContaining('[a-z0-9-]') });
    expect(() => policy.tenant('no spaces')).toThrow(TypeError);
  });
});

describe('createPolicy', () => {
  it('applies configured kinds, fallbacks and isolated stores', () => {
    const policy = createPolicy({
      tenants: {
        red: { kind: 'color', fallback: 'baseline' },
        pay: { kind: 'color', fallback: 'reject' },
        perf: { kind: 'isolated' },
        blue: { kind: 'color', isolate: ['redis'] },
      },
    });
    expect(policy.fallback(policy.tenant('pay'))).toBe('reject');
    expect(policy.fallback(policy.tenant('red'))).toBe('baseline');
    expect(policy.tenant('perf').kind).toBe('isolated');
    expect(policy.isolates(policy.tenant('perf'), 'kafka')).toBe(true);
    expect(policy.isolates(policy.tenant('blue'), 'redis')).toBe(true);
    expect(policy.isolates(policy.tenant('blue'), 'mysql')).toBe(false);
  });

  it('with unknown: baseline, unconfigured names are baseline but shadow stays isolated', () => {
    const policy = createPolicy({ tenants: { red: { kind: 'color' } }, unknown: 'baseline' });
    expect(policy.tenant('red').kind).toBe('color');
    expect(policy.tenant('green')).toBe(BASELINE);
    expect(policy.tenant('shadow').kind).toBe('isolated');
    expect(policy.tenant('shadow-lt2').kind).toBe('isolated');
  });

  it('refuses configurations that would share shadow data or reuse baseline', () => {
    expect(() => createPolicy({ tenants: { shadow: { kind: 'color' } } })).toThrow(/always isolated/);
    expect(() => createPolicy({ tenants: { 'shadow-x': { kind: 'color' } } })).toThrow(/always isolated/);
    expect(() => createPolicy({ tenants: { baseline: { kind: 'color' } } })).toThrow(/reserved/);
    expect(() => createPolicy({ tenants: { 'Bad Name': { kind: 'color' } } })).toThrow(TypeError);
    expect(() => createPolicy({ tenants: { red: { kind: 'colour' as 'color' } } })).toThrow(/kind/);
    expect(() => createPolicy({ tenants: { red: { kind: 'color', fallback: 'nope' as 'reject' } } })).toThrow(/fallback/);
    expect(() => createPolicy({ tenants: { red: { kind: 'color', isolate: ['pg' as 'redis'] } } })).toThrow(/store/);
    expect(() => createPolicy({ tenants: { red: { kind: 'color' }, RED: { kind: 'color' } } })).toThrow(/twice/);
    expect(() => createPolicy({ unknown: 'isolated' as 'color' })).toThrow(/unknown/);
  });

  it('keeps the cache of unknown names bounded while staying correct', () => {
    const policy = createPolicy();
    for (let i = 0; i < 1000; i++) expect(policy.tenant(`lane-${i}`)).toEqual({ name: `lane-${i}`, kind: 'color' });
    expect(policy.fallback(policy.tenant('lane-1'))).toBe('baseline');
  });
});

describe('setDefaultPolicy', () => {
  it('replaces the policy used when none is passed', () => {
    const before = getDefaultPolicy();
    const strict = createPolicy({ unknown: 'baseline' });
    setDefaultPolicy(strict);
    try {
      expect(getDefaultPolicy()).toBe(strict);
      expect(getDefaultPolicy().tenant('green')).toBe(BASELINE);
    } finally {
      setDefaultPolicy(before);
    }
    expect(() => setDefaultPolicy({} as never)).toThrow(TypeError);
  });
});
