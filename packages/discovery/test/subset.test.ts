import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { subset } from '../src/index.js';

const backends = (n: number) => Array.from({ length: n }, (_, i) => `10.0.0.${i}:50051`);

describe('subset', () => {
  it('for client ids 0..k-1, every backend client count is within ±1 of the mean', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 200 }),
        (n, size, clients) => {
          const list = backends(n);
          const counts = new Map(list.map((backend) => [backend, 0]));
          for (let client = 0; client < clients; client++) {
            const chosen = subset(list, client, size);
            expect(new Set(chosen).size).toBe(chosen.length);
            expect(chosen.length).toBe(Math.min(size, n));
            for (const backend of chosen) counts.set(backend, (counts.get(backend) as number) + 1);
          }
          const mean = (clients * Math.min(size, n)) / n;
          for (const count of counts.values()) expect(Math.abs(count - mean)).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is the same for the same client whatever the order backends are listed in', () => {
    const list = backends(12);
    const shuffled = [...list].reverse();
    for (let client = 0; client < 30; client++) expect(subset(shuffled, client, 3)).toEqual(subset(list, client, 3));
  });

  it('gives different rounds different subsets (reshuffled per round)', () => {
    const list = backends(12);
    const firstRound = Array.from({ length: 4 }, (_, client) => subset(list, client, 3).join());
    const secondRound = Array.from({ length: 4 }, (_, client) => subset(list, client + 4, 3).join());
    expect(secondRound).not.toEqual(firstRound);
  });

  it('returns every backend when size covers them, and refuses bad arguments', () => {
    expect(subset(backends(3), 5, 10)).toHaveLength(3);
    expect(() => subset(backends(3), -1, 1)).toThrow(TypeError);
    expect(() => subset(backends(3), 0, 0)).toThrow(TypeError);
  });
});
