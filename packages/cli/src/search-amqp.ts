import { isolatedSuffix } from '@dye/core';
import amqplib, { type Channel, type ConsumeMessage, type GetMessage } from 'amqplib';
import type { AmqpTarget } from './amqp-admin.js';
import type { MarkerSearch } from './marker-search.js';
import { UsageError } from './usage-error.js';

/** A queue as the management API lists it, with what the search needs. */
interface ListedQueue {
  name: string;
  type?: string;
  exclusive?: boolean;
}

// How long a stream stays quiet before its end counts as reached.
const STREAM_QUIET_MS = 1_000;

/**
 * Searches RabbitMQ queues of the target's vhost for `marker`, in message
 * bodies, headers and the id properties:
 * - classic queues without consumers: the messages waiting when the search
 *   began, up to `maxMessages` each, read with basic.get and put back
 *   unacknowledged when the channel closes (they come back marked
 *   redelivered); a queue with consumers is reported, not read (they hold
 *   messages no one else sees, and a read reorders theirs);
 * - quorum queues are not read (each read counts a delivery toward the
 *   queue's delivery limit), and exclusive queues cannot be: both reported;
 * - streams: every message since `since`, read without removing anything.
 *
 * Messages consumers already took are not in a queue any more: their leaks
 * are found where the consumers wrote (MySQL, Redis, Kafka). Queues named
 * `<queue>_<tenant>` are the run's own.
 */
export async function searchAmqp(
  target: AmqpTarget,
  queues: readonly string[] | 'all',
  marker: string,
  tenant: string,
  since: Date,
  maxMessages: number,
  timeoutMs = 60_000,
): Promise<MarkerSearch> {
  const result: MarkerSearch = { findings: [], searched: [] };
  const suffix = isolatedSuffix(tenant);
  const listed = await listQueues(target);
  const byName = new Map(listed.map((queue) => [queue.name, queue]));
  for (const name of queues === 'all' ? [] : queues)
    if (!byName.has(name)) throw new UsageError(`--queue ${name}: no such queue in vhost ${target.vhost}`);
  const chosen = queues === 'all' ? listed : queues.map((name) => byName.get(name) as ListedQueue);
  const needle = Buffer.from(marker);
  // A broker that takes the connection and never answers fails in seconds;
  // heartbeats catch one that stops answering later.
  const url = new URL(target.url);
  if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', '10');
  const connection = await amqplib.connect(url.toString(), { timeout: 10_000 });
  connection.on('error', () => {});
  try {
    for (const queue of chosen) {
      const isolated = queue.name.endsWith(suffix);
      // A queue not searched, and why: the result says so.
      const notRead = (unread: string) =>
        result.searched.push({ store: 'amqp', place: queue.name, scanned: 0, truncated: false, isolated, unread });
      const unreadable = unreadableQueue(queue);
      if (unreadable) {
        notRead(unreadable);
        continue;
      }
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      try {
        // The broker's counts now, not the management API's (its statistics lag by seconds).
        const { messageCount, consumerCount } =
          queue.type === 'stream' ? { messageCount: 0, consumerCount: 0 } : await channel.checkQueue(queue.name);
        if (consumerCount > 0) {
          // What consumers hold unacknowledged cannot be read, and what is read
          // and put back reaches them out of order: such a queue is left alone.
          notRead(
            `${consumerCount} consumer(s): their unacknowledged messages cannot be read, and a read would hand theirs back out of order; search where they write`,
          );
          continue;
        }
        const read =
          queue.type === 'stream'
            ? await readStream(channel, queue.name, since, maxMessages, needle, timeoutMs)
            : await readWaiting(channel, queue.name, Math.min(messageCount, maxMessages), needle, timeoutMs);
        result.searched.push({
          store: 'amqp',
          place: queue.name,
          scanned: read.scanned,
          truncated: read.truncated || messageCount > maxMessages,
          isolated,
        });
        if (read.hits > 0) result.findings.push({ store: 'amqp', place: queue.name, count: read.hits, isolated });
      } catch (error) {
        // Access refused, the queue deleted meanwhile.
        notRead((error as Error).message);
      } finally {
        // Closing the channel puts back every message basic.get took.
        await channel.close().catch(() => {});
      }
    }
  } finally {
    await connection.close().catch(() => {});
  }
  return result;
}

