import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `dye <args>` as a real process, from dist/ as users run it (test/global-setup.ts builds it). */
export function dye(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  options: { signal?: { name: NodeJS.Signals; afterMs: number } } = {},
): Promise<CliRun> {
  const child = spawn(process.execPath, [`${ROOT}packages/cli/dist/cli.js`, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // As a terminal's Ctrl-C or a job runner's stop would, mid-run.
  if (options.signal) {
    const { name, afterMs } = options.signal;
    setTimeout(() => child.kill(name), afterMs).unref();
  }
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}
