import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import type { InstancesListener, Registry } from '@dye/discovery';

/**
 * A service instance in a process of its own (a fixture script that tells its
 * parent `{ port }` once registered and `{ stopped }` once drained), for tests
 * of crashes (SIGKILL), hangs (SIGSTOP) and drains (SIGTERM).
 */
export async function startInstance(script: string, env: Record<string, string>, started?: Set<ChildProcess>): Promise<ChildProcess> {
  const child = fork(script, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  started?.add(child);
  child.once('exit', () => started?.delete(child));
  const [message] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`instance ${env.INSTANCE ?? script} exited (${code}) before it was ready`);
    }),
  ])) as [{ port?: number }];
  if (!message.port) throw new Error(`instance ${env.INSTANCE ?? script} said ${JSON.stringify(message)}`);
  return child;
}

/** SIGTERM, as Kubernetes sends it; resolves with how the drain ended once the process is gone. */
export async function terminate(child: ChildProcess): Promise<string> {
  const stopped = new Promise<string>((resolve) =>
    child.on('message', (message: { stopped?: string }) => {
      if (message.stopped) resolve(message.stopped);
    }),
  );
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const how = await stopped;
  await exited;
  return how;
}

/** The registry as a remote caller sees it: every change 50–150 ms late. */
export function lateRegistry(registry: Registry): Registry {
  return {
    register: (instance) => registry.register(instance),
    snapshot: (app) => registry.snapshot(app),
    close: () => registry.close(),
    watch: (app, listener: InstancesListener) =>
      registry.watch(app, (update) => setTimeout(() => listener(update), 50 + Math.random() * 100)),
  };
}
