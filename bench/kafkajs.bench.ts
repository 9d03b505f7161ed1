/**
 * Batched produce and consume throughput: bare kafkajs vs tenantKafka
 * (baseline, shadow), in one run against the broker on 127.0.0.1:9092.
 *
 *   npm run bench -- kafkajs
 */
import { randomBytes } from 'node:crypto';
import { setLogger, withTenant } from '@dye/core';
import { syncShadowTopics, tenantKafka } from '@dye/kafkajs';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { compareThroughput, printThroughput } from './harness.js';

setLogger({ warn: () => {} });
const brokers = (process.env.DYE_BENCH_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const BATCH = 100;
const CONSUMED = 20_000;

async function consumeRate(kafka: Kafka | ReturnType<typeof tenantKafka>, topic: string): Promise<number> {
  const consumer = kafka.consumer({ groupId: `bench-${randomBytes(4).toString('hex')}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let first = 0;
  const rate = await new Promise<number>((resolve) => {
    void consumer.run({
      eachMessage: async () => {
        if (count === 0) first = performance.now();
        count++;
        if (count === CONSUMED) resolve(CONSUMED / ((performance.now() - first) / 1000));
      },
    });
  });
  await consumer.disconnect();
  return rate;
}

export async function run() {
  const kafka = new Kafka({ clientId: 'dye-bench', brokers, logLevel: logLevel.NOTHING });
  const dye = tenantKafka(kafka, { isolatedConsumers: false });
  const admin = kafka.admin();
  await admin.connect();
  const topic = `dye-bench-${randomBytes(4).toString('hex')}`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
  await syncShadowTopics({ admin, topics: [topic] });
  const bare = kafka.producer();
  const wrapped = dye.producer();
  await bare.connect();
  await wrapped.connect();
  const messages = Array.from({ length: BATCH }, (_, i) => ({ key: String(i), value: 'x'.repeat(100) }));
  const send = (producer: Producer) => () => producer.send({ topic, messages });
  const withHeaders = messages.map((message) => ({ ...message, headers: { 'x-tenant': 'shadow', baggage: 'tenant=shadow' } }));
  const sendWithHeaders = (producer: Producer) => () => producer.send({ topic, messages: withHeaders });
  try {
    const produced = await compareThroughput(
      'kafkajs-produce',
      [
        { name: `bare kafkajs: send of ${BATCH}`, run: send(bare) },
        { name: `tenantKafka baseline: send of ${BATCH}`, run: send(wrapped) },
        { name: `tenantKafka shadow: send of ${BATCH}`, run: () => withTenant('shadow', send(wrapped)) },
        // What the shadow row pays for: kafkajs encodes message headers slowly, and
        // a tenant travels in two of them (as OTel's trace context would in one).
        { name: `bare kafkajs: send of ${BATCH} carrying the same two headers (x-tenant, baggage)`, run: sendWithHeaders(bare) },
        { name: `bare kafkajs: send of ${BATCH} again (noise control)`, run: send(bare) },
      ],
      { concurrency: 4, durationMs: 1500, rounds: 4 },
    );
    printThroughput(`Produce: batches of ${BATCH} messages per second`, produced);

    // Consume the same messages from the beginning with fresh groups.
    const consumed = [
      { name: 'bare kafkajs consumer', rate: await consumeRate(kafka, topic) },
      { name: 'tenantKafka consumer', rate: await consumeRate(dye, topic) },
      { name: 'bare kafkajs consumer again (noise control)', rate: await consumeRate(kafka, topic) },
    ];
    const base = consumed[0]?.rate ?? 1;
    printThroughput(
      `Consume: ${CONSUMED} messages, eachMessage (messages/s after the group joined)`,
      consumed.map((row) => ({ suite: 'kafkajs-consume', name: row.name, opsPerSecond: row.rate, ratio: row.rate / base })),
    );
    return produced;
  } finally {
    await bare.disconnect();
    await wrapped.disconnect();
    await admin.deleteTopics({ topics: [topic, `${topic}_shadow`] });
    await admin.disconnect();
    await dye.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
  process.exit(0);
}
