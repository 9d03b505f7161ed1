import type { IncomingMessage, ServerResponse } from 'node:http';
import { annotateActiveSpan, type EdgeDecision, type EdgeGuardOptions, TENANT_HEADER, withTenant } from '@dye/core';
import { nodeRequestGuard } from './node-request.js';

export type TenantMiddlewareOptions<Req = IncomingMessage> = EdgeGuardOptions<Req> & {
  /** Answer `x-tenant: <decided tenant>` so a tester sees what happened. Default: true in edge mode, false in internal mode. */
  responseHeader?: boolean;
};

type Next = (error?: unknown) => void;

/**
 * Connect-style middleware for node:http, Express and Connect: decides the
 * request's tenant (edge guard in `edge` mode, the trusted header in `internal`
 * mode) and runs the rest of the request inside it: the handlers, and every
 * event of the request and response (`req.on('end')`, `pipe`, `finished`,
 * body parsers). Conflicting tenants get a
 * 400 and a refused token (with `onInvalidToken: 'reject'`) a 401, as JSON.
 *
 * With bare node:http: `server.on('request', (req, res) => middleware(req, res, () => handler(req, res)))`.
 */
export function tenantMiddleware(options: TenantMiddlewareOptions): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const requests = nodeRequestGuard<IncomingMessage>(options);
  const respond = options.responseHeader ?? requests.guard.mode === 'edge';
  return function dyeTenant(req, res, next) {
    const decision = requests.decide(req);
    if (!decision.ok) {
      refuse(res, decision);
      return;
    }
    if (respond) res.setHeader(TENANT_HEADER, decision.tenant.name);
    // Body and response events come from the socket's parser, outside this call.
    requests.hold(decision, req, res);
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
