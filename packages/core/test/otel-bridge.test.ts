import { setTimeout as sleep } from 'node:timers/promises';
import { context, propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASELINE, bindTenant, currentTenant, withTenant } from '../src/index.js';

// With an OpenTelemetry SDK's context manager registered, as a service running
// the OTel Node SDK has it.
describe('OpenTelemetry bridge', () => {
  const propagator = new W3CBaggagePropagator();

  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(propagator);
  });

  afterAll(() => {
    context.disable();
    propagation.disable();
  });

  function outboundBaggage(): string | undefined {
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    return carrier.baggage;
  }

  it('puts tenant=<name> into the active OTel baggage inside withTenant, across awaits', async () => {
    await withTenant('red', async () => {
      await sleep(1);
      expect(propagation.getActiveBaggage()?.getEntry('tenant')?.value).toBe('red');
      expect(outboundBaggage()).toBe('tenant=red');
    });
    expect(propagation.getActiveBaggage()).toBeUndefined();
  });

  it('keeps the other baggage members of the active context', () => {
    const withUser = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ user: { value: 'u1' } }));
    context.with(withUser, () =>
      withTenant('shadow', () => {
        const baggage = propagation.getActiveBaggage();
        expect(baggage?.getEntry('user')?.value).toBe('u1');
        expect(baggage?.getEntry('tenant')?.value).toBe('shadow');
      }),
    );
  });

  it('removes a tenant member that OTel extracted from untrusted input when Dye decides baseline', () => {
    // What OTel's HTTP instrumentation does with an inbound `baggage: tenant=shadow`.
    const extracted = propagation.extract(ROOT_CONTEXT, { baggage: 'tenant=shadow,user=u1' });
    context.with(extracted, () => {
      withTenant(BASELINE, () => {
        expect(currentTenant()).toBe(BASELINE);
        expect(propagation.getActiveBaggage()?.getEntry('tenant')).toBeUndefined();
        expect(outboundBaggage()).toBe('user=u1');
      });
    });
  });

  it('falls back to OTel baggage when Dye has no tenant of its own', async () => {
    const ctx = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ tenant: { value: 'Canary' } }));
    await context.with(ctx, async () => {
      await sleep(1);
      expect(currentTenant()).toEqual({ name: 'canary', kind: 'color' });
    });
  });

  it('ignores an invalid tenant in OTel baggage (baseline)', () => {
    const ctx = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ tenant: { value: 'not valid!' } }));
    expect(context.with(ctx, () => currentTenant())).toBe(BASELINE);
  });

  it("prefers Dye's own context over OTel baggage", () => {
    const ctx = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ tenant: { value: 'red' } }));
    expect(withTenant('shadow', () => context.with(ctx, () => currentTenant().name))).toBe('shadow');
  });
});

describe('bindTenant with OpenTelemetry', () => {
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(() => context.disable());

  it('carries the OTel context active at bind time along with the tenant', () => {
    const withUser = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ user: { value: 'u7' } }));
    const bound = context.with(withUser, () => withTenant('red', () => bindTenant(() => propagation.getActiveBaggage())));
    const baggage = withTenant('shadow', () => bound());
    expect(baggage?.getEntry('user')?.value).toBe('u7');
    expect(baggage?.getEntry('tenant')?.value).toBe('red');
  });
});
