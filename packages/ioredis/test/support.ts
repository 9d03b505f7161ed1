import { randomBytes } from 'node:crypto';
import { grantShadowAccess, type IsolatedRedisUser } from '@dye/ioredis';
import { getKeyIndexes } from '@ioredis/commands';
import { type Cluster, Redis } from 'ioredis';

/** Creates (or resets the password of) the ACL user isolated tenants run as, on the test's own server or cluster. */
export async function shadowUser(admin: Redis | Cluster, username = 'dye_shadow'): Promise<IsolatedRedisUser> {
  const password = randomBytes(12).toString('hex');
  await grantShadowAccess(admin, { user: username, password, apply: true });
  return { username, password };
}

// What a connection sends for itself (handshake, ready check) and what Dye's
// user check sends: not commands of the code under test.
const CONNECTION_HOUSEKEEPING = new Set(['client', 'info', 'acl', 'auth', 'hello', 'ping', 'select']);

/**
 * Records what the Redis server receives from every connection but the ones
 * ignored (the test's admin), through MONITOR on a raw connection of its own:
 * the black-box view of what Dye sent, on whichever connection it chose.
 */
export class ServerRecorder {
  readonly #monitor: Redis;
  readonly received: string[][] = [];
  readonly #ignored = new Set<string>();

  private constructor(monitor: Redis) {
    this.#monitor = monitor;
  }

  static async start(url: string): Promise<ServerRecorder> {
    const raw = new Redis(url);
    const monitor = await raw.monitor();
    raw.disconnect();
    const recorder = new ServerRecorder(monitor);
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (recorder.#ignored.has(source) || CONNECTION_HOUSEKEEPING.has(String(args[0]).toLowerCase())) return;
      recorder.received.push(args);
    });
    return recorder;
  }

  /** Leaves out commands from this client's connection from now on (the test's own checks and setup). */
  async ignore(client: Redis): Promise<void> {
    const info = (await client.client('INFO')) as string;
    const address = /addr=(\S+)/.exec(info)?.[1];
    if (!address) throw new Error('no address for the client');
    this.#ignored.add(address);
    await this.settle();
  }

  /** Waits until MONITOR has caught up with everything sent so far. */
  async settle(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 30));
  }

  clear(): void {
    this.received.length = 0;
  }

  /** Every key argument of every received command, per the command table. */
  keysReceived(): string[] {
    const keys: string[] = [];
    for (const [rawName, ...args] of this.received) {
      const name = String(rawName).toLowerCase();
      if (['client', 'ping', 'info'].includes(name)) continue;
      if (name === 'keys') keys.push(String(args[0]));
      else if (name === 'scan') {
        const matches = args.flatMap((arg, index) => (index % 2 === 1 && arg.toLowerCase() === 'match' ? [String(args[index + 1])] : []));
        keys.push(...(matches.length > 0 ? matches : ['<scan without MATCH>']));
      } else if (['object', 'memory', 'xinfo', 'xgroup'].includes(name)) {
        if (args[1] !== undefined) keys.push(String(args[1]));
      } else if (['subscribe', 'psubscribe', 'ssubscribe', 'unsubscribe', 'punsubscribe', 'sunsubscribe', 'publish'].includes(name)) {
        keys.push(...(name === 'publish' ? [String(args[0])] : args.map(String)));
      } else if (name === 'eval' && String(args[0]).includes("redis.call('SCAN'")) {
        keys.push(String(args[2]));
      } else {
        try {
          for (const index of getKeyIndexes(name, args)) keys.push(String(args[Array.isArray(index) ? index[0] : index]));
        } catch {
          keys.push(`<unknown command ${name}>`);
        }
      }
    }
    return keys;
  }

  async stop(): Promise<void> {
    this.#monitor.disconnect();
  }
}

/** Every key of the database except isolated ones, with a dump of its value. */
export async function productionSnapshot(client: Redis): Promise<Map<string, string>> {
  const snapshot = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if (key.startsWith('shadow:') || key.startsWith('shadow-')) continue;
      const dump = await client.dumpBuffer(key);
      snapshot.set(key, dump ? dump.toString('base64') : 'gone');
    }
  } while (cursor !== '0');
  return snapshot;
}
