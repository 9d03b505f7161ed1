import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BASELINE,
  createEdgeGuard,
  createPolicy,
  type DyeLogEvent,
  type EdgeRequest,
  setDefaultPolicy,
  setLogger,
  signTenantToken,
} from '../src/index.js';

const secret = 's'.repeat(32);
const PUBLIC_PEER = '203.0.113.7';
const PROXY = '10.0.0.1';

let logged: DyeLogEvent[] = [];
beforeEach(() => {
  logged = [];
  setLogger({ warn: (event) => logged.push(event) });
});
afterEach(() => setLogger({ warn: () => {} }));

function request(headers: Record<string, unknown>, remoteAddress = PUBLIC_PEER, rawHeaders?: string[]): EdgeRequest<{ user?: string }> {
  return { remoteAddress, headers, ...(rawHeaders ? { rawHeaders } : {}), request: { user: headers['x-user'] as string | undefined } };
}

describe('edge guard, edge mode', () => {
  const guard = createEdgeGuard<{ user?: string }>({
    mode: 'edge',
    trustedProxies: ['10.0.0.0/8'],
    secrets: [secret],
    tokens: { allow: ['red', 'shadow'] },
    rules: [{ tenant: 'canary', percent: 0, key: (req) => req.user, allow: ['tester'] }],
  });

  it('strips tenant input from an untrusted peer, keeping other baggage, and says baseline in the headers', () => {
    const headers: Record<string, unknown> = { 'x-tenant': 'shadow', baggage: 'user=u1,tenant=shadow,region=eu', host: 'shop' };
    const decision = guard.decide(request(headers));
    expect(decision).toEqual({ ok: true, tenant: BASELINE, source: 'none', trusted: false });
    expect(headers).toEqual({ baggage: 'user=u1,region=eu', host: 'shop' });
    expect(logged.map((event) => event.code)).toEqual(['dye.edge.stripped']);
  });

  it('keeps rawHeaders in step with the cleaned headers', () => {
    const rawHeaders = ['Host', 'shop', 'X-Tenant', 'shadow', 'baggage', 'tenant=shadow', 'Baggage', 'a=1', 'x_tenant', 'red'];
    const headers: Record<string, unknown> = { host: 'shop', 'x-tenant': 'shadow', baggage: 'tenant=shadow, a=1', x_tenant: 'red' };
    guard.decide(request(headers, PUBLIC_PEER, rawHeaders));
    expect(rawHeaders).toEqual(['Host', 'shop', 'baggage', 'a=1']);
    expect(headers).toEqual({ host: 'shop', baggage: 'a=1' });
  });

  it.each([
    'uberctx-tenant',
    'Uberctx-Tenant',
    'uberctx_tenant',
    'ot-baggage-tenant',
    'OT-Baggage-Tenant',
    'ot_baggage_tenant',
    'grpc-metadata-x-tenant',
    'Grpc-Metadata-X-Tenant',
    'grpc_metadata_x_tenant',
    'grpc-metadata-tenant',
  ])('strips %s, the tenant of another propagation format a downstream library would honour', (name) => {
    const rawHeaders = ['Host', 'shop', name, 'shadow', 'x-other', 'kept'];
    const headers: Record<string, unknown> = { host: 'shop', [name]: 'shadow', 'x-other': 'kept' };
    const decision = guard.decide(request(headers, PUBLIC_PEER, rawHeaders));
    expect(decision).toMatchObject({ ok: true, tenant: BASELINE });
    expect(headers).toEqual({ host: 'shop', 'x-other': 'kept' });
    expect(rawHeaders).toEqual(['Host', 'shop', 'x-other', 'kept']);
  });

  it('keeps headers that only look alike', () => {
    const headers: Record<string, unknown> = { 'uberctx-tenantx': 'a', 'ot-baggage-user': 'b', 'grpc-metadata-x-tenant-token': 'c' };
    guard.decide(request(headers));
    expect(headers).toEqual({ 'uberctx-tenantx': 'a', 'ot-baggage-user': 'b', 'grpc-metadata-x-tenant-token': 'c' });
  });

  it('honours the header of a trusted peer', () => {
    const headers: Record<string, unknown> = { 'x-tenant': 'red' };
    expect(guard.decide(request(headers, PROXY))).toEqual({
      ok: true,
      tenant: { name: 'red', kind: 'color' },
      source: 'header',
      trusted: true,
    });
    expect(headers).toEqual({ 'x-tenant': 'red', baggage: 'tenant=red' });
  });

  it('refuses conflicting input from a trusted peer with 400', () => {
    const decision = guard.decide(request({ 'x-tenant': 'red', baggage: 'tenant=shadow' }, PROXY));
    expect(decision).toMatchObject({ ok: false, status: 400, code: 'DYE_TENANT_CONFLICT' });
  });

  it('lets a valid token for an allowed tenant choose, and removes the token header', () => {
    const token = signTenantToken({ tenant: 'shadow', ttl: '1h', subject: 'loadtest' }, secret);
    const headers: Record<string, unknown> = { 'x-tenant-token': token, 'x-tenant': 'red' };
    expect(guard.decide(request(headers))).toEqual({
      ok: true,
      tenant: { name: 'shadow', kind: 'isolated' },
      source: 'token',
      trusted: false,
      subject: 'loadtest',
    });
    expect(headers).toEqual({ 'x-tenant': 'shadow', baggage: 'tenant=shadow' });
  });

  it('makes a token for a tenant not allowed here baseline, with a log line', () => {
    const token = signTenantToken({ tenant: 'canary', ttl: '1h' }, secret);
    expect(guard.decide(request({ 'x-tenant-token': token }))).toMatchObject({ ok: true, tenant: BASELINE });
    expect(logged.map((event) => event.code)).toContain('dye.edge.invalid-token');
  });

  it('answers 401 for a bad token when configured to reject', () => {
    const strict = createEdgeGuard({ mode: 'edge', secrets: [secret], onInvalidToken: 'reject' });
    expect(strict.decide(request({ 'x-tenant-token': 'dye1.bad.token' }))).toMatchObject({
      ok: false,
      status: 401,
      code: 'DYE_INVALID_TOKEN',
    });
    expect(strict.decide(request({}))).toMatchObject({ ok: true, tenant: BASELINE });
  });

  it('ignores tokens when no secrets are configured', () => {
    const open = createEdgeGuard({ mode: 'edge' });
    const token = signTenantToken({ tenant: 'red', ttl: 60 }, secret);
    expect(open.decide(request({ 'x-tenant-token': token }))).toMatchObject({ ok: true, tenant: BASELINE });
  });

  it('applies canary rules to untrusted requests', () => {
    expect(guard.decide(request({ 'x-user': 'tester' }))).toMatchObject({ tenant: { name: 'canary' }, source: 'rule' });
    expect(guard.decide(request({ 'x-user': 'someone' }))).toMatchObject({ tenant: BASELINE, source: 'none' });
  });

  it('skips a canary rule whose key function throws, with a log line', () => {
    const flaky = createEdgeGuard<{ user?: string }>({
      mode: 'edge',
      rules: [
        {
          tenant: 'canary',
          percent: 100,
          key: () => {
            throw new Error('no session');
          },
        },
      ],
    });
    expect(flaky.decide(request({}))).toMatchObject({ tenant: BASELINE });
    expect(logged.map((event) => event.code)).toContain('dye.edge.rule-failed');
  });
});

