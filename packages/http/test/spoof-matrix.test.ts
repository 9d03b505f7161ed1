import { currentTenant, readTenantInput, setLogger, signTenantToken } from '@dye/core';
import { tenantMiddleware } from '@dye/http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, rawRequest } from './support.js';

// A public edge (Express) whose only trusted proxy is 127.0.0.2, with tokens
// for `red` only. Spoofers connect from 127.0.0.1, an untrusted peer.
const secret = 'current-secret-'.padEnd(32, 'x');
const retired = 'retired-secret-'.padEnd(32, 'y');
const foreign = 'someone-elses-secret-'.padEnd(32, 'z');
const TRUSTED_PROXY = '127.0.0.2';

const now = Date.now();
const tokens = {
  valid: signTenantToken({ tenant: 'red', ttl: '1h' }, secret),
  signedWithPreviousKey: signTenantToken({ tenant: 'red', ttl: '1h' }, retired),
  notAllowed: signTenantToken({ tenant: 'shadow', ttl: '1h' }, secret),
  expired: signTenantToken({ tenant: 'red', ttl: 60, now: new Date(now - 2 * 3600_000) }, secret),
  wrongKey: signTenantToken({ tenant: 'red', ttl: '1h' }, foreign),
  tooLong: signTenantToken({ tenant: 'red', ttl: '48h', maxTtl: '48h' }, secret),
};
function tampered(token: string): string {
  const [version, , signature] = token.split('.');
  const payload = Buffer.from(JSON.stringify({ t: 'red', iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 86_000 })).toString(
    'base64url',
  );
  return `${version}.${payload}.${signature}`;
}

interface Seen {
  tenant: string;
  headers: Record<string, unknown>;
  rawHeaders: string[];
}

let edge: Awaited<ReturnType<typeof listen>>;
let rotatedEdge: Awaited<ReturnType<typeof listen>>;

function app(secrets: string[]) {
  const application = express();
  application.use(tenantMiddleware({ mode: 'edge', trustedProxies: [TRUSTED_PROXY], secrets, tokens: { allow: ['red'] } }));
  application.get('/', async (req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    res.json({ tenant: currentTenant().name, headers: req.headers, rawHeaders: req.rawHeaders } satisfies Seen);
  });
  return application;
}

beforeAll(async () => {
  setLogger({ warn: () => {} });
  edge = await listen(app([secret]));
  // After rotation: the new secret signs, the retired one still verifies.
  rotatedEdge = await listen(app([secret, retired]));
});
afterAll(async () => {
  await edge.close();
  await rotatedEdge.close();
});

async function send(
  lines: string[],
  from = '127.0.0.1',
  port = edge.port,
): Promise<{ seen: Seen; responseTenant: string | undefined; status: number }> {
  const response = await rawRequest(port, lines, from);
  return { seen: JSON.parse(response.body) as Seen, responseTenant: response.headers['x-tenant'], status: response.status };
}

function rawAsHeaders(raw: string[]): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (let i = 0; i < raw.length; i += 2) (headers[(raw[i] as string).toLowerCase()] ??= []).push(raw[i + 1] as string);
  return headers;
}

