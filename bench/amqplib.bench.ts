/**
 * Publish and consume throughput: bare amqplib vs tenantAmqp (baseline,
 * shadow), in one run against the RabbitMQ on 127.0.0.1:5672.
 *
 *   npm run bench -- amqplib
 */
import { randomBytes } from 'node:crypto';
import { tenantAmqp } from '@dye/amqplib';
import { setLogger, withTenant } from '@dye/core';
import { type Channel, type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import { compareThroughput, printThroughput } from './harness.js';

setLogger({ warn: () => {} });
const url = process.env.DYE_BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const BATCH = 100;
const CONSUMED = 20_000;
const CONSUME_ROUNDS = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** A direct exchange into a queue and their twins bound alike; with `bounded`, messages beyond 10,000 are dropped from the head. */
async function route(channel: Channel, prefix: string, bounded: boolean) {
  const exchange = `${prefix}-x-${randomBytes(4).toString('hex')}`;
  const queue = `${prefix}-q-${randomBytes(4).toString('hex')}`;
  for (const suffix of ['', '_shadow']) {
    await channel.assertExchange(`${exchange}${suffix}`, 'direct', { durable: false });
    await channel.assertQueue(`${queue}${suffix}`, { durable: false, ...(bounded ? { arguments: { 'x-max-length': 10_000 } } : {}) });
    await channel.bindQueue(`${queue}${suffix}`, `${exchange}${suffix}`, 'k');
  }
  return { exchange, queue };
}

/** Messages per second a consumer handles (acking each), from its first message to its last. */
async function consumeRate(channel: Channel, queue: string): Promise<number> {
  await channel.prefetch(500);
  let count = 0;
  let first = 0;
  let tag = '';
  const rate = await new Promise<number>((resolve) => {
    void channel
      .consume(queue, (message) => {
        if (!message) return;
        if (count === 0) first = performance.now();
        channel.ack(message);
        count++;
        if (count === CONSUMED) resolve(CONSUMED / ((performance.now() - first) / 1000));
      })
      .then((reply) => {
        tag = reply.consumerTag;
      });
  });
  await channel.cancel(tag);
  return rate;
}

/** Fills a queue through the default exchange with bare amqplib, confirmed. */
async function fill(channel: ConfirmChannel, queue: string): Promise<void> {
  const payload = Buffer.from('x'.repeat(100));
  for (let i = 0; i < CONSUMED; i++) channel.sendToQueue(queue, payload);
  await channel.waitForConfirms();
}

export async function run() {
  const connection: ChannelModel = await connect(url);
  const admin = await connection.createChannel();
  const dye = tenantAmqp(connection);
  const bare = await connection.createConfirmChannel();
  const wrapped = await dye.createConfirmChannel();
  const created: Array<{ exchange: string; queue: string }> = [];
  try {
    const target = await route(admin, 'dye-bench-publish', true);
    created.push(target);
    await dye.ready({ exchanges: [target.exchange] });
    const payload = Buffer.from('x'.repeat(100));
    const headers = { 'x-tenant': 'shadow', baggage: 'tenant=shadow' };
    const publishBatch = (channel: ConfirmChannel, options?: { headers: Record<string, string> }) => async () => {
      for (let i = 0; i < BATCH; i++) channel.publish(target.exchange, 'k', payload, options);
      await channel.waitForConfirms();
    };
    // The shadow channel Dye owns opens at the first shadow message.
    await withTenant('shadow', publishBatch(wrapped));
    const published = await compareThroughput(
      'amqplib-publish',
      [
        { name: `bare amqplib: ${BATCH} publishes + waitForConfirms`, run: publishBatch(bare) },
        { name: `tenantAmqp baseline: ${BATCH} publishes + waitForConfirms`, run: publishBatch(wrapped) },
        {
          name: `tenantAmqp red: ${BATCH} publishes + waitForConfirms`,
          run: publishBatch(wrapped),
          around: (drive) => withTenant('red', drive),
        },
        {
          name: `tenantAmqp shadow: ${BATCH} publishes + waitForConfirms`,
          run: publishBatch(wrapped),
          around: (drive) => withTenant('shadow', drive),
        },
        // What the red and shadow rows pay for besides Dye: amqplib encoding, and RabbitMQ carrying, the two headers a tenant travels in.
        {
          name: `bare amqplib: ${BATCH} publishes carrying the same two headers (x-tenant, baggage)`,
          run: publishBatch(bare, { headers }),
        },
        { name: `bare amqplib: ${BATCH} publishes again (noise control)`, run: publishBatch(bare) },
      ],
      { concurrency: 4, durationMs: 1500, rounds: 4 },
    );
    printThroughput(`Publish: batches of ${BATCH} confirmed messages per second`, published);

    // Consume: each consumer reads a queue filled alike, on a channel of its own,
    // in rounds whose order rotates; the median of each.
    const readers: Array<{ name: string; open: () => Promise<Channel>; shadow: boolean }> = [
      { name: 'bare amqplib consumer', open: () => connection.createChannel(), shadow: false },
      { name: 'tenantAmqp consumer, baseline messages', open: () => dye.createChannel(), shadow: false },
      { name: 'tenantAmqp consumer, shadow messages (its _shadow twin)', open: () => dye.createChannel(), shadow: true },
      { name: 'bare amqplib consumer again (noise control)', open: () => connection.createChannel(), shadow: false },
    ];
    const rates = new Map<string, number[]>(readers.map((reader) => [reader.name, []]));
    for (let round = 0; round < CONSUME_ROUNDS; round++) {
      for (let i = 0; i < readers.length; i++) {
        const reader = readers[(i + round) % readers.length] as (typeof readers)[number];
        const queues = await route(admin, 'dye-bench-consume', false);
        created.push(queues);
        await fill(bare, reader.shadow ? `${queues.queue}_shadow` : queues.queue);
        const channel = await reader.open();
        try {
          rates.get(reader.name)?.push(await consumeRate(channel, queues.queue));
        } finally {
          await channel.close();
        }
      }
    }
    const consumed = readers.map((reader) => ({ name: reader.name, rate: median(rates.get(reader.name) ?? [0]) }));
    const base = consumed[0]?.rate ?? 1;
    printThroughput(
      `Consume: ${CONSUMED} messages, prefetch 500, each acknowledged (messages/s, median of ${CONSUME_ROUNDS} rounds)`,
      consumed.map((row) => ({ suite: 'amqplib-consume', name: row.name, opsPerSecond: row.rate, ratio: row.rate / base })),
    );
    return published;
  } finally {
    await dye.close();
    for (const { exchange, queue } of created) {
      for (const suffix of ['', '_shadow']) {
        await admin.deleteQueue(`${queue}${suffix}`).catch(() => {});
        await admin.deleteExchange(`${exchange}${suffix}`).catch(() => {});
      }
    }
    await connection.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
  process.exit(0);
}
