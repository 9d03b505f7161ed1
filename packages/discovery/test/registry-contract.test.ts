import { setLogger } from '@dye/core';
import { EtcdRegistry } from '@dye/discovery/etcd';
import { afterAll, beforeAll } from 'vitest';
import { OwnEtcdServer } from '../../../test/support/etcd-server.js';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { deleteRedisKeys, ETCD_URL, REDIS_URL, uniqueName } from '../../../test/support/services.js';
import { RedisRegistry } from '../src/index.js';
import { registryContract } from './registry-contract.js';

beforeAll(() => setLogger({ warn: () => {} }));

const redisPrefix = uniqueName('dye_contract');
const redisTimings = { heartbeatInterval: 200, ttl: 1_000, resyncInterval: 200 };
afterAll(() => deleteRedisKeys(`${redisPrefix}:`));

registryContract({
  name: 'RedisRegistry',
  ttl: redisTimings.ttl,
  registry: (url) => new RedisRegistry({ redis: url ?? REDIS_URL, prefix: redisPrefix, ...redisTimings }),
  ownStore: async () => {
    const server = new OwnRedisServer(await freePort());
    return {
      url: server.url,
      start: () => server.start(),
      stop: () => server.stop(),
      wipe: () => server.stop(),
      dispose: () => server.stop(),
    };
  },
});

const etcdPrefix = uniqueName('dye_contract');
// etcd leases count whole seconds: 2 s is the shortest TTL.
const etcdTimings = { ttl: 2_000, resyncInterval: 200, requestTimeout: 1_000 };

registryContract({
  name: 'EtcdRegistry',
  ttl: etcdTimings.ttl,
  registry: (url) => new EtcdRegistry({ etcd: url ?? ETCD_URL, prefix: etcdPrefix, ...etcdTimings }),
  ownStore: async () => {
    const server = await OwnEtcdServer.create();
    return {
      url: server.url,
      start: () => server.start(),
      stop: () => server.stop(),
      wipe: () => server.wipe(),
      dispose: () => server.dispose(),
    };
  },
});
