import type { IncomingMessage, ServerResponse } from 'node:http';
import { annotateActiveSpan, createEdgeGuard, type EdgeDecision, type EdgeGuardOptions, TENANT_HEADER, withTenant } from '@dye/core';

export type TenantMiddlewareOptions<Req = IncomingMessage> = EdgeGuardOptions<Req> & {
  /** Answer `x-tenant: <decided tenant>` so a tester sees what happened. Default: true in edge mode, false in internal mode. */
  responseHeader?: boolean;
};

type Next = (error?: unknown) => void;

/**
 * Connect-style middleware for node:http, Express and Connect: decides the
 * request's tenant (edge guard in `edge` mode, the trusted header in `internal`
 * mode) and runs the rest of the request inside it. Conflicting tenants get a
 * 400 and a refused token (with `onInvalidToken: 'reject'`) a 401, as JSON.
 *
 * With bare node:http: `server.on('request', (req, res) => middleware(req, res, () => handler(req, res)))`.
 */
export function tenantMiddleware(options: TenantMiddlewareOptions): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const guard = createEdgeGuard<IncomingMessage>(options);
  const respond = options.responseHeader ?? guard.mode === 'edge';
  return function dyeTenant(req, res, next) {
    const decision = guard.decide({
      remoteAddress: req.socket?.remoteAddress,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      request: req,
    });
    if (!decision.ok) {
      refuse(res, decision);
      return;
    }
    if (respond) res.setHeader(TENANT_HEADER, decision.tenant.name);
    withTenant(decision.tenant, () => {
      annotateActiveSpan(decision.tenant);
      next();
    });
  };
}

/** Writes a refusal as JSON: `{ "error": "DYE_TENANT_CONFLICT", "message": "…" }`. */
export function refuse(res: ServerResponse, decision: Extract<EdgeDecision, { ok: false }>): void {
  const body = JSON.stringify({ error: decision.code, message: decision.message });
  res.statusCode = decision.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
