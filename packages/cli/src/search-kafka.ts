import { randomBytes } from 'node:crypto';
import { isolatedSuffix } from '@dye/core';
import type { Kafka } from 'kafkajs';
import type { KafkaStartOffsets } from './load-report.js';
import type { MarkerSearch } from './marker-search.js';

interface PartitionRange {
  topic: string;
  partition: number;
  /** The first offset at or after `since`. */
  from: number;
  /** Where the search ends: the high watermark when it began, or sooner (maxMessages). */
  to: number;
  /** The high watermark when the search began (the last stable offset, to an admin that reads committed). */
  high: number;
  /** `from` + maxMessages: nothing at or past it is read. */
  limit: number;
}

// After every partition reached its end: how long nothing must come, and how long at most to keep reading.
const QUIET_MS = 1_000;
const GRACE_MS = 3_000;

/**
 * Reads every message written to `topics` since `since` (up to the end the
 * log had when the search began, at most `maxMessages` per partition) and
 * looks for `marker` in keys, values and header values. Reads with a consumer
 * group of its own, deleted afterwards; commits nothing. Topics named
 * `<topic>_<tenant>` are the run's own.
 */
export async function searchKafka(
  kafka: Kafka,
  topics: readonly string[] | 'all',
  marker: string,
  tenant: string,
  since: Date,
  maxMessages: number,
  timeoutMs = 60_000,
  startOffsets?: KafkaStartOffsets,
): Promise<MarkerSearch> {
  const result: MarkerSearch = { findings: [], searched: [] };
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `dye-verify-${randomBytes(6).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, readUncommitted: true });
  try {
    const names = topics === 'all' ? (await admin.listTopics()).filter((topic) => !topic.startsWith('__')) : [...topics];
    const ranges: PartitionRange[] = [];
    for (const topic of names) {
      const known = startOffsets?.[topic];
      const [starts, ends] = await Promise.all([
        // Offsets taken before the load began are exact; a timestamp is what producers stamped.
        startOffsets
          ? Promise.resolve(Object.entries(known ?? {}).map(([partition, offset]) => ({ partition: Number(partition), offset })))
          : admin.fetchTopicOffsetsByTimestamp(topic, since.getTime()),
        admin.fetchTopicOffsets(topic),
      ]);
      for (const end of ends) {
        // A topic or partition the snapshot does not know was made after it: read from its start.
        const fallback = startOffsets ? end.low : end.high;
        const from = Number(starts.find((start) => start.partition === end.partition)?.offset ?? fallback);
        const to = Number(end.high);
        // A partition with nothing since: from is its end (-1 from some brokers).
        const start = from < 0 ? to : from;
        ranges.push({
          topic,
          partition: end.partition,
          from: start,
          to: Math.min(to, start + maxMessages),
          high: to,
          limit: start + maxMessages,
        });
      }
    }
    const suffix = isolatedSuffix(tenant);
    const scanned = new Map<string, number>(names.map((topic) => [topic, 0]));
    const hits = new Map<string, number>();
    const byId = new Map(ranges.map((range) => [`${range.topic}\0${range.partition}`, range]));
    const remaining = new Map([...byId].filter(([, range]) => range.from < range.to));
    const needle = Buffer.from(marker);
    let crashed: string | undefined;
    if (ranges.length > 0) {
      await consumer.connect();
      // Every partition, even those with nothing to read by the offsets: the
      // offsets the admin sees end at the last stable offset, and a
      // transaction left open hides everything written after it. The consumer
      // reads uncommitted, so it sees past it, for a short while after the end.
      await consumer.subscribe({ topics: [...new Set(ranges.map((range) => range.topic))], fromBeginning: false });
      let finish: () => void = () => {};
      const finished = new Promise<void>((resolve) => {
        finish = resolve;
      });
      // A batch the consumer cannot read (a codec kafkajs lacks: snappy, lz4,
      // zstd) crashes it: what was left unread is reported, not waited for.
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        crashed = payload.error.message;
        finish();
      });
      let lastBatchAt = performance.now();
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const id = `${batch.topic}\0${batch.partition}`;
          const range = byId.get(id);
          if (!range) return;
          lastBatchAt = performance.now();
          for (const message of batch.messages) {
            const offset = Number(message.offset);
            if (offset < range.from || offset >= range.limit) continue;
            scanned.set(batch.topic, (scanned.get(batch.topic) ?? 0) + 1);
            const holds =
              message.key?.includes(needle) ||
              message.value?.includes(needle) ||
              Object.values(message.headers ?? {}).some((header) =>
                (Array.isArray(header) ? header : [header]).some((value) => value !== undefined && Buffer.from(value).includes(needle)),
              );
            if (holds) hits.set(`${batch.topic}[${batch.partition}]`, (hits.get(`${batch.topic}[${batch.partition}]`) ?? 0) + 1);
          }
          if (Number(batch.lastOffset()) + 1 >= range.to) remaining.delete(id);
        },
      });
      for (const range of ranges) consumer.seek({ topic: range.topic, partition: range.partition, offset: String(range.from) });
      // Done once every partition reached its end and nothing came for a
      // moment (or a few seconds passed since: a busy topic never goes quiet).
      let caughtUpAt: number | undefined;
      const watch = setInterval(() => {
        const now = performance.now();
        if (remaining.size > 0) return;
        caughtUpAt ??= now;
        if (now - lastBatchAt >= QUIET_MS || now - caughtUpAt >= GRACE_MS) finish();
      }, 100);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([finished, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
      clearInterval(watch);
    }
    for (const topic of names) {
      const isolated = topic.endsWith(suffix);
      const topicRanges = ranges.filter((range) => range.topic === topic);
      const unfinished = [...remaining.values()].some((range) => range.topic === topic);
      result.searched.push({
        store: 'kafka',
        place: topic,
        scanned: scanned.get(topic) ?? 0,
        // Cut by maxMessages, or not read to the end in time.
        truncated: unfinished || topicRanges.some((range) => range.to < range.high),
        isolated,
        ...(unfinished ? { unread: crashed ? `the consumer failed: ${crashed}` : `not read to its end within ${timeoutMs / 1000} s` } : {}),
      });
    }
    for (const [place, count] of hits) {
      const topic = place.slice(0, place.lastIndexOf('['));
      result.findings.push({ store: 'kafka', place, count, isolated: topic.endsWith(suffix) });
    }
    return result;
  } finally {
    await consumer.disconnect().catch(() => {});
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect();
  }
}

/** The end offset of every partition of `topics` (every topic when 'all'), now: where a run about to start begins. */
export async function kafkaEndOffsets(kafka: Kafka, topics: readonly string[] | 'all'): Promise<KafkaStartOffsets> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const names = topics === 'all' ? (await admin.listTopics()).filter((topic) => !topic.startsWith('__')) : [...topics];
    const offsets: KafkaStartOffsets = {};
    for (const topic of names) {
      offsets[topic] = Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((end) => [String(end.partition), end.high]));
    }
    return offsets;
  } finally {
    await admin.disconnect();
  }
}
