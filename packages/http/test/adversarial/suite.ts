/**
 * The attacker's suite: forms of tenant input a public client can send, each
 * against every framework, checking every place the request's code runs and
 * what the next hop receives. Run with and without the OpenTelemetry SDK.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { isTenantHeaderName, readTenantInput, setLogger, signTenantToken } from '@dye/core';
import { tenantMiddleware } from '@dye/http';
import { defaultTextMapGetter, propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../support.js';
import { type EdgeApp, FRAMEWORKS, type Observation, Recorder, startEdge } from './frameworks.js';

const secret = 'adversarial-edge-secret-'.padEnd(40, 'k');
const foreign = 'someone-elses-secret-'.padEnd(40, 'z');
export const TRUSTED_PROXY = '127.0.0.2';
const now = Date.now();

export interface Form {
  name: string;
  lines: string[];
  /** Chunked-body trailers. */
  trailers?: string[];
  /** Local address to send from (default an untrusted peer). */
  from?: string;
}

function headerForms(): Form[] {
  const names = [
    'x-tenant',
    'X-Tenant',
    'X-TENANT',
    'x_tenant',
    'X_Tenant',
    'uberctx-tenant',
    'Uberctx-Tenant',
    'uberctx_tenant',
    'ot-baggage-tenant',
    'OT-Baggage-Tenant',
    'ot_baggage_tenant',
    'grpc-metadata-x-tenant',
    'Grpc-Metadata-X-Tenant',
    'grpc-metadata-tenant',
    'grpc_metadata_x_tenant',
  ];
  const forms: Form[] = [];
  for (const tenant of ['shadow', 'red'])
    for (const name of names) forms.push({ name: `${name}: ${tenant}`, lines: [`${name}: ${tenant}`] });
  const values: Array<[string, string[]]> = [
    ['upper-case value', ['x-tenant: SHADOW']],
    ['list value', ['x-tenant: shadow, red']],
    ['padded value', ['x-tenant:   shadow   ']],
    ['repeated x-tenant', ['x-tenant: shadow', 'x-tenant: shadow']],
    ['two spellings, two tenants', ['X-Tenant: red', 'x-tenant: shadow']],
    ['baseline header, shadow baggage', ['x-tenant: baseline', 'baggage: tenant=shadow']],
    ['empty header, shadow baggage', ['x-tenant:', 'baggage: tenant=shadow']],
    ['upper-case uberctx name', ['UBERCTX-TENANT: shadow']],
    ['mixed-case ot-baggage name', ['Ot-Baggage-TENANT: shadow']],
    ['upper-case grpc-metadata name', ['GRPC-METADATA-X-TENANT: shadow']],
    ['underscored grpc-metadata tenant', ['grpc_metadata_tenant: shadow']],
    ['underscore and dash mixed', ['uberctx_Tenant: shadow', 'ot-baggage_tenant: red']],
  ];
  for (const [name, lines] of values) forms.push({ name, lines });
  return forms;
}

function baggageForms(): Form[] {
  const values = [
    'tenant={t}',
    'Tenant={t}',
    'TENANT={t}',
    ' tenant = {t} ',
    'tenant\u00a0={t}',
    '\u00a0tenant={t}',
    'tenant=\u00a0{t}',
    '\ttenant\t=\t{t}',
    'ten%61nt={t}',
    '%74%65%6E%61%6E%74={t}',
    'tenant={t};origin=lb',
    'a=1,tenant={t}',
    'a=1, tenant={t} ,b=2',
    'tenant=%73hadow',
    'tenant={t},tenant={t}',
    'user=u1;p=1, TeNaNt={t}',
    // Read as `tenant` by form-style decoders (Python's unquote_plus(key).strip()).
    'tenant+={t}',
    '+tenant={t}',
    '\u0085tenant={t}',
    'tenant%C2%85={t}',
    'tenant%2B={t}',
    `tenant={t},pad=${'x'.repeat(9000)}`,
    `${Array.from({ length: 200 }, (_, i) => `m${i}=1`).join(',')},tenant={t}`,
  ];
  const forms: Form[] = [];
  for (const tenant of ['shadow', 'red']) {
    for (const value of values) {
      const text = value.replaceAll('{t}', tenant);
      forms.push({ name: `baggage: ${JSON.stringify(text.slice(0, 40))}`, lines: [`baggage: ${text}`] });
    }
    forms.push({ name: `two baggage headers (${tenant})`, lines: ['baggage: a=1', `Baggage: tenant=${tenant}`] });
    forms.push({ name: `BAGGAGE upper-case name (${tenant})`, lines: [`BAGGAGE: tenant=${tenant}`] });
  }
  return forms;
}

