import { type TenantAmqp, tenantAmqp } from '@dye/amqplib';
import { setLogger } from '@dye/core';
import { type Channel, type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { AMQP_URL, managementApi, RABBITMQ_MANAGEMENT, uniqueName } from '../../../test/support/services.js';

/**
 * A connection to the test broker. Never skipped: a test that cannot reach
 * RabbitMQ fails (with the reason), in CI and everywhere else.
 */
export async function connectAmqp(url: string = AMQP_URL): Promise<ChannelModel> {
  try {
    const connection = await connect(url);
    connection.on('error', () => {});
    return connection;
  } catch (error) {
    throw new Error(`RabbitMQ at ${url.replace(/\/\/[^@]*@/, '//')} is not reachable: ${(error as Error).message}`);
  }
}

/**
 * beforeAll whose failure (an unreachable broker, say) fails every test of the
 * file, each with the reason: vitest would report them skipped otherwise.
 */
export function beforeAllOrFail(setup: () => Promise<void>): void {
  let failure: unknown;
  beforeAll(async () => {
    try {
      await setup();
    } catch (error) {
      failure = error;
    }
  });
  beforeEach(() => {
    if (failure !== undefined) throw failure;
  });
}

/** The AMQP URL of a vhost of the test broker, as a user. */
export function vhostUrl(vhost: string, user = 'guest', password = 'guest'): string {
  const url = new URL(AMQP_URL);
  url.username = encodeURIComponent(user);
  url.password = encodeURIComponent(password);
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return url.toString();
}

export { managementApi };

/** A vhost of the test's own (the admin may use it), so topology sync sees only what the test made. */
export async function createVhost(prefix: string): Promise<string> {
  const vhost = uniqueName(prefix);
  await managementApi('PUT', `/vhosts/${encodeURIComponent(vhost)}`, {});
  await managementApi('PUT', `/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(RABBITMQ_MANAGEMENT.user)}`, {
    configure: '.*',
    write: '.*',
    read: '.*',
  });
  return vhost;
}

export async function deleteVhost(vhost: string): Promise<void> {
  await managementApi('DELETE', `/vhosts/${encodeURIComponent(vhost)}`).catch(() => {});
}

/**
 * The ready messages of a queue, asked of the broker on a channel of its own
 * (a passive declare: never created, and a 404 closes only that channel).
 */
export async function queueDepth(connection: ChannelModel, queue: string): Promise<number> {
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    return (await channel.checkQueue(queue)).messageCount;
  } finally {
    await channel.close().catch(() => {});
  }
}

/** Whether an exchange or queue exists, asked the same way. */
export async function exists(connection: ChannelModel, kind: 'exchange' | 'queue', name: string): Promise<boolean> {
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    await (kind === 'exchange' ? channel.checkExchange(name) : channel.checkQueue(name));
    return true;
  } catch {
    return false;
  } finally {
    await channel.close().catch(() => {});
  }
}

/**
 * Declares, with a plain amqplib channel, a direct exchange `<prefix>_x…`
 * bound to queue `<prefix>_q…` with routing key `key`, and (unless
 * `shadow: false`) their `_shadow` twins bound alike; notes all for cleanup.
 */
export async function declareRoute(
  connection: ChannelModel,
  prefix: string,
  cleanup: Cleanup,
  options: { shadow?: boolean; deadLetters?: boolean } = {},
): Promise<{ exchange: string; queue: string; key: string }> {
  const exchange = uniqueName(`${prefix}_x`);
  const queue = uniqueName(`${prefix}_q`);
  const key = 'route';
  const channel = await connection.createChannel();
  try {
    const names = options.shadow === false ? [''] : ['', '_shadow'];
    for (const suffix of names) {
      await channel.assertExchange(`${exchange}${suffix}`, 'direct', { durable: false, autoDelete: false });
      await channel.assertQueue(`${queue}${suffix}`, { durable: false });
      await channel.bindQueue(`${queue}${suffix}`, `${exchange}${suffix}`, key);
      cleanup.exchanges.push(`${exchange}${suffix}`);
      cleanup.queues.push(`${queue}${suffix}`);
    }
    if (options.deadLetters) {
      await channel.assertQueue(`${queue}.dye-dlq`, { durable: false });
      cleanup.queues.push(`${queue}.dye-dlq`);
    }
  } finally {
    await channel.close();
  }
  return { exchange, queue, key };
}

/** Exchanges and queues a test file made, deleted in afterAll. */
export interface Cleanup {
  exchanges: string[];
  queues: string[];
}

export function cleanupList(): Cleanup {
  return { exchanges: [], queues: [] };
}

export async function cleanUp(connection: ChannelModel | undefined, cleanup: Cleanup): Promise<void> {
  if (connection === undefined) return;
  for (const queue of cleanup.queues) {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    await channel.deleteQueue(queue).catch(() => {});
    await channel.close().catch(() => {});
  }
  for (const exchange of cleanup.exchanges) {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    await channel.deleteExchange(exchange).catch(() => {});
    await channel.close().catch(() => {});
  }
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Takes every ready message of a queue (acknowledged), with the headers it carries. */
export async function takeAll(connection: ChannelModel, queue: string): Promise<Array<{ body: string; headers: Record<string, unknown> }>> {
  const channel = await connection.createChannel();
  const taken: Array<{ body: string; headers: Record<string, unknown> }> = [];
  try {
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (message === false) return taken;
      taken.push({ body: message.content.toString(), headers: { ...message.properties.headers } });
    }
  } finally {
    await channel.close().catch(() => {});
  }
}

/** What a test file works with: the broker as the test admin sees it, the app's connection under Dye, and a plain channel to put messages in. */
export interface AmqpFixture<C extends Channel> {
  admin: ChannelModel;
  app: ChannelModel;
  dye: TenantAmqp;
  raw: C;
}

/**
 * Opens the fixture before the file's tests (a failure fails each of them)
 * and closes it after, removing what `cleanup` lists; `use` receives it.
 * `raw` is a confirm channel unless `confirm` is false.
 */
export function useAmqpFixture(cleanup: Cleanup, use: (fixture: AmqpFixture<ConfirmChannel>) => void, confirm?: true): void;
export function useAmqpFixture(cleanup: Cleanup, use: (fixture: AmqpFixture<Channel>) => void, confirm: false): void;
export function useAmqpFixture(cleanup: Cleanup, use: (fixture: AmqpFixture<never>) => void, confirm = true): void {
  let opened: Partial<AmqpFixture<Channel>> = {};
  beforeAllOrFail(async () => {
    setLogger({ warn: () => {} });
    opened.admin = await connectAmqp();
    opened.app = await connectAmqp();
    opened.dye = tenantAmqp(opened.app);
    opened.raw = confirm ? await opened.admin.createConfirmChannel() : await opened.admin.createChannel();
    use(opened as AmqpFixture<never>);
  });
  afterAll(async () => {
    const { admin, app, dye, raw } = opened;
    opened = {};
    await dye?.close();
    await raw?.close().catch(() => {});
    await cleanUp(admin, cleanup);
    await app?.close();
    await admin?.close();
  });
}
