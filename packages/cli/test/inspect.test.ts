import { RedisRegistry } from '@dye/discovery';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisKeys, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { dye } from './run-cli.js';

describe('dye inspect', () => {
  const prefix = uniqueName('dye-cli-registry');
  const registry = new RedisRegistry({ redis: REDIS_URL, prefix, heartbeatInterval: 1000, ttl: 5000 });

  beforeAll(async () => {
    await registry.register({ app: 'shop.inventory', id: 'inv-1', address: '10.0.0.1:50051', lane: 'baseline' });
    await registry.register({ app: 'shop.inventory', id: 'inv-red', address: '10.0.0.2:50051', lane: 'red' });
    await registry.register({ app: 'shop.orders', id: 'ord-1', address: '10.0.0.3:50051', lane: 'baseline' });
  });

  afterAll(async () => {
    await registry.close();
    await deleteRedisKeys(prefix);
  });

  it('shows apps × lanes × instances with address, age and last heartbeat', async () => {
    const run = await dye(['inspect', '--redis', REDIS_URL, '--prefix', prefix]);
    expect(run.code, run.stderr).toBe(0);
    const rows = run.stdout.split('\n').filter((line) => line.includes('│') && !line.includes('address'));
    const cells = rows.map((line) =>
      line
        .split('│')
        .map((cell) => cell.trim())
        .filter(Boolean),
    );
    expect(cells.map((row) => row.slice(0, 4))).toEqual([
      ['shop.inventory', 'baseline', 'inv-1', '10.0.0.1:50051'],
      ['shop.inventory', 'red', 'inv-red', '10.0.0.2:50051'],
      ['shop.orders', 'baseline', 'ord-1', '10.0.0.3:50051'],
    ]);
    for (const row of cells) {
      expect(row[5]).toMatch(/^\d+s ago$/);
      expect(row[6]).toMatch(/^in \d+s$/);
    }
    expect(run.stdout).toContain('2 apps, 3 lanes, 3 instances');
  });

  it('filters by app and prints JSON', async () => {
    const run = await dye(['inspect', '--redis', REDIS_URL, '--prefix', prefix, '--app', 'shop.inventory', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const instances = JSON.parse(run.stdout) as { id: string; lane: string; lastHeartbeat: string }[];
    expect(instances.map((instance) => [instance.id, instance.lane]).sort()).toEqual([
      ['inv-1', 'baseline'],
      ['inv-red', 'red'],
    ]);
    // Heartbeats every second: the last one is recent (the TTL comes from the registry entries).
    for (const instance of instances) expect(Date.now() - Date.parse(instance.lastHeartbeat)).toBeLessThan(3_000);
  });

  it('says so when nothing is registered, and refuses bad usage with exit 2', async () => {
    const empty = await dye(['inspect', '--redis', REDIS_URL, '--prefix', uniqueName('dye-cli-empty')]);
    expect(empty).toMatchObject({ code: 0, stdout: 'no instances registered\n' });
    for (const args of [
      ['inspect'],
      ['inspect', '--redis', 'http://x'],
      ['inspect', '--redis', REDIS_URL, '--app', 'Bad App!'],
      ['inspect', '--redis', REDIS_URL, '--ttl', 'soon'],
    ]) {
      const run = await dye(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
