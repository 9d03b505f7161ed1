import { describe, expect, it } from 'vitest';
import { FirstUseCheck } from '../src/index.js';

describe('FirstUseCheck', () => {
  it('runs once for concurrent callers and keeps a success', async () => {
    let runs = 0;
    const check = new FirstUseCheck(async () => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    });
    await Promise.all([check.ensure(), check.ensure(), check.ensure()]);
    await check.ensure();
    expect(runs).toBe(1);
    expect(check.passed).toBe(true);
  });

  it('keeps a failure for the retry interval, then asks again (a setup fixed while running is picked up)', async () => {
    let broken = true;
    let runs = 0;
    const check = new FirstUseCheck(async () => {
      runs++;
      if (broken) throw new Error('not confined');
    }, 30);
    await expect(check.ensure()).rejects.toThrow('not confined');
    await expect(check.ensure()).rejects.toThrow('not confined');
    expect(runs).toBe(1);
    broken = false;
    await new Promise((resolve) => setTimeout(resolve, 40));
    await check.ensure();
    expect(runs).toBe(2);
    expect(check.passed).toBe(true);
  });
});
