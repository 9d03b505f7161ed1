import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Instance, SelfPreservation } from '../src/index.js';

const TTL = 1_000;
const instance = (id: string): Instance => ({ app: 'shop.cart', id, address: `10.0.0.1:${5000 + Number(id.slice(1))}`, lane: 'baseline' });
const alive = (ids: string[], now: number) => ids.map((id) => ({ instance: instance(id), expiresAt: now + TTL }));
const expiredAt = (ids: string[], at: number) => ids.map((id) => ({ instance: instance(id), expiresAt: at }));
const routedIds = (decision: { instances: readonly Instance[] }) => decision.instances.map((routed) => routed.id).sort();

describe('SelfPreservation', () => {
  it('holds instances gone from the registry without a deregistration (a registry restarted empty), even one', () => {
    const preservation = new SelfPreservation(TTL, 0.15);
    expect(routedIds(preservation.decide(alive(['i1'], 0), 0))).toEqual(['i1']);
    const empty = preservation.decide([], 100);
    expect([routedIds(empty), empty.preserving, empty.held]).toEqual([['i1'], true, ['i1']]);
  });

  it('lets a deregistered instance go at once (its tombstone says it left on purpose)', () => {
    const preservation = new SelfPreservation(TTL, 0.15);
    preservation.decide(alive(['i1', 'i2', 'i3'], 0), 0);
    const after = preservation.decide(alive(['i2', 'i3'], 100), 100, new Set(['i1']));
    expect([routedIds(after), after.preserving]).toEqual([['i2', 'i3'], false]);
  });

  it('ignores a record whose id also has a tombstone (deregistration won a race with a heartbeat)', () => {
    const preservation = new SelfPreservation(TTL, 0.15);
    preservation.decide(alive(['i1', 'i2'], 0), 0);
    expect(routedIds(preservation.decide(alive(['i1', 'i2'], 50), 50, new Set(['i1'])))).toEqual(['i2']);
  });

  it('holds an expiry storm for ten TTLs, not one, and then lets it go once: no flapping at the edge', () => {
    const preservation = new SelfPreservation(TTL, 0.15);
    const all = ['i1', 'i2', 'i3', 'i4'];
    preservation.decide(alive(all, 0), 0);
    // i3 and i4 stop renewing (a partition) and expire at 1 000.
    const records = (now: number) => [...alive(['i1', 'i2'], now), ...expiredAt(['i3', 'i4'], TTL)];
    const timeline: Array<[number, boolean]> = [];
    for (let now = TTL + 100; now <= 25 * TTL; now += 250) {
      const decision = preservation.decide(records(now), now);
      timeline.push([now, routedIds(decision).includes('i3')]);
    }
    const held = timeline.filter(([, routed]) => routed).map(([now]) => now);
    expect(Math.min(...held)).toBe(TTL + 100);
    expect(Math.max(...held)).toBeLessThanOrEqual(11 * TTL);
    expect(Math.max(...held)).toBeGreaterThan(10.5 * TTL);
    // One run of held decisions, then never again.
    const firstGone = timeline.findIndex(([, routed]) => !routed);
    expect(timeline.slice(firstGone).every(([, routed]) => !routed)).toBe(true);
    expect(timeline.slice(0, firstGone).every(([, routed]) => routed)).toBe(true);
  });

  it('lets a single expiry go: one crash is not a storm', () => {
    const preservation = new SelfPreservation(TTL, 0.15);
    preservation.decide(alive(['i1', 'i2', 'i3'], 0), 0);
    const after = preservation.decide([...alive(['i1', 'i2'], 1500), ...expiredAt(['i3'], TTL)], 1500);
    expect([routedIds(after), after.preserving]).toEqual([['i1', 'i2'], false]);
  });

  it('holds a storm whole when a read falls between its first and second expiry (entries expire a heartbeat apart)', () => {
    const preservation = new SelfPreservation(TTL, 0.15);
    const all = ['i1', 'i2', 'i3'];
    preservation.decide(alive(all, 0), 0);
    // A partition: the three stop renewing; i1 expires at 1 000, i2 and i3 a heartbeat later.
    const first = preservation.decide([...expiredAt(['i1'], TTL), ...alive(['i2', 'i3'], 1_050)], 1_050);
    expect(routedIds(first)).toEqual(['i2', 'i3']);
    const storm = preservation.decide([...expiredAt(['i1'], TTL), ...expiredAt(['i2', 'i3'], 1_100)], 1_150);
    expect([routedIds(storm), storm.preserving]).toEqual([all, true]);
    // And the hold lasts as any storm's: ten TTLs from each loss, then gone for good.
    const records = [...expiredAt(['i1'], TTL), ...expiredAt(['i2', 'i3'], 1_100)];
    expect(routedIds(preservation.decide(records, 10 * TTL))).toEqual(all);
    expect(routedIds(preservation.decide(records, 11.2 * TTL))).toEqual([]);
    expect(routedIds(preservation.decide([...records, ...expiredAt(['i4'], 11.5 * TTL)], 12 * TTL))).toEqual([]);
  });

  it('an expiry let go alone, then a vanishing within its TTL (a store that deletes expired entries): both held', () => {
    const preservation = new SelfPreservation(TTL, 0.15);
    preservation.decide(alive(['i1', 'i2', 'i3', 'i4'], 0), 0);
    const first = preservation.decide([...alive(['i1', 'i2', 'i4'], 1_050), ...expiredAt(['i3'], TTL)], 1_050);
    expect(routedIds(first)).toEqual(['i1', 'i2', 'i4']);
    // i4's entry is gone from the store (its lease ran out there) before it was ever read as expired.
    const storm = preservation.decide([...alive(['i1', 'i2'], 1_200), ...expiredAt(['i3'], TTL)], 1_200);
    expect([routedIds(storm), storm.preserving]).toEqual([['i1', 'i2', 'i3', 'i4'], true]);
  });

  it('a storm long after a single expiry does not bring that one back', () => {
    const preservation = new SelfPreservation(TTL, 0.15);
    preservation.decide(alive(['i1', 'i2', 'i3', 'i4'], 0), 0);
    preservation.decide([...expiredAt(['i1'], TTL), ...alive(['i2', 'i3', 'i4'], 1_500)], 1_500);
    const storm = preservation.decide([...expiredAt(['i1'], TTL), ...expiredAt(['i2', 'i3'], 3 * TTL), ...alive(['i4'], 3_100)], 3_100);
    expect(routedIds(storm)).toEqual(['i2', 'i3', 'i4']);
  });

  it('stops holding an instance that is alive again, and holds it anew if it is lost again', () => {
    const preservation = new SelfPreservation(TTL, 0.15);
    preservation.decide(alive(['i1', 'i2'], 0), 0);
    expect(preservation.decide([], 100).preserving).toBe(true);
    const back = preservation.decide(alive(['i1', 'i2'], 200), 200);
    expect([routedIds(back), back.preserving]).toEqual([['i1', 'i2'], false]);
    expect(routedIds(preservation.decide([], 300))).toEqual(['i1', 'i2']);
  });

  it('never routes an instance it was not routing (a hold keeps, or restores a storm’s first expiry; it does not add)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            alive: fc.subarray(['i1', 'i2', 'i3', 'i4', 'i5']),
            expired: fc.subarray(['i1', 'i2', 'i3', 'i4', 'i5']),
            gone: fc.subarray(['i1', 'i2', 'i3', 'i4', 'i5']),
            step: fc.integer({ min: 1, max: 3 * TTL }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        (reads) => {
          const preservation = new SelfPreservation(TTL, 0.15);
          let now = 0;
          // Routed before and not deregistered since: what a hold may keep (or a storm
          // restore, its first expiry having been let go alone).
          const routedBefore = new Set<string>();
          for (const read of reads) {
            now += read.step;
            const expired = read.expired.filter((id) => !read.alive.includes(id));
            const decision = preservation.decide([...alive(read.alive, now), ...expiredAt(expired, now - 1)], now, new Set(read.gone));
            const routed = new Set(routedIds(decision));
            for (const id of routed) {
              // Routed: alive and not deregistered, or held from what was routed before.
              const live = read.alive.includes(id) && !read.gone.includes(id);
              expect(live || (routedBefore.has(id) && !read.gone.includes(id))).toBe(true);
            }
            expect(decision.preserving).toBe(decision.held.length > 0);
            for (const id of read.gone) routedBefore.delete(id);
            for (const id of routed) routedBefore.add(id);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
