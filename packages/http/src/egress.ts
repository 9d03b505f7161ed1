import { isIP } from 'node:net';
import { compileAddressMatcher, isolationRefusal, type Tenant } from '@dye/core';

export interface EgressOptions {
  /**
   * Hosts inside the system, which receive tenant headers: exact hostnames
   * (`inventory.shop.svc`), suffixes (`.svc.cluster.local` or `*.svc.cluster.local`),
   * IP addresses and CIDRs (`10.0.0.0/8`, `fd00::/8`), `loopback`, and
   * `single-label` (hostnames without a dot, such as Kubernetes or Compose service
   * names). Default: `['localhost', 'loopback', 'single-label']`.
   */
  internal?: readonly string[];
  /**
   * For isolated tenants: stand-ins for hosts outside the system, by hostname
   * (`{ 'api.payments.example': 'http://127.0.0.1:9090' }`). Without one, an
   * isolated tenant's request to an outside host is refused. A mock receives
   * tenant headers only when its own host is internal.
   */
  mocks?: Readonly<Record<string, string>>;
}

export interface EgressRoute {
  /** Where the request goes: the original origin, or a mock's for isolated tenants. */
  readonly origin: string;
  /** Whether the destination is inside the system and gets tenant headers. */
  readonly internal: boolean;
}

export interface EgressPolicy {
  /**
   * Routes a request of `tenant` to `origin`. Throws IsolationError for an
   * isolated tenant going to an outside host without a mock: nothing is sent.
   */
  route(origin: string | URL, tenant: Tenant): EgressRoute;
  /** Whether a hostname is inside the system. */
  isInternal(hostname: string): boolean;
}

export const DEFAULT_INTERNAL_HOSTS: readonly string[] = Object.freeze(['localhost', 'loopback', 'single-label']);

const CIDR_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * A hostname as a resolver reads it, by the WHATWG URL host parser: IDNA
 * mapping (full-width characters, ideographic dots), and numeric IPv4 forms
 * (`2130706434`, `0x7f000001`, `0177.1`, `127.1`) as the address
 * getaddrinfo reads them as; no trailing dot. Undefined when it is no valid
 * host at all.
 */
function canonicalHost(host: string): string | undefined {
  if (host.includes('\0') || host.includes('%')) return undefined;
  try {
    return new URL(`http://${host}/`).hostname.replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

/** Compiles the egress allowlist and mocks once; `route` runs per request. */
export function createEgressPolicy(options: EgressOptions = {}): EgressPolicy {
  const entries = options.internal ?? DEFAULT_INTERNAL_HOSTS;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  const cidrs: string[] = [];
  let singleLabel = false;
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (entry === 'single-label') singleLabel = true;
    else if (CIDR_NAMES.has(entry) || isIP(entry.split('/')[0] ?? '') !== 0) cidrs.push(entry);
    else if (entry.startsWith('*.')) suffixes.push(entry.slice(1));
    else if (entry.startsWith('.')) suffixes.push(entry);
    else if (/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(entry)) exact.add(entry);
    else throw new TypeError(`egress: ${JSON.stringify(raw)} is not a hostname, suffix, IP address or CIDR`);
  }
  const inRanges = compileAddressMatcher(cidrs, 'egress.internal');
  const mocks = new Map<string, { origin: string; internal: boolean }>();
  for (const [host, target] of Object.entries(options.mocks ?? {})) {
    let parsed: URL;
    try {
      parsed = new URL(target);
    } catch {
      throw new TypeError(`egress: mock for ${host} is not a URL: ${JSON.stringify(target)}`);
    }
    mocks.set(host.toLowerCase(), { origin: parsed.origin, internal: false });
  }

  // Hosts repeat: a service talks to a handful. Parsing an address against the
  // CIDRs costs more than the rest of a request's checks, so answers are kept
  // (bounded, so a stream of distinct hosts cannot grow memory).
  const answers = new Map<string, boolean>();
  function isInternal(hostname: string): boolean {
    let answer = answers.get(hostname);
    if (answer === undefined) {
      answer = decideInternal(hostname);
      if (answers.size >= 1024) answers.clear();
      answers.set(hostname, answer);
    }
    return answer;
  }

  function decideInternal(hostname: string): boolean {
    // `foo.` names a top-level domain, not a service found through the search list.
    const fullyQualified = hostname.endsWith('.') || hostname.endsWith('\u3002') || hostname.endsWith('\uff0e');
    let host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
    if (isIP(host) === 0) {
      // Judged as the resolver will read it: full-width digits and ideographic
      // dots folded, numeric IPv4 forms as addresses. A name the URL host
      // parser rejects (a NUL, which getaddrinfo cuts the name at) is outside.
      const canonical = canonicalHost(host);
      if (canonical === undefined) return false;
      host = canonical;
    }
    if (isIP(host) !== 0) return inRanges(host);
    if (exact.has(host)) return true;
    if (singleLabel && !fullyQualified && !host.includes('.')) return true;
    return suffixes.some((suffix) => host.endsWith(suffix));
  }

  for (const mock of mocks.values()) mock.internal = isInternal(new URL(mock.origin).hostname);

  return {
    isInternal,
    route(origin, tenant) {
      const url = typeof origin === 'string' ? new URL(origin) : origin;
      if (isInternal(url.hostname)) return { origin: url.origin, internal: true };
      if (tenant.kind !== 'isolated') return { origin: url.origin, internal: false };
      const mock = mocks.get(url.hostname.toLowerCase());
      // A mock is told the tenant only when it is itself inside the system.
      if (mock !== undefined) return { origin: mock.origin, internal: mock.internal };
      throw isolationRefusal('http', {
        tenant: tenant.name,
        refused: `a request to ${url.origin}`,
        reason: 'the host is outside the system and has no mock configured (egress.mocks); a load test must not reach third parties',
      });
    },
  };
}
