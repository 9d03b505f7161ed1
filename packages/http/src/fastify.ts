import type { IncomingMessage } from 'node:http';
import { annotateActiveSpan, BASELINE, TENANT_HEADER, type Tenant, withTenant } from '@dye/core';
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { TenantMiddlewareOptions } from './middleware.js';
import { nodeRequestGuard } from './node-request.js';
import { guardUpgrades } from './upgrade.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant Dye decided for this request. */
    dyeTenant: Tenant;
  }
}

const plugin: FastifyPluginCallback<TenantMiddlewareOptions<FastifyRequest>> = (fastify, options, done) => {
  const requests = nodeRequestGuard<FastifyRequest>(options);
  const respond = options.responseHeader ?? requests.guard.mode === 'edge';
  // WebSocket and other upgrades (@fastify/websocket) reach the server's
  // 'upgrade' event, not onRequest: they pass the same guard there.
  guardUpgrades(fastify.server, options as TenantMiddlewareOptions<unknown>);
  // Fastify refuses object defaults for request decorators (they would be
  // shared by all requests); onRequest sets the real value before any handler.
  fastify.decorateRequest('dyeTenant', null as unknown as Tenant);

  fastify.addHook('onRequest', (request, reply, next) => {
    const raw: IncomingMessage = request.raw;
    const decision = requests.decide(raw, request);
    if (!decision.ok) {
      reply.code(decision.status).send({ error: decision.code, message: decision.message });
      return;
    }
    request.dyeTenant = decision.tenant;
    if (respond) reply.header(TENANT_HEADER, decision.tenant.name);
    requests.hold(decision, raw, reply.raw);
    withTenant(decision.tenant, () => {
      annotateActiveSpan(decision.tenant);
      next();
    });
  });

  // The body is read from socket events after onRequest returned. Whether the
  // context entered there survives depends on stream internals (it does on the
  // Node versions tested, see the late-body test); entering it again before
  // validation and the handler costs one withTenant and removes the doubt.
  fastify.addHook('preValidation', (request, _reply, next) => {
    withTenant(request.dyeTenant ?? BASELINE, () => next());
  });

  done();
};

/**
 * Fastify plugin: the same decision as `tenantMiddleware`, for every route of
 * the instance it is registered on (and its children). `request.dyeTenant` holds
 * the decision; handlers run inside it.
 */
export const fastifyTenant = fp(plugin, { fastify: '5.x', name: '@dye/http/fastify' });
