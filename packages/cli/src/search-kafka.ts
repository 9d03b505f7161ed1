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
  /** The high watermark when the search began. */
  high: number;
}

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
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
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
        ranges.push({ topic, partition: end.partition, from: start, to: Math.min(to, start + maxMessages), high: to });
      }
    }
    const suffix = isolatedSuffix(tenant);
    const scanned = new Map<string, number>(names.map((topic) => [topic, 0]));
    const hits = new Map<string, number>();
    const pending = ranges.filter((range) => range.from < range.to);
    const remaining = new Map(pending.map((range) => [`${range.topic}\0${range.partition}`, range]));
    const needle = Buffer.from(marker);
    let crashed: string | undefined;
    if (pending.length > 0) {
      await consumer.connect();
      await consumer.subscribe({ topics: [...new Set(pending.map((range) => range.topic))], fromBeginning: false });
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
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const id = `${batch.topic}\0${batch.partition}`;
          const range = remaining.get(id);
          if (!range) return;
          for (const message of batch.messages) {
            const offset = Number(message.offset);
            if (offset < range.from || offset >= range.to) continue;
            scanned.set(batch.topic, (scanned.get(batch.topic) ?? 0) + 1);
            const holds =
              message.key?.includes(needle) ||
              message.value?.includes(needle) ||
              Object.values(message.headers ?? {}).some((header) =>
                (Array.isArray(header) ? header : [header]).some((value) => value !== undefined && Buffer.from(value).includes(needle)),
              );
            if (holds) hits.set(`${batch.topic}[${batch.partition}]`, (hits.get(`${batch.topic}[${batch.partition}]`) ?? 0) + 1);
          }
          const last = Number(batch.lastOffset());
          if (last + 1 >= range.to) {
            remaining.delete(id);
            if (remaining.size === 0) finish();
          }
        },
      });
      for (const range of pending) consumer.seek({ topic: range.topic, partition: range.partition, offset: String(range.from) });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([finished, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
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
