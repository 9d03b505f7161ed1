import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import {
  BAGGAGE_HEADER,
  callInTenant,
  currentTenant,
  injectTenant,
  isolationRefusal,
  isTenantHeaderName,
  objectHeaders,
  TENANT_HEADER,
  type Tenant,
  type TenantSetter,
} from '@dye/core';
import type { EgressPolicy } from './egress.js';
import { holdTenant } from './node-request.js';
import { proxyTarget } from './proxy-target.js';

// What a tenant agent records on a request it admits, under process-wide keys
// (any copy of this package reads what another wrote): the tenant that sent it,
// whose tenant its events run in, and the tenant its headers must say
// (baseline, that is none, for a host outside the system).
const SENDER_TENANT = Symbol.for('dye.http.senderTenant');
const OUTBOUND_TENANT = Symbol.for('dye.http.outboundTenant');
const ADMITTED_PATH = Symbol.for('dye.http.admittedPath');
type Admitted = ClientRequest & { [SENDER_TENANT]?: Tenant; [OUTBOUND_TENANT]?: Tenant; [ADMITTED_PATH]?: string };

/** Records who sent a request; from here on its events, and its socket's, run in that tenant. */
export function admitSender(req: ClientRequest, tenant: Tenant): void {
  (req as Admitted)[SENDER_TENANT] = tenant;
  (req as Admitted)[ADMITTED_PATH] = req.path;
}

/**
 * A path changed after the agent judged it (`req.path = 'http://elsewhere/'`
 * before `end()`) could send the request, through a proxy, somewhere the
 * check never saw: for a tenant that is refused, the request destroyed.
 */
function refuseRetargeting(req: Admitted): void {
  const sender = req[SENDER_TENANT];
  if (sender === undefined || sender.kind === 'baseline' || req.path === req[ADMITTED_PATH]) return;
  const refusal = isolationRefusal('http', {
    tenant: sender.name,
    refused: `sending ${req.path} where ${req[ADMITTED_PATH]} was checked`,
    reason: 'the path changed after the tenant agent judged the request; set it before http.request() returns',
  });
  req.destroy(refusal);
  throw refusal;
}

// Node's own methods: Dye's writes use them and skip the guards.
const outgoing = http.OutgoingMessage.prototype;
const setHeaderOf = outgoing.setHeader;
const removeHeaderOf = outgoing.removeHeader;

/** Reads and writes a ClientRequest's headers before they are sent. */
const clientRequestHeaders: TenantSetter<ClientRequest> = {
  get: (req, key) => {
    const value = req.getHeader(key);
    return value === undefined ? undefined : Array.isArray(value) ? value : String(value);
  },
  set: (req, key, value) => void setHeaderOf.call(req, key, value),
  remove: (req, key) => removeHeaderOf.call(req, key),
};

// A serialized head that may say something else than its tenant: a header
// named like a tenant carrier but not exactly Dye's `x-tenant`/`baggage`
// (`X-Tenant` through Node's internal map, `x_tenant`, `uberctx-tenant`…).
const ODD_CARRIER_LINE = /\r\n(?!x-tenant:|baggage:)[^\r\n:]*(?:[tT][eE][nN][aA][nN][tT]|[bB][aA][gG][gG][aA][gG][eE])[^\r\n:]*:/;
const TENANT_ANYWHERE = /tenant/i;

function headMaySayOtherwise(head: string, tenant: Tenant): boolean {
  if (tenant.kind === 'baseline') return TENANT_ANYWHERE.test(head);
  if (ODD_CARRIER_LINE.test(head)) return true;
  return (
    head.indexOf('\r\nx-tenant:') !== head.lastIndexOf('\r\nx-tenant:') || head.indexOf('\r\nbaggage:') !== head.lastIndexOf('\r\nbaggage:')
  );
}

/**
 * Makes the headers of a request not yet serialized say `tenant`: `x-tenant`
 * and the baggage member for a tenant, none of them for baseline, and no other
 * spelling of a tenant header (`uberctx-tenant`, `ot-baggage-tenant`…) at all.
 */
