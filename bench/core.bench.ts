/**
 * @dye/core against a bare AsyncLocalStorage doing the same job, first on a
 * plain process, then with the OpenTelemetry SDK's context manager registered
 * (as in a service running the OTel Node SDK).
 *
 *   npm run bench            (all suites)
 *   npx tsx bench/core.bench.ts
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { BASELINE, currentTenant, extractTenant, injectTenant, nodeHeaders, setLogger, type Tenant, withTenant } from '@dye/core';
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type Case, type CaseResult, compare, printResults } from './harness.js';

setLogger({ warn: () => {} });

const red: Tenant = { name: 'red', kind: 'color' };
const bareStorage = new AsyncLocalStorage<Tenant>();
const noop = () => 0;

// What a team would write by hand: one ALS, the header read directly and the
// baggage split to find its tenant member (no limits, no decoding, no conflicts).
function bareExtract(headers: Record<string, string | string[] | undefined>): Tenant {
  const header = headers['x-tenant'];
  if (typeof header === 'string' && header.length > 0) return red;
  const baggage = headers.baggage;
  if (typeof baggage !== 'string') return BASELINE;
  for (const member of baggage.split(',')) {
    const [key, value] = member.split('=');
    if (key?.trim() === 'tenant' && value) return red;
  }
  return BASELINE;
}

function bareInject(headers: Record<string, string>, tenant: Tenant): void {
  headers['x-tenant'] = tenant.name;
  headers.baggage = headers.baggage ? `tenant=${tenant.name},${headers.baggage}` : `tenant=${tenant.name}`;
}

const inbound = { host: 'shop.local', accept: '*/*', 'x-tenant': 'red', baggage: 'tenant=red,user=u-1234,region=eu-west' };
const inboundBaseline = { host: 'shop.local', accept: '*/*', baggage: 'user=u-1234,region=eu-west' };

function cases(): Case[] {
  return [
    {
      name: 'currentTenant() in baseline (no context)',
      bare: () => bareStorage.getStore() ?? BASELINE,
      dye: () => currentTenant(),
    },
    {
      name: 'currentTenant() inside a tenant',
      bare: () => bareStorage.getStore() ?? BASELINE,
      dye: () => currentTenant(),
      around: (batch) => bareStorage.run(red, () => withTenant(red, batch)),
    },
    {
      name: 'withTenant(tenant, fn)',
      bare: () => bareStorage.run(red, noop),
      dye: () => withTenant(red, noop),
    },
    {
      name: 'extractTenant (x-tenant + baggage)',
      bare: () => bareExtract(inbound),
      dye: () => extractTenant(inbound, nodeHeaders),
    },
    {
      name: 'extractTenant (baseline, other baggage)',
      bare: () => bareExtract(inboundBaseline),
      dye: () => extractTenant(inboundBaseline, nodeHeaders),
    },
    {
      name: 'injectTenant (color, fresh headers)',
      bare: () => bareInject({}, red),
      dye: () => injectTenant({}, nodeHeaders, red),
    },
    {
      name: 'injectTenant (baseline, fresh headers)',
      bare: () => ({}),
      dye: () => injectTenant({}, nodeHeaders, BASELINE),
    },
  ];
}

export async function run(): Promise<CaseResult[]> {
  const plain = await compare('core', cases());
  printResults('@dye/core vs a bare AsyncLocalStorage (no OpenTelemetry context manager)', plain);

  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  // With OTel active the fair comparison for withTenant is OTel's own way of
  // carrying a baggage entry; measured next to the bare ALS.
  const otelCases = cases();
  otelCases.push({
    name: 'withTenant vs OTel context.with(baggage) alone',
    bare: () => {
      const active = context.active();
      const next = (propagation.getBaggage(active) ?? propagation.createBaggage()).setEntry('tenant', { value: red.name });
      return context.with(propagation.setBaggage(active, next), noop);
    },
    dye: () => withTenant(red, noop),
  });
  const withOtel = await compare('core+otel', otelCases);
  printResults('@dye/core vs a bare AsyncLocalStorage, OpenTelemetry AsyncLocalStorageContextManager registered', withOtel);
  context.disable();
  return [...plain, ...withOtel];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
}
