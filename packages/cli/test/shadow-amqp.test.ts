import amqplib, { type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, RABBITMQ_MANAGEMENT, uniqueName } from '../../../test/support/services.js';
import { dye } from './run-cli.js';

const management = (method: string, path: string) =>
  fetch(`${RABBITMQ_MANAGEMENT.url}/api${path}`, {
    method,
    headers: { authorization: `Basic ${Buffer.from(`${RABBITMQ_MANAGEMENT.user}:${RABBITMQ_MANAGEMENT.password}`).toString('base64')}` },
  });

describe('dye shadow sync|check|grant --amqp', () => {
  let connection: ChannelModel;
  const exchange = uniqueName('cli_orders');
  const queue = uniqueName('cli_billing');
  const user = uniqueName('cli_shadow');
  const env = { DYE_SHADOW_PASSWORD: 'cli-amqp-secret' };
  const scope = ['--exchange', exchange, '--queue', queue];

  beforeAll(async () => {
    connection = await amqplib.connect(AMQP_URL);
    const channel = await connection.createChannel();
    await channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    await channel.assertQueue(queue, { durable: false });
    await channel.bindQueue(queue, exchange, 'order.#');
    await channel.close();
  });

  afterAll(async () => {
    const channel = await connection.createChannel();
    for (const name of [queue, `${queue}_shadow`]) await channel.deleteQueue(name);
    for (const name of [exchange, `${exchange}_shadow`]) await channel.deleteExchange(name);
    await channel.close();
    await connection.close();
    await management('DELETE', `/users/${encodeURIComponent(user)}`);
  });

  it('check reports the missing twins and exits 1; sync --apply declares them, bound as production is; check then exits 0', async () => {
    const before = await dye(['shadow', 'check', '--amqp', AMQP_URL, ...scope]);
    expect(before.code, before.stderr).toBe(1);
    expect(before.stdout).toContain(`exchange ${exchange}_shadow missing`);
    expect(before.stdout).toContain(`queue ${queue}_shadow missing`);
    const synced = await dye(['shadow', 'sync', '--amqp', AMQP_URL, ...scope, '--apply']);
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toContain(`declared exchange ${exchange}_shadow`);
    const after = await dye(['shadow', 'check', '--amqp', AMQP_URL, ...scope]);
    expect(after.code, after.stdout).toBe(0);
    expect(after.stdout).toContain('no drift');
    // The twins route like production, and only to each other.
    const channel = await connection.createConfirmChannel();
    channel.publish(`${exchange}_shadow`, 'order.created', Buffer.from('load test'));
    await channel.waitForConfirms();
    expect((await channel.checkQueue(`${queue}_shadow`)).messageCount).toBe(1);
    expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    await channel.close();
  });

  it('grant --apply makes a user RabbitMQ confines to the twins; a second run has nothing to do', async () => {
    const dry = await dye(['shadow', 'grant', '--amqp', AMQP_URL, '--user', user], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('dry run: nothing changed');
    expect((await management('GET', `/users/${encodeURIComponent(user)}`)).status).toBe(404);
    const applied = await dye(['shadow', 'grant', '--amqp', AMQP_URL, '--user', user, '--apply'], env);
    expect(applied.code, applied.stderr).toBe(0);
    const again = await dye(['shadow', 'grant', '--amqp', AMQP_URL, '--user', user, '--json'], env);
    expect(JSON.parse(again.stdout)).toMatchObject({ user, inSync: true });

    const url = new URL(AMQP_URL);
    url.username = user;
    url.password = env.DYE_SHADOW_PASSWORD;
    const confined = await amqplib.connect(url.toString());
    try {
      const twin = await confined.createConfirmChannel();
      twin.publish(`${exchange}_shadow`, 'order.created', Buffer.from('load test'));
      await twin.waitForConfirms();
      await twin.close();
      const production = await confined.createChannel();
      const refused = new Promise<Error>((resolve) => production.once('error', resolve));
      production.publish(exchange, 'order.created', Buffer.from('must not land'));
      expect(String(await refused)).toMatch(/ACCESS_REFUSED|403/);
    } finally {
      await confined.close().catch(() => {});
    }
    const channel = await connection.createChannel();
    expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    await channel.close();
  });

  it('a named exchange production does not have is reported, and check exits 1', async () => {
    const run = await dye(['shadow', 'check', '--amqp', AMQP_URL, '--exchange', uniqueName('no_such')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/exchange no_such_\w+ does not exist in production/);
  });

  it('refuses --exchange without --amqp, and a URL that is not amqp', async () => {
    expect((await dye(['shadow', 'check', '--kafka', '127.0.0.1:9092', '--topic', 't', '--exchange', exchange])).code).toBe(2);
    const wrong = await dye(['shadow', 'grant', '--amqp', 'http://127.0.0.1:5672', '--user', user], env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('use amqp://');
  });
});
