import { callInTenant, IsolationError, isolatedSuffix, isolationRefusal, logWarning, type Tenant } from '@dye/core';
import {
  type Channel,
  type ChannelModel,
  type ChannelOptions,
  type ConfirmChannel,
  type ConsumeMessage,
  type GetMessage,
  IllegalOperationError,
  type Message,
  type Options,
  type Replies,
} from 'amqplib';
import { rememberDelivery } from './deliveries.js';
import { firstFailed, type Requirement } from './requirements.js';
import { markIsolatedMessage } from './tenants.js';

/** Where an isolated message goes: the real (renamed) exchange, and what must hold first. */
export interface LaneTarget {
  readonly exchange: string;
  /** The renamed routing key, for the default exchange (which routes by queue name); else the message's own is kept. */
  readonly routingKey?: string;
  readonly requirements: readonly Requirement[];
}

export type ConfirmCallback = (error: unknown, ok: Replies.Empty) => void;

/** A consumer of a `_shadow` queue beside a production consumer, with the production consumer's handler. */
export interface TwinConsumer {
  /** The production consumer's tag: what handlers see, and what cancel() names. */
  readonly productionTag: string;
  readonly twinQueue: string;
  readonly onMessage: (message: ConsumeMessage | null) => void;
  readonly options: Options.Consume | undefined;
  readonly requirements: readonly Requirement[];
  /** Its tag on the lane's channel now (set while it runs). */
  tag?: string;
  /** Its basic.consume in flight. */
  starting?: Promise<void>;
}

/** What a lane needs from the wrapper it serves. */
export interface LaneSettings {
  readonly tenant: Tenant;
  /** The connection Dye's isolated channels open on (the isolated account's, or the wrapped one). */
  readonly connection: ChannelModel;
  readonly confirm: boolean;
  readonly channelOptions: ChannelOptions | undefined;
  /** The caller's channel: its listeners hear about the lane's drains, returns and dropped messages. */
  readonly owner: Channel;
  /** The prefetch set on the caller's channel, mirrored onto the lane's. */
  readonly prefetch: () => { count: number; global: boolean } | undefined;
  /** After a 404 on the lane's channel: the twin it believed present is gone. */
  readonly onNotFound: () => void;
}

/** A message waiting for its requirements or for the lane's channel to open. */
interface Held {
  readonly target: LaneTarget;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
  readonly callback: ConfirmCallback | undefined;
  readonly refused: string;
  readonly settled: Promise<void>;
  readonly settle: () => void;
}

// A lane whose checks cannot finish (a broker that stopped answering) must not
// hold messages without bound.
const MAX_HELD = 10_000;
const MAX_UNREPORTED = 100;
const REOPEN_MIN_MS = 100;
const REOPEN_MAX_MS = 5_000;

/**
 * The channel Dye owns for one isolated tenant of one wrapped channel: the
 * tenant's messages are published, consumed and acknowledged there, never on
 * the caller's channel, so a broker error (a 404 on a twin deleted since it
 * was checked) closes this channel and never the caller's. Opened at first
 * use and reopened after the broker closes it, with its consumers.
 *
 * Publishing is synchronous, as amqplib's is: a message whose requirements are
 * known to hold goes out at once and amqplib's return value is returned; one
 * known to fail is refused by a throw; any other is held, in order (later
 * messages wait behind it), until they are known, then published or dropped
 * with an IsolationError given to its confirm callback, to waitForConfirms,
 * and to the caller channel's 'error' listeners.
 */
