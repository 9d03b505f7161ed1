/**
 * notifier (Kafka consumer of order-created): records a notification per order
 * in MySQL `notifications` and Redis `notified:<orderId>`, in the tenant of the
 * message. Dye also runs group `shop.notifier_shadow` on `order-created_shadow`,
 * whose handlers run in the shadow tenant and write to shadow resources.
 */
import { tenantKafka } from '@dye/kafkajs';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { readConfig } from './config.js';
import { createLogger, kafkaLogs } from './logger.js';
import { connectRegistry, onShutdown, shopDatabase, shopRedis } from './runtime.js';

const NOTIFIED_TTL_SECONDS = 24 * 60 * 60;

const config = readConfig();
const log = createLogger('notifier', config.lane);
const db = shopDatabase(config, 5);
const redis = shopRedis(config);
const registry = connectRegistry(config);
// With the registry, a colored notifier instance would take its own lane's
// messages and baseline the rest (lane-aware consumption).
const kafka = tenantKafka(
  new Kafka({ clientId: 'shop.notifier', brokers: config.kafkaBrokers, logLevel: logLevel.WARN, logCreator: kafkaLogs(log) }),
  {
    registry,
    lane: config.lane,
  },
);
const consumer = kafka.consumer({ groupId: 'shop.notifier' });

interface OrderCreated {
  orderId: string;
  user: string;
}

let joined = false;
consumer.on(consumer.events.GROUP_JOIN, () => {
  if (joined) return;
  joined = true;
  log.info({ topic: config.orderTopic }, 'ready');
});

await consumer.connect();
await consumer.subscribe({ topics: [config.orderTopic], fromBeginning: true });
await consumer.run({
  async eachMessage({ message }) {
    const order = JSON.parse(String(message.value)) as OrderCreated;
    // Idempotent (Kafka delivers at least once). The row is written last: it
    // records that the whole notification is done.
    await redis.set(`notified:${order.orderId}`, order.user, 'EX', NOTIFIED_TTL_SECONDS);
    await db.execute('INSERT IGNORE INTO notifications (order_id, user) VALUES (?, ?)', [order.orderId, order.user]);
    log.info({ orderId: order.orderId }, 'notified');
  },
});

onShutdown(log, async () => {
  await consumer.disconnect();
  await kafka.close();
  await registry.close();
  await db.end();
  redis.disconnect();
});
