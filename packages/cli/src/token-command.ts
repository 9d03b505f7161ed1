import { signTenantToken, verifyTenantToken } from '@dye/core';
import type { Command } from 'commander';
import { EXIT, UsageError } from './usage-error.js';

/** The signing secrets, from DYE_SECRET only (comma-separated for rotation: the first signs, all verify). */
export function secretsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const secrets = (env.DYE_SECRET ?? '')
    .split(',')
    .map((secret) => secret.trim())
    .filter(Boolean);
  if (secrets.length === 0) {
    throw new UsageError('DYE_SECRET is not set: export the secret the edge verifies (secrets are never taken from the command line)');
  }
  return secrets;
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('sign and verify tenant tokens (secret from DYE_SECRET)');

  token
    .command('sign')
    .description('print a signed token that colors requests at the edge')
    .requiredOption('--tenant <name>', 'the tenant the token colors requests with (shadow, red, …)')
    .option('--ttl <duration>', 'lifetime: 90s, 15m, 2h, 1d', '1h')
    .option('--subject <name>', 'who the token is for, shown in edge logs')
    .option('--max-ttl <duration>', 'refuse a longer --ttl', '24h')
    .action((options: { tenant: string; ttl: string; subject?: string; maxTtl: string }) => {
      const [secret] = secretsFromEnv();
      let signed: string;
      try {
        signed = signTenantToken(
          { tenant: options.tenant, ttl: options.ttl, maxTtl: options.maxTtl, ...(options.subject ? { subject: options.subject } : {}) },
          secret as string,
        );
      } catch (error) {
        throw new UsageError((error as Error).message.replace(/^signTenantToken: /, ''));
      }
      process.stdout.write(`${signed}\n`);
    });

  token
    .command('verify')
    .description('check a token against DYE_SECRET and show what it grants (exit 1 when invalid)')
    .argument('<token>', 'the token, as sent in x-tenant-token')
    .option('--max-ttl <duration>', 'tokens living longer are invalid', '24h')
    .option('--json', 'print the verdict as JSON')
    .action((value: string, options: { maxTtl: string; json?: boolean }) => {
      const verdict = verifyTenantToken(value, secretsFromEnv(), { maxTtl: options.maxTtl });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(verdict, null, 2)}\n`);
      } else if (verdict.ok) {
        const left = Math.round((verdict.expiresAt.getTime() - Date.now()) / 1000);
        process.stdout.write(
          [
            'valid',
            `  tenant   ${verdict.tenant}`,
            ...(verdict.subject ? [`  subject  ${verdict.subject}`] : []),
            `  issued   ${verdict.issuedAt.toISOString()}`,
            `  expires  ${verdict.expiresAt.toISOString()} (in ${formatSeconds(left)})`,
            '',
          ].join('\n'),
        );
      } else {
        process.stdout.write(`invalid: ${verdict.reason}: ${verdict.message}\n`);
      }
      process.exitCode = verdict.ok ? EXIT.ok : EXIT.failed;
    });
}

export function formatSeconds(total: number): string {
  const seconds = Math.max(0, Math.round(total));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60 ? ` ${seconds % 60}s` : ''}`;
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return `${hours}h${minutes ? ` ${minutes}m` : ''}`;
}
