import { setLogger, withTenant } from '@dye/core';
import { type Registration, StaticRegistry } from '@dye/discovery';
import { createTenantClient, registerTenantRouting } from '@dye/grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, InventoryClient, type InventoryClientType, type InventoryInstance, startInventory } from './support.js';

// Real gRPC servers on loopback and many callers (a channel each), with an
// in-memory registry whose changes reach every caller at once: what is
// measured is where each caller's next call goes after a change.
const registry = new StaticRegistry();
const servers: InventoryInstance[] = [];
const clients: InventoryClientType[] = [];
const registrations = new Map<string, Registration>();

const CALLERS = 24;
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

async function register(server: InventoryInstance, lane = 'baseline', weight?: number) {
  registrations.set(
    server.name,
    await registry.register({
      app: 'shop.inventory',
      id: server.name,
      address: `127.0.0.1:${server.port}`,
      lane,
      ...(weight ? { weight } : {}),
    }),
  );
}

async function deregister(name: string) {
  await registrations.get(name)?.deregister();
  registrations.delete(name);
}

beforeAll(async () => {
  setLogger({ warn: () => {} });
  registerTenantRouting({ registry });
  for (let i = 0; i < 6; i++) servers.push(await startInventory({ name: `base-${i}`, lane: 'baseline' }));
  for (let i = 0; i < 2; i++) servers.push(await startInventory({ name: `canary-${i}`, lane: 'canary' }));
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const server of servers) server.kill();
  await registry.close();
});

describe('balanced picks across callers and registry changes', () => {
  it('after each of 15 registry changes, no instance gets more than its share + 20% of the callers’ next calls', async () => {
    for (const server of servers.slice(0, 3)) await register(server);
    for (let i = 0; i < CALLERS; i++) clients.push(createTenantClient(InventoryClient as never, 'shop.inventory') as never);
    // Every caller connects (one call each) and sees the three instances READY.
    await Promise.all(clients.map((client) => check(client)));
    await settle();
    // Grow to six, shrink to three, grow again: every change rebuilds every caller's picker.
    const changes: Array<() => Promise<void>> = [];
    for (const i of [3, 4, 5]) changes.push(() => register(servers[i] as InventoryInstance));
    for (const i of [5, 4, 3]) changes.push(() => deregister(`base-${i}`));
    for (const i of [3, 4, 5]) changes.push(() => register(servers[i] as InventoryInstance));
    for (const i of [0, 1]) changes.push(() => deregister(`base-${i}`));
    for (const i of [0, 1]) changes.push(() => register(servers[i] as InventoryInstance));
    for (const i of [2, 3]) changes.push(() => deregister(`base-${i}`));
    expect(changes).toHaveLength(15);
    const worst: Array<{ change: number; instances: number; most: number; share: number }> = [];
    for (const [index, change] of changes.entries()) {
      await change();
      await settle();
      const next = await Promise.all(clients.map((client) => check(client)));
      const perInstance = new Map<string, number>();
      for (const stock of next) perInstance.set(stock.instance, (perInstance.get(stock.instance) ?? 0) + 1);
      const share = CALLERS / registrations.size;
      worst.push({ change: index + 1, instances: registrations.size, most: Math.max(...perInstance.values()), share });
      // Only registered instances served.
      for (const name of perInstance.keys()) expect(registrations.has(name)).toBe(true);
    }
    for (const row of worst) expect(row.most, JSON.stringify(row)).toBeLessThanOrEqual(row.share * 1.2);
  });

  it('honours Instance.weight: a 3:1 canary lane gets its calls 3:1, spread smoothly', async () => {
    await register(servers[6] as InventoryInstance, 'canary', 3);
    await register(servers[7] as InventoryInstance, 'canary', 1);
    const client = createTenantClient(InventoryClient as never, 'shop.inventory') as unknown as InventoryClientType;
    clients.push(client);
    await withTenant('canary', () => check(client));
    await settle();
    const served: string[] = [];
    for (let i = 0; i < 400; i++) served.push((await withTenant('canary', () => check(client))).instance);
    const heavy = served.filter((name) => name === 'canary-0').length;
    expect(Math.abs(heavy - 300)).toBeLessThanOrEqual(2);
    // Smooth: the light instance shows up in every five consecutive calls.
    for (let i = 0; i + 5 <= served.length; i++) expect(served.slice(i, i + 5)).toContain('canary-1');
  });
});