function tokenForms(): Form[] {
  const valid = signTenantToken({ tenant: 'shadow', ttl: '1h' }, secret);
  const [version, , signature] = valid.split('.');
  const tamperedPayload = Buffer.from(JSON.stringify({ t: 'shadow', iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 3599 }));
  return [
    { name: 'token signed with a foreign key', lines: [`x-tenant-token: ${signTenantToken({ tenant: 'shadow', ttl: '1h' }, foreign)}`] },
    {
      name: 'expired token',
      lines: [`x-tenant-token: ${signTenantToken({ tenant: 'shadow', ttl: 60, now: new Date(now - 7_200_000) }, secret)}`],
    },
    { name: 'tampered payload', lines: [`x-tenant-token: ${version}.${tamperedPayload.toString('base64url')}.${signature}`] },
    { name: 'token of a tenant not allowed', lines: [`x-tenant-token: ${signTenantToken({ tenant: 'blue', ttl: '1h' }, secret)}`] },
    {
      name: 'token over the maximum lifetime',
      lines: [`x-tenant-token: ${signTenantToken({ tenant: 'shadow', ttl: '48h', maxTtl: '48h' }, secret)}`],
    },
    { name: 'two token headers', lines: [`x-tenant-token: ${valid}`, `X-Tenant-Token: ${valid}`] },
    { name: 'token of an unknown version', lines: [`x-tenant-token: ${valid.replace('dye1.', 'dye9.')}`] },
    { name: 'token in the baggage instead', lines: [`baggage: x-tenant-token=${valid}`, 'x-tenant: shadow'] },
  ];
}

function proxyForms(): Form[] {
  return [
    { name: 'forged X-Forwarded-For naming the trusted proxy', lines: ['x-forwarded-for: 127.0.0.2', 'x-tenant: shadow'] },
    { name: 'forged chain', lines: ['X-Forwarded-For: 10.0.0.1, 127.0.0.2', 'baggage: tenant=shadow'] },
    { name: 'forged Forwarded', lines: ['forwarded: for=127.0.0.2', 'x-tenant: shadow'] },
    { name: 'public client behind the proxy', lines: ['x-forwarded-for: 203.0.113.9', 'x-tenant: shadow'], from: TRUSTED_PROXY },
    { name: 'upper-case XFF, public client', lines: ['X-FORWARDED-FOR: 203.0.113.9', 'uberctx-tenant: shadow'], from: TRUSTED_PROXY },
    {
      name: 'two XFF headers, the public client in the first',
      lines: ['x-forwarded-for: 203.0.113.9', 'x-forwarded-for: 127.0.0.2', 'x-tenant: shadow'],
      from: TRUSTED_PROXY,
    },
    {
      name: 'forged inner hop behind the proxy',
      lines: ['x-forwarded-for: 127.0.0.2, 203.0.113.9', 'baggage: tenant=shadow'],
      from: TRUSTED_PROXY,
    },
  ];
}

function trailerForms(): Form[] {
  return [
    { name: 'x-tenant trailer', lines: [], trailers: ['x-tenant: shadow'] },
    { name: 'baggage trailer', lines: [], trailers: ['baggage: tenant=shadow'] },
    { name: 'uberctx trailer', lines: [], trailers: ['Uberctx-Tenant: shadow'] },
    { name: 'header and trailer', lines: ['x-tenant: red'], trailers: ['x-tenant: shadow', 'baggage: a=1,tenant=shadow'] },
    { name: 'valid token trailer', lines: [], trailers: [`x-tenant-token: ${signTenantToken({ tenant: 'shadow', ttl: '1h' }, secret)}`] },
    { name: 'jaeger-baggage trailer', lines: [], trailers: ['jaeger-baggage: tenant=shadow'] },
  ];
}

