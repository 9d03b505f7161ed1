import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LaneRotation, type RotationTarget } from '../src/index.js';

const targets = (n: number, weight?: (i: number) => number): RotationTarget[] =>
  Array.from({ length: n }, (_, i) => ({ key: `10.0.0.${i}:50051`, ...(weight ? { weight: weight(i) } : {}) }));

function counts(picks: Array<RotationTarget | undefined>): Map<string, number> {
  const result = new Map<string, number>();
  for (const pick of picks) if (pick) result.set(pick.key, (result.get(pick.key) ?? 0) + 1);
  return result;
}

/** A seeded generator (mulberry32): property runs repeat exactly. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('LaneRotation', () => {
  it('with equal weights, every n picks visit each of n targets once, wherever the rotation starts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 5 }), fc.integer(), (n, rounds, seed) => {
        const rotation = new LaneRotation(seeded(seed));
        const lane = targets(n);
        for (let round = 0; round < rounds; round++) {
          const picks = Array.from({ length: n }, () => rotation.pick('baseline', lane));
          expect(counts(picks).size).toBe(n);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('callers made one after another start at different targets: their first picks spread evenly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 100 }), (n, callers) => {
        const lane = targets(n);
        const first = Array.from({ length: callers }, () => new LaneRotation().pick('red', lane));
        const share = callers / n;
        for (const count of counts(first).values()) expect(Math.abs(count - share)).toBeLessThan(1);
      }),
      { numRuns: 200 },
    );
  });

  it('goes on across rebuilds: after the lane changes, callers do not all start over at its first target', () => {
    // 40 callers, each one pick in; the lane gains a target (a rebuilt pool). Their next picks spread.
    const callers = Array.from({ length: 40 }, () => new LaneRotation());
    for (const caller of callers) caller.pick('baseline', targets(4));
    for (let change = 5; change <= 8; change++) {
      const lane = targets(change);
      const next = counts(callers.map((caller) => caller.pick('baseline', lane)));
      const share = 40 / change;
      for (const count of next.values()) expect(count).toBeLessThanOrEqual(Math.ceil(share));
    }
  });

  it('honours weights: over k cycles each target gets k × its weight picks (within 2)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 8 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer(),
        (weights, cycles, seed) => {
          const lane = targets(weights.length, (i) => weights[i] as number);
          const total = weights.reduce((sum, weight) => sum + weight, 0);
          const rotation = new LaneRotation(seeded(seed));
          const picked = counts(Array.from({ length: total * cycles }, () => rotation.pick('canary', lane)));
          lane.forEach((target, i) => {
            expect(Math.abs((picked.get(target.key) ?? 0) - cycles * (weights[i] as number))).toBeLessThanOrEqual(2);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('spreads a heavy target smoothly: a 3:1 lane never picks the heavy one five times running', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const lane = targets(2, (i) => (i === 0 ? 3 : 1));
        const rotation = new LaneRotation(seeded(seed));
        let run = 0;
        for (let i = 0; i < 200; i++) {
          run = rotation.pick('baseline', lane)?.key === lane[0]?.key ? run + 1 : 0;
          expect(run).toBeLessThan(5);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('ignores weights that are not positive finite numbers (they count as 1)', () => {
    const lane: RotationTarget[] = [
      { key: 'a', weight: Number.NaN },
      { key: 'b', weight: -3 },
      { key: 'c', weight: Number.POSITIVE_INFINITY },
      { key: 'd' },
    ];
    const picked = counts(Array.from({ length: 400 }, () => new LaneRotation(seeded(7)).pick('baseline', lane)));
    expect([...picked.keys()].every((key) => ['a', 'b', 'c', 'd'].includes(key))).toBe(true);
    const rotation = new LaneRotation(seeded(9));
    const even = counts(Array.from({ length: 400 }, () => rotation.pick('baseline', lane)));
    for (const key of ['a', 'b', 'c', 'd']) expect(even.get(key)).toBe(100);
  });

  it('answers undefined for an empty lane, and keeps lanes apart', () => {
    const rotation = new LaneRotation(seeded(1));
    expect(rotation.pick('red', [])).toBeUndefined();
    const red = targets(3);
    const baseline = targets(2);
    const redPicks = Array.from({ length: 3 }, () => rotation.pick('red', red));
    Array.from({ length: 5 }, () => rotation.pick('baseline', baseline));
    expect(counts(redPicks).size).toBe(3);
    rotation.retain(['baseline']);
    expect(rotation.pick('red', red)).toBeDefined();
  });
});