export class ShadowLane {
  readonly #settings: LaneSettings;
  #channel: Channel | undefined;
  #opening: Promise<Channel> | undefined;
  readonly #held: Held[] = [];
  #draining = false;
  #closed = false;
  #prefetch: { count: number; global: boolean } | undefined;
  readonly #consumers: TwinConsumer[] = [];
  // Failures no waitForConfirms has reported yet (nacks, confirms lost with a closed channel, dropped messages).
  readonly #unreported: unknown[] = [];
  readonly #recordFailure: ConfirmCallback = (error) => {
    if (error !== null && error !== undefined) this.#report(error);
  };
  #reopenDelay = REOPEN_MIN_MS;
  #reopenTimer: NodeJS.Timeout | undefined;

  constructor(settings: LaneSettings) {
    this.#settings = settings;
  }

  get tenant(): Tenant {
    return this.#settings.tenant;
  }

  publish(
    target: LaneTarget,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
    callback: ConfirmCallback | undefined,
    refused: string,
  ): boolean {
    if (this.#closed) throw new IllegalOperationError('Channel closed', undefined);
    if (!Buffer.isBuffer(content)) throw new TypeError('content is not a buffer');
    const verdict = firstFailed(target.requirements);
    if (verdict !== 'met' && verdict !== 'unknown') throw verdict.refusal();
    const channel = this.#channel;
    if (verdict === 'met' && channel !== undefined && this.#held.length === 0)
      return this.#send(channel, target, routingKey, content, options, callback);
    if (this.#held.length >= MAX_HELD) {
      throw isolationRefusal('amqp', {
        tenant: this.tenant.name,
        refused,
        reason: `${MAX_HELD} messages already wait for RabbitMQ to confirm that their isolated exchanges and queues exist`,
      });
    }
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => {
      settle = resolve;
    });
    // amqplib copies the content as it publishes; a held message must not see later changes to the caller's buffer.
    this.#held.push({ target, routingKey, content: Buffer.from(content), options, callback, refused, settled, settle });
    void this.#drain();
    return true;
  }

  /** Resolves once every message published here so far is confirmed; rejects with the first failure not yet reported. */
  async waitForConfirms(): Promise<void> {
    // The messages to wait for are those published by now: amqplib's wait starts before anything else runs.
    const held = this.#held.map((entry) => entry.settled);
    const confirms =
      held.length === 0
        ? (this.#channel as ConfirmChannel | undefined)?.waitForConfirms()
        : Promise.all(held).then(() => (this.#channel as ConfirmChannel | undefined)?.waitForConfirms());
    // Confirms lost with an earlier channel reached their callbacks (and #unreported) when it closed.
    let channelFailure: unknown;
    await confirms?.catch((error: unknown) => {
      channelFailure = error;
    });
    const failures = this.#unreported.splice(0);
    if (failures.length > 0) throw failures[0];
    if (channelFailure !== undefined) throw channelFailure;
  }

  /** A basic.get on a twin queue (its requirements met first); the message is acknowledged here. */
  async get(twinQueue: string, options: Options.Get | undefined, requirements: readonly Requirement[]): Promise<GetMessage | false> {
    for (const requirement of requirements) await requirement.ensure();
    const channel = await this.#open();
    const message = await channel.get(twinQueue, options);
    if (message !== false) {
      rememberDelivery(message, channel);
      productionFields(message, this.tenant, twinQueue);
    }
    return message;
  }

  async consume(consumer: TwinConsumer): Promise<void> {
    for (const requirement of consumer.requirements) await requirement.ensure();
    this.#consumers.push(consumer);
    const channel = await this.#open();
    // Opening the channel starts the lane's consumers: this one may be running already.
    await this.#start(channel, consumer);
  }

  /** Cancels the twin consumer of a production consumer; false when this lane has none. */
  async cancel(productionTag: string): Promise<boolean> {
    const index = this.#consumers.findIndex((consumer) => consumer.productionTag === productionTag);
    if (index < 0) return false;
    const [consumer] = this.#consumers.splice(index, 1);
    const channel = this.#channel;
    if (consumer?.tag !== undefined && channel !== undefined) await channel.cancel(consumer.tag);
    return true;
  }

  ackAll(): void {
    this.#channel?.ackAll();
  }

  nackAll(requeue?: boolean): void {
    this.#channel?.nackAll(requeue);
  }

  async recover(): Promise<Replies.Empty> {
    return this.#channel ? this.#channel.recover() : {};
  }

  async prefetch(count: number, global?: boolean): Promise<Replies.Empty> {
    this.#prefetch = { count, global: Boolean(global) };
    return this.#channel ? this.#channel.prefetch(count, global) : {};
  }

  /** Applies the caller channel's prefetch, unless this tenant set its own. */
  async mirrorPrefetch(count: number, global?: boolean): Promise<void> {
    if (this.#prefetch === undefined) await this.#channel?.prefetch(count, global);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reopenTimer);
    this.#consumers.splice(0);
    const reason = new IllegalOperationError('Channel closed', undefined);
    for (const held of this.#held.splice(0)) this.#drop(held, reason);
    const channel = this.#channel ?? (await this.#opening?.catch(() => undefined));
    this.#channel = undefined;
    await channel?.close().catch(() => {});
  }

  #send(
    channel: Channel,
    target: LaneTarget,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
    callback: ConfirmCallback | undefined,
  ): boolean {
    const key = target.routingKey ?? routingKey;
    if (!this.#settings.confirm) return channel.publish(target.exchange, key, content, options);
    const record = this.#recordFailure;
    return (channel as ConfirmChannel).publish(
      target.exchange,
      key,
      content,
      options,
      callback === undefined
        ? record
        : (error, ok) => {
            record(error, ok);
            callback(error, ok);
          },
    );
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#held.length > 0) {
        const held = this.#held[0] as Held;
        let channel: Channel | undefined;
        let failure: unknown;
        try {
          for (const requirement of held.target.requirements) await requirement.ensure();
          channel = await this.#open();
        } catch (error) {
          failure = error;
        }
        // close() dropped it while it waited.
        if (this.#held[0] !== held) continue;
        this.#held.shift();
        if (channel !== undefined) {
          try {
            // Nothing closes the channel between the await above and this call: frames arrive in later tasks.
            this.#send(channel, held.target, held.routingKey, held.content, held.options, held.callback);
            held.settle();
            continue;
          } catch (error) {
            failure = error;
          }
        }
        this.#drop(held, failure);
      }
    } finally {
      this.#draining = false;
    }
  }

  #drop(held: Held, cause: unknown): void {
    const error =
      cause instanceof IsolationError
        ? cause
        : isolationRefusal(
            'amqp',
            {
              tenant: this.tenant.name,
              refused: held.refused,
              reason: `the isolated channel could not take it: ${String((cause as Error)?.message ?? cause)}`,
            },
            { cause },
          );
    logWarning('dye.amqp.dropped', `${held.refused} was not published: ${error.reason}`, { tenant: this.tenant.name });
    if (this.#settings.confirm) this.#report(error);
    held.settle();
    try {
      held.callback?.(error, {});
    } finally {
      const owner = this.#settings.owner;
      // As amqplib reports a publish to a missing exchange; without a listener, an 'error' event would crash the service.
      if (owner.listenerCount('error') > 0) owner.emit('error', error);
    }
  }

  /** Keeps a failure for the next waitForConfirms (a few: it rejects with the first). */
  #report(error: unknown): void {
    if (this.#unreported.length < MAX_UNREPORTED) this.#unreported.push(error);
  }

  #open(): Promise<Channel> {
    if (this.#channel !== undefined) return Promise.resolve(this.#channel);
    if (this.#closed) return Promise.reject(new IllegalOperationError('Channel closed', undefined));
    this.#opening ??= this.#create().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #create(): Promise<Channel> {
    const { connection, confirm, channelOptions, owner } = this.#settings;
    const channel = confirm ? await connection.createConfirmChannel(channelOptions) : await connection.createChannel(channelOptions);
    channel.on('error', (error: Error) => this.#onError(error));
    channel.on('close', () => this.#onClose(channel));
    // amqplib's backpressure is per channel: a caller told `false` waits for 'drain' on its own channel.
    channel.on('drain', () => owner.emit('drain'));
    channel.on('return', (message: Message) => {
      productionFields(message, this.tenant, undefined);
      // The publisher's tenant: a listener that publishes the message again
      // (to its production-named exchange) publishes to the twin.
      callInTenant(this.tenant, owner.emit, owner, ['return', message]);
    });
    if (this.#closed) {
      await channel.close().catch(() => {});
      throw new IllegalOperationError('Channel closed', undefined);
    }
    const prefetch = this.#prefetch ?? this.#settings.prefetch();
    if (prefetch !== undefined) await channel.prefetch(prefetch.count, prefetch.global);
    this.#channel = channel;
    this.#reopenDelay = REOPEN_MIN_MS;
    for (const consumer of [...this.#consumers]) await this.#start(channel, consumer).catch(() => {});
    return channel;
  }

  #start(channel: Channel, consumer: TwinConsumer): Promise<void> {
    if (consumer.tag !== undefined) return Promise.resolve();
    consumer.starting ??= this.#run(channel, consumer).finally(() => {
      consumer.starting = undefined;
    });
    return consumer.starting;
  }

  async #run(channel: Channel, consumer: TwinConsumer): Promise<void> {
    const { tenant } = this;
    try {
      // Checked again at each start: consuming a queue deleted since would close the lane's channel (404).
      for (const requirement of consumer.requirements) await requirement.ensure();
      const reply = await channel.consume(
        consumer.twinQueue,
        (message) => {
          if (message === null) {
            // The broker cancelled it (the twin queue was deleted); the production consumer's handler is not told.
            logWarning(
              'dye.amqp.isolated-cancelled',
              `RabbitMQ cancelled the consumer of ${consumer.twinQueue}; production consumption goes on`,
            );
            this.#forget(consumer);
            return;
          }
          rememberDelivery(message, channel);
          productionFields(message, tenant, consumer.twinQueue);
          message.fields.consumerTag = consumer.productionTag;
          // The queue decides the tenant: whatever its headers say, a message of a twin queue is the twin's tenant's.
          callInTenant(tenant, consumer.onMessage, undefined, [message]);
        },
        consumer.options,
      );
      if (this.#channel === channel && this.#consumers.includes(consumer)) consumer.tag = reply.consumerTag;
      else await channel.cancel(reply.consumerTag).catch(() => {});
    } catch (error) {
      this.#forget(consumer);
      logWarning(
        'dye.amqp.isolated-failed',
        `the consumer of ${consumer.twinQueue} did not start; production consumption goes on: ${(error as Error).message}`,
      );
      throw error;
    }
  }

  #forget(consumer: TwinConsumer): void {
    const index = this.#consumers.indexOf(consumer);
    if (index >= 0) this.#consumers.splice(index, 1);
  }

  #onError(error: Error): void {
    if ((error as { code?: unknown }).code === 404) this.#settings.onNotFound();
    logWarning('dye.amqp.isolated-channel', `RabbitMQ closed the ${this.tenant.name} channel: ${error.message}; Dye reopens it`);
    const owner = this.#settings.owner;
    if (owner.listenerCount('error') > 0) {
      owner.emit(
        'error',
        isolationRefusal(
          'amqp',
          {
            tenant: this.tenant.name,
            refused: 'messages in flight on the isolated channel',
            reason: `RabbitMQ closed the channel Dye owns for ${this.tenant.name} (${error.message}); messages published on it since their last confirm may be lost`,
          },
          { cause: error },
        ),
      );
    }
  }

  #onClose(channel: Channel): void {
    if (this.#channel !== channel) return;
    this.#channel = undefined;
    for (const consumer of this.#consumers) consumer.tag = undefined;
    if (this.#closed || this.#consumers.length === 0) return;
    this.#scheduleReopen();
  }

  #scheduleReopen(): void {
    const delay = this.#reopenDelay;
    this.#reopenDelay = Math.min(REOPEN_MAX_MS, delay * 2);
    this.#reopenTimer = setTimeout(() => {
      if (this.#closed || this.#channel !== undefined) return;
      this.#open().catch((error: Error) => {
        if (error instanceof IllegalOperationError) {
          logWarning('dye.amqp.isolated-failed', `the ${this.tenant.name} channel cannot be reopened: ${error.message}`);
          return;
        }
        this.#scheduleReopen();
      });
    }, delay);
    this.#reopenTimer.unref?.();
  }
}

/**
 * Handlers name production resources: a message read from `orders_shadow`
 * says exchange `orders` (or routing key `orders` for the default exchange),
 * and carries the queue it was really read from in `isolatedQueue`.
 */
/** What an isolated handler is handed besides amqplib's fields: the queue it really read. */
export interface IsolatedMessageFields {
  /** The twin queue the message was read from (`orders_shadow`); the other fields name production resources. */
  isolatedQueue?: string;
}

export function productionFields(message: Message, tenant: Tenant, isolatedQueue: string | undefined): void {
  markIsolatedMessage(message, tenant);
  const suffix = isolatedSuffix(tenant.name);
  const fields = message.fields as Message['fields'] & { isolatedQueue?: string };
  const strip = (name: string) => (name.endsWith(suffix) ? name.slice(0, -suffix.length) : name);
  if (fields.exchange === '') fields.routingKey = strip(fields.routingKey);
  else fields.exchange = strip(fields.exchange);
  if (isolatedQueue !== undefined) fields.isolatedQueue = isolatedQueue;
}
