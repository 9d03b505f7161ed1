import { describe, expect, it } from 'vitest';
import { compileAddressMatcher, compileTrustedProxies } from '../src/index.js';

describe('trusted proxies', () => {
  const trusted = compileTrustedProxies(['10.0.0.0/8', 'fd00::/8', '127.0.0.1']);

  it('trusts nobody by default, not even private or loopback addresses', () => {
    const none = compileTrustedProxies();
    for (const address of ['10.1.2.3', '192.168.1.1', '172.16.0.1', '127.0.0.1', '::1', 'fd00::1']) {
      expect(none.isTrusted(address, undefined)).toBe(false);
    }
  });

  it('trusts peers inside the CIDRs, IPv4, IPv6 and IPv4-mapped IPv6', () => {
    expect(trusted.isTrusted('10.20.30.40', undefined)).toBe(true);
    expect(trusted.isTrusted('fd12::7', undefined)).toBe(true);
    expect(trusted.isTrusted('::ffff:10.0.0.9', undefined)).toBe(true);
    expect(trusted.isTrusted('11.0.0.1', undefined)).toBe(false);
    expect(trusted.isTrusted('fe80::1', undefined)).toBe(false);
    expect(trusted.isTrusted(undefined, undefined)).toBe(false);
    expect(trusted.isTrusted('not-an-ip', undefined)).toBe(false);
  });

  it('reads X-Forwarded-For hop by hop, only through trusted proxies', () => {
    // An internal client behind a trusted load balancer.
    expect(trusted.isTrusted('10.0.0.1', '10.0.0.77')).toBe(true);
    // A public client behind the same load balancer.
    expect(trusted.isTrusted('10.0.0.1', '203.0.113.9')).toBe(false);
    // A public client that forged an internal address to the left of its own.
    expect(trusted.isTrusted('10.0.0.1', '10.9.9.9, 203.0.113.9')).toBe(false);
    // An untrusted peer's X-Forwarded-For is never read.
    expect(trusted.isTrusted('203.0.113.9', '10.0.0.1')).toBe(false);
    // Garbage in the header is not an address.
    expect(trusted.isTrusted('10.0.0.1', 'unknown')).toBe(false);
  });

  it('refuses invalid CIDRs with a clear error', () => {
    expect(() => compileTrustedProxies(['10.0.0.0/99'])).toThrow(/trustedProxies/);
    expect(() => compileAddressMatcher(['nope'], 'egress')).toThrow(/egress/);
  });
});
