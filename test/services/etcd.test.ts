import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import { ETCD_URL, uniqueName } from '../support/services.js';

// Proves the etcd the registry tests use is a real server: it stores a key,
// expires one with its lease, and reports its version.
describe('etcd service', () => {
  const client = new Etcd3({ hosts: ETCD_URL, dialTimeout: 2000 });
  const prefix = uniqueName('smoke');

  afterAll(async () => {
    await client.delete().prefix(`${prefix}/`);
    client.close();
  });

  it('round-trips a key, and a lease takes its key with it', async () => {
    await client.put(`${prefix}/greeting`).value('hello');
    expect(await client.get(`${prefix}/greeting`).string()).toBe('hello');
    const lease = client.lease(1, { autoKeepAlive: false });
    await lease.put(`${prefix}/leased`).value('short');
    expect(await client.get(`${prefix}/leased`).string()).toBe('short');
    await lease.revoke();
    expect(await client.get(`${prefix}/leased`).string()).toBeNull();
  });

  it('is an etcd server with a version', async () => {
    const status = await client.maintenance.status();
    expect(status.version).toMatch(/^3\./);
  });
});
