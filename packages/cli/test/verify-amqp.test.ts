/**
 * dye verify on a real RabbitMQ, in a vhost of this file's own: a run's marker
 * waiting in a production queue (classic, quorum or stream; body, header or
 * message id) is found and named, exit 1; in the `_shadow` twin it is where it
 * belongs. The search takes nothing away: every queue holds the same messages
 * afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib, { type Channel, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, managementApi, RABBITMQ_MANAGEMENT, uniqueName } from '../../../test/support/services.js';
import { dye } from './run-cli.js';

const vhost = uniqueName('verify_vhost');
const vhostUrl = `${AMQP_URL}/${encodeURIComponent(vhost)}`;
const management = managementApi;

let connection: ChannelModel;
let channel: Channel;
const QUEUES = { classic: 'orders', quorum: 'payments', stream: 'events', twin: 'orders_shadow' } as const;
const newRun = () => `dye-test-${randomBytes(5).toString('hex')}`;
const since = () => new Date(Date.now() - 60_000).toISOString();
const verify = (run: string, ...extra: string[]) =>
  dye(['verify', '--run', run, '--since', since(), '--amqp', vhostUrl, '--amqp-management', RABBITMQ_MANAGEMENT.url, ...extra]);

/** Ready messages per queue, as the broker counts them (streams: read back from the start). */
async function depths(): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (const queue of [QUEUES.classic, QUEUES.quorum, QUEUES.twin]) result[queue] = (await channel.checkQueue(queue)).messageCount;
  return result;
}

