import { isolatedKeyPrefix } from '@dye/core';
import type { Redis } from 'ioredis';
import type { MarkerSearch } from './marker-search.js';

// Values longer than these are read in part (and reported as not read in full):
// a marker sits in what a request wrote, near the start.
const VALUE_BYTES = 1 << 20;
const VALUE_ITEMS = 10_000;

/**
 * How each type is read: its size, then up to the bound (the newest entries
 * of a stream). Only read commands (@read), so a read-only audit account can
 * run the search; a key whose type changed meanwhile fails alone, reported.
 */
type Pipeline = ReturnType<Redis['pipeline']>;
const VALUE_READERS: Record<string, ((pipeline: Pipeline, key: Buffer) => void) | undefined> = {
  string: (pipeline, key) => pipeline.strlen(key).getrangeBuffer(key, 0, VALUE_BYTES - 1),
  hash: (pipeline, key) => pipeline.hlen(key).hrandfieldBuffer(key, VALUE_ITEMS, 'WITHVALUES'),
  list: (pipeline, key) => pipeline.llen(key).lrangeBuffer(key, 0, VALUE_ITEMS - 1),
  set: (pipeline, key) => pipeline.scard(key).srandmemberBuffer(key, VALUE_ITEMS),
  zset: (pipeline, key) => pipeline.zcard(key).zrangeBuffer(key, '0', String(VALUE_ITEMS - 1)),
  stream: (pipeline, key) => pipeline.xlen(key).xrevrangeBuffer(key, '+', '-', 'COUNT', VALUE_ITEMS),
};

function holdsBytes(part: unknown, needle: Buffer): boolean {
  if (Buffer.isBuffer(part)) return part.includes(needle);
  if (Array.isArray(part)) return part.some((item) => holdsBytes(item, needle));
  return typeof part === 'string' && part.includes(needle.toString());
}

const sample = (items: readonly string[]) => `${items.slice(0, 5).join(', ')}${items.length > 5 ? ` and ${items.length - 5} more` : ''}`;

/**
 * Searches one Redis database for `marker`: every key's name (SCAN) and its
 * value (strings up to 1 MiB; hashes, lists, sets, sorted sets and the newest
 * stream entries up to 10,000 items), up to `maxKeys` keys. What it could not
 * read in full is reported. Keys under `<tenant>:` are the run's own.
 */
export async function searchRedis(redis: Redis, marker: string, tenant: string, maxKeys: number): Promise<MarkerSearch> {
  const result: MarkerSearch = { findings: [], searched: [] };
  const prefix = isolatedKeyPrefix(tenant);
  const needle = Buffer.from(marker);
  const counts = { production: 0, isolated: 0 };
  let calls = 0;
  const maxCalls = Math.max(10_000, Math.ceil(maxKeys / 100));
  const longValues: string[] = [];
  const unreadTypes = new Set<string>();
  const unreadKeys: string[] = [];
  let truncated = false;
  let cursor = '0';
  const found = (key: string, where: 'name' | 'value') =>
    result.findings.push({ store: 'redis', place: `${key} (${where})`, count: 1, isolated: key.startsWith(prefix) });
  do {
    // A server whose cursor never comes back to 0 (a proxy, a broken one) ends the search, cut short.
    if (++calls > maxCalls) break;
    const [next, keys] = await redis.scanBuffer(cursor, 'COUNT', 1000);
    cursor = next.toString();
    const batch = keys.slice(0, maxKeys - counts.production - counts.isolated);
    if (batch.length < keys.length) truncated = true;
    if (batch.length === 0) continue;
    const types = (await batch.reduce((pipeline, key) => pipeline.type(key), redis.pipeline()).exec()) ?? [];
    const reads = redis.pipeline();
    const read: Array<{ key: string; isolated: boolean; type: string }> = [];
    batch.forEach((keyBuffer, index) => {
      const key = keyBuffer.toString('latin1');
      const isolated = key.startsWith(prefix);
      if (isolated) counts.isolated++;
      else counts.production++;
      if (keyBuffer.includes(needle)) found(keyBuffer.toString(), 'name');
      const type = String(types[index]?.[1] ?? '');
      const reader = VALUE_READERS[type];
      if (reader === undefined) {
        // A module's type (JSON, a Bloom filter…): its value is not read.
        if (!isolated) unreadTypes.add(type || 'unknown');
        return;
      }
      reader(reads, keyBuffer);
      read.push({ key: keyBuffer.toString(), isolated, type });
    });
    if (read.length === 0) continue;
    const values = (await reads.exec()) ?? [];
    read.forEach(({ key, isolated, type }, index) => {
      const [[sizeError, size] = [null, 0], [readError, value] = [null, null]] = [values[2 * index], values[2 * index + 1]];
      const error = sizeError ?? readError;
      if (error) {
        if (!isolated) unreadKeys.push(`${key} (${error.message})`);
        return;
      }
      if (Number(size) > (type === 'string' ? VALUE_BYTES : VALUE_ITEMS) && !isolated) longValues.push(key);
      if (holdsBytes(value, needle)) found(key, 'value');
    });
  } while (cursor !== '0' && counts.production + counts.isolated < maxKeys);
  if (cursor !== '0') truncated = true;
  const db = `db ${(redis.options.db ?? 0) as number}`;
  // Other databases are not searched (name each with its own --redis URL), but it is said where they hold keys.
  const keyspace = String(await redis.info('keyspace'));
  const others = [...keyspace.matchAll(/^db(\d+):keys=(\d+)/gm)].filter(([, number]) => Number(number) !== (redis.options.db ?? 0));
  if (others.length > 0)
    result.notes = [
      `other Redis databases hold keys and were not searched: ${others.map(([, number, keys]) => `db ${number} (${keys} keys)`).join(', ')}; search each with its own --redis URL`,
    ];
  result.searched.push({ store: 'redis', place: `${db}, keys outside ${prefix}`, scanned: counts.production, truncated, isolated: false });
  result.searched.push({ store: 'redis', place: `${db}, keys under ${prefix}`, scanned: counts.isolated, truncated, isolated: true });
  const unread = [
    ...(longValues.length > 0 ? [`values past the first ${VALUE_ITEMS} items or ${VALUE_BYTES} bytes: ${sample(longValues)}`] : []),
    ...(unreadTypes.size > 0 ? [`values of types it cannot read: ${[...unreadTypes].join(', ')}`] : []),
    ...(unreadKeys.length > 0 ? [`keys whose read failed: ${sample(unreadKeys)}`] : []),
  ];
  if (unread.length > 0)
    result.searched.push({
      store: 'redis',
      place: `${db}, values`,
      scanned: 0,
      truncated: false,
      isolated: false,
      unread: unread.join('; '),
    });
  return result;
}
