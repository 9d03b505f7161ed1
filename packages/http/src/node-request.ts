import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  callInTenant,
  createEdgeGuard,
  type EdgeDecision,
  type EdgeGuard,
  type EdgeGuardOptions,
  inTenantAlready,
  stripTenantInput,
  syncRawHeaders,
  TENANT_TOKEN_HEADER,
  type Tenant,
  withTenant,
} from '@dye/core';

/**
 * The edge guard applied to a Node request (node:http, HTTP/2 compatibility
 * API, and every framework built on them), with what Node needs besides the
 * decision: header views kept consistent after stripping, and the decided
 * tenant held by every event of the request, its response and (for upgrades)
 * its socket.
 */
export interface NodeRequestGuard<Req> {
  readonly guard: EdgeGuard<Req>;
  /** Decides and cleans `req`'s headers; `request` is what canary rules see (default `req`). */
  decide(req: IncomingMessage, request?: Req): EdgeDecision;
  /** Makes every later event of `req` and of `others` (response, socket) run in the decided tenant. */
  hold(decision: Extract<EdgeDecision, { ok: true }>, req: IncomingMessage, ...others: EventEmitter[]): void;
}

export function nodeRequestGuard<Req = IncomingMessage>(options: EdgeGuardOptions<Req>): NodeRequestGuard<Req> {
  const guard = createEdgeGuard<Req>(options);
  const edge = guard.mode === 'edge';
  const tokenHeader = (options.tokens?.header ?? TENANT_TOKEN_HEADER).toLowerCase();
  const stripTrailers = (emitter: EventEmitter) => stripTrailerInput(emitter as IncomingMessage, tokenHeader);
  return {
    guard,
    decide(req, request) {
      const rawHeaders = req.rawHeaders;
      const rawLength = rawHeaders.length;
      const decision = guard.decide({
        remoteAddress: req.socket?.remoteAddress,
        headers: req.headers as Record<string, unknown>,
        rawHeaders,
        request: (request ?? req) as Req,
      });
      if (rawHeaders.length !== rawLength) keepDistinctView(req, 'headersDistinct', 'rawHeaders');
      return decision;
    },
    hold(decision, req, ...others) {
      // Trailers arrive with the end of the body, long after the decision; an
      // untrusted peer's tenant in them is removed before 'end' is seen.
      holdTenant(req, decision.tenant, edge && !decision.trusted ? stripTrailers : undefined);
      for (const other of others) holdTenant(other, decision.tenant);
    },
  };
}

interface Held {
  tenant: Tenant;
  readonly emit: EventEmitter['emit'];
  readonly beforeEnd: ((emitter: EventEmitter) => void) | undefined;
}

// Held state sits on the emitter under a process-wide symbol and one shared
// emit reads it: no closure per emitter, and a property lookup where a WeakMap
// would cost a hash lookup per event (and an ephemeron per request to the GC).
const HELD = Symbol.for('dye.http.held');
type HeldEmitter = EventEmitter & { [HELD]?: Held };

function heldEmit(this: HeldEmitter, event: string | symbol): boolean {
  const state = this[HELD] as Held;
  if (state.beforeEnd !== undefined && event === 'end') state.beforeEnd(this);
  // An event nobody listens to runs no code that could read the tenant.
  if (this.listenerCount(event) === 0) return state.emit.apply(this, arguments as unknown as Parameters<EventEmitter['emit']>);
  // Nearly always the socket's context is the tenant's already: a direct call, `arguments` passed on as it came.
  if (inTenantAlready(state.tenant)) return state.emit.apply(this, arguments as unknown as Parameters<EventEmitter['emit']>);
  return callInTenant(state.tenant, state.emit, this, arguments);
}

/**
 * Runs every event `emitter` emits from now on inside `tenant`. Node emits a
 * request's `data`, `end`, `close` and the response's `finish` from the
 * socket's parser, whose async context is the connection's, not the request's:
 * without this, `req.on('end', …)`, `req.pipe(…)`, `stream.finished(…)` and
 * body parsers' callbacks would run as whoever opened the connection.
 * Holding an emitter again (a keep-alive socket's next request) re-aims it.
 */
export function holdTenant(emitter: EventEmitter, tenant: Tenant, beforeEnd?: (emitter: EventEmitter) => void): void {
  const held = (emitter as HeldEmitter)[HELD];
  if (held) {
    held.tenant = tenant;
    return;
  }
  (emitter as HeldEmitter)[HELD] = { tenant, emit: emitter.emit, beforeEnd };
  emitter.emit = heldEmit;
}

/**
 * Trailers are never where a tenant comes from: every form of tenant input is
 * removed from them, and a token too (one read from trailers would be honoured
 * by nothing here, but forwarded it could be by something downstream).
 */
function stripTrailerInput(req: IncomingMessage, tokenHeader: string): void {
  const rawTrailers = req.rawTrailers;
  if (rawTrailers === undefined || rawTrailers.length === 0) return;
  const rawLength = rawTrailers.length;
  // Reading `trailers` first makes Node build its parsed view from the raw list.
  const trailers = req.trailers as Record<string, unknown>;
  stripTenantInput(trailers, rawTrailers);
  delete trailers[tokenHeader];
  syncRawHeaders(rawTrailers, trailers, [tokenHeader]);
  if (rawTrailers.length !== rawLength) keepDistinctView(req, 'trailersDistinct', 'rawTrailers');
}

/**
 * Node builds `headersDistinct`/`trailersDistinct` lazily from the raw list and
 * the header count it parsed; after stripping shortened the raw list, its getter
 * would read past the end and throw. The view is rebuilt from the cleaned list.
 */
function keepDistinctView(req: IncomingMessage, view: 'headersDistinct' | 'trailersDistinct', raw: 'rawHeaders' | 'rawTrailers'): void {
  let built: Record<string, string[]> | undefined;
  Object.defineProperty(req, view, {
    configurable: true,
    enumerable: false,
    get() {
      if (built) return built;
      built = {};
      const list = req[raw];
      for (let i = 0; i + 1 < list.length; i += 2) {
        const name = (list[i] as string).toLowerCase();
        (built[name] ??= []).push(list[i + 1] as string);
      }
      return built;
    },
    set(value: Record<string, string[]>) {
      built = value;
    },
  });
}

/** Answers a refused upgrade on the raw socket (no response object exists) and closes it. */
export function refuseSocket(socket: Duplex, decision: Extract<EdgeDecision, { ok: false }>): void {
  const body = JSON.stringify({ error: decision.code, message: decision.message });
  const reason = decision.status === 400 ? 'Bad Request' : 'Unauthorized';
  socket.end(
    `HTTP/1.1 ${decision.status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
