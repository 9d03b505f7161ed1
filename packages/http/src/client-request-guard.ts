import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import {
  BAGGAGE_HEADER,
  callInTenant,
  currentTenant,
  injectTenant,
  inTenantAlready,
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

// What a tenant agent records on a request it admits, under a process-wide key
// (any copy of this package reads what another wrote), in one record (one
// property added to the request, not several): the tenant that sent it, whose
// tenant its events run in; the method and path it judged; the tenant its
// headers must say (baseline, that is none, for a host outside the system);
// and the head Dye checked, with whether it waits in Node's output queue.
const ADMISSION = Symbol.for('dye.http.admission');
interface Admission {
  sender: Tenant | undefined;
  method: string;
  path: string;
  outbound: Tenant | undefined;
  /** The head as Dye checked it: a head Node is about to send that is not this one is checked again. */
  head: string | undefined;
  /** The checked head went into Node's output queue (no socket yet): what is flushed must begin with it. */
  queued: boolean;
  /** For a request routed to an app instance: sends it elsewhere when its connection failed (true), or not (false). */
  connectFailover?: (error: Error) => boolean;
}
type Admitted = ClientRequest & { [ADMISSION]?: Admission };

function admissionOf(req: ClientRequest, sender: Tenant | undefined, outbound: Tenant | undefined): Admission {
  const admission = { sender, method: req.method, path: req.path, outbound, head: undefined, queued: false };
  (req as Admitted)[ADMISSION] = admission;
  return admission;
}

/**
 * Gives a request routed to an app instance a way around a connection that
 * could not be made (nothing of the request was sent): `failover` sends it
 * elsewhere and answers true, or answers false and the request fails.
 */
export function setConnectFailover(req: ClientRequest, failover: (error: Error) => boolean): void {
  const admission = (req as Admitted)[ADMISSION] ?? admissionOf(req, undefined, undefined);
  admission.connectFailover = failover;
}

/** Records who sent a request; from here on its events, and its socket's, run in that tenant. */
export function admitSender(req: ClientRequest, tenant: Tenant): void {
  const admission = (req as Admitted)[ADMISSION];
  if (admission === undefined) admissionOf(req, tenant, undefined);
  else {
    admission.sender = tenant;
    admission.method = req.method;
    admission.path = req.path;
  }
}

/**
 * A method or path changed after the agent judged it (`req.path =
 * 'http://elsewhere/'` before `end()`) could send the request, through a
 * proxy, somewhere the check never saw: for a tenant that is refused, the
 * request destroyed.
 */
function refuseRetargeting(req: ClientRequest, admission: Admission): void {
  const sender = admission.sender;
  if (sender === undefined || sender.kind === 'baseline' || (req.path === admission.path && req.method === admission.method)) return;
  const refusal = isolationRefusal('http', {
    tenant: sender.name,
    refused: `sending ${JSON.stringify(`${req.method} ${req.path}`)} where ${JSON.stringify(`${admission.method} ${admission.path}`)} was checked`,
    reason: 'the method or path changed after the tenant agent judged the request; set them before http.request() returns',
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

/** How often the words a tenant carrier's name holds (`tenant`, `baggage`) occur in `lower`. */
function carrierWords(lower: string): number {
  let count = 0;
  for (let at = lower.indexOf('tenant'); at !== -1; at = lower.indexOf('tenant', at + 6)) count++;
  for (let at = lower.indexOf('baggage'); at !== -1; at = lower.indexOf('baggage', at + 7)) count++;
  return count;
}

// Values Dye writes repeat (a tenant's name, its baggage): each is counted once (bounded).
const wordCounts = new Map<string, number>();
function carrierWordsOf(value: string): number {
  let count = wordCounts.get(value);
  if (count === undefined) {
    count = carrierWords(value.toLowerCase());
    if (wordCounts.size >= 1024) wordCounts.clear();
    wordCounts.set(value, count);
  }
  return count;
}

/**
 * Whether a serialized head may say something else than `tenant`. Nearly
 * always answered by counting: when every `tenant` and `baggage` in it, in any
 * case, is in the `x-tenant` and `baggage` lines Dye wrote, no other line can
 * name a carrier. Otherwise each occurrence is looked at ({@link linesMaySayOtherwise}).
 */
function headMaySayOtherwise(req: ClientRequest, head: string, tenant: Tenant): boolean {
  let expected = tenant.kind === 'baseline' ? 0 : 1 + carrierWordsOf(tenant.name);
  const baggage = req.getHeader(BAGGAGE_HEADER);
  if (typeof baggage === 'string') expected += 1 + carrierWordsOf(baggage);
  else if (baggage !== undefined) return true;
  // Baseline without baggage, the common case: one search, nothing allocated.
  if (expected === 0) return ANY_CARRIER_WORD.test(head) && linesMaySayOtherwise(req, head, tenant);
  return carrierWords(head.toLowerCase()) !== expected && linesMaySayOtherwise(req, head, tenant);
}

const ANY_CARRIER_WORD = /tenant|baggage/i;

// Where a header name may carry a tenant (`x-tenant`, `X-Tenant` through
// Node's internal map, `x_tenant`, `uberctx-tenant`, `baggage`, `ot-baggage-…`).
const CARRIER_WORD = /tenant|baggage/gi;

/**
 * Whether a head may say something else than `tenant`: a line named like a
 * tenant carrier other than one `x-tenant` and one `baggage` (for baseline: no
 * `x-tenant`, and `baggage` only as Dye cleaned it). A line starts after any
 * CR or LF, as a lenient server downstream would split it.
 */
function linesMaySayOtherwise(req: ClientRequest, head: string, tenant: Tenant): boolean {
  let tenantLines = 0;
  let baggageLines = 0;
  CARRIER_WORD.lastIndex = 0;
  for (let match = CARRIER_WORD.exec(head); match !== null; match = CARRIER_WORD.exec(head)) {
    const lineStart = Math.max(head.lastIndexOf('\n', match.index), head.lastIndexOf('\r', match.index)) + 1;
    const lineEnd = nextLineBreak(head, match.index);
    CARRIER_WORD.lastIndex = lineEnd;
    // The request line (its path) and header values are not header names.
    if (lineStart === 0) continue;
    const colon = head.indexOf(':', lineStart);
    if (colon !== -1 && colon < match.index) continue;
    const name = colon === -1 || colon > lineEnd ? undefined : head.slice(lineStart, colon);
    if (name === TENANT_HEADER && tenant.kind !== 'baseline' && tenantLines++ === 0) continue;
    if (name === BAGGAGE_HEADER && baggageLines++ === 0) {
      if (tenant.kind !== 'baseline') continue;
      // Baseline keeps other members of a baggage header Dye cleaned, and nothing else.
      const value = req.getHeader(BAGGAGE_HEADER);
      if (typeof value === 'string' && head.slice(colon + 1, lineEnd).trim() === value) continue;
    }
    return true;
  }
  return false;
}

/**
 * Node writes a head as latin1: a character above U+00FF leaves as its low
 * byte (`\u0174` as `t`). The text of the bytes that will leave, so every
 * check reads what a server will. An ASCII head, nearly all, is itself.
 */
function wireText(head: string): string {
  return Buffer.byteLength(head, 'utf8') === head.length ? head : Buffer.from(head, 'latin1').toString('latin1');
}

/** Replaces the request's head by the text of its bytes ({@link wireText}) and returns it. */
function asWire(req: { _header: string }): string {
  const head = req._header;
  const wire = wireText(head);
  if (wire !== head) req._header = wire;
  return wire;
}

function malformedHead(): Error {
  return new Error(
    "dye: the request head holds a line break outside a header line's end, or an empty line before its end (written past Node's header checks); refused, nothing sent",
  );
}

/** Fails a request whose head may not leave; false, for the caller to return. */
function refuseHead(req: ClientRequest, admission: Admission, error: Error): false {
  admission.head = undefined;
  admission.queued = false;
  req.destroy(error);
  return false;
}

const NOT_ASCII = /[^\x00-\x7f]/;

/**
 * Whether a head's lines are as Node's setters allow: every line break a CR LF
 * (a bare CR or LF is a line end to a lenient server downstream), and no empty
 * line before the one that ends it (what followed would be read as a body, or
 * as a request of its own). Such breaks get in only past the setters (Node's
 * internal header map, a method changed after the request was made,
 * `_header` itself). Searches for the few line breaks a head holds: a regex
 * with lookbehind costs several times as much.
 */
export function wellFormedHead(head: string): boolean {
  const length = head.length;
  if (length < 4 || head.charCodeAt(length - 1) !== 10 || head.charCodeAt(length - 3) !== 10) return false;
  let lineFeeds = 0;
  for (let at = head.indexOf('\n'); at !== -1; at = head.indexOf('\n', at + 1)) {
    // After CR; and a CR right after it starts the empty line, which only the end may hold.
    if (head.charCodeAt(at - 1) !== 13 || (head.charCodeAt(at + 1) === 13 && at + 3 !== length)) return false;
    lineFeeds++;
  }
  let carriageReturns = 0;
  for (let at = head.indexOf('\r'); at !== -1; at = head.indexOf('\r', at + 1)) carriageReturns++;
  return carriageReturns === lineFeeds;
}

/** Checks the head Node just serialized from headers Dye wrote; false when it was refused. */
function checkHead(req: Admitted, admission: Admission, tenant: Tenant): boolean {
  let head = (req as unknown as { _header: string })._header;
  // Nearly every head is ASCII, and leaves as the bytes of its text.
  if (NOT_ASCII.test(head)) head = asWire(req as unknown as { _header: string });
  if (!wellFormedHead(head)) return refuseHead(req, admission, malformedHead());
  // Whatever wrote the headers (Node's internal map, another spelling), the head says `tenant`.
  if (headMaySayOtherwise(req, head, tenant)) rewriteSerializedHead(req, tenant);
  admission.head = (req as unknown as { _header: string })._header;
  return true;
}

/**
 * Checks a head Node is about to send that is not the one Dye checked (set or
 * edited through `_header`): it is made to say `tenant`, whatever it said.
 */
function recheckHead(req: Admitted, admission: Admission, tenant: Tenant): boolean {
  const head = asWire(req as unknown as { _header: string });
  if (!wellFormedHead(head)) return refuseHead(req, admission, malformedHead());
  // Its request line may name another target (through a proxy) than the one judged.
  const checked = `${admission.method} ${admission.path} HTTP/1.1\r\n`;
  if ((tenant.kind !== 'baseline' || (admission.sender !== undefined && admission.sender.kind !== 'baseline')) && !head.startsWith(checked))
    return refuseHead(
      req,
      admission,
      new Error(
        `dye: the request head was replaced with one whose request line is not ${JSON.stringify(checked.trimEnd())}, the one checked for ${(admission.sender ?? tenant).name}; refused, nothing sent`,
      ),
    );
  rewriteSerializedHead(req, tenant);
  admission.head = (req as unknown as { _header: string })._header;
  return true;
}

function nextLineBreak(head: string, from: number): number {
  const lf = head.indexOf('\n', from);
  const cr = head.indexOf('\r', from);
  if (lf === -1) return cr === -1 ? head.length : cr;
  return cr === -1 ? lf : Math.min(lf, cr);
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
  const admission = (req as Admitted)[ADMISSION] ?? admissionOf(req, undefined, tenant);
  admission.outbound = tenant;
  const state = req as unknown as SerializedRequest;
  if (!state._header) return;
  if (!wellFormedHead(wireText(state._header))) throw malformedHead();
  rewriteSerializedHead(req, tenant);
  admission.head = state._header;
  // With `Expect`, Node queued the head already: what is flushed must begin with it.
  admission.queued = state._headerSent === true;
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
  // Judged as the bytes that leave, split where any server might: a bare CR or
  // LF Node's internal map let in ends a line too.
  const lines = wireText(head).split(/\r\n|\r|\n/);
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
 * Installs, once per process, the guards on ClientRequest's prototype (and
 * IncomingMessage's, for responses).
 * On a request no tenant agent admitted they do nothing, except refuse an
 * isolated tenant's request to an outside host while enableNodeHttp is on.
 *
 * - `_implicitHeader`, where Node serializes a request's headers: they are made
 *   to say the admitted tenant first, and the head is checked.
 * - `_send`, where the head leaves for the socket or its queue: a head that is
 *   not the one checked (set or edited through `_header`) is checked again;
 *   `_flushOutput`, where the queue goes to the socket: it must still begin
 *   with that head. Past these, bytes are written to the socket itself.
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
  const internals = prototype as unknown as {
    _send: (this: ClientRequest, data: unknown, encoding?: unknown, callback?: unknown, byteLength?: unknown) => boolean;
    _flushOutput: (this: ClientRequest, socket: Socket) => boolean | undefined;
  };
  const send = internals._send;
  const flushOutput = internals._flushOutput;
  Object.defineProperties(prototype, {
    [GUARDS_INSTALLED]: { value: true },
    _implicitHeader: {
      configurable: true,
      writable: true,
      value: function guardedImplicitHeader(this: Admitted) {
        const admission = this[ADMISSION];
        const tenant = admission?.outbound;
        if (admission === undefined || tenant === undefined || (this as { _header?: string | null })._header)
          return implicitHeader.call(this);
        refuseRetargeting(this, admission);
        enforceTenantHeaders(this, tenant);
        implicitHeader.call(this);
        // Refused, the request is destroyed; `_send` below sends nothing of it.
        checkHead(this, admission, tenant);
      },
    },
    _send: {
      configurable: true,
      writable: true,
      value: function guardedSend(this: Admitted & SerializedRequest) {
        const admission = this[ADMISSION];
        const tenant = admission?.outbound;
        if (tenant !== undefined && !this._headerSent && this._header) {
          // A head set or edited past `_implicitHeader` (`_header` itself) is checked now, before it leaves.
          if (this._header !== (admission as Admission).head && !recheckHead(this, admission as Admission, tenant)) return false;
          // Where the head goes: straight to the socket, or into the queue `_flushOutput` empties.
          const socket = this.socket as (Socket & { _httpMessage?: unknown }) | null | undefined;
          (admission as Admission).queued = !(socket && socket._httpMessage === this && socket.writable);
        }
        return send.apply(this, arguments as unknown as Parameters<typeof send>);
      },
    },
    _flushOutput: {
      configurable: true,
      writable: true,
      value: function guardedFlushOutput(this: Admitted & SerializedRequest) {
        const admission = this[ADMISSION];
        if (admission?.queued) {
          admission.queued = false;
          // The queue still begins with the head Dye checked (nothing was put before it, or edited).
          const first = this.outputData?.[0]?.data;
          // The same string as checked, nearly always (Node queues the head, joined to an empty body, as it is).
          if (
            first !== admission.head &&
            (admission.head === undefined || typeof first !== 'string' || !first.startsWith(admission.head))
          ) {
            this.outputData = [];
            this.outputSize = 0;
            refuseHead(
              this,
              admission,
              new Error("dye: Node's output queue no longer begins with the request head Dye checked; refused, nothing sent"),
            );
            return false;
          }
        }
        return flushOutput.apply(this, arguments as unknown as Parameters<typeof flushOutput>);
      },
    },
    onSocket: {
      configurable: true,
      writable: true,
      value: function guardedOnSocket(this: Admitted, socket?: Socket, error?: Error) {
        const failover = this[ADMISSION]?.connectFailover;
        if (failover !== undefined && socket === undefined && error !== undefined) {
          (this[ADMISSION] as Admission).connectFailover = undefined;
          if (failover(error)) return;
        }
        const sender = this[ADMISSION]?.sender;
        if (sender !== undefined) {
          if (socket) holdTenant(socket, sender);
          if (inTenantAlready(sender)) return onSocket.apply(this, arguments as unknown as [Socket?, Error?]);
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
  // A response's events run in its request's sender's tenant, whoever resumes
  // or pipes it (its 'data' comes from the caller of resume()). On the
  // prototype: nothing is added to each response; a server's requests (no
  // `req`) pass straight through.
  const incoming = http.IncomingMessage.prototype;
  const incomingEmit = incoming.emit;
  Object.defineProperty(incoming, 'emit', {
    configurable: true,
    writable: true,
    value: function guardedResponseEmit(this: IncomingMessage & { req?: Admitted }, event: string | symbol) {
      const sender = this.req?.[ADMISSION]?.sender;
      // An event nobody listens to runs no code that could read the tenant.
      if (sender === undefined || this.listenerCount(event) === 0 || inTenantAlready(sender))
        return incomingEmit.apply(this, arguments as unknown as Parameters<IncomingMessage['emit']>);
      return callInTenant(sender, incomingEmit, this, arguments);
    },
  });
}