/**
 * Why a queue is not read, or undefined. Reading takes a message and puts it
 * back; a quorum queue counts that as a delivery, and at its delivery limit
 * (RabbitMQ 4 sets 20 by default) dead-letters or drops the message: the
 * search would destroy what it looks at.
 */
function unreadableQueue(queue: ListedQueue): string | undefined {
  if (queue.exclusive) return "another connection's exclusive queue: RabbitMQ lets no one else read it";
  if (queue.type === 'quorum')
    return 'a quorum queue: reading counts a delivery toward its delivery limit, which dead-letters or drops messages; search where its consumers write';
  return undefined;
}

async function listQueues(target: AmqpTarget): Promise<ListedQueue[]> {
  const { url, user, password } = target.management;
  const response = await fetch(`${url.replace(/\/+$/, '')}/api/queues/${encodeURIComponent(target.vhost)}?columns=name,type,exclusive`, {
    headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    signal: AbortSignal.timeout(15_000),
  });
  if (!response.ok)
    throw new Error(`RabbitMQ management API: listing queues answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
  return (await response.json()) as ListedQueue[];
}

interface QueueRead {
  scanned: number;
  hits: number;
  truncated: boolean;
}

/** The messages ready in a classic or quorum queue, taken one by one and left unacknowledged. */
async function readWaiting(channel: Channel, queue: string, count: number, needle: Buffer, timeoutMs: number): Promise<QueueRead> {
  const read: QueueRead = { scanned: 0, hits: 0, truncated: false };
  const deadline = Date.now() + timeoutMs;
  while (read.scanned < count) {
    if (Date.now() > deadline) {
      read.truncated = true;
      break;
    }
    const message: GetMessage | false = await channel.get(queue, { noAck: false });
    if (message === false) break;
    read.scanned++;
    if (holdsMarker(message, needle)) read.hits++;
  }
  return read;
}

/** A stream's messages since `since`, read through a consumer that removes nothing. */
async function readStream(
  channel: Channel,
  queue: string,
  since: Date,
  maxMessages: number,
  needle: Buffer,
  timeoutMs: number,
): Promise<QueueRead> {
  const read: QueueRead = { scanned: 0, hits: 0, truncated: false };
  await channel.prefetch(500);
  let quiet: NodeJS.Timeout | undefined;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const rearm = () => {
    clearTimeout(quiet);
    quiet = setTimeout(finish, STREAM_QUIET_MS);
  };
  rearm();
  const { consumerTag } = await channel.consume(
    queue,
    (message: ConsumeMessage | null) => {
      if (message === null) return finish();
      if (read.scanned >= maxMessages) {
        read.truncated = true;
        return finish();
      }
      read.scanned++;
      if (holdsMarker(message, needle)) read.hits++;
      channel.ack(message);
      rearm();
    },
    // A timestamp offset: the first chunk holding messages from that second on.
    { noAck: false, arguments: { 'x-stream-offset': { '!': 'timestamp', value: Math.floor(since.getTime() / 1000) } } },
  );
  const timer = setTimeout(() => {
    read.truncated = true;
    finish();
  }, timeoutMs);
  await finished;
  clearTimeout(timer);
  clearTimeout(quiet);
  await channel.cancel(consumerTag).catch(() => {});
  return read;
}

function holdsMarker(message: GetMessage | ConsumeMessage, needle: Buffer): boolean {
  if (message.content.includes(needle)) return true;
  const { headers, messageId, correlationId, appId, userId, type } = message.properties;
  const text = needle.toString();
  if ([messageId, correlationId, appId, userId, type].some((value) => typeof value === 'string' && value.includes(text))) return true;
  return valueHolds(headers, needle, 0);
}

/** A header value, nested tables and arrays included, holding the marker. */
function valueHolds(value: unknown, needle: Buffer, depth: number): boolean {
  if (depth > 16 || value === null || value === undefined) return false;
  if (typeof value === 'string') return value.includes(needle.toString());
  if (Buffer.isBuffer(value)) return value.includes(needle);
  if (Array.isArray(value)) return value.some((item) => valueHolds(item, needle, depth + 1));
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).some(
      ([key, item]) => key.includes(needle.toString()) || valueHolds(item, needle, depth + 1),
    );
  }
  return false;
}
