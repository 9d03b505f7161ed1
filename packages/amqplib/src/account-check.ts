import { randomBytes } from 'node:crypto';
import { FirstUseCheck, isolatedName, isolationRefusal, type Tenant } from '@dye/core';
import type { Channel } from 'amqplib';
import type { ResourceCatalog } from './resource-catalog.js';

/** A production name whose `write` or `read` the isolated account must be refused. */
export interface ProductionAccess {
  readonly mode: 'write' | 'read';
  /** A production exchange (write) or queue (read); `amq.default` is the default exchange. */
  readonly name: string;
}

/** What RabbitMQ answered for one probe. */
type Verdict = 'refused' | 'allowed';

/**
 * Asks RabbitMQ whether the connection's user may write (`mode: 'write'`) or
 * read (`mode: 'read'`) a resource name, without touching it. A binding is
 * checked in a fixed order, permissions before existence: write on the
 * destination, then read on the source, then whether both exist. So
 * - write: bind exchange `name` ← a made-up isolated exchange: 403 naming
 *   `name` = refused; 404 (the made-up source does not exist) = allowed;
 * - read: bind a made-up isolated queue ← exchange `name`: 403 naming
 *   `name` = refused; 404 = allowed.
 * Nothing is ever bound: the made-up resource does not exist. A 403 naming the
 * made-up resource instead says nothing about `name`, and fails the check.
 */
async function probe(channel: Channel, access: ProductionAccess, madeUp: string): Promise<Verdict> {
  try {
    if (access.mode === 'write') await channel.bindExchange(access.name, madeUp, 'dye-probe');
    else await channel.bindQueue(madeUp, access.name, 'dye-probe');
    throw new Error(`RabbitMQ bound ${madeUp}, which does not exist`);
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code === 404) return 'allowed';
    if (code === 403 && String(message).includes(`exchange '${access.name}'`)) return 'refused';
    throw error;
  }
}

/**
 * Checks, before isolated work first uses a production name through the
 * isolated connection, that RabbitMQ refuses that connection's user the
 * production side: writing the exchange it publishes to (and reading the
 * queue it consumes), writing the default exchange (`amq.default`, through
 * which any queue can be written), and writing and reading a name nobody uses
 * (which catches `.*`-like grants and administrators' permissions). Each name
 * is checked once and again every `recheckEveryMs`; a failure is kept for a
 * few seconds so a broken setup is not asked again on every publish.
 */
export class IsolatedAccountCheck {
  readonly #checks = new Map<string, FirstUseCheck>();

  constructor(
    private readonly catalog: ResourceCatalog,
    private readonly recheckEveryMs = 60_000,
  ) {}

  /** Known confined for this name now (the hot path asks this before anything else). */
  passed(access: ProductionAccess): boolean {
    return this.#checks.get(keyOf(access))?.passed ?? false;
  }

  /** The last failure for this name, while it is remembered. */
  failure(access: ProductionAccess): unknown {
    return this.#checks.get(keyOf(access))?.failure;
  }

  ensure(access: ProductionAccess, tenant: Tenant): Promise<void> {
    const key = keyOf(access);
    let check = this.#checks.get(key);
    if (check === undefined) {
      check = new FirstUseCheck(() => this.#check(access, tenant), 5_000, this.recheckEveryMs);
      this.#checks.set(key, check);
    }
    return check.ensure();
  }

  async #check(access: ProductionAccess, tenant: Tenant): Promise<void> {
    const unused = `dye-probe-${randomBytes(6).toString('hex')}`;
    const madeUpExchange = isolatedName('amqp-exchange', unused, tenant);
    const madeUpQueue = isolatedName('amqp-queue', unused, tenant);
    const probes: ProductionAccess[] = [
      access,
      { mode: 'write', name: 'amq.default' },
      { mode: 'write', name: unused },
      { mode: 'read', name: unused },
    ];
    const allowed: string[] = [];
    for (const each of probes) {
      let verdict: Verdict;
      try {
        // Each refusal closes the channel it happens on: the catalog's probe channel, reopened for the next.
        verdict = await this.catalog.run((channel) => probe(channel, each, each.mode === 'write' ? madeUpExchange : madeUpQueue));
      } catch (error) {
        throw isolationRefusal('amqp', {
          tenant: tenant.name,
          refused: `using the isolated connection for ${describe(access)}`,
          reason: `Dye could not ask RabbitMQ whether the isolated connection's user may ${each.mode} ${each.name}: ${String((error as Error).message ?? error)}`,
        });
      }
      if (verdict === 'allowed') allowed.push(`${each.mode} ${each.name === unused ? `${unused} (a name nobody uses)` : each.name}`);
    }
    if (allowed.length > 0) {
      throw isolationRefusal('amqp', {
        tenant: tenant.name,
        refused: `using the isolated connection for ${describe(access)}`,
        reason:
          `RabbitMQ lets the isolated connection's user ${allowed.join(', ')}, so it could reach production; ` +
          "grant it only the isolated resources (grantShadowAccess, dye shadow grant --amqp), or pass enforcement: 'guard-only'",
      });
    }
  }
}

function keyOf(access: ProductionAccess): string {
  return `${access.mode}:${access.name}`;
}

function describe(access: ProductionAccess): string {
  return access.mode === 'write' ? `publishing to ${access.name}` : `consuming ${access.name}`;
}
