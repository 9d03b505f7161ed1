import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isPortOpen } from '../scripts/infra.mjs';

const run = promisify(execFile);
const infra = fileURLToPath(new URL('../scripts/infra.mjs', import.meta.url));

describe('scripts/infra.mjs', () => {
  it('up is a no-op while every service answers, and status says so', async () => {
    // The global setup already ran `up`; a second one must start nothing.
    const { stdout, stderr } = await run(process.execPath, [infra, 'up']);
    expect(stderr).not.toMatch(/starting|assembling|formatting|enabling/);
    const lines = stdout.trim().split('\n');
    expect(lines.map((line) => line.split(/\s+/).slice(0, 3))).toEqual([
      ['redis', '127.0.0.1:6379', 'up'],
      ['mysql', '127.0.0.1:3306', 'up'],
      ['kafka', '127.0.0.1:9092', 'up'],
      ['rabbitmq', '127.0.0.1:5672', 'up'],
      ['etcd', '127.0.0.1:2379', 'up'],
    ]);
  });

  it('tells an open port from a closed one', async () => {
    expect(await isPortOpen(6379)).toBe(true);
    // Port 1 is privileged and unused on test machines.
    expect(await isPortOpen(1)).toBe(false);
  });

  it('rejects an unknown command with usage and exit code 2', async () => {
    await expect(run(process.execPath, [infra, 'sideways'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('usage') });
  });
});
