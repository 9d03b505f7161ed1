import { BASELINE, createPolicy } from '@dye/core';
import { describe, expect, it } from 'vitest';
import { chooseLane, groupByLane } from '../src/index.js';

const policy = createPolicy({ tenants: { pay: { kind: 'color', fallback: 'reject' } } });
const lanes =
  (...available: string[]) =>
  (lane: string) =>
    available.includes(lane);

describe('chooseLane', () => {
  it('uses the tenant own lane when it can serve', () => {
    expect(chooseLane('shop.inventory', policy.tenant('red'), lanes('baseline', 'red'), policy)).toEqual({
      ok: true,
      lane: 'red',
      fellBack: false,
    });
    expect(chooseLane('shop.inventory', BASELINE, lanes('baseline', 'red'), policy)).toEqual({
      ok: true,
      lane: 'baseline',
      fellBack: false,
    });
  });

  it('falls back to baseline for weak tags and isolated tenants', () => {
    expect(chooseLane('shop.inventory', policy.tenant('red'), lanes('baseline'), policy)).toEqual({
      ok: true,
      lane: 'baseline',
      fellBack: true,
    });
    expect(chooseLane('shop.inventory', policy.tenant('shadow'), lanes('baseline'), policy)).toEqual({
      ok: true,
      lane: 'baseline',
      fellBack: true,
    });
    expect(chooseLane('shop.inventory', policy.tenant('shadow'), lanes('baseline', 'shadow'), policy)).toMatchObject({ lane: 'shadow' });
  });

  it('refuses strict tags without an instance, naming app and tenant', () => {
    expect(chooseLane('shop.payments', policy.tenant('pay'), lanes('baseline'), policy)).toEqual({
      ok: false,
      message: 'no instance of shop.payments serves tenant "pay", and its policy forbids falling back to baseline',
    });
  });

  it('refuses when nothing can serve', () => {
    expect(chooseLane('shop.inventory', BASELINE, lanes(), policy)).toMatchObject({
      ok: false,
      message: expect.stringContaining('shop.inventory'),
    });
    expect(chooseLane('shop.inventory', policy.tenant('red'), lanes(), policy)).toMatchObject({ ok: false });
  });

  it('groups by lane', () => {
    expect(
      groupByLane([
        { lane: 'red', id: 1 },
        { lane: 'baseline', id: 2 },
        { lane: 'red', id: 3 },
      ]),
    ).toEqual(
      new Map([
        [
          'red',
          [
            { lane: 'red', id: 1 },
            { lane: 'red', id: 3 },
          ],
        ],
        ['baseline', [{ lane: 'baseline', id: 2 }]],
      ]),
    );
  });
});
