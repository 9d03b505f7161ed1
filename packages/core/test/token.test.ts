import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseDuration, signTenantToken, verifyTenantToken } from '../src/index.js';

const secret = 'k'.repeat(32);
const oldSecret = 'o'.repeat(40);
const now = new Date('2026-11-22T10:00:00Z');
const at = (seconds: number) => new Date(now.getTime() + seconds * 1000);

describe('signTenantToken / verifyTenantToken', () => {
  it('round-trips tenant, subject, issue and expiry times', () => {
    const token = signTenantToken({ tenant: 'Shadow', ttl: '2h', subject: 'alice', now }, secret);
    expect(token).toMatch(/^dye1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(verifyTenantToken(token, [secret], { now: at(60) })).toEqual({
      ok: true,
      tenant: 'shadow',
      subject: 'alice',
      issuedAt: now,
      expiresAt: at(7200),
    });
  });

  it('verifies with any configured secret, so keys rotate without a gap', () => {
    const signedWithOld = signTenantToken({ tenant: 'red', ttl: 60, now }, oldSecret);
    expect(verifyTenantToken(signedWithOld, [secret, oldSecret], { now }).ok).toBe(true);
    expect(verifyTenantToken(signedWithOld, [secret], { now })).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses expired tokens, allowing 30 s of clock difference', () => {
    const token = signTenantToken({ tenant: 'red', ttl: 60, now }, secret);
    expect(verifyTenantToken(token, secret, { now: at(60 + 29) }).ok).toBe(true);
    expect(verifyTenantToken(token, secret, { now: at(60 + 30) })).toMatchObject({ ok: false, reason: 'expired' });
    expect(verifyTenantToken(token, secret, { now: at(60 + 5), clockTolerance: 0 })).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses tokens issued in the future', () => {
    const token = signTenantToken({ tenant: 'red', ttl: 60, now: at(120) }, secret);
    expect(verifyTenantToken(token, secret, { now })).toMatchObject({ ok: false, reason: 'not-yet-valid' });
  });

  it('enforces the maximum lifetime when signing and when verifying', () => {
    expect(() => signTenantToken({ tenant: 'red', ttl: '25h' }, secret)).toThrow(RangeError);
    const week = signTenantToken({ tenant: 'red', ttl: '7d', maxTtl: '7d', now }, secret);
    expect(verifyTenantToken(week, secret, { now })).toMatchObject({ ok: false, reason: 'ttl-too-long' });
    expect(verifyTenantToken(week, secret, { now, maxTtl: '7d' }).ok).toBe(true);
  });

  it('detects any change to payload or signature', () => {
    const token = signTenantToken({ tenant: 'red', ttl: 60, now }, secret);
    const [version, payload, signature] = token.split('.') as [string, string, string];
    const forgedPayload = Buffer.from(JSON.stringify({ t: 'shadow', iat: 0, exp: 9e9 })).toString('base64url');
    expect(verifyTenantToken(`${version}.${forgedPayload}.${signature}`, secret, { now })).toMatchObject({ reason: 'bad-signature' });
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'AB' : 'AA'}`;
    expect(verifyTenantToken(`${version}.${payload}.${flipped}`, secret, { now })).toMatchObject({ reason: 'bad-signature' });
    expect(verifyTenantToken(`${version}.${payload}.${signature.slice(0, 10)}`, secret, { now })).toMatchObject({
      reason: 'bad-signature',
    });
  });

  it('tells malformed tokens and unknown versions apart, never throwing', () => {
    const token = signTenantToken({ tenant: 'red', ttl: 60, now }, secret);
    expect(verifyTenantToken(token.replace('dye1', 'dye2'), secret, { now })).toMatchObject({ reason: 'unsupported-version' });
    for (const bad of ['', 'x', 'a.b', 'a.b.c.d', 'jwt.eyJ.sig', 'dye1.!!.??', `dye1.${'a'.repeat(2000)}.b`, 42 as unknown as string]) {
      expect(verifyTenantToken(bad, secret, { now })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/malformed|unsupported-version/),
      });
    }
  });

  it('refuses a validly signed payload that names no valid tenant', () => {
    const sign = (payload: object) => {
      const body = `dye1.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
      return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
    };
    const iat = Math.floor(now.getTime() / 1000);
    expect(verifyTenantToken(sign({ t: 'baseline', iat, exp: iat + 60 }), secret, { now })).toMatchObject({ reason: 'malformed' });
    expect(verifyTenantToken(sign({ t: 'RED', iat, exp: iat + 60 }), secret, { now })).toMatchObject({ reason: 'malformed' });
    expect(verifyTenantToken(sign({ t: 'red', iat, exp: iat }), secret, { now })).toMatchObject({ reason: 'malformed' });
    expect(verifyTenantToken(sign({ t: 'red', iat: 'now', exp: iat + 60 }), secret, { now })).toMatchObject({ reason: 'malformed' });
    expect(verifyTenantToken(sign([1, 2]), secret, { now })).toMatchObject({ reason: 'malformed' });
  });

  it('refuses weak secrets and bad arguments when signing', () => {
    expect(() => signTenantToken({ tenant: 'red', ttl: 60 }, 'short')).toThrow(/at least 32/);
    expect(() => verifyTenantToken('x', [])).toThrow(/at least one/);
    // An unset environment variable passed straight through.
    expect(() => signTenantToken({ tenant: 'red', ttl: 60 }, undefined as unknown as string)).toThrow(
      new TypeError('token secret #1 must be a string or bytes, got undefined'),
    );
    expect(() => signTenantToken({ tenant: 'baseline', ttl: 60 }, secret)).toThrow(/baseline/);
    expect(() => signTenantToken({ tenant: 'no way', ttl: 60 }, secret)).toThrow(TypeError);
    expect(() => signTenantToken({ tenant: 'red', ttl: 60, subject: 'has space' }, secret)).toThrow(/subject/);
    expect(() => signTenantToken({ tenant: 'red', ttl: 0 }, secret)).toThrow(/positive/);
  });
});

describe('parseDuration', () => {
  it.each([
    [90, 90],
    ['90', 90],
    ['90s', 90],
    ['15m', 900],
    ['2h', 7200],
    ['1d', 86400],
    [' 3 h ', 10800],
  ])('%j is %i seconds', (input, seconds) => {
    expect(parseDuration(input)).toBe(seconds);
  });

  it.each(['', '2w', '-1h', '1.5h', 'h', '0s', 0, -5, 1.5])('refuses %j', (input) => {
    expect(() => parseDuration(input)).toThrow(TypeError);
  });
});
