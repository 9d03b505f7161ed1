import { describe, expect, it } from 'vitest';
import { BASELINE, createPolicy, isolatedName } from '../src/index.js';

describe('isolatedName', () => {
  const shadow = createPolicy().tenant('shadow');

  it('names shadow resources as DESIGN.md draws them', () => {
    expect(isolatedName('redis-key', 'cart:42', shadow)).toBe('shadow:cart:42');
    expect(isolatedName('mysql-database', 'shop', shadow)).toBe('shop_shadow');
    expect(isolatedName('kafka-topic', 'order-created', shadow)).toBe('order-created_shadow');
    expect(isolatedName('kafka-group', 'notifier', shadow)).toBe('notifier_shadow');
  });

  it('turns dashes of the tenant into underscores in suffixes, not in key prefixes', () => {
    expect(isolatedName('redis-key', 'k', 'shadow-lt1')).toBe('shadow-lt1:k');
    expect(isolatedName('mysql-database', 'shop', 'shadow-lt1')).toBe('shop_shadow_lt1');
    expect(isolatedName('kafka-topic', 't', 'shadow-lt1')).toBe('t_shadow_lt1');
    expect(isolatedName('kafka-group', 'g', 'SHADOW-LT1')).toBe('g_shadow_lt1');
  });

  it('refuses baseline, invalid tenants, empty names and unknown resources', () => {
    expect(() => isolatedName('redis-key', 'k', BASELINE)).toThrow(/baseline/);
    expect(() => isolatedName('redis-key', 'k', 'baseline')).toThrow(/baseline/);
    expect(() => isolatedName('kafka-topic', 't', 'not valid')).toThrow(TypeError);
    expect(() => isolatedName('mysql-database', '', shadow)).toThrow(/empty/);
    expect(() => isolatedName('queue' as 'kafka-topic', 'q', shadow)).toThrow(/unknown resource/);
  });
});
