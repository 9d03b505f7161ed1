import proxyaddr from 'proxy-addr';

/**
 * Which peers may choose a tenant with a plain header: addresses inside the
 * configured CIDRs. `X-Forwarded-For` is read hop by hop, right to left, only
 * while each hop is itself trusted (proxy-addr, the algorithm Express uses), so
 * a forged entry from an untrusted peer is never reached.
 */
export interface TrustedProxies {
  /** True when the socket peer and every forwarded hop are trusted. */
  isTrusted(remoteAddress: string | undefined, forwardedFor: string | undefined): boolean;
}

/**
 * Compiles CIDRs (`10.0.0.0/8`, `fd00::/8`, single addresses, or proxy-addr's
 * names `loopback`, `linklocal`, `uniquelocal`). An empty list trusts nobody:
 * the default, because private (RFC 1918) addresses are not proof of being
 * inside the system. Throws a TypeError on an invalid entry.
 */
export function compileTrustedProxies(cidrs: readonly string[] = []): TrustedProxies {
  const trust = compileAddressMatcher(cidrs, 'trustedProxies');
  if (cidrs.length === 0) return { isTrusted: () => false };
  return {
    isTrusted(remoteAddress, forwardedFor) {
      if (remoteAddress === undefined || !trust(remoteAddress, 0)) return false;
      if (forwardedFor === undefined || forwardedFor.length === 0) return true;
      // alladdrs stops at the first untrusted hop; the request is trusted only
      // when the hop it stopped at (the client as far as we can tell) is trusted too.
      const chain = proxyaddr.all({ socket: { remoteAddress }, headers: { 'x-forwarded-for': forwardedFor } } as never, trust);
      const client = chain[chain.length - 1];
      return client !== undefined && trust(client, chain.length - 1);
    },
  };
}

/**
 * A matcher for IP addresses inside CIDRs (IPv4, IPv6, IPv4-mapped IPv6), with
 * proxy-addr's names `loopback`, `linklocal` and `uniquelocal`. Non-addresses
 * never match. Throws a TypeError naming `what` on an invalid entry.
 */
export function compileAddressMatcher(cidrs: readonly string[], what = 'address list'): (address: string, hop?: number) => boolean {
  if (cidrs.length === 0) return () => false;
  try {
    const trust = proxyaddr.compile([...cidrs]);
    return (address, hop = 0) => trust(address, hop);
  } catch (error) {
    throw new TypeError(`${what}: ${(error as Error).message}`);
  }
}
