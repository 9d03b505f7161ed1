import { FirstUseCheck } from '@dye/core';
import type { Channel, ChannelModel, Replies } from 'amqplib';

/** An exchange or a queue, by its real (already renamed) name. */
export interface Resource {
  readonly kind: 'exchange' | 'queue';
  readonly name: string;
}

/** What the catalog knows about a resource now, without asking the broker. */
export type Existence = 'present' | 'missing' | 'unknown';

/** How long answers are kept, in milliseconds. */
export interface ExistenceTtl {
  /** A resource found stays known for this long (default 60 s); a 404 on a Dye channel forgets every one at once. */
  present?: number;
  /** A resource not found (or not checkable) is refused without asking for this long (default 1 s). */
  missing?: number;
}

/** A check's answer when the broker said 404: the resource does not exist. */
export class MissingResourceError extends Error {
  constructor(readonly resource: Resource) {
    super(`the ${resource.kind} ${resource.name} does not exist`);
    this.name = 'MissingResourceError';
  }
}

/** Whether an amqplib error is the broker's 404 (NOT_FOUND), which also closed the channel. */
export function isNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === 404;
}

// Names come from code, but a service may publish to many: keep the map bounded.
const MAX_ENTRIES = 10_000;
const CHECK_TIMEOUT_MS = 10_000;

/**
 * Which exchanges and queues exist, learnt with passive declares
 * (checkExchange/checkQueue never create anything) on a channel Dye owns: a
 * 404 closes the channel it happens on, so never on a caller's. The probe
 * channel is reopened after each 404. Answers are cached so that publishing
 * can decide synchronously: a resource found is trusted for `present` ms, one
 * not found is refused for `missing` ms and then checked again.
 */
export class ResourceCatalog {
  readonly #connection: ChannelModel;
  readonly #presentMs: number;
  readonly #missingMs: number;
  readonly #checks = new Map<string, FirstUseCheck>();
  #probe: Promise<Channel> | undefined;
  // amqplib runs one RPC at a time per channel and a 404 fails every RPC
  // queued behind it: probes go one after another.
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(connection: ChannelModel, ttl: ExistenceTtl = {}) {
    this.#connection = connection;
    this.#presentMs = ttl.present ?? 60_000;
    this.#missingMs = ttl.missing ?? 1_000;
  }

  state(resource: Resource): Existence {
    const check = this.#checks.get(keyOf(resource));
    if (check === undefined) return 'unknown';
    if (check.passed) return 'present';
    return check.failure === undefined ? 'unknown' : 'missing';
  }

  /** Why a resource in state `missing` is refused: its 404, or why it could not be checked. */
  failure(resource: Resource): unknown {
    return this.#checks.get(keyOf(resource))?.failure;
  }

  /** Resolves when the resource exists; rejects with MissingResourceError, or with why it could not be checked. */
  ensure(resource: Resource): Promise<void> {
    const key = keyOf(resource);
    let check = this.#checks.get(key);
    if (check === undefined) {
      if (this.#checks.size >= MAX_ENTRIES) this.#checks.delete(this.#checks.keys().next().value as string);
      check = new FirstUseCheck(() => this.#exists(resource), this.#missingMs, this.#presentMs, CHECK_TIMEOUT_MS);
      this.#checks.set(key, check);
    }
    return check.ensure();
  }

  /** After a 404 on a Dye channel: a resource believed present is gone, so every answer is asked again. */
  forget(): void {
    this.#checks.clear();
  }

  /** A passive queue declare on the probe channel: the queue's counts, or MissingResourceError. */
  checkQueue(name: string): Promise<Replies.AssertQueue> {
    return this.run((channel) => channel.checkQueue(name)).catch((error: unknown) => {
      throw isNotFound(error) ? new MissingResourceError({ kind: 'queue', name }) : error;
    });
  }

  /** Runs an RPC on the probe channel, after the ones before it. */
  run<T>(rpc: (channel: Channel) => Promise<T>): Promise<T> {
    const result = this.#queue.then(async () => rpc(await this.#channel()));
    this.#queue = result.catch(() => {});
    return result;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const probe = this.#probe;
    this.#probe = undefined;
    const channel = await probe?.catch(() => undefined);
    await channel?.close().catch(() => {});
  }

  async #exists(resource: Resource): Promise<void> {
    try {
      await this.run((channel) =>
        resource.kind === 'exchange' ? channel.checkExchange(resource.name) : channel.checkQueue(resource.name),
      );
    } catch (error) {
      throw isNotFound(error) ? new MissingResourceError(resource) : error;
    }
  }

  #channel(): Promise<Channel> {
    if (this.#closed) return Promise.reject(new Error('Dye closed its RabbitMQ channels'));
    if (this.#probe) return this.#probe;
    const opening: Promise<Channel> = this.#connection.createChannel().then(
      (channel) => {
        // A 404 arrives as an 'error' event too: without a listener it would be thrown.
        channel.on('error', () => {});
        channel.on('close', () => {
          if (this.#probe === opening) this.#probe = undefined;
        });
        return channel;
      },
      (error: unknown) => {
        if (this.#probe === opening) this.#probe = undefined;
        throw error;
      },
    );
    this.#probe = opening;
    return opening;
  }
}

function keyOf(resource: Resource): string {
  return `${resource.kind}:${resource.name}`;
}