function enforceTenantHeaders(req: ClientRequest, tenant: Tenant): void {
  if (tenant.kind !== 'baseline' || req.hasHeader(TENANT_HEADER) || req.hasHeader(BAGGAGE_HEADER))
    injectTenant(req, clientRequestHeaders, tenant);
}

/**
 * Makes the request say `tenant` whatever its code sets later. Headers are
 * checked when Node serializes them, so every way of changing them before that
 * (setHeader, appendHeader, setHeaders, removeHeader, the deprecated
 * `_headers`, Node's internal header map, OutgoingMessage's own methods) ends
 * the same. A head Node serialized already (headers given as an array, an
 * `Expect` header) is rewritten now; throws when that is no longer possible.
 */
export function keepOutboundTenant(req: ClientRequest, tenant: Tenant): void {
  if ((req as { _header?: string | null })._header) rewriteSerializedHead(req, tenant);
  (req as Admitted)[OUTBOUND_TENANT] = tenant;
}

interface SerializedRequest {
  _header: string;
  _headerSent?: boolean;
  socket?: Socket | null;
  outputData?: Array<{ data: unknown; encoding?: unknown; callback?: unknown }>;
  outputSize?: number;
}

/**
 * Rewrites a head Node has serialized already. With `Expect`, Node has also
 * queued it for the socket (there is none yet): the queued copy is rewritten
 * with it. Anything else means bytes may have left: refused, nothing sent.
 */
function rewriteSerializedHead(req: ClientRequest, tenant: Tenant): void {
  const state = req as unknown as SerializedRequest;
  const head = state._header;
  let queued: { data: unknown } | undefined;
  if (state._headerSent) {
    queued = state.outputData?.[0];
    if (state.socket || queued?.data !== head) {
      throw new Error(`dye: the request head was sent before its tenant (${tenant.name}) could be written; nothing more was sent`);
    }
  }
  const lines = head.split('\r\n');
  const first = lines[0] as string;
  const kept: string[] = [];
  const carried: Record<string, unknown> = {};
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === TENANT_HEADER || name === BAGGAGE_HEADER)
      carried[name] = ([] as string[]).concat((carried[name] as string[]) ?? [], value);
    else if (!isTenantHeaderName(name)) kept.push(line);
  }
  injectTenant(carried, objectHeaders, tenant);
  for (const [name, value] of Object.entries(carried)) kept.push(`${name}: ${String(value)}`);
  const rewritten = `${first}\r\n${kept.map((line) => `${line}\r\n`).join('')}\r\n`;
  state._header = rewritten;
  if (queued) {
    queued.data = rewritten;
    if (state.outputSize !== undefined) state.outputSize += rewritten.length - head.length;
  }
}

// Requests that no tenant agent admitted (an agent of the caller's own, as SDKs
// bring; `createConnection`): while enableNodeHttp is on, an isolated tenant's
// such request is refused unless its host is internal by that call's egress
// list, process-wide (any copy of this package sees it).
const UNADMITTED_EGRESS = Symbol.for('dye.http.unadmittedEgress');
type Holder = { [UNADMITTED_EGRESS]?: Array<Pick<EgressPolicy, 'isInternal'>> };

/** Turns the refusal on with `egress`; returns the function that turns it off again. */
export function refuseUnadmittedIsolated(egress: Pick<EgressPolicy, 'isInternal'>): () => void {
  const holder = globalThis as Holder;
  holder[UNADMITTED_EGRESS] ??= [];
  holder[UNADMITTED_EGRESS].push(egress);
  return () => {
    const list = holder[UNADMITTED_EGRESS] ?? [];
    const index = list.lastIndexOf(egress);
    if (index >= 0) list.splice(index, 1);
  };
}

/** Whether an isolated tenant's request that no tenant agent admitted must be refused. */
function refusesUnadmitted(req: ClientRequest): boolean {
  const list = (globalThis as Holder)[UNADMITTED_EGRESS];
  const egress = list?.[list.length - 1];
  if (egress === undefined) return false;
  const host = (req as { host?: string }).host ?? 'localhost';
  if (!egress.isInternal(host)) return true;
  // Through a proxy: where the request really goes.
  const target = proxyTarget(req);
  return target !== undefined && (target === 'unreadable' || !egress.isInternal(target.hostname));
}