describe('edge guard, internal mode', () => {
  const guard = createEdgeGuard({ mode: 'internal' });

  it('trusts the header as it is and leaves headers alone', () => {
    const headers = { 'x-tenant': 'shadow', 'x-tenant-token': 'kept' };
    expect(guard.decide(request(headers))).toEqual({
      ok: true,
      tenant: { name: 'shadow', kind: 'isolated' },
      source: 'header',
      trusted: true,
    });
    expect(headers).toEqual({ 'x-tenant': 'shadow', 'x-tenant-token': 'kept' });
  });

  it('refuses conflicting tenants with 400 and a clear message', () => {
    expect(guard.decide(request({ 'x-tenant': 'red, shadow' }))).toEqual({
      ok: false,
      status: 400,
      code: 'DYE_TENANT_CONFLICT',
      message: 'conflicting tenants in one request: red vs shadow',
    });
  });

  it('makes malformed input baseline with a log line', () => {
    expect(guard.decide(request({ 'x-tenant': '!!' }))).toMatchObject({ ok: true, tenant: BASELINE });
    expect(logged).toHaveLength(1);
  });
});

describe('edge guard configuration', () => {
  it('refuses what it cannot honour', () => {
    expect(() => createEdgeGuard({ mode: 'public' as 'edge' })).toThrow(/mode/);
    expect(() => createEdgeGuard({ mode: 'edge', secrets: ['short'] })).toThrow(/32/);
    expect(() => createEdgeGuard({ mode: 'edge', trustedProxies: ['300.0.0.0/8'] })).toThrow(/trustedProxies/);
    expect(() => createEdgeGuard({ mode: 'edge', onInvalidToken: 'ignore' as 'reject' })).toThrow(/onInvalidToken/);
    const policy = createPolicy({ tenants: { perf: { kind: 'isolated' } } });
    expect(() => createEdgeGuard({ mode: 'edge', policy, rules: [{ tenant: 'perf', percent: 1, key: () => 'k' }] })).toThrow(/isolated/);
  });
});

