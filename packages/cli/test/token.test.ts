import { randomBytes } from 'node:crypto';
import { verifyTenantToken } from '@dye/core';
import { describe, expect, it } from 'vitest';
import { dye } from './run-cli.js';

describe('dye token', () => {
  const secret = randomBytes(32).toString('base64url');

  it('signs a token the edge accepts, and verify shows what it grants', async () => {
    const signed = await dye(['token', 'sign', '--tenant', 'shadow', '--ttl', '2h', '--subject', 'alice'], { DYE_SECRET: secret });
    expect(signed).toMatchObject({ code: 0, stderr: '' });
    const token = signed.stdout.trim();
    // The edge's own verification, not the CLI's.
    expect(verifyTenantToken(token, secret)).toMatchObject({ ok: true, tenant: 'shadow', subject: 'alice' });

    const verified = await dye(['token', 'verify', token], { DYE_SECRET: secret });
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^valid\n {2}tenant {3}shadow\n {2}subject {2}alice\n/);
    expect(verified.stdout).toMatch(/expires .*\(in (1h 59m|2h)\)/);
    const json = await dye(['token', 'verify', token, '--json'], { DYE_SECRET: secret });
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, tenant: 'shadow', subject: 'alice' });
  });

  it('verify fails with the reason for a tampered token, another secret, or garbage', async () => {
    const token = (await dye(['token', 'sign', '--tenant', 'red'], { DYE_SECRET: secret })).stdout.trim();
    const [version, payload, signature] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), t: 'shadow' })).toString(
      'base64url',
    );
    for (const [candidate, env, reason] of [
      [`${version}.${forged}.${signature}`, secret, 'bad-signature'],
      [token, randomBytes(32).toString('hex'), 'bad-signature'],
      ['not-a-token', secret, 'malformed'],
    ] as const) {
      const run = await dye(['token', 'verify', candidate], { DYE_SECRET: env });
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.stdout).toMatch(new RegExp(`^invalid: ${reason}: `));
    }
    // Rotation: an old secret listed after the new one still verifies.
    const rotated = await dye(['token', 'verify', token], { DYE_SECRET: `${randomBytes(32).toString('hex')},${secret}` });
    expect(rotated.code).toBe(0);
  });

  it('takes the secret from DYE_SECRET only, and says so in one line with exit 2', async () => {
    const missing = await dye(['token', 'sign', '--tenant', 'red'], { DYE_SECRET: '' });
    expect(missing).toMatchObject({ code: 2, stdout: '' });
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^dye: DYE_SECRET is not set/);
    const onArgv = await dye(['token', 'sign', '--tenant', 'red', '--secret', secret], { DYE_SECRET: secret });
    expect(onArgv.code).toBe(2);
    expect(onArgv.stderr).toMatch(/unknown option '--secret'/);
  });

  it('refuses bad input with exit 2 and one clear line', async () => {
    for (const [args, message] of [
      [['token', 'sign', '--tenant', 'shadow', '--ttl', '3d'], /exceeds the maximum/],
      [['token', 'sign', '--tenant', 'Not Valid'], /tenant/],
      [['token', 'sign', '--tenant', 'baseline'], /baseline/],
      [['token', 'sign', '--tenant', 'red', '--ttl', 'soon'], /duration/],
      [['token', 'sign'], /required option '--tenant <name>'/],
      [['token', 'verify'], /missing required argument 'token'/],
      [['tokn'], /unknown command 'tokn'/],
    ] as const) {
      const run = await dye(args, { DYE_SECRET: secret });
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
      expect(
        run.stderr
          .trim()
          .split('\n')
          .filter((line) => !line.startsWith('(Did you mean')),
      ).toHaveLength(1);
    }
  });

  it('prints help for every command', async () => {
    for (const args of [
      ['--help'],
      ['token', '--help'],
      ['token', 'sign', '--help'],
      ['token', 'verify', '--help'],
      ['shadow', 'sync', '--help'],
      ['shadow', 'check', '--help'],
      ['load', '--help'],
      ['inspect', '--help'],
    ]) {
      const run = await dye(args);
      expect(run.code, args.join(' ')).toBe(0);
      expect(run.stdout, args.join(' ')).toMatch(/^Usage: dye/);
    }
  });
});
