import { isolationRefusal, type Tenant } from '@dye/core';
import { type Cluster, Pipeline, type Redis } from 'ioredis';
import { type CommandPlan, type PlanOptions, planCommandInPlace, RENAMED_IN_PLACE } from './command-plan.js';

type Client = Redis | Cluster;
type AnyFunction = (...args: unknown[]) => unknown;

/** The parts of an ioredis `Command` a plan rewrites (it is built, not yet sent). */
interface PendingCommand {
  name: string;
  args: unknown[];
  keys?: unknown;
  slot?: unknown;
  bufferMode?: boolean;
  promise: Promise<unknown>;
  reject: (error: unknown) => void;
  /** Set by a pipeline when it queues the command. */
  pipelineIndex?: number;
  transformReply: (reply: unknown) => unknown;
}

interface PipelineLike {
  _queue: PendingCommand[];
  _transactions?: number;
  replyPending?: number;
  sendCommand: (command: PendingCommand) => unknown;
  exec: (...args: unknown[]) => unknown;
}

/** Whether the first isolated use may go ahead: the isolated user checked (or no check, for client-only). */
export type { PendingCommand };

export interface UseGate {
  readonly passed: boolean;
  ensure(): Promise<void>;
}

export interface FacadeSettings {
  readonly tenant: Tenant;
  readonly prefix: string;
  readonly options: PlanOptions;
  /** The connection is the one baseline uses (`enforcement: 'client-only'`). */
  readonly sharedConnection: boolean;
  readonly gate: UseGate;
}

interface Sites {
  readonly site: { readonly inPipeline: false; readonly sharedConnection: boolean };
  readonly pipelineSite: { readonly inPipeline: true; readonly sharedConnection: boolean };
}

/**
 * A view of an ioredis client through which every command an isolated tenant
 * sends is planned: ioredis builds every command (methods, `call`, scripts of
 * `defineCommand`, commands of `addBuiltinCommand`, scan streams, pipelines,
 * `multi`, `addBatch`) and then hands it to `this.sendCommand`. Running the
 * client's own methods with `this` = the facade puts Dye at that one choke
 * point; reads and writes of the client's state pass through to the client.
 *
 * A command is planned once: a command sent alone when it reaches the facade,
 * a pipeline's when it is queued (its `pipelineIndex` says it was: a cluster
 * retry queues it again, renamed already). Nothing is added to ioredis's
 * command objects, so they keep the one shape ioredis's own code sees.
 */
