import type { IncomingMessage, ServerResponse } from 'node:http';
import { annotateActiveSpan, TENANT_HEADER, type Tenant, withTenant } from '@dye/core';
import type { TenantMiddlewareOptions } from './middleware.js';
import { nodeRequestGuard } from './node-request.js';

/** The part of Koa's context the middleware uses (so the types need no `@types/koa`). */
export interface KoaTenantContext {
  req: IncomingMessage;
  res: ServerResponse;
  status: number;
  body: unknown;
  state: Record<string, unknown> & { dyeTenant?: Tenant };
  set(field: string, value: string): void;
}

/**
 * Koa middleware: the decision of `tenantMiddleware` for a Koa app. Register it
 * first (`app.use(koaTenant({ mode: 'edge', … }))`); everything downstream, body
 * parsers and every event of `ctx.req`/`ctx.res` included, runs in the decided
 * tenant, and `ctx.state.dyeTenant` holds it. Canary rules receive the Koa context.
 */
export function koaTenant<Ctx extends KoaTenantContext>(
  options: TenantMiddlewareOptions<Ctx>,
): (ctx: Ctx, next: () => Promise<unknown>) => Promise<unknown> {
  const requests = nodeRequestGuard<Ctx>(options);
  const respond = options.responseHeader ?? requests.guard.mode === 'edge';
  return function dyeTenant(ctx, next) {
    const decision = requests.decide(ctx.req, ctx);
    if (!decision.ok) {
      ctx.status = decision.status;
      ctx.body = { error: decision.code, message: decision.message };
      return Promise.resolve();
    }
    ctx.state.dyeTenant = decision.tenant;
    if (respond) ctx.set(TENANT_HEADER, decision.tenant.name);
    requests.hold(decision, ctx.req, ctx.res);
    return withTenant(decision.tenant, () => {
      annotateActiveSpan(decision.tenant);
      return next();
    });
  };
}