beforeAll(async () => {
  await management('PUT', `/vhosts/${encodeURIComponent(vhost)}`);
  await management('PUT', `/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(RABBITMQ_MANAGEMENT.user)}`, {
    configure: '.*',
    write: '.*',
    read: '.*',
  });
  connection = await amqplib.connect(vhostUrl);
  channel = await connection.createChannel();
  await channel.assertQueue(QUEUES.classic, { durable: true });
  await channel.assertQueue(QUEUES.twin, { durable: true });
  await channel.assertQueue(QUEUES.quorum, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.assertQueue(QUEUES.stream, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  // Production's own work, waiting in every queue.
  for (const queue of Object.values(QUEUES)) channel.sendToQueue(queue, Buffer.from('a real order'), { persistent: true });
  await new Promise((resolve) => setTimeout(resolve, 300));
}, 60_000);

afterAll(async () => {
  await connection?.close().catch(() => {});
  await management('DELETE', `/vhosts/${encodeURIComponent(vhost)}`);
});

describe('dye verify --amqp', () => {
  it('a run whose messages wait in the shadow twin only: clean, exit 0; every queue keeps its messages', async () => {
    const run = newRun();
    channel.sendToQueue(QUEUES.twin, Buffer.from(JSON.stringify({ run })));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = await depths();
    const out = join(mkdtempSync(join(tmpdir(), 'dye-verify-amqp-')), 'v.json');
    const readable = [QUEUES.classic, QUEUES.stream, QUEUES.twin].flatMap((queue) => ['--queue', queue]);
    const result = await verify(run, ...readable, '--json', out);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/RabbitMQ/);
    expect(result.stdout).toMatch(/production is clean/);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.findings).toEqual([{ store: 'amqp', place: QUEUES.twin, count: 1, isolated: true }]);
    expect(report.searched.map((place: { place: string }) => place.place).sort()).toEqual(
      [QUEUES.classic, QUEUES.stream, QUEUES.twin].sort(),
    );
    expect(await depths()).toEqual(before);
  }, 60_000);

  it('a quorum queue is not read (a read counts a delivery toward its limit): named, not proven, exit 5; its messages untouched', async () => {
    const run = newRun();
    channel.sendToQueue(QUEUES.quorum, Buffer.from(run));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = await depths();
    const out = join(mkdtempSync(join(tmpdir(), 'dye-verify-amqp-')), 'v.json');
    const result = await verify(run, '--json', out);
    expect(result.code, result.stdout + result.stderr).toBe(5);
    expect(result.stdout).toMatch(new RegExp(`! ${QUEUES.quorum}: not read \\(a quorum queue`));
    expect(result.stdout).toMatch(/NOT PROVEN/);
    // Every queue of the vhost is listed, the stream included.
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.searched.map((place: { place: string }) => place.place).sort()).toEqual(Object.values(QUEUES).sort());
    expect(await depths()).toEqual(before);
    // Not one delivery was counted: the first get of each message is its first delivery.
    const first = await channel.get(QUEUES.quorum, { noAck: false });
    expect(first && first.fields.redelivered).toBe(false);
    channel.nackAll(true);
  }, 60_000);

  it('a marker waiting in production (classic body and header, stream message id) is found in each, exit 1; nothing is taken', async () => {
    const run = newRun();
    channel.sendToQueue(QUEUES.classic, Buffer.from(`{"note":"order of ${run}"}`));
    channel.sendToQueue(QUEUES.classic, Buffer.from('{}'), { headers: { trace: { 'x-dye-run': run } } });
    channel.sendToQueue(QUEUES.stream, Buffer.from('{}'), { messageId: run });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = await depths();
    const result = await verify(run, '--queue', QUEUES.classic, '--queue', QUEUES.stream);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    const leaks = result.stdout
      .split('\n')
      .filter((line) => line.includes('production: a leak'))
      .map((line) => line.replace(/^\s*✗ /, ''));
    expect(leaks.sort()).toEqual([`${QUEUES.stream}: 1 (production: a leak)`, `${QUEUES.classic}: 2 (production: a leak)`].sort());
    expect(await depths()).toEqual(before);
    // And the messages are still deliverable, the planted one among them.
    const bodies: string[] = [];
    for (;;) {
      const message = await channel.get(QUEUES.classic, { noAck: false });
      if (message === false) break;
      bodies.push(message.content.toString());
    }
    expect(bodies.some((body) => body.includes(run))).toBe(true);
    channel.nackAll(true);
  }, 60_000);

  it('a queue with a consumer is not read (it holds unacknowledged messages; a read would reorder its own): exit 5, order kept', async () => {
    const queue = 'held';
    await channel.assertQueue(queue, { durable: true });
    const run = newRun();
    for (const body of ['first', run, 'third']) channel.sendToQueue(queue, Buffer.from(body));
    // A consumer that takes one message and never acknowledges it: the marker among what it holds.
    const consumerChannel = await connection.createChannel();
    await consumerChannel.prefetch(1);
    const held: string[] = [];
    await consumerChannel.consume(queue, (message) => message && held.push(message.content.toString()), { noAck: false });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = await verify(run, '--queue', queue);
    expect(result.code, result.stdout + result.stderr).toBe(5);
    expect(result.stdout).toMatch(/! held: not read \(1 consumer\(s\)/);
    await consumerChannel.close();
    // Back in the queue in their order, none of them redelivered by the search.
    const bodies: string[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: false });
      if (message === false) break;
      bodies.push(message.content.toString());
    }
    expect(bodies).toEqual(['first', run, 'third']);
    channel.nackAll(true);
    await channel.deleteQueue(queue);
  }, 60_000);

  it('--queue narrows the search; a queue that does not exist is a clear error', async () => {
    const run = newRun();
    channel.sendToQueue(QUEUES.quorum, Buffer.from(run));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const narrowed = await verify(run, '--queue', QUEUES.classic);
    expect(narrowed.code, narrowed.stdout + narrowed.stderr).toBe(0);
    const missing = await verify(run, '--queue', 'no_such_queue');
    expect([missing.code, missing.stderr.trim().split('\n').at(-1)]).toEqual([
      2,
      expect.stringMatching(/--queue no_such_queue: no such queue/),
    ]);
    const usage = await dye(['verify', '--run', run, '--since', '1h', '--queue', 'orders', '--redis', 'redis://127.0.0.1:6379']);
    expect([usage.code, usage.stderr.trim().split('\n').at(-1)]).toEqual([2, expect.stringMatching(/--queue needs --amqp/)]);
  }, 60_000);
});