export function plannedFacade(
  target: Client,
  facadeSettings: FacadeSettings,
): { facade: Client; send: (command: PendingCommand) => unknown } {
  const settings: FacadeSettings & Sites = {
    ...facadeSettings,
    site: { inPipeline: false, sharedConnection: facadeSettings.sharedConnection },
    pipelineSite: { inPipeline: true, sharedConnection: facadeSettings.sharedConnection },
  };
  const forward = (command: PendingCommand, stream?: unknown, node?: unknown) =>
    (target.sendCommand as AnyFunction).call(target, command, stream, node);

  const send = (command: PendingCommand, stream?: unknown, node?: unknown): unknown => {
    // A pipeline's commands arrive here when it is written, planned when queued.
    if (!isPipelineWrite(stream)) {
      const refusal = planInPlace(command, settings, false);
      if (refusal) {
        command.reject(refusal);
        return command.promise;
      }
    }
    if (settings.gate.passed) return forward(command, stream, node);
    // Waits for the isolated user's check. The caller holds command.promise;
    // whatever else sending returns (a traced wrapper) must not go unhandled.
    settings.gate
      .ensure()
      .then(() => {
        const sent = forward(command, stream, node);
        if (sent !== command.promise) Promise.resolve(sent).catch(() => {});
      })
      .catch((error: unknown) => command.reject(error));
    return command.promise;
  };

  // multi() pipelines are built by ioredis itself: wrapped after the fact.
  const plannedPipeline = (pipeline: PipelineLike, openTransactions: number): PipelineLike => {
    const tracker = new TransactionTracker(openTransactions);
    const queue = pipeline.sendCommand.bind(pipeline);
    pipeline.sendCommand = (command: PendingCommand) => {
      if (command.pipelineIndex === undefined) queueCheck(command, settings, tracker);
      return queue(command);
    };
    const exec = pipeline.exec;
    pipeline.exec = function checkedExec(this: PipelineLike, ...args: unknown[]) {
      const refusal = tracker.refusal(this, settings.tenant);
      return refusal ? refuseWrite(this, refusal, args) : exec.apply(this, args);
    };
    return pipeline;
  };

  // Autopipelines are per facade: a facade's commands are never queued into a
  // pipeline of another tenant (or of baseline, on a shared connection).
  const autoPipelines = new Map<string, unknown>();
  const runningAutoPipelines = new Set<string>();

  // A standalone client's pipelines are PlannedPipelines: their client is the
  // client itself but for sendCommand (no proxy in the way of every command),
  // and the isolated user's check is waited for once per write. A cluster's
  // pipeline also changes its client's state (redirections): it keeps the facade.
  const isCluster = Boolean((target as { isCluster?: boolean }).isCluster);
  const pipelineClient = isCluster
    ? undefined
    : Object.create(target, {
        sendCommand: {
          value: (command: PendingCommand, stream?: unknown, node?: unknown) =>
            isPipelineWrite(stream) ? forward(command, stream, node) : send(command, stream, node),
        },
      });
  const pipelineMethod = (commands?: unknown[][]) => {
    const pipeline = pipelineClient
      ? (new PlannedPipeline(pipelineClient, settings) as unknown as PipelineLike)
      : plannedPipeline((target.pipeline as AnyFunction).call(facade) as PipelineLike, 0);
    if (Array.isArray(commands)) (pipeline as unknown as { addBatch: AnyFunction }).addBatch(commands);
    return pipeline;
  };
  const multiMethod = (commands?: unknown, options?: unknown) => {
    const [batch, settingsArg] = Array.isArray(commands) ? [commands, options] : [undefined, commands];
    if ((settingsArg as { pipeline?: boolean } | undefined)?.pipeline === false) {
      // MULTI sent on its own: refused by the plan (shared connection state).
      return (target.multi as AnyFunction).call(facade, { pipeline: false });
    }
    const pipeline = (target.multi as AnyFunction).call(facade, settingsArg ?? {}) as PipelineLike;
    // multi() queued its MULTI before the pipeline could be wrapped.
    for (const command of pipeline._queue) planInPlace(command, settings, true);
    plannedPipeline(pipeline, pipeline._queue.length);
    if (batch) (pipeline as unknown as { addBatch: AnyFunction }).addBatch(batch);
    return pipeline;
  };
  const facade: Client = new Proxy(target, {
    get(client, property, receiver) {
      switch (property) {
        case 'sendCommand':
          return send;
        case '_autoPipelines':
          return autoPipelines;
        case '_runningAutoPipelines':
          return runningAutoPipelines;
        case 'pipeline':
          return pipelineMethod;
        case 'multi':
          return multiMethod;
        default:
          return Reflect.get(client, property, receiver);
      }
    },
  });
  return { facade, send };
}

const TRANSACTION_WORD = /^(multi|exec|discard)$/i;

/**
 * MULTI/EXEC/DISCARD are allowed in a pipeline because it is written in one
 * piece; but it must not leave the shared connection inside a transaction.
 * Tracked as commands are queued, checked before the pipeline is written.
 */
class TransactionTracker {
  #misplaced: string | undefined;
  constructor(private open: number) {}

  queued(name: string): void {
    if (!TRANSACTION_WORD.test(name)) return;
    const word = name.toLowerCase();
    if (word === 'multi') {
      if (this.open > 0) this.#misplaced ??= 'MULTI inside MULTI';
      this.open++;
    } else if (this.open === 0) this.#misplaced ??= `${word.toUpperCase()} without MULTI`;
    else this.open--;
  }

  refusal(pipeline: PipelineLike, tenant: Tenant): Error | undefined {
    // multi() adds its own EXEC as it writes: one per transaction it opened.
    const reason =
      this.#misplaced ??
      (this.open - (pipeline._transactions ?? 0) > 0
        ? 'a MULTI with no EXEC or DISCARD would leave the shared connection inside a transaction'
        : undefined);
    return reason ? isolationRefusal('redis', { tenant: tenant.name, refused: 'Redis pipeline', reason }) : undefined;
  }
}

/** Plans a command as it is queued in a pipeline; a refusal throws there, so nothing of the pipeline is sent. */
function queueCheck(command: PendingCommand, settings: FacadeSettings & Sites, tracker: TransactionTracker): void {
  const refusal = planInPlace(command, settings, true);
  if (refusal) throw refusal;
  tracker.queued(command.name);
}

