/**
 * Servers a suite runs in child processes: the client's CPU time and the
 * server's are then both counted (a hop costs both), and the server's
 * scheduling does not share the client's event loop.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CpuMeter } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));

type Message = { ready: Record<string, unknown> } | { cpuMicros: number };

export interface ChildServer extends CpuMeter {
  /** What the child announced when it was ready (its port, say). */
  readonly ready: Record<string, unknown>;
  close(): Promise<void>;
}

/** Starts `children/<name>.ts` on this Node and waits until it says it is ready. */
export async function forkServer(name: string): Promise<ChildServer> {
  const child: ChildProcess = fork(join(here, 'children', `${name}.ts`), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [first] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => Promise.reject(new Error(`bench child ${name} exited (${code}) before it was ready`))),
  ])) as [Message];
  if (!('ready' in first)) throw new Error(`bench child ${name} spoke before it was ready`);
  return {
    ready: first.ready,
    async cpuMicros() {
      const answer = once(child, 'message') as Promise<[Message]>;
      child.send('cpu');
      const [message] = await answer;
      if (!('cpuMicros' in message)) throw new Error(`bench child ${name} answered a CPU query with ${JSON.stringify(message)}`);
      return message.cpuMicros;
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill();
      await exited;
    },
  };
}

/** The child's side: announces `ready` and answers CPU queries. */
export function serveChild(ready: Record<string, unknown>): void {
  const send = (message: Message) => process.send?.(message);
  process.on('message', (message) => {
    if (message !== 'cpu') return;
    const usage = process.cpuUsage();
    send({ cpuMicros: usage.user + usage.system });
  });
  process.on('disconnect', () => process.exit(0));
  send({ ready });
}
