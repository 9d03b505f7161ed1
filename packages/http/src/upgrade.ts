import type { IncomingMessage, Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { annotateActiveSpan, withTenant } from '@dye/core';
import type { TenantMiddlewareOptions } from './middleware.js';
import { nodeRequestGuard, refuseSocket } from './node-request.js';

const GUARDED = Symbol('dye.upgrades-guarded');

/**
 * Puts a server's `upgrade` requests (WebSocket, h2c) and `connect` requests
 * (CONNECT, as a forward proxy receives them) through the edge guard
 * before any `upgrade` listener sees them, `ws`'s `new WebSocketServer({ server })`
 * included: refused requests get a 400/401 on the socket and reach no
 * listener; accepted ones run in the decided tenant, and so does every later
 * event of their socket (each WebSocket message). Request middleware never sees
 * upgrades, so a server that accepts them needs this as well (`fastifyTenant`
 * calls it for its own server). Guarding a server twice keeps the first guard.
 */
export function guardUpgrades<Req = IncomingMessage>(server: Server | HttpsServer, options: TenantMiddlewareOptions<Req>): void {
  const target = server as Server & { [GUARDED]?: true };
  if (target[GUARDED]) return;
  Object.defineProperty(target, GUARDED, { value: true });
  const requests = nodeRequestGuard<Req>(options);
  const emit = target.emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean;
  target.emit = function dyeGuardedEmit(this: Server, event: string | symbol, ...args: unknown[]): boolean {
    // CONNECT requests arrive the same way (req, socket, head) and skip request middleware too.
    if (event !== 'upgrade' && event !== 'connect') return emit.call(this, event, ...args);
    const [req, socket, head] = args as [IncomingMessage, Duplex, Buffer];
    const decision = requests.decide(req);
    if (!decision.ok) {
      refuseSocket(socket, decision);
      return true;
    }
    requests.hold(decision, req, socket);
    return withTenant(decision.tenant, () => {
      annotateActiveSpan(decision.tenant);
      return emit.call(this, event, req, socket, head);
    });
  } as Server['emit'];
}
