import { request } from 'node:http';
import { setLogger } from '@dye/core';
import { type Registration, StaticRegistry } from '@dye/discovery';
import { TenantHttpAgent } from '@dye/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from './support.js';

// http://shop.pricing/ routed by many callers (a tenant agent each, so an app
// router each) over real HTTP servers, with an in-memory registry whose
// changes reach every caller at once.
const registry = new StaticRegistry();
const servers: Array<Awaited<ReturnType<typeof listen>> & { name: string }> = [];
const registrations = new Map<string, Registration>();
const CALLERS = 24;
const agents = Array.from({ length: CALLERS }, () => new TenantHttpAgent({ registry, internal: ['loopback'] }));

function served(agent: TenantHttpAgent): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: 'shop.pricing', path: '/', agent }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

async function register(index: number, weight?: number) {
  const server = servers[index] as (typeof servers)[number];
  registrations.set(
    server.name,
    await registry.register({
      app: 'shop.pricing',
      id: server.name,
      address: `127.0.0.1:${server.port}`,
      lane: 'baseline',
      ...(weight ? { weight } : {}),
    }),
  );
}

async function deregister(index: number) {
  const name = (servers[index] as (typeof servers)[number]).name;
  await registrations.get(name)?.deregister();
  registrations.delete(name);
}

beforeAll(async () => {
  setLogger({ warn: () => {} });
  for (let i = 0; i < 6; i++) {
    const name = `pricing-${i}`;
    servers.push({ ...(await listen((_req, res) => res.end(name))), name });
  }
});

afterAll(async () => {
  for (const agent of agents) agent.destroy();
  await Promise.all(servers.map((server) => server.close()));
  await registry.close();
});

describe('HTTP app routing spreads callers like gRPC does', () => {
  it('after each of 15 registry changes, no instance gets more than its share + 20% of the callers’ next requests', async () => {
    for (const i of [0, 1, 2]) await register(i);
    await Promise.all(agents.map(served));
    const changes: Array<() => Promise<void>> = [];
    for (const i of [3, 4, 5]) changes.push(() => register(i));
    for (const i of [5, 4, 3]) changes.push(() => deregister(i));
    for (const i of [3, 4, 5]) changes.push(() => register(i));
    for (const i of [0, 1]) changes.push(() => deregister(i));
    for (const i of [0, 1]) changes.push(() => register(i));
    for (const i of [2, 3]) changes.push(() => deregister(i));
    const rows: Array<{ change: number; instances: number; most: number; share: number }> = [];
    for (const [index, change] of changes.entries()) {
      await change();
      const next = await Promise.all(agents.map(served));
      const perInstance = new Map<string, number>();
      for (const name of next) perInstance.set(name, (perInstance.get(name) ?? 0) + 1);
      for (const name of perInstance.keys()) expect(registrations.has(name)).toBe(true);
      rows.push({
        change: index + 1,
        instances: registrations.size,
        most: Math.max(...perInstance.values()),
        share: CALLERS / registrations.size,
      });
    }
    expect(rows).toHaveLength(15);
    for (const row of rows) expect(row.most, JSON.stringify(row)).toBeLessThanOrEqual(row.share * 1.2);
  });

  it('honours Instance.weight: 2:1 instances get requests 2:1', async () => {
    for (const name of [...registrations.keys()]) await registrations.get(name)?.deregister();
    registrations.clear();
    await register(0, 2);
    await register(1, 1);
    const agent = agents[0] as TenantHttpAgent;
    const names: string[] = [];
    for (let i = 0; i < 300; i++) names.push(await served(agent));
    expect(Math.abs(names.filter((name) => name === 'pricing-0').length - 200)).toBeLessThanOrEqual(2);
  });
});
