import { logWarning } from '@dye/core';
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import type { ResourceCatalog } from './resource-catalog.js';
import { DEAD_LETTER_SUFFIX } from './tenants.js';

/** Headers a dead letter carries besides the message's own. */
export const DEAD_LETTER_HEADERS = {
  reason: 'x-dye-dlq-reason',
  queue: 'x-dye-dlq-queue',
  exchange: 'x-dye-dlq-exchange',
  routingKey: 'x-dye-dlq-routing-key',
} as const;

/**
 * The message's headers without those that route it (`CC`, `BCC`, in any
 * case): RabbitMQ would also deliver the dead letter to each queue they name,
 * production ones included, and a dead-letter queue named there would receive
 * its own copies again and again.
 */
function withoutRouting(headers: Record<string, unknown> | undefined): Record<string, unknown> {
  const kept: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(headers ?? {})) {
    const lower = key.toLowerCase();
    if (lower !== 'cc' && lower !== 'bcc') kept[key] = (headers as Record<string, unknown>)[key];
  }
  return kept;
}

/** The message's properties for its dead letter: its own without routing headers, with Dye's headers added. */
function deadLetterOptions(message: ConsumeMessage, queue: string, reason: string): Options.Publish {
  const { headers, userId: _userId, expiration: _expiration, clusterId: _clusterId, deliveryMode, ...properties } = message.properties;
  // userId must name the publishing connection's user, or RabbitMQ closes the channel;
  // an expiration would let the dead letter vanish before anyone reads it.
  return {
    ...Object.fromEntries(Object.entries(properties).filter(([, value]) => value !== undefined)),
    ...(deliveryMode === undefined ? {} : { deliveryMode }),
    headers: {
      ...withoutRouting(headers),
      [DEAD_LETTER_HEADERS.reason]: reason,
      [DEAD_LETTER_HEADERS.queue]: queue,
      [DEAD_LETTER_HEADERS.exchange]: message.fields.exchange,
      [DEAD_LETTER_HEADERS.routingKey]: message.fields.routingKey,
    },
  };
}

/**
 * Puts a message whose tenant cannot be decided aside, unprocessed: into
 * `<queue>.dye-dlq` with the reason (then acknowledged), or, when that queue
 * does not exist, rejected without requeue so the queue's own dead-letter
 * exchange takes it (if it has one). Either way on the channel that
 * delivered it, and logged.
 */
export async function deadLetter(
  channel: Channel,
  catalog: ResourceCatalog,
  queue: string,
  message: ConsumeMessage,
  reason: string,
  noAck: boolean,
): Promise<void> {
  const target = `${queue}${DEAD_LETTER_SUFFIX}`;
  const where = `message ${message.fields.deliveryTag} of ${queue}`;
  const exists = await catalog.ensure({ kind: 'queue', name: target }).then(
    () => true,
    () => false,
  );
  try {
    if (exists) {
      channel.sendToQueue(target, message.content, deadLetterOptions(message, queue, reason));
      if (!noAck) channel.ack(message);
      logWarning('dye.amqp.dead-letter', `${where} sent to ${target}, unprocessed: ${reason}`);
      return;
    }
    if (!noAck) channel.nack(message, false, false);
    logWarning(
      'dye.amqp.dead-letter',
      `${where} ${noAck ? 'dropped (the consumer does not acknowledge)' : 'rejected without requeue (its queue’s own dead-letter exchange applies, if any)'}, unprocessed, as ${target} does not exist: ${reason}`,
    );
  } catch (error) {
    // The channel closed meanwhile: the broker delivers the message again.
    logWarning('dye.amqp.dead-letter-failed', `${where} could not be put aside: ${(error as Error).message}`);
  }
}