const spoofs: Array<[string, string[], string?]> = [
  ['x-tenant', ['x-tenant: shadow']],
  ['X-Tenant (title case)', ['X-Tenant: shadow']],
  ['X-TENANT (upper case)', ['X-TENANT: shadow']],
  ['upper-case value', ['x-tenant: SHADOW']],
  ['repeated x-tenant', ['x-tenant: shadow', 'x-tenant: shadow']],
  ['split across two spellings', ['X-Tenant: red', 'x-tenant: shadow']],
  ['list value', ['x-tenant: shadow, red']],
  ['x_tenant (underscore)', ['x_tenant: shadow']],
  ['X_Tenant (underscore, title case)', ['X_Tenant: shadow']],
  ['baggage tenant member', ['baggage: tenant=shadow']],
  ['baggage key upper case', ['baggage: TENANT=shadow']],
  ['baggage key percent-encoded', ['baggage: ten%61nt=shadow']],
  ['baggage key fully percent-encoded', ['baggage: %74%65%6E%61%6E%74=shadow']],
  ['baggage whitespace around key and value', ['baggage:  tenant \t=\t shadow ']],
  ['baggage value percent-encoded', ['baggage: tenant=%73hadow']],
  ['baggage duplicate members', ['baggage: user=1,tenant=shadow,tenant=shadow']],
  ['baggage split over two headers', ['baggage: a=1', 'Baggage: tenant=shadow']],
  ['baggage member with properties', ['baggage: tenant=shadow;origin=lb']],
  ['x-tenant and baggage together', ['x-tenant: shadow', 'baggage: tenant=shadow']],
  ['forged X-Forwarded-For naming the trusted proxy', ['x-forwarded-for: 127.0.0.2', 'x-tenant: shadow']],
  ['forged X-Forwarded-For chain', ['x-forwarded-for: 10.0.0.1, 127.0.0.2', 'x-tenant: shadow']],
  ['forged Forwarded header', ['forwarded: for=127.0.0.2', 'x-tenant: shadow']],
  ['public client behind the trusted proxy', ['x-forwarded-for: 203.0.113.9', 'x-tenant: shadow'], TRUSTED_PROXY],
  [
    'public client behind the trusted proxy, forged inner hop',
    ['x-forwarded-for: 127.0.0.2, 203.0.113.9', 'x-tenant: shadow'],
    TRUSTED_PROXY,
  ],
  ['token for a tenant not allowed here', [`x-tenant-token: ${tokens.notAllowed}`]],
  ['expired token', [`x-tenant-token: ${tokens.expired}`]],
  ['tampered token payload', [`x-tenant-token: ${tampered(tokens.valid)}`]],
  ['token signed with a foreign key', [`x-tenant-token: ${tokens.wrongKey}`]],
  ['token signed with a key not (or no longer) configured', [`x-tenant-token: ${tokens.signedWithPreviousKey}`]],
  ['token with a lifetime over the maximum', [`x-tenant-token: ${tokens.tooLong}`]],
  ['token of an unknown version', [`x-tenant-token: ${tokens.valid.replace('dye1.', 'dye9.')}`]],
  ['two tokens', [`x-tenant-token: ${tokens.valid}`, `x-tenant-token: ${tokens.valid}`]],
  ['oversized baggage hiding a tenant', [`baggage: tenant=shadow,pad=${'x'.repeat(9000)}`]],
];

describe('spoof matrix: no tenant input from an untrusted caller is honoured', () => {
  it.each(spoofs)('%s', async (_name, lines, from) => {
    const { seen, responseTenant, status } = await send(lines, from);
    expect(status).toBe(200);
    expect(seen.tenant).toBe('baseline');
    expect(responseTenant).toBe('baseline');
    // What the application can read afterwards holds no tenant input either.
    expect(readTenantInput(seen.headers)).toEqual({ kind: 'none' });
    expect(readTenantInput(rawAsHeaders(seen.rawHeaders))).toEqual({ kind: 'none' });
    expect(Object.keys(seen.headers).filter((name) => /tenant/i.test(name))).toEqual([]);
  });

  it(`has at least 25 forms (${spoofs.length})`, () => {
    expect(spoofs.length).toBeGreaterThanOrEqual(25);
  });
});

describe('what the edge does honour', () => {
  it('a valid token for an allowed tenant', async () => {
    const { seen, responseTenant } = await send([`x-tenant-token: ${tokens.valid}`]);
    expect([seen.tenant, responseTenant]).toEqual(['red', 'red']);
    expect(seen.headers['x-tenant']).toBe('red');
    expect(seen.headers['x-tenant-token']).toBeUndefined();
  });

  it('a token signed with the retired key, where rotation keeps it configured', async () => {
    const { seen } = await send([`x-tenant-token: ${tokens.signedWithPreviousKey}`], '127.0.0.1', rotatedEdge.port);
    expect(seen.tenant).toBe('red');
  });

  it('the header of the trusted proxy, and of an internal client behind it', async () => {
    expect((await send(['x-tenant: red'], TRUSTED_PROXY)).seen.tenant).toBe('red');
    expect((await send(['x-forwarded-for: 127.0.0.2', 'x-tenant: shadow'], TRUSTED_PROXY)).seen.tenant).toBe('shadow');
  });

  it('keeps baggage members that are not the tenant', async () => {
    const { seen } = await send(['baggage: user=u1, tenant=shadow, region=eu']);
    expect(seen.headers.baggage).toBe('user=u1,region=eu');
  });
});