export const ATTACKS: Form[] = [
  ...headerForms(),
  ...baggageForms(),
  ...tokenForms(),
  ...proxyForms(),
  ...trailerForms(),
  {
    name: 'jaeger-baggage',
    lines: ['Jaeger-Baggage: tenant=shadow, a=1'],
  },
  {
    name: 'every carrier at once',
    lines: ['x-tenant: shadow', 'baggage: tenant=shadow', 'uberctx-tenant: shadow', 'ot-baggage-tenant: shadow'],
  },
];

/** OpenTelemetry's own W3C parser, the second reader of every baggage header. */
const otelBaggage = new W3CBaggagePropagator();
function otelTenants(headers: Record<string, unknown>): string[] {
  const baggage = propagation.getBaggage(otelBaggage.extract(ROOT_CONTEXT, headers, defaultTextMapGetter));
  return (baggage?.getAllEntries() ?? []).filter(([key]) => key.trim().toLowerCase() === 'tenant').map(([, entry]) => entry.value);
}

/** A third reader: form-style decoding as other languages' propagators do (`+` as space, Python's strip). */
function formStyleTenants(headers: Record<string, unknown>): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    // Jaeger clients read `jaeger-baggage` in the same `k=v, k=v` form.
    if (name.toLowerCase() !== 'baggage' && name.toLowerCase() !== 'jaeger-baggage') continue;
    for (const member of ([] as unknown[]).concat(value).map(String).join(',').split(',')) {
      const pair = member.split(';')[0] ?? '';
      const equals = pair.indexOf('=');
      if (equals < 0) continue;
      let key = pair.slice(0, equals).replaceAll('+', ' ');
      try {
        key = decodeURIComponent(key);
      } catch {}
      if (key.replace(/^[\s\x1c-\x1f\x85]+|[\s\x1c-\x1f\x85]+$/g, '').toLowerCase() === 'tenant') found.push(pair.slice(equals + 1).trim());
    }
  }
  return found;
}

function asLists(raw: string[]): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) (headers[(raw[i] as string).toLowerCase()] ??= []).push(raw[i + 1] as string);
  return headers;
}

/** Every tenant a reader could still take from what the application sees, other than the decided one. */
export function leftovers(req: IncomingMessage, decided: string): string[] {
  const found: string[] = [];
  const views: Array<[string, Record<string, unknown>]> = [
    ['headers', req.headers as Record<string, unknown>],
    ['rawHeaders', asLists(req.rawHeaders)],
    ['trailers', req.trailers as Record<string, unknown>],
    ['rawTrailers', asLists(req.rawTrailers)],
  ];
  try {
    views.push(['headersDistinct', req.headersDistinct as Record<string, unknown>]);
    views.push(['trailersDistinct', req.trailersDistinct as Record<string, unknown>]);
  } catch (error) {
    found.push(`distinct views threw: ${(error as Error).message}`);
  }
  for (const [view, headers] of views) {
    const read = readTenantInput(headers);
    if (read.kind === 'named' && read.name !== decided) found.push(`${view}: dye reads ${read.name}`);
    if (read.kind === 'conflict') found.push(`${view}: dye reads a conflict ${read.names.join('/')}`);
    for (const name of Object.keys(headers)) {
      if (!isTenantHeaderName(name)) continue;
      const values = ([] as unknown[]).concat(headers[name]).map(String);
      for (const value of values) if (value !== decided) found.push(`${view}: ${name}=${value}`);
    }
    for (const value of otelTenants(headers)) if (value !== decided) found.push(`${view}: OpenTelemetry reads tenant=${value}`);
    for (const value of formStyleTenants(headers)) if (value !== decided) found.push(`${view}: a form-style reader reads tenant=${value}`);
    // A token left in trailers is honoured by nothing here, but forwarded it could be downstream.
    if (view.includes('railers') && Object.keys(headers).some((name) => name.toLowerCase() === 'x-tenant-token'))
      found.push(`${view}: a tenant token`);
  }
  return found;
}

/** A POST with a chunked body (and trailers) sent byte for byte, from `from`. */
export function exchange(
  port: number,
  form: Form,
  probe: string,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: form.from ?? '127.0.0.1' });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
      let body = text.slice(split + 4);
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    const head = [
      'POST / HTTP/1.1',
      'Host: shop.test',
      'Connection: close',
      'Content-Type: application/octet-stream',
      'Transfer-Encoding: chunked',
      `x-probe: ${probe}`,
      ...(form.trailers ? [`Trailer: ${form.trailers.map((line) => line.slice(0, line.indexOf(':'))).join(', ')}`] : []),
      ...form.lines,
    ];
    const trailers = (form.trailers ?? []).map((line) => `${line}\r\n`).join('');
    // Header values go out as Latin-1 bytes, as Node reads them (NBSP is 0xA0).
    socket.write(`${head.join('\r\n')}\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n${trailers}\r\n`, 'latin1');
  });
}

