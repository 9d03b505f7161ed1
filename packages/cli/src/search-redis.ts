import { isolatedKeyPrefix } from '@dye/core';
import type { Redis } from 'ioredis';
import type { MarkerSearch } from './marker-search.js';

// Values longer than this are read in part: a marker sits in what a request wrote, near the start.
const VALUE_BYTES = 1 << 20;

/**
 * Searches one Redis database for `marker`: every key's name (SCAN), the
 * value of string keys (up to 1 MiB each) and the fields and values of hash
 * keys, up to `maxKeys` keys. Keys under `<tenant>:` are the run's own.
 */
export async function searchRedis(redis: Redis, marker: string, tenant: string, maxKeys: number): Promise<MarkerSearch> {
  const result: MarkerSearch = { findings: [], searched: [] };
  const prefix = isolatedKeyPrefix(tenant);
  const needle = Buffer.from(marker);
  const counts = { production: 0, isolated: 0, otherTypes: 0 };
  let truncated = false;
  let cursor = '0';
  const found = (key: string, where: 'name' | 'value') =>
    result.findings.push({ store: 'redis', place: `${key} (${where})`, count: 1, isolated: key.startsWith(prefix) });
  do {
    const [next, keys] = await redis.scanBuffer(cursor, 'COUNT', 1000);
    cursor = next.toString();
    const batch = keys.slice(0, maxKeys - counts.production - counts.isolated);
    if (batch.length < keys.length) truncated = true;
    if (batch.length === 0) continue;
    const types = (await batch.reduce((pipeline, key) => pipeline.type(key), redis.pipeline()).exec()) ?? [];
    const reads = redis.pipeline();
    const read: Array<{ key: string; kind: 'string' | 'hash' }> = [];
    batch.forEach((keyBuffer, index) => {
      const key = keyBuffer.toString('latin1');
      if (key.startsWith(prefix)) counts.isolated++;
      else counts.production++;
      if (keyBuffer.includes(needle)) found(keyBuffer.toString(), 'name');
      const type = String(types[index]?.[1] ?? '');
      if (type === 'string') {
        reads.getrangeBuffer(keyBuffer, 0, VALUE_BYTES - 1);
        read.push({ key: keyBuffer.toString(), kind: 'string' });
      } else if (type === 'hash') {
        reads.hgetallBuffer(keyBuffer);
        read.push({ key: keyBuffer.toString(), kind: 'hash' });
      } else counts.otherTypes++;
    });
    if (read.length === 0) continue;
    const values = (await reads.exec()) ?? [];
    read.forEach(({ key, kind }, index) => {
      const value = values[index]?.[1];
      const holds =
        kind === 'string'
          ? Buffer.isBuffer(value) && value.includes(needle)
          : value !== null &&
            typeof value === 'object' &&
            Object.entries(value as Record<string, Buffer>).some(([field, content]) => field.includes(marker) || content.includes(needle));
      if (holds) found(key, 'value');
    });
  } while (cursor !== '0' && counts.production + counts.isolated < maxKeys);
  if (cursor !== '0') truncated = true;
  const db = `db ${(redis.options.db ?? 0) as number}`;
  result.searched.push({ store: 'redis', place: `${db}, keys outside ${prefix}`, scanned: counts.production, truncated, isolated: false });
  result.searched.push({ store: 'redis', place: `${db}, keys under ${prefix}`, scanned: counts.isolated, truncated, isolated: true });
  if (counts.otherTypes > 0)
    result.searched.push({
      store: 'redis',
      place: `${db}: ${counts.otherTypes} list, set, sorted set or stream keys (names searched, values not read)`,
      scanned: counts.otherTypes,
      truncated: false,
      isolated: false,
    });
  return result;
}
