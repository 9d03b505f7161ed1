import type { IncomingMessage, ServerResponse } from 'node:http';
import { annotateActiveSpan, fetchHeaders, injectTenant, isTenantHeaderName, TENANT_HEADER, type Tenant, withTenant } from '@dye/core';
import type { TenantMiddlewareOptions } from './middleware.js';
import { nodeRequestGuard } from './node-request.js';

/** The part of Hono's context the middleware uses (so the types need no `hono`). */
export interface HonoTenantContext {
  env: unknown;
  req: { raw: Request };
  set(key: 'dyeTenant', value: Tenant): void;
  header(name: string, value: string): void;
  json(body: unknown, status: 400 | 401): Response;
}

interface NodeServerBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

/**
 * Hono middleware for apps served by `@hono/node-server`: the decision of
 * `tenantMiddleware`, read from the Node request under Hono's `Request`.
 * Register it first (`app.use(honoTenant({ mode: 'edge', … }))`); later
 * middleware and handlers run in the decided tenant, `c.get('dyeTenant')`
 * holds it, and `c.req.header()` shows the decision and nothing a client sent.
 * Canary rules receive the Hono context.
 */
export function honoTenant<Ctx extends HonoTenantContext>(
  options: TenantMiddlewareOptions<Ctx>,
): (c: Ctx, next: () => Promise<void>) => Promise<Response | undefined> {
  const requests = nodeRequestGuard<Ctx>(options);
  const respond = options.responseHeader ?? requests.guard.mode === 'edge';
  return async function dyeTenant(c, next) {
    const { incoming, outgoing } = (c.env ?? {}) as NodeServerBindings;
    if (incoming === undefined) {
      throw new TypeError('honoTenant: no Node request in c.env.incoming; serve the app with @hono/node-server');
    }
    const decision = requests.decide(incoming, c);
    if (!decision.ok) return c.json({ error: decision.code, message: decision.message }, decision.status);
    // Hono's Request reads the Node headers lazily; if anything read them
    // before this middleware, its copy is made to agree with the decision.
    const headers = c.req.raw.headers;
    for (const name of [...headers.keys()]) if (isTenantHeaderName(name)) headers.delete(name);
    injectTenant(headers, fetchHeaders, decision.tenant);
    c.set('dyeTenant', decision.tenant);
    if (respond) c.header(TENANT_HEADER, decision.tenant.name);
    requests.hold(decision, incoming, ...(outgoing ? [outgoing] : []));
    await withTenant(decision.tenant, () => {
      annotateActiveSpan(decision.tenant);
      return next();
    });
    return undefined;
  };
}
