import { describe, expect, it } from 'vitest';
import { compileCanaryRule } from '../src/canary.js';
import { canaryBucket } from '../src/index.js';

describe('canary rules', () => {
  it('sends within ±0.5 percentage points of the configured share of 100,000 user keys', () => {
    for (const percent of [1, 5, 20, 50]) {
      const rule = compileCanaryRule<string>({ tenant: 'canary', percent, key: (user) => user });
      let matched = 0;
      for (let i = 0; i < 100_000; i++) if (rule.matches(`user-${i}`)) matched++;
      const share = matched / 1000;
      expect(Math.abs(share - percent), `${percent}% configured, ${share}% matched`).toBeLessThanOrEqual(0.5);
    }
  });

  it('keeps a user in the same lane across requests and rule instances', () => {
    const first = compileCanaryRule<string>({ tenant: 'canary', percent: 5, key: (user) => user });
    const second = compileCanaryRule<string>({ tenant: 'canary', percent: 5, key: (user) => user });
    for (let i = 0; i < 5_000; i++) {
      const user = `user-${i}`;
      const lane = first.matches(user);
      expect(first.matches(user)).toBe(lane);
      expect(second.matches(user)).toBe(lane);
    }
  });

  it('has a fixed bucket for a known key, so lanes survive releases', () => {
    // SHA-256("canary\0user-42") begins 0x552fc1ff; pinned so that changing the hash is a visible decision.
    expect(canaryBucket('user-42', 'canary')).toBe(3215);
    expect(canaryBucket('user-42', 'red')).not.toBe(3215);
  });

  it('picks different users for different lanes of the same percent', () => {
    const red = compileCanaryRule<string>({ tenant: 'red', percent: 10, key: (user) => user });
    const blue = compileCanaryRule<string>({ tenant: 'blue', percent: 10, key: (user) => user });
    let both = 0;
    for (let i = 0; i < 20_000; i++) if (red.matches(`u${i}`) && blue.matches(`u${i}`)) both++;
    // Independent 10 % draws overlap on about 1 %, not 10 %.
    expect(both / 20_000).toBeLessThan(0.02);
  });

  it('always sends allowlisted keys, never sends at 0 % or without a key', () => {
    const rule = compileCanaryRule<{ user?: string }>({ tenant: 'canary', percent: 0, key: (req) => req.user, allow: ['tester-1'] });
    expect(rule.matches({ user: 'tester-1' })).toBe(true);
    expect(rule.matches({ user: 'user-1' })).toBe(false);
    expect(rule.matches({})).toBe(false);
    const all = compileCanaryRule<{ user?: string }>({ tenant: 'canary', percent: 100, key: (req) => req.user });
    expect(all.matches({ user: 'anyone' })).toBe(true);
  });

  it('refuses rules for isolated tenants, baseline, bad percentages and missing keys', () => {
    const key = () => 'k';
    expect(() => compileCanaryRule({ tenant: 'shadow', percent: 5, key })).toThrow(/isolated/);
    expect(() => compileCanaryRule({ tenant: 'baseline', percent: 5, key })).toThrow(/baseline/);
    expect(() => compileCanaryRule({ tenant: 'canary', percent: 101, key })).toThrow(/percent/);
    expect(() => compileCanaryRule({ tenant: 'canary', percent: Number.NaN, key })).toThrow(/percent/);
    expect(() => compileCanaryRule({ tenant: 'canary', percent: 5, key: 'user' as never })).toThrow(/key/);
  });
});