describe('edge guard: headers as gateways and Node hand them over', () => {
  const guard = createEdgeGuard({ mode: 'edge', trustedProxies: ['10.0.0.0/8'], secrets: [secret] });
  const forwardedForms: Array<[string, Record<string, unknown>]> = [
    ['a capitalized key (API-gateway events keep the sender case)', { 'X-Forwarded-For': '203.0.113.9', 'X-Tenant': 'shadow' }],
    ['an upper-case key', { 'X-FORWARDED-FOR': '203.0.113.9', 'x-tenant': 'shadow' }],
    ['a list of values', { 'x-forwarded-for': ['203.0.113.9', '10.0.0.2'], 'x-tenant': 'shadow' }],
    ['a Buffer', { 'x-forwarded-for': Buffer.from('203.0.113.9'), 'x-tenant': 'shadow' }],
    ['a list of Buffers', { 'x-forwarded-for': [Buffer.from('203.0.113.9')], 'x-tenant': 'shadow' }],
    ['two spellings of the key', { 'x-forwarded-for': '10.0.0.2', 'X-Forwarded-For': '203.0.113.9', 'x-tenant': 'shadow' }],
    ['a value that is not text', { 'x-forwarded-for': [{}], 'x-tenant': 'shadow' }],
  ];

  it.each(forwardedForms)('a public client behind the trusted proxy, X-Forwarded-For as %s, chooses nothing', (_name, headers) => {
    const decision = guard.decide(request(headers, PROXY));
    expect(decision).toMatchObject({ ok: true, tenant: BASELINE, trusted: false });
    expect(Object.keys(headers).filter((name) => name.toLowerCase() === 'x-tenant')).toEqual([]);
  });

  it('an internal client behind the trusted proxy is still trusted, whatever the key case', () => {
    const decision = guard.decide(request({ 'X-Forwarded-For': Buffer.from('10.0.0.7'), 'X-Tenant': 'red' }, PROXY));
    expect(decision).toMatchObject({ ok: true, trusted: true });
    expect(decision.ok && decision.tenant.name).toBe('red');
  });

  it('reads a token sent as a Buffer or under any key case', () => {
    const token = signTenantToken({ tenant: 'red', ttl: 60 }, secret);
    for (const headers of [{ 'X-Tenant-Token': token }, { 'x-tenant-token': Buffer.from(token) }, { 'X-TENANT-TOKEN': [token] }]) {
      const decision = guard.decide(request(headers));
      expect(decision.ok && decision.tenant.name).toBe('red');
      expect(Object.keys(headers).filter((name) => name.toLowerCase() === 'x-tenant-token')).toEqual([]);
    }
  });
});

describe('edge guard: the policy is read when a request is decided', () => {
  afterEach(() => setDefaultPolicy(createPolicy()));

  it('a token for a tenant the policy made baseline-only afterwards chooses nothing', () => {
    const guard = createEdgeGuard({ mode: 'edge', secrets: [secret] });
    const token = signTenantToken({ tenant: 'purple', ttl: 60 }, secret);
    expect(guard.decide(request({ 'x-tenant-token': token }))).toMatchObject({ ok: true, source: 'token' });
    setDefaultPolicy(createPolicy({ unknown: 'baseline' }));
    expect(guard.decide(request({ 'x-tenant-token': token }))).toMatchObject({ ok: true, tenant: BASELINE, source: 'none' });
  });

  it('a canary rule whose tenant the policy isolates afterwards stops choosing, loudly', () => {
    const guard = createEdgeGuard<{ user?: string }>({ mode: 'edge', rules: [{ tenant: 'canary', percent: 100, key: () => 'u' }] });
    expect(guard.decide(request({})).ok && (guard.decide(request({})) as { tenant: { name: string } }).tenant.name).toBe('canary');
    setDefaultPolicy(createPolicy({ tenants: { canary: { kind: 'isolated' } } }));
    logged = [];
    const decision = guard.decide(request({}));
    expect(decision).toMatchObject({ ok: true, tenant: BASELINE, source: 'none' });
    expect(logged.map((event) => event.code)).toContain('dye.edge.rule-isolated');
  });

  it('an isolated tenant the policy defines afterwards resolves as isolated at the edge', () => {
    const guard = createEdgeGuard({ mode: 'edge', trustedProxies: ['10.0.0.0/8'] });
    setDefaultPolicy(createPolicy({ tenants: { loadtest: { kind: 'isolated' } } }));
    const decision = guard.decide(request({ 'x-tenant': 'loadtest' }, PROXY));
    expect(decision.ok && decision.tenant.kind).toBe('isolated');
  });
});