function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    if (!size) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}

/** Defines the suite; `label` says whether the OpenTelemetry SDK is running. */
export function defineEdgeSuite(label: string): void {
  describe(`edge adversarial suite (${label})`, () => {
    const recorder = new Recorder();
    let downstream: Awaited<ReturnType<typeof listen>>;
    const apps = new Map<string, EdgeApp>();

    beforeAll(async () => {
      setLogger({ warn: () => {} });
      const internal = tenantMiddleware({ mode: 'internal' });
      // The next hop trusts what it receives (internal mode) and answers the tenant it ran in.
      downstream = await listen((req, res) =>
        internal(req, res, () => {
          const read = readTenantInput(req.headers as Record<string, unknown>);
          const otel = otelTenants(req.headers as Record<string, unknown>);
          res.end(
            read.kind === 'named' ? read.name : otel.length > 0 ? `otel:${otel.join('/')}` : read.kind === 'none' ? 'baseline' : read.kind,
          );
        }),
      );
      for (const framework of FRAMEWORKS) {
        apps.set(
          framework,
          await startEdge(framework, {
            options: { mode: 'edge', trustedProxies: [TRUSTED_PROXY], secrets: [secret], tokens: { allow: ['shadow', 'red'] } },
            recorder,
            downstreamUrl: downstream.url,
            leftovers,
          }),
        );
      }
    });
    afterAll(async () => {
      for (const app of apps.values()) await app.close();
      await downstream.close();
    });

    async function probe(framework: string, form: Form): Promise<{ status: number; responseTenant?: string; seen: Observation }> {
      const id = randomUUID();
      const app = apps.get(framework) as EdgeApp;
      const response = await exchange(app.port, form, id);
      // 'finish' and the pre-decision call complete after the response.
      for (let i = 0; i < 100; i++) {
        const seen = recorder.get(id);
        if (seen.tenants.finish !== undefined && seen.preDownstream !== undefined) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return { status: response.status, responseTenant: response.headers['x-tenant'], seen: recorder.get(id) };
    }

    it(`has at least 100 attack forms (${ATTACKS.length})`, () => {
      expect(ATTACKS.length).toBeGreaterThanOrEqual(100);
    });

    describe.each(FRAMEWORKS)('%s', (framework) => {
      it('a valid token: shadow in every callback and at the next hop, nothing before the decision', async () => {
        const token = signTenantToken({ tenant: 'shadow', ttl: '1h' }, secret);
        const { status, responseTenant, seen } = await probe(framework, {
          name: 'valid token',
          lines: [`x-tenant-token: ${token}`, 'baggage: tenant=red'],
        });
        expect(status).toBe(200);
        expect(responseTenant).toBe('shadow');
        expect(seen.error).toBeUndefined();
        expect(seen.tenants).toEqual({
          pre: 'baseline',
          handler: 'shadow',
          data: 'shadow',
          end: 'shadow',
          write: 'shadow',
          pipeline: 'shadow',
          finished: 'shadow',
          finish: 'shadow',
        });
        expect(seen.downstream).toBe('shadow');
        expect(seen.preDownstream).toBe('baseline');
        expect(seen.leftovers).toEqual([]);
      });

      it.each(ATTACKS.map((form) => [form.name, form] as const))('attack: %s', async (_name, form) => {
        const { status, responseTenant, seen } = await probe(framework, form);
        expect(status).toBe(200);
        expect(responseTenant).toBe('baseline');
        expect(seen.error).toBeUndefined();
        expect(seen.tenants).toEqual({
          pre: 'baseline',
          handler: 'baseline',
          data: 'baseline',
          end: 'baseline',
          write: 'baseline',
          pipeline: 'baseline',
          finished: 'baseline',
          finish: 'baseline',
        });
        expect(seen.downstream).toBe('baseline');
        expect(seen.preDownstream).toBe('baseline');
        expect(seen.leftovers).toEqual([]);
      });
    });
  });
}