/** Settles every queued command with the refusal and sends none. */
function refuseWrite(pipeline: PipelineLike, refusal: unknown, args: unknown[]): Promise<never> {
  pipeline.replyPending = pipeline._queue.length;
  for (const command of pipeline._queue) command.reject(refusal);
  const callback = args[0];
  const rejection = Promise.reject(refusal);
  if (typeof callback === 'function') {
    rejection.catch(() => {});
    process.nextTick(callback as AnyFunction, refusal);
  }
  return rejection;
}

interface PipelineMethods {
  _queue: PendingCommand[];
  _transactions?: number;
  replyPending?: number;
  sendCommand(command: PendingCommand): unknown;
  exec(...args: unknown[]): unknown;
}
const PipelineBase = Pipeline as unknown as (new (redis: unknown) => PipelineMethods) & { prototype: PipelineMethods };

/**
 * A standalone client's pipeline for an isolated tenant: each command planned
 * as it is queued, the write checked (transactions closed, the isolated user
 * confirmed) once, before anything is sent. A subclass rather than
 * per-instance overrides: these pipelines share one shape.
 */
class PlannedPipeline extends PipelineBase {
  readonly #settings: FacadeSettings & Sites;
  readonly #tracker = new TransactionTracker(0);

  constructor(client: unknown, settings: FacadeSettings & Sites) {
    super(client);
    this.#settings = settings;
  }

  override sendCommand(command: PendingCommand): unknown {
    if (command.pipelineIndex === undefined) queueCheck(command, this.#settings, this.#tracker);
    return PipelineBase.prototype.sendCommand.call(this, command);
  }

  override exec(...args: unknown[]): unknown {
    const refusal = this.#tracker.refusal(this as PipelineLike, this.#settings.tenant);
    if (refusal) return refuseWrite(this as PipelineLike, refusal, args);
    const write = () => PipelineBase.prototype.exec.apply(this, args);
    const gate = this.#settings.gate;
    if (gate.passed) return write();
    return gate.ensure().then(write, (error: unknown) => refuseWrite(this as PipelineLike, error, args));
  }
}

function isPipelineWrite(stream: unknown): boolean {
  return typeof stream === 'object' && stream !== null && (stream as { isPipeline?: boolean }).isPipeline === true;
}

/** Rewrites a built command for its tenant, or returns the refusal (nothing changed). */
function planInPlace(command: PendingCommand, settings: FacadeSettings & Sites, inPipeline: boolean): Error | undefined {
  const plan = planCommandInPlace(
    command.name,
    command.args,
    settings.prefix,
    settings.options,
    inPipeline ? settings.pipelineSite : settings.site,
  );
  if (plan.kind === 'refuse') {
    return isolationRefusal('redis', { tenant: settings.tenant.name, refused: `Redis ${command.name.toUpperCase()}`, reason: plan.reason });
  }
  apply(command, plan);
  return undefined;
}

function apply(command: PendingCommand, plan: Extract<CommandPlan, { kind: 'send' }>): void {
  if (plan === RENAMED_IN_PLACE) return;
  if (plan.name !== command.name) command.name = plan.name;
  // ioredis has already turned the arguments into strings and Buffers; what the plan adds must be too.
  const args = plan.args;
  if (args !== command.args) {
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      if (typeof arg !== 'string' && !Buffer.isBuffer(arg)) args[i] = String(arg);
    }
    command.args = args;
    if (!command.bufferMode && args.some((arg) => Buffer.isBuffer(arg))) command.bufferMode = true;
  }
  // Keys and slot are computed from the arguments on first use: forget any
  // computed from the old ones (undefined, not delete: the object keeps its shape).
  if (command.keys !== undefined) command.keys = undefined;
  if (command.slot !== undefined) command.slot = undefined;
  if (plan.reply) {
    // transformReply serves both a plain reply and a reply inside EXEC's array.
    // Dye's runs last, on the shape the user gets: ioredis 6 reshapes RESP3
    // replies there (an XREAD map becomes [[stream, entries]…], or an object).
    const transform = plan.reply;
    const original = command.transformReply;
    command.transformReply = function transformReply(this: PendingCommand, reply: unknown) {
      const shaped = original.call(this, reply);
      return shaped instanceof Error ? shaped : transform(shaped);
    };
  }
}