const GUARDS_INSTALLED = Symbol.for('dye.http.clientRequestGuards');

/**
 * Installs, once per process, the guards on ClientRequest's prototype.
 * On a request no tenant agent admitted they do nothing, except refuse an
 * isolated tenant's request to an outside host while enableNodeHttp is on.
 *
 * - `emit`, for 'response': the response's events are held in the sender's tenant.
 * - `_implicitHeader`, where Node serializes a request's headers: they are made
 *   to say the admitted tenant first.
 * - `onSocket`, where every request gets its socket (a new one, a reused
 *   keep-alive one, one handed over after waiting, one made after another
 *   closed): the socket's events are held in the sender's tenant from then on,
 *   and Node's hand-over (the response parser's context, the 'socket' event)
 *   runs in it. Node's own async context does not suffice: a socket made for a
 *   waiting request is made inside the closing socket's callback, a TLS
 *   socket's close comes from its TCP handle, an agent's idle timer belongs to
 *   the request that opened the socket.
 */
export function installClientRequestGuards(): void {
  const prototype = http.ClientRequest.prototype as ClientRequest & { [GUARDS_INSTALLED]?: true };
  if (prototype[GUARDS_INSTALLED]) return;
  const implicitHeader = (prototype as unknown as { _implicitHeader: (this: ClientRequest) => void })._implicitHeader;
  const onSocket = (prototype as unknown as { onSocket: (this: ClientRequest, socket?: Socket, error?: Error) => void }).onSocket;
  const emit = prototype.emit;
  Object.defineProperties(prototype, {
    [GUARDS_INSTALLED]: { value: true },
    emit: {
      configurable: true,
      writable: true,
      value: function guardedEmit(this: Admitted, event: string | symbol, response?: unknown) {
        // The response's own events run in the sender's tenant too, whoever
        // later resumes or pipes it (its 'data' comes from the caller of resume()).
        if (event === 'response') {
          const sender = this[SENDER_TENANT];
          if (sender !== undefined) holdTenant(response as IncomingMessage, sender);
        }
        return emit.apply(this, arguments as unknown as Parameters<ClientRequest['emit']>);
      },
    },
    _implicitHeader: {
      configurable: true,
      writable: true,
      value: function guardedImplicitHeader(this: Admitted) {
        const tenant = this[OUTBOUND_TENANT];
        if (tenant === undefined || (this as { _header?: string | null })._header) return implicitHeader.call(this);
        refuseRetargeting(this);
        enforceTenantHeaders(this, tenant);
        implicitHeader.call(this);
        // Whatever wrote the headers (Node's internal map, another spelling), the head says `tenant`.
        const head = (this as unknown as { _header: string })._header;
        if (headMaySayOtherwise(head, tenant)) rewriteSerializedHead(this, tenant);
      },
    },
    onSocket: {
      configurable: true,
      writable: true,
      value: function guardedOnSocket(this: Admitted, socket?: Socket, error?: Error) {
        const sender = this[SENDER_TENANT];
        if (sender !== undefined) {
          if (socket) holdTenant(socket, sender);
          return callInTenant(sender, onSocket, this, arguments);
        }
        if (socket) {
          const tenant = currentTenant();
          if (tenant.kind === 'isolated' && refusesUnadmitted(this)) {
            socket.destroy();
            const host = (this as { host?: string }).host ?? 'a host';
            return onSocket.call(
              this,
              undefined,
              isolationRefusal('http', {
                tenant: tenant.name,
                refused: `a node:http request to ${host} that no tenant agent checked (an agent of its own, or createConnection)`,
                reason:
                  'the host is outside the system and no mock can be applied to it; give the client a TenantHttpAgent or TenantHttpsAgent (with mocks) or leave the call out of the load test',
              }),
            );
          }
        }
        return onSocket.apply(this, arguments as unknown as [Socket?, Error?]);
      },
    },
  });
}
